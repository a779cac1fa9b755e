"""``migrantline db upgrade`` and ``db status``: the schema as a deploy step.

SQLite upgrades itself when the service opens it (a field office runs one
command). On PostgreSQL several nodes share one database, so the schema moves
once, on purpose, before the new code starts: ``db upgrade`` applies what is
pending (under an advisory lock, so a second run waits and finds nothing to
do), and a node that finds migrations pending refuses to start.
"""

from __future__ import annotations

import time

import click

from ussd_app import settings
from ussd_app.store.base import DB_ERRORS
from ussd_app.store.core import Store


def _store() -> Store:
    config = settings.load()
    return Store(config.data_dir / "migrantline.db", url=config.database_url or "")


@click.group(help="The database schema: upgrade it (a deploy step on PostgreSQL), or show it.")
def db() -> None:
    pass


@db.command(help="Apply the migrations this database has not had, in order, once.")
def upgrade() -> None:
    store = _store()
    where = "PostgreSQL" if store.postgres else str(store.path)
    started = time.monotonic()
    try:
        if store.postgres or store.path.exists():
            pending = store.pending_migrations()
            if not pending:
                click.echo(f"{where}: up to date, nothing to apply")
                return
            click.echo(f"{where}: applying {len(pending)} migration(s)...")
        else:
            click.echo(f"{where}: new database, applying every migration...")
        done = store.migrate()
    except DB_ERRORS as exc:
        raise click.ClickException(
            f"could not upgrade {where}: {exc}; check MIGRANTLINE_DATABASE_URL and that the "
            "database is up, then run `migrantline db upgrade` again (each migration is "
            "applied whole or not at all)") from exc
    for name in done:
        click.echo(f"  applied {name}")
    click.echo(f"done: {len(done)} applied in {time.monotonic() - started:.1f} s")


@db.command(help="Which engine, and which migrations are applied or pending (exit 1 if any).")
def status() -> None:
    store = _store()
    if not store.postgres and not store.path.exists():
        raise click.ClickException(f"no database at {store.path} yet: `migrantline db upgrade` "
                                   "or `migrantline serve` makes it")
    health = store.health()
    if health.get("status") == "error":
        raise click.ClickException(f"cannot read the database: {health.get('error')}; check "
                                   "MIGRANTLINE_DATABASE_URL and that the database is up")
    click.echo(f"engine: {store.engine}")
    click.echo(f"migrations applied: {health['migrations']}")
    pending = health["pending"]
    click.echo(f"pending: {', '.join(pending) if pending else 'none'}")
    if pending:
        raise SystemExit(1)
