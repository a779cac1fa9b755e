"""Operators, their login attempts, the audit log and partner organisations: the SQL.

The operators' dashboard (``ussd_app.dashboard``) is the only user. Passwords
arrive here already hashed (argon2); the audit log holds who did what to which
complaint and from where, never the personal data itself (no numbers, no free
text): it must be safe to show to every supervisor and to keep for long.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ussd_app.errors import Conflict
from ussd_app.store.base import INTEGRITY_ERRORS, Db, Handle, dicts, one, rowcount

OPERATOR_COLUMNS = ("id", "email", "name", "role", "password_hash", "active", "created_at",
                    "last_login_at", "session_epoch", "lang", "partner_id")
_OPERATOR_SQL = ", ".join(OPERATOR_COLUMNS)


def m_operators_001(db: Db) -> None:
    db.table("operators").create(
        {"id": int, "email": str, "name": str, "role": str, "password_hash": str,
         "active": int, "created_at": float, "last_login_at": float, "session_epoch": int,
         "lang": str},
        pk="id", not_null={"email", "role", "password_hash", "active", "created_at"},
        defaults={"active": 1, "session_epoch": 0})
    db.table("operators").create_index(["email"], unique=True)
    db.table("login_attempts").create({"id": int, "at": float, "email": str, "ip": str, "ok": int},
                                pk="id", not_null={"at", "email", "ip", "ok"})
    db.table("login_attempts").create_index(["email", "at"])
    db.table("login_attempts").create_index(["ip", "at"])
    db.table("audit_log").create(
        {"id": int, "at": float, "operator_id": int, "action": str, "complaint_id": int,
         "detail": str, "ip": str},
        pk="id", not_null={"at", "action"})
    db.table("audit_log").create_index(["at"])
    db.table("audit_log").create_index(["complaint_id", "at"])
    db.table("audit_log").create_index(["operator_id", "at"])
    db.table("partners").create(
        {"id": int, "name": str, "country": str, "contact": str, "active": int,
         "created_at": float},
        pk="id", not_null={"name", "active", "created_at"}, defaults={"active": 1})


def m_operators_002_audit_actor(db: Db) -> None:
    """Who acted when no operator was signed in (``cli:<unix user>``); and no typed text.

    Failed sign-ins used to keep the email typed, in clear, in ``login_attempts``
    and in the audit log; a password typed into the email field stayed there.
    They now keep a keyed hash (``Accounts.email_key``); the old rows cannot be
    hashed here (no key in a migration), so they go: the attempts only counted
    for a lock-out of minutes, and the audit rows keep the fact, not the text.
    """
    db.table("audit_log").add_column("actor", str)
    db.execute("delete from login_attempts")
    db.execute("update audit_log set detail = null "
                "where action in ('sign_in_failed', 'sign_in_locked')")


class EmailTaken(Conflict):
    """An operator with this email exists already."""


# ---------------------------------------------------------------- operators


def add_operator(store: Handle, email: str, name: str, role: str, password_hash: str,
                 at: float, partner_id: int | None = None) -> int:
    """``partner_id``: the organisation a ``partner`` user belongs to (None for staff)."""
    try:
        cursor = store.db().execute(
            "insert into operators (email, name, role, password_hash, active, created_at, "
            "session_epoch, partner_id) values (?, ?, ?, ?, 1, ?, 0, ?) returning id",
            [email, name, role, password_hash, at, partner_id])
    except INTEGRITY_ERRORS as exc:
        raise EmailTaken(email) from exc
    return int(cursor.fetchone()[0])


def operator_by_email(store: Handle, email: str) -> dict[str, Any] | None:
    return one(store.db().execute(
        f"select {_OPERATOR_SQL} from operators where email = ?", [email]))


def operator_by_id(store: Handle, operator_id: int) -> dict[str, Any] | None:
    return one(store.db().execute(
        f"select {_OPERATOR_SQL} from operators where id = ?", [operator_id]))


def operators(store: Handle) -> list[dict[str, Any]]:
    return dicts(store.db().execute(f"select {_OPERATOR_SQL} from operators order by email"))


def update_operator(store: Handle, operator_id: int, fields: Mapping[str, Any]) -> None:
    unknown = set(fields) - set(OPERATOR_COLUMNS[1:])
    if unknown:
        raise ValueError(f"not operator columns: {sorted(unknown)}")
    store.db().execute(
        f"update operators set {', '.join(f'{c} = ?' for c in fields)} where id = ?",
        [*fields.values(), operator_id])


def end_sessions(store: Handle, operator_id: int) -> None:
    """Every signed-in browser of this operator is signed out at its next request."""
    store.db().execute("update operators set session_epoch = session_epoch + 1 where id = ?",
                       [operator_id])


# ---------------------------------------------------------------- login attempts


def record_login(store: Handle, email: str, ip: str, ok: bool, at: float) -> None:
    store.db().execute("insert into login_attempts (at, email, ip, ok) values (?, ?, ?, ?)",
                       [at, email, ip, int(ok)])


def login_failures(store: Handle, email: str, ip: str, since: float) -> tuple[int, int, float]:
    """(failures for this account, failures from this address, time of the latest) since then.

    An account's count restarts at its last successful login.
    """
    conn = store.db().conn
    last_ok = conn.execute("select coalesce(max(at), 0) from login_attempts where email = ? "
                           "and ok = 1", [email]).fetchone()[0]
    by_email, latest_email = conn.execute(
        "select count(*), coalesce(max(at), 0) from login_attempts where email = ? and ok = 0 "
        "and at >= ?", [email, max(since, float(last_ok))]).fetchone()
    by_ip, latest_ip = conn.execute(
        "select count(*), coalesce(max(at), 0) from login_attempts where ip = ? and ok = 0 "
        "and at >= ?", [ip, since]).fetchone()
    return int(by_email), int(by_ip), float(max(latest_email, latest_ip))


def purge_login_attempts(store: Handle, before: float) -> int:
    return rowcount(store.db().execute("delete from login_attempts where at < ?", [before]))


# ---------------------------------------------------------------- audit log


def audit(store: Handle, at: float, operator_id: int | None, action: str,
          complaint_id: int | None, detail: str, ip: str, actor: str | None = None) -> None:
    """One row; ``actor`` names who acted when it was no operator (``cli:<unix user>``)."""
    store.db().execute(
        "insert into audit_log (at, operator_id, action, complaint_id, detail, ip, actor) "
        "values (?, ?, ?, ?, ?, ?, ?)",
        [at, operator_id, action, complaint_id, detail, ip, actor])


def audit_rows(store: Handle, limit: int, offset: int, complaint_id: int | None = None,
               operator_id: int | None = None) -> tuple[list[dict[str, Any]], int]:
    """A page of the audit log, newest first, with the complaint's reference; and the total."""
    where, params = [], []
    if complaint_id is not None:
        where.append("a.complaint_id = ?")
        params.append(complaint_id)
    if operator_id is not None:
        where.append("a.operator_id = ?")
        params.append(operator_id)
    clause = f"where {' and '.join(where)}" if where else ""
    conn = store.db().conn
    total = conn.execute(f"select count(*) from audit_log a {clause}", params).fetchone()[0]
    rows = dicts(conn.execute(
        "select a.id, a.at, a.operator_id, o.email as operator_email, a.action, "
        "a.complaint_id, c.reference, a.detail, a.ip, a.actor from audit_log a "
        "left join operators o on o.id = a.operator_id "
        f"left join complaints c on c.id = a.complaint_id {clause} "
        "order by a.at desc, a.id desc limit ? offset ?", [*params, limit, offset]))
    return rows, int(total)


# ---------------------------------------------------------------- partners


def add_partner(store: Handle, name: str, country: str, contact: str, at: float) -> int:
    cursor = store.db().execute(
        "insert into partners (name, country, contact, active, created_at) "
        "values (?, ?, ?, 1, ?) returning id", [name, country, contact, at])
    return int(cursor.fetchone()[0])


def partners(store: Handle, active_only: bool = False) -> list[dict[str, Any]]:
    sql = "select id, name, country, contact, active, created_at from partners" + \
        (" where active = 1" if active_only else "") + " order by name"
    return dicts(store.db().execute(sql))


def partner(store: Handle, partner_id: int) -> dict[str, Any] | None:
    return one(store.db().execute(
        "select id, name, country, contact, active, created_at from partners where id = ?",
        [partner_id]))


def set_partner_active(store: Handle, partner_id: int, active: bool) -> None:
    store.db().execute("update partners set active = ? where id = ?",
                       [int(active), partner_id])
