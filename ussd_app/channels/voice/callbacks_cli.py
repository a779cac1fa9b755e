"""``migrantline callbacks``: place queued missed-call call-backs, and see them."""

from __future__ import annotations

from datetime import UTC, datetime

import click

from ussd_app import jobs, settings


@click.group(help="Missed-call call-backs: a caller rings and hangs up, the service calls back.")
def callbacks() -> None:
    pass


def _callbacks(background: bool = False):  # noqa: ANN202 - the import stays lazy
    from ussd_app.channels.voice.callbacks import make_callbacks  # lazy: CLI start-up
    from ussd_app.store import open_store  # lazy: CLI start-up

    config = settings.load()
    data_dir = config.data_dir
    store = open_store(data_dir, url=config.database_url or "")
    try:
        return make_callbacks(config, store, settings.secret_key(config, data_dir),
                              background=background)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


@callbacks.command("place", help="Place due call-backs through MIGRANTLINE_VOICE_PROVIDER, with "
                   "retries and backoff; --forever keeps running as a dedicated sender (any "
                   "number of them, on any nodes: each call-back is claimed by one).")
@click.option("--forever", is_flag=True, help="keep placing new call-backs until stopped "
              "(SIGTERM or Ctrl-C stop it cleanly)")
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
    stop = jobs.stop_on_signals()
    click.echo(f"call-back sender: calling through {worker.provider.name} every "
               f"{interval:g} s; SIGTERM or Ctrl-C stops it", err=True)
    while not stop.is_set():
        try:
            placed = worker.place_due()
        except Exception as exc:  # the database was unreachable, say: try again
            click.echo(f"call-back sender: {type(exc).__name__}; trying again", err=True)
        else:
            if placed:
                click.echo(f"call-back sender: {placed} placed", err=True)
        stop.wait(interval)
    click.echo("call-back sender: stopped", err=True)


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
