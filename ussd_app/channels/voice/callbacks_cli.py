"""``migrantline callbacks``: place queued missed-call call-backs, and see them."""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime

import click

from ussd_app import settings


@click.group(help="Missed-call call-backs: a caller rings and hangs up, the service calls back.")
def callbacks() -> None:
    pass


def _callbacks(background: bool = False):  # noqa: ANN202 - the import stays lazy
    from ussd_app.channels.voice.callbacks import make_callbacks  # lazy: CLI start-up
    from ussd_app.store import open_store  # lazy: CLI start-up

    config = settings.load()
    data_dir = config.data_dir
    store = open_store(data_dir)
    try:
        return make_callbacks(config, store, settings.secret_key(config, data_dir),
                              background=background)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@callbacks.command("place", help="Place due call-backs through MIGRANTLINE_VOICE_PROVIDER, with "
                   "retries and backoff; --forever keeps running as a background worker.")
@click.option("--forever", is_flag=True, help="keep placing new call-backs until stopped")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(0.05, 600),
              help="seconds between polls (with --forever)")
def place(forever: bool, interval: float) -> None:
    worker = _callbacks()
    if worker.provider is None:
        click.echo("MIGRANTLINE_VOICE_PROVIDER is none: call-backs are stored, not placed")
        return
    if not forever:
        placed = worker.place_due()
        click.echo(f"{placed} placed" if placed else "nothing placed")
        return
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"call-back worker: calling through {worker.provider.name}; Ctrl-C stops it")
    try:
        while not stop.is_set():
            try:
                worker.place_due()
            except Exception as exc:  # the database was locked too long, say: try again
                click.echo(f"call-back worker: {type(exc).__name__}; trying again", err=True)
            stop.wait(interval)
    except KeyboardInterrupt:
        pass


@callbacks.command("list", help="The newest call-backs, numbers masked.")
@click.option("--status", type=click.Choice(["queued", "calling", "placed", "failed", "dead",
                                             "refused"]), default=None, help="only these")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10000))
def list_(status: str | None, limit: int) -> None:
    rows = _callbacks().masked(status, limit)
    if not rows:
        click.echo("no call-backs")
        return
    click.echo(f"{'id':>6}  {'when (UTC)':<16}  {'number':<18}  {'status':<8}  "
               f"{'tries':>5}  via / error")
    for row in rows:
        when = datetime.fromtimestamp(row["created_at"], UTC).strftime("%Y-%m-%d %H:%M")
        detail = " ".join(str(x) for x in (row["placed_via"] or row["provider"],
                                           row["error"] or "") if x)
        click.echo(f"{row['id']:>6}  {when:<16}  {row['number']:<18}  {row['status']:<8}  "
                   f"{row['attempts']:>5}  {detail}")
