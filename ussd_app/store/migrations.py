"""Every change to the schema, in the one order it is applied.

Each entry is (name, function); ``apply`` runs those a database has not had
yet, in this order, each in a transaction with the record of it
(``_sqlite_migrations``, as sqlite-utils keeps it), so each runs once. The
names are that record: never rename one. A new migration goes at the end.

The order matters: the SMS channel's migration alters the outbox, a voice
recording's rows belong to a complaint, and the privacy migration alters the
outbox and indexes ``voice_calls``, so it comes after both.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from ussd_app.store.agencies import m_agencies_001
from ussd_app.store.callbacks import m_voice_callbacks_001
from ussd_app.store.complaints import m_complaints_001
from ussd_app.store.health import m_health_001
from ussd_app.store.keys import m_keys_001
from ussd_app.store.operators import m_operators_001, m_operators_002_audit_actor
from ussd_app.store.outbox import m002_outbox
from ussd_app.store.privacy import m_privacy_001
from ussd_app.store.sessions import m001_sessions
from ussd_app.store.sms import m_sms_001
from ussd_app.store.voice import m_voice_calls_001
from ussd_app.store.voice_recordings import m_voice_recordings_001

Migration = Callable[[Database], None]

MIGRATIONS: tuple[tuple[str, Migration], ...] = (
    ("m001_sessions", m001_sessions),
    ("m002_outbox", m002_outbox),
    ("m_health_001", m_health_001),
    ("m_keys_001", m_keys_001),
    ("m_agencies_001", m_agencies_001),
    ("m_sms_001", m_sms_001),
    ("m_complaints_001", m_complaints_001),
    ("m_operators_001", m_operators_001),
    ("m_operators_002_audit_actor", m_operators_002_audit_actor),
    ("m_voice_callbacks_001", m_voice_callbacks_001),
    ("m_voice_calls_001", m_voice_calls_001),
    ("m_voice_recordings_001", m_voice_recordings_001),
    ("m_privacy_001", m_privacy_001),
)


def _migration_set() -> Migrations:
    found = Migrations("migrantline")
    for name, function in MIGRATIONS:
        found(name=name)(function)
    return found


migrations = _migration_set()


def apply(db: Database) -> None:
    """Run the migrations this database has not had yet, in order."""
    migrations.apply(db)


def applied(db: Database) -> list[str]:
    return [m.name for m in migrations.applied(db)]


def pending(db: Database) -> list[str]:
    return [m.name for m in migrations.pending(db)]
