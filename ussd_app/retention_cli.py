"""``migrantline retention purge``: personal data is kept no longer than a case needs it.

Run it daily (cron or a systemd timer). What goes: phone numbers, free text,
the phone's pseudonym, the PIN and operators' notes of complaints closed
longer ago than ``MIGRANTLINE_RETENTION_DAYS``. What stays: category, country,
status and dates, so the weekly figures still add up.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import settings
from .actor import cli_actor

if TYPE_CHECKING:
    from .store import Store

RETENTION_REASON = "retention period over"  # what ``Complaints.purge`` records


@click.group(help="Erase personal data that is no longer needed.")
def retention() -> None:
    pass


@retention.command(help="Erase the personal data of complaints closed longer ago than the "
                        "retention period (MIGRANTLINE_RETENTION_DAYS).")
@click.option("--days", type=click.FloatRange(min=0), default=None,
              help="retention period in days, instead of MIGRANTLINE_RETENTION_DAYS")
@click.option("--dry-run", is_flag=True, help="only say how many would be erased")
def purge(days: float | None, dry_run: bool) -> None:
    from .complaints import Complaints
    from .i18n import default_catalogs
    from .store import complaints as complaint_db
    from .store import open_store

    config = settings.load()
    try:
        period = days if days is not None else float(settings.integer(
            config, "MIGRANTLINE_RETENTION_DAYS"))
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    data_dir = Path(str(config["MIGRANTLINE_DATA_DIR"])).resolve()
    store = open_store(data_dir)
    cutoff = time.time() - period * 86400
    when = datetime.fromtimestamp(cutoff, UTC).strftime("%Y-%m-%d %H:%M UTC")
    try:
        if dry_run:
            count = len(complaint_db.closed_before(store, cutoff))
            click.echo(f"{count} closed complaint(s) before {when} would be erased "
                       f"(retention {period:g} days); nothing changed")
            return
        complaints = Complaints(store, settings.secret_key(config, data_dir),
                                default_catalogs().gettext)
        started = time.time()
        count = complaints.purge(period)
        _audit(store, started, count, when, period)
    finally:
        store.close()
    click.echo(f"erased the personal data of {count} complaint(s) closed before {when} "
               f"(retention {period:g} days)")


def _audit(store: Store, started: float, count: int, when: str, period: float) -> None:
    """One audit row per complaint erased, and one for the run (even when it erased none):
    a supervisor sees that a purge ran, by whom (``cli:<unix user>``), and what it took."""
    from .store import operators as operators_db

    actor = cli_actor()
    erased = [int(r[0]) for r in store.db().execute(
        "select id from complaints where erased_reason = ? and erased_at >= ? order by id",
        [RETENTION_REASON, started])]
    for complaint_id in erased:
        operators_db.audit(store, time.time(), None, "complaint_erased", complaint_id,
                           "retention purge", "", actor=actor)
    operators_db.audit(store, time.time(), None, "retention_purge", None,
                       f"erased the personal data of {count} complaint(s) closed before "
                       f"{when} (retention {period:g} days)", "", actor=actor)
