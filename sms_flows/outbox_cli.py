"""``migrantline outbox``: deliver queued SMS, and see what the outbox holds."""

from __future__ import annotations

import signal
import threading

import click

from ussd_app import settings


@click.group(help="The SMS outbox: every message the service sends is stored here first.")
def outbox() -> None:
    pass


@outbox.command("send", help="Deliver queued SMS through MIGRANTLINE_SMS_PROVIDER, with "
                "retries and backoff; --forever keeps running as a background worker.")
@click.option("--forever", is_flag=True, help="keep polling for new messages until stopped")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.05, 60),
              help="seconds between polls when idle (with --forever)")
def send(forever: bool, interval: float) -> None:
    from sms_flows.outbox import make_worker  # lazy: CLI start-up
    from ussd_app.store import open_store  # lazy: CLI start-up

    config = settings.load()
    data_dir = config.data_dir
    store = open_store(data_dir)
    try:
        worker = make_worker(config, store, settings.secret_key(config, data_dir))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if worker.provider.name == "outbox":
        click.echo("MIGRANTLINE_SMS_PROVIDER is outbox: messages are stored, not sent")
        return
    if forever:
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        click.echo(f"outbox worker: sending through {worker.provider.name}; Ctrl-C stops it")
        try:
            worker.forever(stop, idle=interval)
        except KeyboardInterrupt:
            pass
    else:
        counts = worker.drain()
        click.echo(", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
                   or "nothing to send")
    worker.close()


@outbox.command("status", help="How many messages the outbox holds in each state.")
def status() -> None:
    from ussd_app.store import open_store, outbox_counts  # lazy: CLI start-up

    config = settings.load()
    store = open_store(config.data_dir)
    counts = outbox_counts(store)
    for name in ("queued", "sending", "sent", "delivered", "failed", "dead", "suppressed"):
        click.echo(f"{name:<11}{counts.get(name, 0)}")
