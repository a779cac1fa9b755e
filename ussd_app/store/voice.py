"""Voice calls: where each call is in the menus, the SQL of ``ussd_app.voice_calls``.

A call is keyed by its provider's id (Twilio's ``CallSid``, Africa's Talking's
``sessionId``). Unlike USSD, a voice webhook does not resend the whole path,
so the engine state is stored after every step, with ``seq`` (the steps taken
so far): a provider's retry of a step carries the ``seq`` it was answering and
is recognised, so it is shown again instead of applied twice. The state is
encrypted once it holds what the caller answered (the service seals it before
it gets here); the phone number is only its keyed hash.

Each write of a webhook is one statement, committed on its own (both engines'
connections autocommit): its condition (``seq``, ``ended_at is null``, the key)
makes it a compare-and-set, so it needs neither a transaction nor the
cluster-wide writer lock of ``write_transaction``, which every voice webhook on
every node took on PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ussd_app.store.base import Db, Handle, PgDb, greatest, rowcount, write_transaction


def m_voice_calls_001(db: Db) -> None:
    db.table("voice_calls").create(
        {"key": str, "provider": str, "phone_key": str, "direction": str, "version": str,
         "state": str, "seq": int, "silent_seq": int, "silent_count": int,
         "inputs": int, "started_at": float, "updated_at": float, "ended_at": float,
         "outcome": str},
        pk="key", not_null={"provider", "phone_key", "state"},
        defaults={"seq": 0, "silent_seq": -1, "silent_count": 0, "inputs": 0},
    )
    db.table("voice_calls").create_index(["updated_at"])


def m_voice_calls_002_hot_updates(db: Db) -> None:
    """A webhook's write no longer rewrites an index: ``voice_calls`` is indexed by
    ``started_at`` (never changed) instead of ``updated_at`` (changed by every webhook);
    the purge bounds both. On PostgreSQL pages keep a fifth free so the write stays on
    its page (a HOT update), as for USSD sessions (``m_sessions_003_hot_updates``)."""
    db.execute("drop index if exists idx_voice_calls_updated_at")
    db.table("voice_calls").create_index(["started_at"])
    if isinstance(db, PgDb):
        db.execute("alter table voice_calls set (fillfactor = 80)")


@dataclass(frozen=True)
class VoiceCall:
    key: str
    provider: str
    phone_key: str
    direction: str
    version: str
    state: str
    seq: int
    silent_seq: int
    silent_count: int
    inputs: int
    started_at: float
    updated_at: float
    ended_at: float | None
    outcome: str | None


_COLUMNS = ("key", "provider", "phone_key", "direction", "version", "state", "seq",
            "silent_seq", "silent_count", "inputs", "started_at", "updated_at", "ended_at",
            "outcome")
_SQL = ", ".join(_COLUMNS)


def voice_call(store: Handle, key: str) -> VoiceCall | None:
    row = store.db().execute(f"select {_SQL} from voice_calls where key = ?", [key]).fetchone()
    return VoiceCall(*row) if row else None


def start_voice_call(store: Handle, key: str, provider: str, phone_key: str, direction: str,
                     version: str, state: str, seq: int, now: float) -> VoiceCall:
    """The call's row; a retried first webhook finds the one its first try made."""
    rows = store.db().conn.execute(
        "insert into voice_calls (key, provider, phone_key, direction, version, state, seq, "
        "silent_seq, silent_count, inputs, started_at, updated_at) "
        "values (?, ?, ?, ?, ?, ?, ?, -1, 0, 0, ?, ?) on conflict(key) do nothing "
        f"returning {_SQL}",
        [key, provider, phone_key, direction, version, state, seq, now, now]).fetchall()
    # fetchall: an unfinished RETURNING statement keeps its transaction open (SQLite).
    found = VoiceCall(*rows[0]) if rows else voice_call(store, key)
    assert found is not None
    return found


def save_voice_step(store: Handle, key: str, expected_seq: int, state: str, seq: int,
                    now: float, inputs: int = 1) -> bool:
    """Store the state after a step, only if no other request stepped this call meanwhile
    (two deliveries of one webhook racing in two workers apply it once)."""
    cursor = store.db().conn.execute(
        "update voice_calls set state = ?, seq = ?, inputs = inputs + ?, silent_count = 0, "
        "updated_at = ? where key = ? and seq = ?",
        [state, seq, inputs, now, key, expected_seq])
    return rowcount(cursor) == 1


def count_silence(store: Handle, key: str, seq: int, nth: int, now: float) -> int:
    """The caller pressed nothing on screen ``seq`` for the ``nth`` time in a row.

    The redirect that reports it carries ``nth``, so a retry of it counts once.
    """
    conn = store.db().conn
    with write_transaction(conn):
        conn.execute(
            f"update voice_calls set silent_count = {greatest(conn)}(silent_count, ?), "
            "silent_seq = ?, "
            "updated_at = ? where key = ? and seq = ?", [nth, seq, now, key, seq])
        row = conn.execute("select silent_count from voice_calls where key = ?",
                           [key]).fetchone()
    return int(row[0]) if row else 0


def end_voice_call(store: Handle, key: str, outcome: str, now: float) -> bool:
    """Mark the call over; True only the first time (its end is handled once)."""
    cursor = store.db().conn.execute(
        "update voice_calls set ended_at = ?, outcome = ?, updated_at = ? "
        "where key = ? and ended_at is null", [now, outcome, now, key])
    return rowcount(cursor) == 1


def purge_voice_calls(store: Handle, older_than: float) -> int:
    """Calls are kept a day for retries and missed-call checks, then forgotten. Found by
    ``started_at`` (indexed): a call not updated since ``older_than`` started before it,
    unless a node's clock was behind, and then it goes at a later purge."""
    conn = store.db().conn
    with write_transaction(conn):
        cursor = conn.execute("delete from voice_calls where started_at < ? and updated_at < ?",
                              [older_than, older_than])
    return cursor.rowcount


def voice_call_counts(store: Handle) -> dict[str, Any]:
    row = store.db().execute(
        "select count(*), sum(case when ended_at is null then 1 else 0 end) "
        "from voice_calls").fetchone()
    return {"calls": int(row[0] or 0), "active": int(row[1] or 0)}
