"""Erasure of what a case or a phone left outside the complaints table.

A complaint's own columns are erased by ``complaints.erase``; what the same
person left elsewhere is erased here, in the same transaction: the SMS the
service sent them (the outbox), their USSD sessions (the path typed, PIN
included), their SMS conversation and voice call states, their language, the
messages they texted about any case.
Everything is found by the phone's pseudonym (``phone_key``; for a caller
with no number, the pseudonym of their one session) and by the outbox keys
the case itself caused.

Outbox bodies are also erased on their own once delivered and kept
``MIGRANTLINE_OUTBOX_KEEP_DAYS`` (``erase_outbox_bodies``): the row stays
(status, segments, dates: the figures), the text and the number go.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

from ussd_app import jobs
from ussd_app.store.base import (
    DB_ERRORS,
    Conn,
    Db,
    Handle,
    is_postgres,
    rowcount,
    secure_delete,
    write_transaction,
)
from ussd_app.store.case_messages import erase_for_phone as erase_case_messages
from ussd_app.store.outbox import OUTBOX_DONE

log = logging.getLogger(__name__)


def m_privacy_001(db: Db) -> None:
    """Outbox rows name the phone (pseudonym) they were for, and when their text went."""
    db.table("outbox").add_column("phone_key", str)
    db.table("outbox").add_column("erased_at", float)
    db.table("outbox").create_index(["phone_key"])
    db.table("voice_calls").create_index(["phone_key"])
    # Phones erased a moment ago, and when: another process's write-behind buffer may
    # still hold a session or language of theirs from before; its flush skips those.
    db.table("erased_phones").create({"phone_key": str, "at": float}, pk="phone_key")


_ERASE_OUTBOX = (
    "update outbox set body = '', to_sealed = '', phone_key = null, erased_at = ?, "
    "status = case when status in ('queued', 'sending') then 'suppressed' else status end, "
    "error = case when status in ('queued', 'sending') then 'erased before sending' "
    "else error end, updated_at = ? where erased_at is null and ")


def erase_linked(conn: Conn, phone_keys: Iterable[str],
                 outbox_keys: Sequence[str], outbox_prefixes: Sequence[str],
                 at: float) -> int:
    """Erase, inside the caller's transaction, what these phones and outbox keys hold.

    Outbox rows keep their metadata (status, segments, dates) for the figures;
    a message not sent yet is not sent any more (``suppressed``).
    """
    keys = sorted({k for k in phone_keys if k})
    count = 0
    for key in keys:
        conn.execute("insert into erased_phones (phone_key, at) values (?, ?) "
                     "on conflict (phone_key) do update set at = excluded.at", [key, at])
        count += rowcount(conn.execute("delete from ussd_sessions where phone_key = ?", [key]))
        count += rowcount(conn.execute("delete from sms_conversations where phone_key = ?",
                                    [key]))
        count += rowcount(conn.execute("update voice_calls set state = '{}', phone_key = '' "
                                    "where phone_key = ?", [key]))
        count += rowcount(conn.execute("delete from phones where key = ?", [key]))
        count += rowcount(conn.execute(_ERASE_OUTBOX + "phone_key = ?", [at, at, key]))
        conn.execute("update sms_inbound set phone_key = null, digest = null "
                     "where phone_key = ?", [key])
        conn.execute("update pin_attempts set phone_key = null where phone_key = ?", [key])
        count += erase_case_messages(conn, key, at)  # what it texted about any case
        # A call-back not placed yet is not placed any more ("refused" stops the worker).
        count += rowcount(conn.execute(
            "update callbacks set phone_sealed = '', phone_key = '', updated_at = ?, "
            "status = case when status = 'queued' then 'refused' else status end, "
            "error = case when status = 'queued' then 'erased' else error end "
            "where phone_key = ?", [at, key]))
    for outbox_key in outbox_keys:
        count += rowcount(conn.execute(_ERASE_OUTBOX + "key = ?", [at, at, outbox_key]))
    for prefix in outbox_prefixes:
        count += rowcount(conn.execute(_ERASE_OUTBOX + "key >= ? and key < ?",
                                    [at, at, prefix, prefix + "\uffff"]))
    return count


def erase_phones(store: Handle, phone_keys: Iterable[str], at: float) -> int:
    """``erase_linked`` for phones alone, in a transaction of its own."""
    keys = list(phone_keys)
    store.forget_phones(keys)
    conn = store.db().conn
    with secure_delete(conn), write_transaction(conn):
        return erase_linked(conn, keys, (), (), at)


def erase_outbox_bodies(store: Handle, before: float, at: float) -> int:
    """Erase the text and number of messages done with (sent, failed...) before ``before``."""
    conn = store.db().conn
    done = ", ".join(f"'{s}'" for s in OUTBOX_DONE)
    with secure_delete(conn), write_transaction(conn):
        return rowcount(conn.execute(
            "update outbox set body = '', to_sealed = '', phone_key = null, erased_at = ? "
            f"where erased_at is null and status in ({done}) and updated_at < ?",
            [at, before]))


ERASED_PHONES_KEEP_SECONDS = 3600.0  # far longer than any buffer waits to be flushed


def purge_erased_phones(store: Handle, now: float) -> int:
    """Forget which phones were erased once no buffer can hold anything older."""
    return rowcount(store.db().execute("delete from erased_phones where at < ?",
                                    [now - ERASED_PHONES_KEEP_SECONDS]))


# Every table an erasure (or a purge) rewrites or deletes personal data in.
ERASED_TABLES = ("complaints", "complaint_events", "complaint_messages", "outbox", "callbacks",
                 "ussd_sessions", "sms_conversations", "sms_inbound", "voice_calls",
                 "voice_recordings", "phones", "pin_attempts", "job_records",
                 "job_record_scans")


def checkpoint(store: Handle, wait_ms: int = 2000, retry: bool = True) -> bool:
    """Fold the WAL into the database and truncate it: erased text must not linger in
    the ``-wal`` file's old frames (secure_delete zeroes the database's pages only).

    It waits for the readers of older snapshots to finish, at most ``wait_ms`` (an
    erasure asked for on a USSD hop must not hang it); if one still reads, it is tried
    again in the background with the usual timeout. True if the WAL was truncated now.
    On PostgreSQL the same step is ``vacuum`` (see there).
    """
    db = store.db()
    if is_postgres(db):
        return vacuum(store, ERASED_TABLES, wait_ms, retry)
    db.execute(f"PRAGMA busy_timeout = {int(wait_ms)}")
    try:
        busy = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
    except DB_ERRORS:
        busy = 1
    finally:
        db.execute("PRAGMA busy_timeout = 10000")
    if busy:
        _again(store, retry)
        return False
    return True


def vacuum(store: Handle, tables: Sequence[str], wait_ms: int = 2000,
           retry: bool = True) -> bool:
    """PostgreSQL: ``VACUUM`` the tables an erasure touched, once its transaction committed.

    An UPDATE or DELETE leaves the old row version (the erased text) in the table
    until a vacuum removes it; autovacuum would, some time later. After this no
    query, index or page scan through the database reaches it, and its space is
    reused by later writes. What PostgreSQL still keeps, honestly: the bytes of a
    removed version may stay in a page's free space until overwritten; the WAL
    segments that logged the old rows stay until the server recycles them (and in
    a WAL archive or replica, if one is configured); base backups keep what they
    copied. A version another open transaction can still see is not removed (the
    next erasure or the hourly outbox purge vacuums again). It waits at most
    ``wait_ms`` for a table's lock, then is tried again in the background.
    """
    conn = store.db().conn
    try:
        conn.execute(f"set lock_timeout = {int(wait_ms)}")
        for table in tables:
            conn.execute(f"vacuum {table}")  # autocommit: VACUUM runs outside a transaction
    except DB_ERRORS as exc:
        log.warning("vacuum after an erasure failed: %s", exc)
        _again(store, retry)
        return False
    finally:
        conn.execute("reset lock_timeout")
    return True


def _again(store: Handle, retry: bool) -> None:
    if retry:
        log.warning("WAL checkpoint (vacuum) after an erasure waits for a reader; retrying "
                    "in the background")
        jobs.once(lambda: checkpoint(store, 10000, retry=False), "wal-checkpoint")
    else:
        log.warning("WAL checkpoint (vacuum) still blocked by a reader; the next erasure or "
                    "the hourly outbox purge checkpoints again")


def linked_counts(store: Handle, phone_key: str) -> dict[str, Any]:
    """How many rows still hold something of this phone (for tests and the CLI)."""
    db = store.db()
    return {
        "ussd_sessions": db.execute("select count(*) from ussd_sessions where phone_key = ?",
                                    [phone_key]).fetchone()[0],
        "sms_conversations": db.execute(
            "select count(*) from sms_conversations where phone_key = ?",
            [phone_key]).fetchone()[0],
        "voice_calls": db.execute("select count(*) from voice_calls where phone_key = ?",
                                  [phone_key]).fetchone()[0],
        "phones": db.execute("select count(*) from phones where key = ?",
                             [phone_key]).fetchone()[0],
        "outbox": db.execute("select count(*) from outbox where phone_key = ?",
                             [phone_key]).fetchone()[0],
    }
