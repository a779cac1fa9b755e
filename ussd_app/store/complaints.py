"""Complaints, their history and PIN attempts: the SQL of ``ussd_app.complaints``.

A complaint is written synchronously, in one transaction with its first
history event (and, when contact is safe, its receipt SMS in the outbox), and
before the caller sees its reference: a reference shown is a complaint kept.
The idempotency ``key`` (the channel's id of the hop that filed it) is unique,
so a provider's retry finds the complaint it already made instead of a second.

Personal data (phone numbers, free text) arrives here already encrypted by
the caller (``*_sealed`` columns); the plain columns are the ones operators
filter and count on: category, country, status, urgency, dates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ussd_app.errors import Conflict
from ussd_app.store.analytics import OUTCOME_COLUMNS
from ussd_app.store.base import (
    INTEGRITY_ERRORS,
    Conn,
    Db,
    Handle,
    dicts,
    is_postgres,
    one,
    rowcount,
    secure_delete,
    write_transaction,
)
from ussd_app.store.case_messages import erase_for_complaint as erase_case_messages
from ussd_app.store.centre_erasure import erase_for_complaint as erase_centre_data
from ussd_app.store.complaint_events import insert_event
from ussd_app.store.outbox import OutboxItem, insert_outbox
from ussd_app.store.privacy import erase_linked
from ussd_app.store.voice_recordings import erase_for_complaint

SEALED = ("phone_sealed", "contact_when_sealed", "contact_phone_sealed", "against_sealed",
          "employer_sealed", "city_sealed", "country_other_sealed", "description_sealed")
PLAIN = ("reference", "key", "channel", "lang", "created_at", "updated_at", "last_action_at",
         "status", "urgent", "filed_by", "category", "country", "against_kind",
         "agency_licence", "agency_name", "contact", "truncated", "phone_key", "pin_hash",
         "assigned_to", "closed_at", "erased_at", "erased_reason", "details_key")
# The urgent path's two questions (NULL: not answered) and the country of the number
# (migration m_complaints_002_urgent).
URGENT_COLUMNS = ("call_now", "where_now", "number_country")
# A closed case's outcome (migration m_complaints_002_outcome, after m_complaints_001
# made PLAIN and SEALED).
# An urgent case's alerts: when the on-call phones were told, when it was escalated, and
# who acknowledged it when (migration m_complaints_003_alerts).
ALERT_COLUMNS = ("alerted_at", "escalated_at", "acknowledged_at", "acknowledged_by")
# When contact is safe, for "only at some times": the window (``days=fri;hours=17-21``)
# and the caller's time zone (migration m_replies_002_case_window).
WINDOW_COLUMNS = ("contact_window", "time_zone")
# A lost-contact report's relative and last news, the wage paid as reported, and the
# job-offer record the case is held against (migration m_complaints_004_records).
RECORD_SEALED = ("relative_name_sealed", "last_contact_sealed", "wage_paid_sealed")
RECORD_COLUMNS = ("job_record_id", *RECORD_SEALED)
# The keyed hash of an agency name the registry lacks (migration m_complaints_004_agency_key).
AGENCY_KEY_COLUMNS = ("agency_name_key",)
# The migrant's answer to "may we share your case with a centre in another country?"
# (yes/no; NULL: not asked), added by migration m_centres_001.
CONSENT_COLUMNS = ("share_consent",)
COLUMNS = ("id", *PLAIN, *SEALED, *OUTCOME_COLUMNS, *URGENT_COLUMNS, *ALERT_COLUMNS,
           *WINDOW_COLUMNS, *RECORD_COLUMNS, *AGENCY_KEY_COLUMNS, *CONSENT_COLUMNS)
# Every column holding what a person said or typed, sealed: what an erasure blanks.
ALL_SEALED = (*SEALED, *RECORD_SEALED)
_SQL_COLUMNS = ", ".join(COLUMNS)


def m_complaints_001(db: Db) -> None:
    numbers = {"created_at": float, "updated_at": float, "last_action_at": float,
               "urgent": int, "assigned_to": int, "closed_at": float, "erased_at": float}
    db.table("complaints").create(
        {"id": int, **{c: numbers.get(c, str) for c in PLAIN}, **{c: str for c in SEALED}},
        pk="id", not_null={"reference", "key", "channel", "lang", "status"},
        defaults={"status": "new", "urgent": 0})
    db.table("complaints").create_index(["reference"], unique=True)
    db.table("complaints").create_index(["key"], unique=True)
    db.table("complaints").create_index(["status", "urgent", "created_at"])
    db.table("complaints").create_index(["phone_key"])
    db.table("complaint_events").create(
        {"id": int, "complaint_id": int, "at": float, "actor": str, "operator_id": int,
         "kind": str, "status": str, "detail_sealed": str},
        pk="id", not_null={"complaint_id", "at", "actor", "kind"},
        foreign_keys=[("complaint_id", "complaints", "id")])
    db.table("complaint_events").create_index(["complaint_id", "at"])
    db.table("pin_attempts").create(
        {"key": str, "reference": str, "phone_key": str, "at": float, "ok": int}, pk="key")
    db.table("pin_attempts").create_index(["reference", "at"])
    db.table("pin_attempts").create_index(["phone_key", "at"])


def m_complaints_002_urgent(db: Db) -> None:
    """What the urgent path asks after filing: may we call now (``call_now``: yes, no,
    skipped), where the caller is (``where_now``: here, other, skipped), and the country
    of the filing number (ISO code, from its calling code). NULL is "not answered", never
    "do not contact"."""
    for column in URGENT_COLUMNS:
        db.table("complaints").add_column(column, str)


def m_replies_002_case_window(db: Db) -> None:
    """The days and hours a caller said contact is safe (picked, not typed), and the
    caller's time zone: SMS to them are held until the window opens."""
    for column in WINDOW_COLUMNS:
        db.table("complaints").add_column(column, str)


def m_complaints_004_agency_key(db: Db) -> None:
    """Complaints naming an agency the registry lacks, counted by a keyed hash of the
    name (the name itself stays sealed): "reported again and again" becomes visible."""
    db.table("complaints").add_column("agency_name_key", str)
    db.table("complaints").create_index(["agency_name_key", "created_at"])


def m_complaints_003_alerts(db: Db) -> None:
    """Urgent cases alert the on-call phones at once and escalate when nobody acknowledged
    them in time: when each happened, and who acknowledged the case."""
    for column in ALERT_COLUMNS:
        db.table("complaints").add_column(column, int if column == "acknowledged_by"
                                          else float)
    db.table("complaints").create_index(["urgent", "acknowledged_at"])


def m_complaints_004_records(db: Db) -> None:
    """A lost-contact report's relative and last news, the wage paid as reported (sealed),
    and the job-offer record a complaint is held against (``job_records.id``)."""
    db.table("complaints").add_column("job_record_id", int)
    for column in RECORD_SEALED:
        db.table("complaints").add_column(column, str)


# The urgent cases nobody has acknowledged yet (open, not erased).
_WAITING = ("urgent = 1 and acknowledged_at is null and erased_at is null "
            "and status in ('new', 'in_progress')")


def waiting_urgent(store: Handle, limit: int = 20) -> list[dict[str, Any]]:
    """Urgent cases not acknowledged yet, oldest first: what the dashboard's alert shows."""
    return dicts(store.db().execute(
        f"select id, reference, created_at, escalated_at from complaints where {_WAITING} "
        "order by created_at, id limit ?", [limit]))


def urgent_to_alert(store: Handle, since: float) -> list[dict[str, Any]]:
    """Urgent cases filed after ``since`` whose on-call phones were not told yet."""
    return dicts(store.db().execute(
        "select id, reference, created_at from complaints where urgent = 1 "
        "and alerted_at is null and erased_at is null and created_at >= ? order by id",
        [since]))


def urgent_to_escalate(store: Handle, filed_before: float) -> list[dict[str, Any]]:
    """Urgent cases still not acknowledged, filed before ``filed_before``, not escalated."""
    return dicts(store.db().execute(
        f"select id, reference, created_at from complaints where {_WAITING} "
        "and escalated_at is null and created_at < ? order by id", [filed_before]))


@contextmanager
def durable(conn: Conn) -> Iterator[None]:
    """One transaction that survives a power cut, not only a crash, once it returns.

    The database runs with ``synchronous = NORMAL`` (WAL): a commit reaches the
    disk at the next checkpoint, which is fine for session progress. A reference
    shown to a caller must name a complaint on disk, so its transaction syncs.
    PostgreSQL may run with ``synchronous_commit = off`` for the same reason:
    this transaction sets it on for itself (``set local``).
    """
    if is_postgres(conn):
        with write_transaction(conn):
            conn.execute("set local synchronous_commit = on")
            yield
        return
    conn.execute("PRAGMA synchronous = FULL")
    try:
        with write_transaction(conn):
            yield
    finally:
        conn.execute("PRAGMA synchronous = NORMAL")


# Other personal data kept per complaint (its voice recordings, the messages the migrant
# sent about it) and how to erase it:
# ``fn(conn, complaint_id, at)``, run inside ``erase``'s transaction. Any new table that
# holds a complaint's personal data adds its function here.
ERASERS: tuple[Callable[[Conn, int, float], None], ...] = (
    erase_for_complaint,
    erase_case_messages,
    erase_centre_data,
)


class ReferenceTaken(Conflict):
    """The generated reference exists already: draw another one."""


def insert(store: Handle, row: Mapping[str, Any], event: Mapping[str, Any],
           receipt: OutboxItem | None = None) -> tuple[dict[str, Any], bool]:
    """Store a new complaint with its first event and receipt; (the row, True if new).

    A row with the same ``key`` already stored is returned as it is (a retried
    hop), with False. Raises ``ReferenceTaken`` when the reference collides.
    """
    conn = store.db().conn
    with durable(conn):
        found = _one(conn, "key = ?", [row["key"]])
        if found is not None:
            return found, False
        names = [c for c in COLUMNS if c in row]
        try:
            cursor = conn.execute(
                f"insert into complaints ({', '.join(names)}) values "
                f"({', '.join('?' * len(names))}) returning id", [row[c] for c in names])
        except INTEGRITY_ERRORS as exc:
            # SQLite names the column (complaints.reference), PostgreSQL the unique
            # index (idx_complaints_reference): either message says "reference".
            if "reference" in str(exc):
                raise ReferenceTaken(str(exc)) from exc
            raise
        complaint_id = int(cursor.fetchone()[0])
        insert_event(conn, complaint_id, event)
        if receipt is not None:
            insert_outbox(conn, receipt, float(row["created_at"]))
        stored = _one(conn, "id = ?", [complaint_id])
    assert stored is not None
    return stored, True


def update(store: Handle, complaint_id: int, fields: Mapping[str, Any],
           event: Mapping[str, Any] | None = None,
           messages: Sequence[OutboxItem] = ()) -> dict[str, Any] | None:
    """Change some columns, add an event and queue SMS, all or nothing."""
    unknown = set(fields) - set(COLUMNS[1:])
    if unknown:
        raise ValueError(f"not complaint columns: {sorted(unknown)}")
    conn = store.db().conn
    with durable(conn):
        if fields:
            conn.execute(
                f"update complaints set {', '.join(f'{c} = ?' for c in fields)} where id = ?",
                [*fields.values(), complaint_id])
        if event is not None:
            insert_event(conn, complaint_id, event)
        at = float(event["at"]) if event else 0.0
        for item in messages:
            insert_outbox(conn, item, at)
        return _one(conn, "id = ?", [complaint_id])


def by_reference(store: Handle, reference: str) -> dict[str, Any] | None:
    return _one(store.db().conn, "reference = ?", [reference])


def by_id(store: Handle, complaint_id: int) -> dict[str, Any] | None:
    return _one(store.db().conn, "id = ?", [complaint_id])


def by_key(store: Handle, key: str) -> dict[str, Any] | None:
    return _one(store.db().conn, "key = ?", [key])


def ids_for_phone(store: Handle, phone_key: str) -> list[int]:
    return [int(r[0]) for r in store.db().execute(
        "select id from complaints where phone_key = ? and erased_at is null", [phone_key])]


def open_for_phone(store: Handle, phone_key: str,
                   statuses: Sequence[str]) -> list[dict[str, Any]]:
    """The phone's open complaints (statuses given), most recent first; none once erased."""
    return dicts(store.db().execute(
        f"select {_SQL_COLUMNS} from complaints where phone_key = ? and erased_at is null "
        f"and status in ({', '.join('?' * len(statuses))}) order by created_at desc, id desc",
        [phone_key, *statuses]))


def closed_before(store: Handle, cutoff: float) -> list[int]:
    """Complaints closed before ``cutoff`` whose personal data is still kept."""
    return [int(r[0]) for r in store.db().execute(
        "select id from complaints where status = 'closed' and closed_at < ? "
        "and erased_at is null", [cutoff])]


def erased_since(store: Handle, reason: str, since: float) -> list[int]:
    """Complaints erased for ``reason`` at or after ``since``: what one purge run erased."""
    return [int(r[0]) for r in store.db().execute(
        "select id from complaints where erased_reason = ? and erased_at >= ? order by id",
        [reason, since])]


def events(store: Handle, complaint_id: int) -> list[dict[str, Any]]:
    cursor = store.db().execute(
        "select id, complaint_id, at, actor, operator_id, kind, status, detail_sealed "
        "from complaint_events where complaint_id = ? order by at, id", [complaint_id])
    return dicts(cursor)


def add_event(store: Handle, complaint_id: int, event: Mapping[str, Any]) -> None:
    conn = store.db().conn
    with write_transaction(conn):
        insert_event(conn, complaint_id, event)


def erase(store: Handle, complaint_ids: Iterable[int], reason: str, at: float) -> int:
    """Erase the personal data of these complaints; keep what statistics need.

    Category, country, status and dates stay (they count complaints, not
    people); numbers, free text, the phone's pseudonym, the PIN and the
    operators' notes go. One transaction: nothing is half erased.
    """
    ids = list(complaint_ids)
    if not ids:
        return 0
    conn = store.db().conn
    blank = ", ".join(f"{c} = null" for c in (*ALL_SEALED, "contact_window", "agency_name_key"))
    found = dicts(conn.execute(
        f"select id, key, details_key, phone_key from complaints where id in "
        f"({', '.join('?' * len(ids))}) and erased_at is null", ids))
    phones = [str(r["phone_key"]) for r in found if r["phone_key"]]
    store.forget_phones(phones)  # the write-behind buffer must not bring them back
    # Freed pages (a recording's audio) are overwritten with zeros, not only unlinked.
    with secure_delete(conn):
        with write_transaction(conn):
            # What the same person left elsewhere: sessions, conversations, calls, SMS.
            erase_linked(conn, phones,
                         [f"complaint-receipt:{r[k]}" for r in found
                          for k in ("key", "details_key") if r[k]],
                         [p for r in found for p in (f"complaint-status:{r['id']}:",
                                                     f"complaint-message:{r['id']}:",
                                                     f"complaint-reply:{r['id']}:")], at)
            for complaint_id in ids:
                conn.execute(f"update complaints set {blank}, phone_key = null, "
                             "pin_hash = null, erased_at = ?, erased_reason = ?, updated_at = ? "
                             "where id = ? and erased_at is null",
                             [at, reason, at, complaint_id])
                conn.execute("update complaint_events set detail_sealed = null "
                             "where complaint_id = ?", [complaint_id])
                for eraser in ERASERS:
                    eraser(conn, complaint_id, at)
                insert_event(conn, complaint_id, {"at": at, "actor": "system",
                                                   "kind": "erased", "status": reason})
    return len(ids)


def record_pin_attempt(store: Handle, key: str, reference: str, phone_key: str, ok: bool,
                       at: float) -> None:
    """Count one PIN attempt, once per hop (a retried hop counts nothing more)."""
    store.db().execute(
        "insert into pin_attempts (key, reference, phone_key, at, ok) values (?, ?, ?, ?, ?) "
        "on conflict(key) do nothing", [key, reference, phone_key, at, int(ok)])


def pin_failures(store: Handle, reference: str, phone_key: str, since: float,
                 exclude_key: str = "") -> tuple[int, int, float]:
    """(failures on this reference, failures from this phone, time of the latest) since then.

    ``exclude_key``: a retried hop must not see its own attempt as an earlier one.
    """
    row = store.db().execute(
        "select coalesce(sum(case when reference = ? then 1 else 0 end), 0), "
        "coalesce(sum(case when phone_key = ? then 1 else 0 end), 0), "
        "coalesce(max(at), 0) from pin_attempts where ok = 0 and at >= ? and key != ? "
        "and (reference = ? or phone_key = ?)",
        [reference, phone_key, since, exclude_key, reference, phone_key]).fetchone()
    return int(row[0]), int(row[1]), float(row[2])


def purge_pin_attempts(store: Handle, before: float) -> int:
    return rowcount(store.db().execute("delete from pin_attempts where at < ?", [before]))


def _one(conn: Conn, where: str, params: list[Any]) -> dict[str, Any] | None:
    return one(conn.execute(f"select {_SQL_COLUMNS} from complaints where {where}", params))
