"""The outbox: every SMS the service sends is stored here first; the SMS channel delivers it.

One way in: ``enqueue`` (or, inside a caller's own transaction, ``insert_outbox``),
keyed by an idempotency ``key`` so a second enqueue of the same message is a
no-op. Written at once, not buffered: the caller is told it is on its way. The
body arrives sealed (``privacy.seal_text``); ``phone_key`` links a message to
the phone so that erasing the phone's data erases it too.

The outbox worker claims due messages with a lease, records what the provider
said, and delivery reports move a sent message on (see ``sms_flows/outbox.py``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ussd_app.store.base import (
    Conn,
    Connections,
    Db,
    Handle,
    dicts,
    rowcount,
    skip_locked,
    write_transaction,
)

OUTBOX_DONE = ("sent", "delivered", "failed", "dead", "suppressed")


def m002_outbox(db: Db) -> None:
    """Every SMS the service sends is stored here first (the SMS channel delivers it)."""
    db.table("outbox").create(
        {"id": int, "key": str, "channel": str, "to_sealed": str, "lang": str, "body": str,
         "encoding": str, "segments": int, "status": str, "attempts": int,
         "created_at": float, "updated_at": float, "next_attempt_at": float,
         "provider_id": str, "error": str},
        pk="id", not_null={"key", "channel", "to_sealed", "body", "status"},
        defaults={"status": "queued", "attempts": 0},
    )
    db.table("outbox").create_index(["key"], unique=True)
    db.table("outbox").create_index(["status", "next_attempt_at"])


def m_outbox_002_sent_journal(db: Db) -> None:
    """Provider ids written the moment a send returns, before the outbox row (PostgreSQL).

    The journal every node sees: a node that crashes after the provider took a
    message, before marking it ``sent``, leaves the id here, and no node
    claims that message again. An insert into its own table never waits on the
    outbox row's lock. Ids only, no personal data.
    """
    db.table("outbox_sent").create({"outbox_id": int, "provider_id": str, "at": float},
                                   pk="outbox_id", not_null={"provider_id"})


def m_replies_001_outbox_window(db: Db) -> None:
    """A message held until the caller's safe time keeps the window it must be sent in
    (``days=fri;hours=17-21``) and the caller's time zone, checked again just before
    sending."""
    db.table("outbox").add_column("safe_window", str)
    db.table("outbox").add_column("time_zone", str)


@dataclass(frozen=True)
class OutboxItem:
    """One SMS to store for sending; ``key`` makes a second enqueue of it a no-op."""

    key: str
    to_sealed: str
    lang: str
    body: str
    encoding: str
    segments: int
    kind: str = "message"
    phone_key: str | None = None  # whose data it is: erased with the phone's or case's
    # Held until the caller's safe time: not sent before ``send_at``, and only while the
    # caller's clock (``time_zone``) is inside ``safe_window`` (``complaints.safe_window``).
    send_at: float | None = None
    safe_window: str | None = None
    time_zone: str | None = None


def enqueue(store: Handle, item: OutboxItem, now: float | None = None) -> bool:
    """Store one SMS for sending (once per key); True if this call added it."""
    return insert_outbox(store.db().conn, item, time.time() if now is None else now)


def insert_outbox(conn: Conn, item: OutboxItem, now: float) -> bool:
    """``enqueue`` inside the caller's transaction (a complaint and its receipt, say)."""
    cursor = conn.execute(
        "insert into outbox (key, channel, to_sealed, lang, body, encoding, segments, kind, "
        "phone_key, safe_window, time_zone, status, attempts, created_at, updated_at, "
        "next_attempt_at) values (?, 'sms', ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', 0, ?, ?, ?) "
        "on conflict(key) do nothing",
        [item.key, item.to_sealed, item.lang, item.body, item.encoding, item.segments,
         item.kind, item.phone_key, item.safe_window, item.time_zone, now, now,
         max(now, item.send_at or now)])
    return bool(cursor.rowcount)


def claim_outbox(store: Handle, now: float, lease: float, limit: int) -> list[dict[str, Any]]:
    """Atomically take up to ``limit`` due messages for ``lease`` seconds.

    A message stays ``sending`` while a worker holds it; if that worker dies,
    the lease runs out and another worker takes it again. A message with a
    provider id (in its row or in the ``outbox_sent`` journal) is never taken.
    On PostgreSQL the rows are picked ``FOR UPDATE SKIP LOCKED``: concurrent
    claimers on any node pass over each other's rows instead of taking them
    twice (SQLite has one writer, so its claim is alone anyway).
    """
    db = store.db()
    cursor = db.execute(
        "update outbox set status = 'sending', attempts = attempts + 1, updated_at = ?, "
        "next_attempt_at = ? where id in (select id from outbox where status in "
        "('queued', 'sending') and next_attempt_at <= ? and provider_id is null "
        "and not exists (select 1 from outbox_sent j where j.outbox_id = outbox.id) "
        f"order by next_attempt_at, id limit ?{skip_locked(db)}) returning *",
        [now, now + lease, now, limit])
    return dicts(cursor)


def hold_outbox(store: Handle, message_id: int, attempts: int, until: float) -> bool:
    """Put a claimed message back, not sent, until ``until`` (the caller's next safe time).

    A message that became due after its window closed (a worker that was down, a
    provider retry) is held, not sent: the claim's attempt is given back, as
    nothing was tried. False if another worker has taken it since.
    """
    cursor = store.db().execute(
        "update outbox set status = 'queued', attempts = attempts - 1, next_attempt_at = ?, "
        "updated_at = ? where id = ? and attempts = ? and status = 'sending'",
        [until, time.time(), message_id, attempts])
    return bool(cursor.rowcount)


def renew_outbox(store: Handle, message_id: int, attempts: int, until: float) -> bool:
    """Extend a claimed message's lease to ``until``, unless another worker took it since.

    A batch is claimed at once but sent a few at a time: the last of a hundred
    messages can wait longer than the lease for its turn (a slow provider), and
    another worker would take it and send it too. The sender renews a message
    whose lease is running short just before sending it; False means another
    worker holds it now (its claim added an attempt), so this one leaves it.
    """
    cursor = store.db().execute(
        "update outbox set next_attempt_at = ? where id = ? and attempts = ? "
        "and status = 'sending'", [until, message_id, attempts])
    return bool(cursor.rowcount)


def journal_sent(store: Handle, message_id: int, provider_id: str, now: float) -> None:
    """Write down the provider's id the moment the send returns (the database journal).

    Its own autocommit insert: it does not wait for the outbox row (another
    transaction may hold it), and from here no node claims the message again.
    """
    store.db().execute(
        "insert into outbox_sent (outbox_id, provider_id, at) values (?, ?, ?) "
        "on conflict(outbox_id) do nothing", [message_id, provider_id, now])


def replay_journal(store: Handle) -> int:
    """Fold the journal into the outbox (``sent`` with the provider's id), then empty it.

    What one node journaled and could not mark (it died, or the row was held)
    any node marks. Rows another replayer holds are skipped, not waited for.
    """
    conn = store.db().conn
    with write_transaction(conn, lock=None):
        rows = conn.execute(f"select outbox_id, provider_id from outbox_sent{skip_locked(conn)}"
                            ).fetchall()
        if not rows:
            return 0
        changed = _mark_sent(conn, [(int(r[0]), str(r[1])) for r in rows])
        conn.executemany("delete from outbox_sent where outbox_id = ?", [[r[0]] for r in rows])
    return changed


def record_sent(store: Handle, sent: Sequence[tuple[int, str]]) -> int:
    """Mark messages the provider took (id, provider's id) as sent, in one transaction.

    For the outbox worker's journal: a provider's answer written down before a
    crash (or a locked database) kept it from the ``sent`` commit. A message
    already sent, delivered or failed is left as it is.
    """
    conn = store.db().conn
    with write_transaction(conn, lock=None):  # updates by id: no check to make safe
        return _mark_sent(conn, sent)


def _mark_sent(conn: Conn, sent: Sequence[tuple[int, str]]) -> int:
    count = 0
    for message_id, provider_id in sent:
        cursor = conn.execute(
            "update outbox set status = 'sent', provider_id = ?, error = null, "
            "updated_at = ? where id = ? and status in ('queued', 'sending')",
            [provider_id, time.time(), message_id])
        count += rowcount(cursor)
    return count


def finish_outbox(store: Handle, message_id: int, attempts: int, status: str,
                  provider_id: str | None = None, error: str | None = None,
                  next_attempt_at: float | None = None) -> bool:
    """Record what became of a claimed message, unless another worker has taken it since."""
    now = time.time()
    cursor = store.db().execute(
        "update outbox set status = ?, provider_id = coalesce(?, provider_id), error = ?, "
        "updated_at = ?, next_attempt_at = coalesce(?, next_attempt_at) "
        "where id = ? and attempts = ? and status = 'sending'",
        [status, provider_id, error, now, next_attempt_at, message_id, attempts])
    return bool(cursor.rowcount)


def delivery_report(store: Handle, provider_id: str, status: str, error: str | None) -> bool:
    """Set a sent message's status from the provider's report; False if unknown."""
    # Reports may arrive out of order: "sent" never overwrites a final status.
    allowed = "('sent', 'sending')" if status == "sent" else "('sent', 'delivered', 'failed')"
    cursor = store.db().execute(
        "update outbox set status = ?, error = coalesce(?, error), updated_at = ? "
        f"where provider_id = ? and status in {allowed}",
        [status, error, time.time(), provider_id])
    if not cursor.rowcount:  # known but already final: still not an unknown message
        return store.db().execute("select 1 from outbox where provider_id = ?",
                                  [provider_id]).fetchone() is not None
    return bool(cursor.rowcount)


def outbox_counts(store: Handle) -> dict[str, int]:
    return dict(store.db().execute("select status, count(*) from outbox group by status")
                .fetchall())


class OutboxReads(Connections):
    """The ``Store`` methods that read the outbox (tests, ``/healthz``, the CLI)."""

    def oldest_unsent(self) -> float | None:
        """When the oldest message still waiting to be sent (queued or sending) was stored."""
        row = self.db().execute("select min(created_at) from outbox "
                                "where status in ('queued', 'sending')").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def outbox(self, status: str | None = None) -> list[dict[str, Any]]:
        sql = "select * from outbox" + (" where status = ?" if status else "") + " order by id"
        cursor = self.db().execute(sql, [status] if status else [])
        return dicts(cursor)

    def outbox_by_key_prefix(self, prefix: str) -> list[dict[str, Any]]:
        """Messages whose idempotency key starts with ``prefix`` (what one inbound caused)."""
        cursor = self.db().execute("select * from outbox where key >= ? and key < ? order by id",
                                   [prefix, prefix + "\uffff"])
        return dicts(cursor)
