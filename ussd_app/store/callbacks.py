"""Missed-call call-backs: the SQL of ``ussd_app.callbacks``.

A row is written the moment a missed call is seen, with its fate decided in
the same transaction (queued, or refused by the rate limit or an opt-out), so
two webhooks for the same number at once cannot both slip under the limit.
The idempotency ``key`` (the provider's id of the missed call) is unique: a
provider's retry of its webhook finds the row it already made.

Placing a call is claimed with a lease (``lease_until``) like the SMS outbox.
The provider's call id is written the moment the provider accepts the call,
before anything else happens, and a row that has one is never claimed again:
a worker killed after the provider took the call cannot make a second one.

The number is sealed (``phone_sealed``); ``phone_key`` is its keyed hash, for
the rate limit and the opt-out look-up.
"""

from __future__ import annotations

from typing import Any

from ussd_app.store.base import Db, Handle, dicts, one, rowcount, skip_locked, write_transaction

STATUSES = ("queued", "calling", "placed", "failed", "dead", "refused")
DONE = ("placed", "failed", "dead", "refused")
# What counts against a number's limit: every call-back that was not refused.
_COUNTED = "('queued', 'calling', 'placed', 'failed', 'dead')"


def m_voice_callbacks_001(db: Db) -> None:
    db.table("callbacks").create(
        {"id": int, "key": str, "phone_sealed": str, "phone_key": str, "provider": str,
         "placed_via": str, "status": str, "attempts": int, "next_attempt_at": float,
         "lease_until": float, "provider_call_id": str, "error": str,
         "created_at": float, "updated_at": float},
        pk="id", not_null={"key", "phone_sealed", "phone_key", "provider", "status"},
        defaults={"status": "queued", "attempts": 0})
    db.table("callbacks").create_index(["key"], unique=True)
    db.table("callbacks").create_index(["status", "next_attempt_at"])
    db.table("callbacks").create_index(["phone_key", "created_at"])


def request_callback(store: Handle, key: str, phone_sealed: str, phone_key: str,
                     provider: str, now: float, per_day: int, min_seconds: float,
                     opted_out: bool, global_per_day: int | None = None,
                     refused: str | None = None) -> tuple[dict[str, Any], bool]:
    """Store one call-back request and decide it; (the row, whether this call added it).

    The limits are checked and the row written in one write transaction:
    requests cannot race past ``per_day`` or ``min_seconds`` for one number,
    nor past ``global_per_day`` for all numbers together. ``refused`` is a
    reason decided beforehand (a number the office does not call). A refused
    row is kept (status ``refused``, the reason in ``error``) so an office can
    see how often each limit bites. On PostgreSQL the transaction takes the
    ``callbacks`` advisory lock (requests take turns on every node; other
    writers do not wait for them).
    """
    conn = store.db().conn
    with write_transaction(conn, lock="callbacks"):
        existing = conn.execute("select * from callbacks where key = ?", [key])
        rows = dicts(existing)
        if rows:
            return rows[0], False
        status, error = "queued", None
        if opted_out:
            status, error = "refused", "the number sent STOP"
        elif refused:
            status, error = "refused", refused
        else:
            count, last = conn.execute(
                f"select count(*), max(created_at) from callbacks where phone_key = ? "
                f"and created_at > ? and status in {_COUNTED}",
                [phone_key, now - 24 * 3600]).fetchone()
            if count >= per_day:
                status, error = "refused", f"limit: {per_day} call-backs a day"
            elif last is not None and now - last < min_seconds:
                status, error = "refused", f"limit: one call-back per {min_seconds / 60:g} min"
            elif global_per_day is not None and conn.execute(
                    f"select count(*) from callbacks where created_at > ? and status in "
                    f"{_COUNTED}", [now - 24 * 3600]).fetchone()[0] >= global_per_day:
                status, error = "refused", f"limit: {global_per_day} call-backs a day in all"
        cursor = conn.execute(
            "insert into callbacks (key, phone_sealed, phone_key, provider, status, attempts, "
            "next_attempt_at, error, created_at, updated_at) values (?, ?, ?, ?, ?, 0, ?, ?, "
            "?, ?) returning *",
            [key, phone_sealed, phone_key, provider, status, now, error, now, now])
        return dicts(cursor)[0], True


def recover_callbacks(store: Handle, now: float) -> int:
    """Rows whose worker died after the provider took the call: they were placed."""
    return rowcount(store.db().execute(
        "update callbacks set status = 'placed', updated_at = ?, lease_until = null, "
        "error = 'placed (the worker stopped before finishing)' "
        "where status = 'calling' and lease_until <= ? and provider_call_id is not null",
        [now, now]))


def claim_callbacks(store: Handle, now: float, lease: float, limit: int) -> list[dict[str, Any]]:
    """Atomically take up to ``limit`` due call-backs for ``lease`` seconds.

    Due: queued and past ``next_attempt_at``, or ``calling`` with its lease
    run out (its worker died) and no provider call id (the provider never
    confirmed a call). A row with a provider call id is never taken again.
    On PostgreSQL rows held by another claimer are skipped (``SKIP LOCKED``).
    """
    db = store.db()
    cursor = db.execute(
        "update callbacks set status = 'calling', attempts = attempts + 1, updated_at = ?, "
        "lease_until = ? where id in (select id from callbacks where provider_call_id is null "
        "and ((status = 'queued' and next_attempt_at <= ?) or "
        f"(status = 'calling' and lease_until <= ?)) order by next_attempt_at, id limit ?"
        f"{skip_locked(db)}) returning *", [now, now + lease, now, now, limit])
    return dicts(cursor)


def record_call_id(store: Handle, callback_id: int, attempts: int, placed_via: str,
                   provider_call_id: str, now: float) -> bool:
    """Write the provider's call id at once: from here the row is never called again."""
    cursor = store.db().execute(
        "update callbacks set provider_call_id = ?, placed_via = ?, updated_at = ? "
        "where id = ? and attempts = ? and status = 'calling' and provider_call_id is null",
        [provider_call_id, placed_via, now, callback_id, attempts])
    return bool(cursor.rowcount)


def finish_callback(store: Handle, callback_id: int, attempts: int, status: str, now: float,
                    error: str | None = None, next_attempt_at: float | None = None,
                    placed_via: str | None = None) -> bool:
    """Record what became of a claimed call-back, unless another worker has taken it since."""
    cursor = store.db().execute(
        "update callbacks set status = ?, error = ?, updated_at = ?, lease_until = null, "
        "next_attempt_at = coalesce(?, next_attempt_at), placed_via = coalesce(?, placed_via) "
        "where id = ? and attempts = ? and status = 'calling'",
        [status, error, now, next_attempt_at, placed_via, callback_id, attempts])
    return bool(cursor.rowcount)


def expire_callbacks(store: Handle, older_than: float, now: float) -> int:
    """Queued call-backs too old to be useful are ``dead``: nobody expects that call now."""
    return rowcount(store.db().execute(
        "update callbacks set status = 'dead', updated_at = ?, "
        "error = coalesce(error || '; ', '') || 'too old to call back' "
        "where status = 'queued' and created_at < ?", [now, older_than]))


def callback_by_key(store: Handle, key: str) -> dict[str, Any] | None:
    return one(store.db().execute("select * from callbacks where key = ?", [key]))


def callbacks(store: Handle, status: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """The newest call-backs first (all, or those with one status)."""
    sql = "select * from callbacks" + (" where status = ?" if status else "") + \
        " order by id desc limit ?"
    return dicts(store.db().execute(sql, [status, limit] if status else [limit]))


def callback_counts(store: Handle) -> dict[str, int]:
    return dict(store.db().execute("select status, count(*) from callbacks group by status")
                .fetchall())


def recent_callbacks(store: Handle, phone_key: str, since: float) -> list[dict[str, Any]]:
    """A number's call-backs created after ``since`` (what its rate limit looks at)."""
    return dicts(store.db().execute(
        "select * from callbacks where phone_key = ? and created_at > ? order by created_at",
        [phone_key, since]))


def purge_callbacks(store: Handle, older_than: float) -> int:
    """Forget finished call-backs (and their sealed numbers) past their use."""
    return rowcount(store.db().execute(
        f"delete from callbacks where created_at < ? and status in {DONE}", [older_than]))
