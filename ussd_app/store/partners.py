"""Partner organisations' users, referrals and the notifications that tell a partner: the SQL.

A referral (``referrals``) names the case, the partner and the fields the
referring operator chose to share; a partner's user reads only those, and the
first time one opens the case is kept (``opened_at``, ``opened_by``). Telling
the partner is a queue (``partner_notifications``): one row per referral and
way (e-mail or webhook), claimed with a lease like the call-backs
(``SKIP LOCKED`` on PostgreSQL), retried with backoff until ``sent`` or
``failed``. A partner's webhook secret is sealed at rest.
"""

from __future__ import annotations

from typing import Any

from ussd_app.store.base import Db, Handle, dicts, one, skip_locked, write_transaction

NOTIFY_STATUSES = ("queued", "sending", "sent", "failed")


def m_partners_002_users_notify(db: Db) -> None:
    """Partner users (an operator row bound to a partner), how each partner is told,
    the referrals with their shared fields, and the notification queue."""
    db.table("operators").add_column("partner_id", int)
    for column in ("notify_email", "webhook_url", "webhook_secret_sealed"):
        db.table("partners").add_column(column, str)
    db.table("referrals").create(
        {"id": int, "complaint_id": int, "partner_id": int, "fields": str,
         "referred_at": float, "referred_by": int, "opened_at": float, "opened_by": int},
        pk="id", not_null={"complaint_id", "partner_id", "fields", "referred_at"})
    db.table("referrals").create_index(["partner_id", "referred_at"])
    db.table("referrals").create_index(["complaint_id"])
    db.table("partner_notifications").create(
        {"id": int, "referral_id": int, "partner_id": int, "via": str, "status": str,
         "attempts": int, "next_attempt_at": float, "lease_until": float, "error": str,
         "created_at": float, "updated_at": float, "sent_at": float},
        pk="id", not_null={"referral_id", "partner_id", "via", "status", "attempts"},
        defaults={"status": "queued", "attempts": 0})
    db.table("partner_notifications").create_index(["status", "next_attempt_at"])
    db.table("partner_notifications").create_index(["referral_id"])


# ---------------------------------------------------------------- partners' settings


def set_notify(store: Handle, partner_id: int, email: str | None, webhook_url: str | None,
               secret_sealed: str | None) -> None:
    """How the partner is told of a referral; a secret of None keeps the one it has."""
    store.db().execute(
        "update partners set notify_email = ?, webhook_url = ?, "
        "webhook_secret_sealed = coalesce(?, webhook_secret_sealed) where id = ?",
        [email, webhook_url, secret_sealed, partner_id])


def notify_settings(store: Handle, partner_id: int) -> dict[str, Any] | None:
    return one(store.db().execute(
        "select id, name, notify_email, webhook_url, webhook_secret_sealed from partners "
        "where id = ?", [partner_id]))


# ---------------------------------------------------------------- referrals


def refer(store: Handle, complaint_id: int, partner_id: int, fields: str, operator_id: int,
          ways: list[str], now: float) -> int:
    """The referral and one queued notification per way of telling the partner, at once."""
    conn = store.db().conn
    with write_transaction(conn, lock=None):
        referral_id = int(conn.execute(
            "insert into referrals (complaint_id, partner_id, fields, referred_at, referred_by) "
            "values (?, ?, ?, ?, ?) returning id",
            [complaint_id, partner_id, fields, now, operator_id]).fetchone()[0])
        for via in ways:
            conn.execute(
                "insert into partner_notifications (referral_id, partner_id, via, status, "
                "attempts, next_attempt_at, created_at, updated_at) "
                "values (?, ?, ?, 'queued', 0, ?, ?, ?)",
                [referral_id, partner_id, via, now, now, now])
    return referral_id


def referral_for(store: Handle, complaint_id: int, partner_id: int) -> dict[str, Any] | None:
    """The partner's latest referral of this case, or None (the case is not theirs)."""
    return one(store.db().execute(
        "select * from referrals where complaint_id = ? and partner_id = ? "
        "order by referred_at desc, id desc limit 1", [complaint_id, partner_id]))


def mark_opened(store: Handle, referral_id: int, operator_id: int, now: float) -> None:
    """The first opening by the partner is kept; later ones change nothing."""
    store.db().execute(
        "update referrals set opened_at = ?, opened_by = ? where id = ? and opened_at is null",
        [now, operator_id, referral_id])


def referred_to(store: Handle, partner_id: int, limit: int, offset: int
                ) -> tuple[list[dict[str, Any]], int]:
    """A partner's referred cases, newest referral first (one row per case)."""
    conn = store.db().conn
    latest = ("select max(id) from referrals where partner_id = ? group by complaint_id")
    total = conn.execute(f"select count(*) from ({latest}) t", [partner_id]).fetchone()[0]
    rows = dicts(conn.execute(
        "select r.id as referral_id, r.complaint_id, r.fields, r.referred_at, r.opened_at, "
        "c.reference, c.category, c.country, c.contact, c.erased_at from referrals r "
        f"join complaints c on c.id = r.complaint_id where r.id in ({latest}) "
        "order by r.referred_at desc, r.id desc limit ? offset ?",
        [partner_id, limit, offset]))
    return rows, int(total)


def referrals_of(store: Handle, complaint_id: int) -> list[dict[str, Any]]:
    """A case's referrals, oldest first, with who opened each and its notifications."""
    conn = store.db().conn
    rows = dicts(conn.execute(
        "select r.*, p.name as partner_name, o.name as opened_by_name, "
        "o.email as opened_by_email from referrals r join partners p on p.id = r.partner_id "
        "left join operators o on o.id = r.opened_by where r.complaint_id = ? "
        "order by r.referred_at, r.id", [complaint_id]))
    for row in rows:
        row["notifications"] = dicts(conn.execute(
            "select via, status, attempts, next_attempt_at, error, sent_at, updated_at "
            "from partner_notifications where referral_id = ? order by id", [row["id"]]))
    return rows


# ---------------------------------------------------------------- the notification queue


def claim_notifications(store: Handle, now: float, lease: float, limit: int
                        ) -> list[dict[str, Any]]:
    """Atomically take up to ``limit`` due notifications for ``lease`` seconds (queued and
    due, or sending with a lease run out: its worker died)."""
    db = store.db()
    return dicts(db.execute(
        "update partner_notifications set status = 'sending', attempts = attempts + 1, "
        "updated_at = ?, lease_until = ? where id in (select id from partner_notifications "
        "where (status = 'queued' and next_attempt_at <= ?) or "
        "(status = 'sending' and lease_until <= ?) order by next_attempt_at, id limit ?"
        f"{skip_locked(db)}) returning *", [now, now + lease, now, now, limit]))


def notification_context(store: Handle, notification: dict[str, Any]) -> dict[str, Any] | None:
    """What sending needs: the partner's address or webhook, the case's reference."""
    return one(store.db().execute(
        "select p.name, p.notify_email, p.webhook_url, p.webhook_secret_sealed, "
        "r.complaint_id, c.reference from referrals r join partners p on p.id = r.partner_id "
        "join complaints c on c.id = r.complaint_id where r.id = ?",
        [notification["referral_id"]]))


def finish_notification(store: Handle, notification_id: int, attempts: int, status: str,
                        now: float, error: str | None = None,
                        next_attempt_at: float | None = None) -> bool:
    """What became of a claimed notification, unless another worker has taken it since."""
    cursor = store.db().execute(
        "update partner_notifications set status = ?, error = ?, updated_at = ?, "
        "lease_until = null, next_attempt_at = coalesce(?, next_attempt_at), "
        "sent_at = case when ? = 'sent' then ? else sent_at end "
        "where id = ? and attempts = ? and status = 'sending'",
        [status, error, now, next_attempt_at, status, now, notification_id, attempts])
    return bool(cursor.rowcount)
