"""All SQL lives here: the one package that talks to the database.

The parts (none imports this package, and no two import each other in a ring):

* ``base``: one connection per thread, transactions, row helpers;
* a module per table family: ``sessions`` (USSD sessions and language choices,
  written behind the hot path), ``outbox`` (every SMS sent), ``sms``
  (conversations, inbound claims, opt-outs), ``agencies``, ``complaints`` (with
  ``complaint_events``), ``queue`` (the operators' queue), ``operators``,
  ``callbacks``, ``voice`` (calls), ``voice_recordings``, ``job_records`` (job-offer
  records and their scans), ``privacy`` (erasure
  of linked data), ``keys`` (key check and rotation), ``health`` (write probe);
* ``migrations``: the one ordered list of schema changes;
* ``core``: ``Store``, composed of the parts, and ``open_store``.

Phone numbers are never stored here: sessions and language choices are keyed
by a keyed hash of the number (see ``privacy/protect.py``).

The names below are the store's public face, kept importable from here.
"""

from ussd_app.store.agencies import (
    AGENCY_COLUMNS,
    agencies_by_licence_digits,
    agencies_by_licence_key,
    agency_names,
    agency_versions,
    has_agency_version,
    store_agencies,
    touch_agency_version,
)
from ussd_app.store.base import DB_ERRORS, write_transaction
from ussd_app.store.core import Store, open_store
from ussd_app.store.health import PROBE_SECONDS, PROBE_TIMEOUT
from ussd_app.store.outbox import (
    OUTBOX_DONE,
    OutboxItem,
    claim_outbox,
    delivery_report,
    enqueue,
    finish_outbox,
    hold_outbox,
    journal_sent,
    outbox_counts,
    record_sent,
    renew_outbox,
    replay_journal,
)
from ussd_app.store.session_rows import FreshStarts, SessionRow
from ussd_app.store.sessions import FORGET_SECONDS
from ussd_app.store.sms import (
    Conversation,
    inbound_seen,
    is_opted_out,
    purge_sms_conversations,
    recent_inbound,
    record_inbound,
    sms_conversation,
)

# isort: split
# The table modules that callers use by name (``store.complaints``, ``store.voice``...).
from ussd_app.store import (  # noqa: F401
    agency_flags,
    callbacks,
    complaints,
    operators,
    privacy,
    queue,
    voice,
    voice_recordings,
)

__all__ = [
    "AGENCY_COLUMNS", "DB_ERRORS", "agency_flags", "FORGET_SECONDS", "OUTBOX_DONE", "PROBE_SECONDS",
    "PROBE_TIMEOUT", "Conversation", "FreshStarts", "OutboxItem", "SessionRow", "Store",
    "agencies_by_licence_digits", "agencies_by_licence_key", "agency_names",
    "agency_versions", "callbacks", "claim_outbox", "complaints", "delivery_report",
    "enqueue", "finish_outbox", "hold_outbox", "inbound_seen", "is_opted_out", "journal_sent",
    "open_store",
    "operators", "outbox_counts", "privacy", "purge_sms_conversations", "queue", "record_inbound",
    "has_agency_version", "record_sent", "recent_inbound", "renew_outbox", "replay_journal",
    "sms_conversation", "store_agencies", "touch_agency_version", "voice", "voice_recordings",
    "write_transaction",
]
