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

from sqlite_utils.migrations import Migrations

from ussd_app.store.agencies import (
    m_agencies_001,
    m_agencies_002_seq,
    m_agencies_003_by_version,
    m_agencies_004_also,
)
from ussd_app.store.agency_flags import m_agency_flags_001
from ussd_app.store.analytics import m_complaints_002_outcome, m_menu_counts_001
from ussd_app.store.base import Db, PgDb, lock_id
from ussd_app.store.callbacks import m_voice_callbacks_001
from ussd_app.store.case_messages import m_case_messages_001
from ussd_app.store.centres import m_centres_001
from ussd_app.store.cluster import m_cluster_001_job_runs
from ussd_app.store.complaints import (
    m_complaints_001,
    m_complaints_002_urgent,
    m_complaints_003_alerts,
    m_complaints_004_agency_key,
    m_complaints_004_records,
    m_replies_002_case_window,
)
from ussd_app.store.health import m_health_001
from ussd_app.store.job_records import m_job_records_001
from ussd_app.store.keys import m_keys_001
from ussd_app.store.operators import m_operators_001, m_operators_002_audit_actor
from ussd_app.store.outbox import (
    m002_outbox,
    m_outbox_002_sent_journal,
    m_replies_001_outbox_window,
)
from ussd_app.store.partners import m_partners_002_users_notify
from ussd_app.store.privacy import m_privacy_001
from ussd_app.store.sessions import (
    m001_sessions,
    m_sessions_002_inputs,
    m_sessions_003_hot_updates,
)
from ussd_app.store.sms import m_sms_001
from ussd_app.store.voice import m_voice_calls_001, m_voice_calls_002_hot_updates
from ussd_app.store.voice_recordings import (
    m_voice_recordings_001,
    m_voice_recordings_002_audio_key,
)

Migration = Callable[[Db], None]

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
    ("m_agencies_002_seq", m_agencies_002_seq),
    ("m_outbox_002_sent_journal", m_outbox_002_sent_journal),
    ("m_cluster_001_job_runs", m_cluster_001_job_runs),
    ("m_sessions_002_inputs", m_sessions_002_inputs),
    ("m_voice_recordings_002_audio_key", m_voice_recordings_002_audio_key),
    ("m_agencies_003_by_version", m_agencies_003_by_version),
    ("m_case_messages_001", m_case_messages_001),
    ("m_complaints_002_outcome", m_complaints_002_outcome),
    ("m_menu_counts_001", m_menu_counts_001),
    ("m_complaints_002_urgent", m_complaints_002_urgent),
    ("m_complaints_003_alerts", m_complaints_003_alerts),
    ("m_partners_002_users_notify", m_partners_002_users_notify),
    ("m_replies_001_outbox_window", m_replies_001_outbox_window),
    ("m_replies_002_case_window", m_replies_002_case_window),
    ("m_agency_flags_001", m_agency_flags_001),
    ("m_agencies_004_also", m_agencies_004_also),
    ("m_complaints_004_agency_key", m_complaints_004_agency_key),
    ("m_job_records_001", m_job_records_001),
    ("m_complaints_004_records", m_complaints_004_records),
    ("m_centres_001", m_centres_001),
    ("m_sessions_003_hot_updates", m_sessions_003_hot_updates),
    ("m_voice_calls_002_hot_updates", m_voice_calls_002_hot_updates),
)


def _migration_set() -> Migrations:
    found = Migrations("migrantline")
    for name, function in MIGRATIONS:
        found(name=name)(function)
    return found


migrations = _migration_set()


# The record of what ran, as sqlite-utils keeps it on SQLite; the same table on PostgreSQL.
RECORD = "_sqlite_migrations"
SET = "migrantline"


def apply(db: Db) -> list[str]:
    """Run the migrations this database has not had yet, in order; return their names.

    On PostgreSQL the whole upgrade holds an advisory lock, so two nodes (or a
    node and ``migrantline db upgrade``) starting at once run each migration
    once; each migration commits with its record.
    """
    if not isinstance(db, PgDb):
        todo = pending(db)
        migrations.apply(db)
        return todo
    conn = db.conn
    with conn.raw.transaction():
        conn.execute("select pg_advisory_xact_lock(?)", [lock_id("migrations")])
        conn.execute(f"create table if not exists {RECORD} (migration_set text, name text, "
                     "applied_at text, primary key (migration_set, name))")
        done = set(applied(db))
        steps = [(name, fn) for name, fn in MIGRATIONS if name not in done]
        for name, function in steps:
            with conn.raw.transaction():  # a savepoint: one migration with its record
                function(db)
                conn.execute(f"insert into {RECORD} (migration_set, name, applied_at) "
                             "values (?, ?, now()::text)", [SET, name])
    return [name for name, _ in steps]


def applied(db: Db) -> list[str]:
    if not isinstance(db, PgDb):
        return [m.name for m in migrations.applied(db)]
    if not db.execute("select to_regclass(?)", [RECORD]).fetchone()[0]:
        return []
    names = {r[0] for r in db.execute(f"select name from {RECORD} where migration_set = ?",
                                      [SET])}
    return [name for name, _ in MIGRATIONS if name in names]


def pending(db: Db) -> list[str]:
    if not isinstance(db, PgDb):
        return [m.name for m in migrations.pending(db)]
    done = set(applied(db))
    return [name for name, _ in MIGRATIONS if name not in done]
