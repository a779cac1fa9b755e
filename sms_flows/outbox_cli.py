"""``migrantline outbox``: deliver queued SMS, and see what the outbox holds."""

from __future__ import annotations

import click

from ussd_app import jobs, settings


@click.group(help="The SMS outbox: every message the service sends is stored here first.")
def outbox() -> None:
    pass


@outbox.command("send", help="Deliver queued SMS through MIGRANTLINE_SMS_PROVIDER, with "
                "retries and backoff; --forever keeps running as a dedicated sender (any "
                "number of them, on any nodes: each message is claimed by one).")
@click.option("--forever", is_flag=True, help="keep polling for new messages until stopped "
              "(SIGTERM or Ctrl-C stop it cleanly)")
@click.option("--interval", default=1.0, show_default=True, type=click.FloatRange(0.05, 60),
              help="seconds between polls when idle (with --forever)")
def send(forever: bool, interval: float) -> None:
    from sms_flows.outbox import make_worker  # lazy: CLI start-up
    from ussd_app.store import open_store  # lazy: CLI start-up

    config = settings.load()
    data_dir = config.data_dir
    store = open_store(data_dir, url=config.database_url or "")
    try:
        worker = make_worker(config, store, settings.secret_key(config, data_dir))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if worker.provider.name == "outbox":
        click.echo("MIGRANTLINE_SMS_PROVIDER is outbox: messages are stored, not sent")
        return
    if forever:
        stop = jobs.stop_on_signals()
        click.echo(f"outbox sender: sending through {worker.provider.name} every "
                   f"{interval:g} s when idle; SIGTERM or Ctrl-C stops it", err=True)
        worker.forever(stop, idle=interval, progress=lambda counts: click.echo(
            "outbox sender: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
            err=True))
        click.echo("outbox sender: stopped", err=True)
    else:
        counts = worker.drain()
        click.echo(", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
                   or "nothing to send")
    worker.close()
    store.close()


@outbox.command("status", help="How many messages the outbox holds in each state.")
def status() -> None:
    from ussd_app.store import open_store, outbox_counts  # lazy: CLI start-up

    config = settings.load()
    store = open_store(config.data_dir, url=config.database_url or "")
    counts = outbox_counts(store)
    for name in ("queued", "sending", "sent", "delivered", "failed", "dead", "suppressed"):
        click.echo(f"{name:<11}{counts.get(name, 0)}")
