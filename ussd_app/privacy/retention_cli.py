"""``migrantline retention purge``: personal data is kept no longer than a case needs it.

Run it daily (cron or a systemd timer). What goes: phone numbers, free text,
the phone's pseudonym, the PIN and operators' notes of complaints closed
longer ago than ``MIGRANTLINE_RETENTION_DAYS``, with everything linked to
them (sessions, conversations, calls, SMS); the text of SMS sent more than
``MIGRANTLINE_OUTBOX_KEEP_DAYS`` ago; sessions and drafts past their time.
What stays: category, country, status and dates, so the weekly figures
still add up.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from ussd_app import settings
from ussd_app.actor import cli_actor

if TYPE_CHECKING:
    from ussd_app.store import Store  # lazy: CLI start-up

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
    from ussd_app.complaints.service import Complaints  # lazy: CLI start-up
    from ussd_app.i18n import default_catalogs  # lazy: CLI start-up
    from ussd_app.privacy.purges import (  # lazy: CLI start-up
        SESSION_KEEP_SECONDS,
        purge_outbox_bodies,
    )
    from ussd_app.store import complaints as complaint_db  # lazy: CLI start-up
    from ussd_app.store import open_store, purge_sms_conversations  # lazy: CLI start-up
    from ussd_app.store.privacy import checkpoint, purge_erased_phones  # lazy: CLI start-up
    from ussd_app.store.voice import purge_voice_calls  # lazy: CLI start-up

    config = settings.load()
    period = days if days is not None else float(config.retention_days)
    data_dir = config.data_dir
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
        _delete_erased_audio(store, config)
        # What else holds personal data past its time: SMS texts, sessions, drafts.
        keep_days = config.outbox_keep_days
        sms = purge_outbox_bodies(store, keep_days)
        now = time.time()
        draft_seconds = 60 * config.draft_minutes
        store.purge_sessions(now - SESSION_KEEP_SECONDS, drafts_older_than=now - draft_seconds)
        purge_sms_conversations(store, now - 3600 * config.sms_conversation_hours,
                                now - draft_seconds)
        purge_voice_calls(store, now - SESSION_KEEP_SECONDS)
        purge_erased_phones(store, now)
        _audit(store, started, count, when, period)
        checkpoint(store)
    finally:
        store.close()
    click.echo(f"erased the personal data of {count} complaint(s) closed before {when} "
               f"(retention {period:g} days) and the text of {sms} SMS sent more than "
               f"{keep_days} days ago")


def _audit(store: Store, started: float, count: int, when: str, period: float) -> None:
    """One audit row per complaint erased, and one for the run (even when it erased none):
    a supervisor sees that a purge ran, by whom (``cli:<unix user>``), and what it took."""
    from ussd_app.store import operators as operators_db  # lazy: CLI start-up

    actor = cli_actor()
    from ussd_app.store import complaints as complaint_db  # lazy: CLI start-up

    erased = complaint_db.erased_since(store, RETENTION_REASON, started)
    for complaint_id in erased:
        operators_db.audit(store, time.time(), None, "complaint_erased", complaint_id,
                           "retention purge", "", actor=actor)
    operators_db.audit(store, time.time(), None, "retention_purge", None,
                       f"erased the personal data of {count} complaint(s) closed before "
                       f"{when} (retention {period:g} days)", "", actor=actor)


def _delete_erased_audio(store: Store, config: settings.Settings) -> None:
    """Erased recordings' audio in the shared bucket goes now, not with a node's next round."""
    from ussd_app.audio_store import from_config  # lazy: CLI start-up (boto3)
    from ussd_app.channels.voice.recordings import VoiceRecordings  # lazy: CLI start-up

    secret = settings.secret_key(config, config.data_dir)
    deleted = VoiceRecordings(store, secret, config, audio=from_config(config)).delete_erased()
    if deleted:
        click.echo(f"{deleted} erased recording(s) deleted from the audio store")
