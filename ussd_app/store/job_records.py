"""Job-offer records and their scans: the SQL of ``ussd_app.job_records``.

A record is what a migrant was promised before leaving (employer, agency, job,
wage, contract), kept so that a later complaint can be held against it. Like a
complaint, it is written in one durable transaction before the caller sees its
reference, once per idempotency ``key``. What a person typed arrives here
sealed (``*_sealed``); the plain columns are what staff filter on (destination
country, currency, contract length, the agency as the registry names it).

Scans (contract, passport) are added at the centre. Their bytes are sealed and
kept in the last column, which only ``scan_data`` reads. Erasing a record
deletes its scans' rows outright (freed pages zeroed on SQLite), blanks the
record's sealed columns (the row stays, erased, for the figures) and erases
what its phone left elsewhere (``privacy.erase_linked``), as a case's erasure does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ussd_app.errors import Conflict
from ussd_app.store.base import (
    INTEGRITY_ERRORS,
    Conn,
    Db,
    Handle,
    dicts,
    one,
    placeholders,
    secure_delete,
    write_transaction,
)
from ussd_app.store.complaints import durable
from ussd_app.store.privacy import erase_linked

SEALED = ("phone_sealed", "employer_sealed", "agency_sealed", "job_sealed", "wage_sealed",
          "start_sealed", "family_sealed")
PLAIN = ("reference", "key", "channel", "lang", "created_at", "updated_at", "phone_key",
         "pin_hash", "country", "currency", "months", "agency_licence", "agency_name",
         "spoken", "erased_at", "erased_reason")
COLUMNS = ("id", *PLAIN, *SEALED)
_SQL_COLUMNS = ", ".join(COLUMNS)
SCAN_LISTED = ("id", "record_id", "kind", "mimetype", "bytes", "uploaded_at", "uploaded_by")
_SCAN_SQL = ", ".join(SCAN_LISTED)


def m_job_records_001(db: Db) -> None:
    """Job-offer records kept before departure, the scans added at the centre, and the
    link from a complaint to the record it is held against."""
    numbers = {"created_at": float, "updated_at": float, "erased_at": float, "months": int}
    db.table("job_records").create(
        {"id": int, **{c: numbers.get(c, str) for c in PLAIN}, **{c: str for c in SEALED}},
        pk="id", not_null={"reference", "key", "channel", "lang", "created_at"})
    db.table("job_records").create_index(["reference"], unique=True)
    db.table("job_records").create_index(["key"], unique=True)
    db.table("job_records").create_index(["phone_key"])
    db.table("job_record_scans").create(
        {"id": int, "record_id": int, "kind": str, "mimetype": str, "bytes": int,
         "uploaded_at": float, "uploaded_by": int, "data_sealed": bytes},
        pk="id", not_null={"record_id", "kind", "mimetype", "bytes", "uploaded_at"},
        foreign_keys=[("record_id", "job_records", "id")])
    db.table("job_record_scans").create_index(["record_id"])


class ReferenceTaken(Conflict):
    """The generated reference exists already: draw another one."""


def insert(store: Handle, row: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Store a new record; (the row, True if new). The same ``key`` gives the stored one."""
    conn = store.db().conn
    with durable(conn):  # a reference shown is a record kept, power cut or not
        found = _one(conn, "key = ?", [row["key"]])
        if found is not None:
            return found, False
        names = [c for c in COLUMNS if c in row]
        try:
            cursor = conn.execute(
                f"insert into job_records ({', '.join(names)}) values "
                f"({placeholders(names)}) returning id", [row[c] for c in names])
        except INTEGRITY_ERRORS as exc:
            if "reference" in str(exc):
                raise ReferenceTaken(str(exc)) from exc
            raise
        stored = _one(conn, "id = ?", [int(cursor.fetchone()[0])])
    assert stored is not None
    return stored, True


def by_id(store: Handle, record_id: int) -> dict[str, Any] | None:
    return _one(store.db().conn, "id = ?", [record_id])


def by_reference(store: Handle, reference: str) -> dict[str, Any] | None:
    return _one(store.db().conn, "reference = ?", [reference])


def latest_for_phone(store: Handle, phone_key: str) -> dict[str, Any] | None:
    """The phone's most recent record still kept: what its complaint is held against."""
    return one(store.db().execute(
        f"select {_SQL_COLUMNS} from job_records where phone_key = ? and erased_at is null "
        "order by created_at desc, id desc limit 1", [phone_key]))


def recent(store: Handle, limit: int = 50) -> list[dict[str, Any]]:
    """The latest records with how many scans each has (no personal data is opened)."""
    return dicts(store.db().execute(
        "select r.id, r.reference, r.channel, r.country, r.created_at, r.erased_at, "
        "(select count(*) from job_record_scans s where s.record_id = r.id) as scans "
        "from job_records r order by r.created_at desc, r.id desc limit ?", [limit]))


def add_scan(store: Handle, record_id: int, kind: str, mimetype: str, size: int,
             sealed: bytes, at: float, operator_id: int | None) -> int | None:
    """Add one scan to a record still kept; its id, or None (unknown or erased record)."""
    conn = store.db().conn
    with write_transaction(conn):
        if conn.execute("select id from job_records where id = ? and erased_at is null",
                        [record_id]).fetchone() is None:
            return None
        cursor = conn.execute(
            "insert into job_record_scans (record_id, kind, mimetype, bytes, uploaded_at, "
            "uploaded_by, data_sealed) values (?, ?, ?, ?, ?, ?, ?) returning id",
            [record_id, kind, mimetype, size, at, operator_id, sealed])
        scan_id = int(cursor.fetchone()[0])
        conn.execute("update job_records set updated_at = ? where id = ?", [at, record_id])
    return scan_id


def scans(store: Handle, record_id: int) -> list[dict[str, Any]]:
    return dicts(store.db().execute(
        f"select {_SCAN_SQL} from job_record_scans where record_id = ? order by id",
        [record_id]))


def scan_data(store: Handle, scan_id: int) -> dict[str, Any] | None:
    """One scan with its sealed bytes (``data_sealed``)."""
    row = one(store.db().execute(
        f"select {_SCAN_SQL}, data_sealed from job_record_scans where id = ?", [scan_id]))
    if row is not None and row["data_sealed"] is not None:
        row["data_sealed"] = bytes(row["data_sealed"])
    return row


def ids_for_phone(store: Handle, phone_key: str) -> list[int]:
    return [int(r[0]) for r in store.db().execute(
        "select id from job_records where phone_key = ? and erased_at is null", [phone_key])]


def erase(store: Handle, record_ids: Iterable[int], reason: str, at: float) -> int:
    """Erase records: their scans deleted, their sealed fields, phone key and PIN blanked.

    Destination, currency, contract length and dates stay (they count offers, not
    people). One transaction; freed pages zeroed on SQLite.
    """
    ids = list(record_ids)
    if not ids:
        return 0
    conn = store.db().conn
    blank = ", ".join(f"{c} = null" for c in SEALED)
    erased = 0
    phones = [str(r[0]) for r in conn.execute(
        f"select phone_key from job_records where id in ({placeholders(ids)}) "
        "and erased_at is null and phone_key is not null", ids)]
    store.forget_phones(phones)  # the write-behind buffer must not bring them back
    with secure_delete(conn):
        with write_transaction(conn):
            # What the same phone left elsewhere: the session that typed the record, the
            # SMS conversation and the reply that carried its reference, the call's state.
            erase_linked(conn, phones, [], [], at)
            for record_id in ids:
                conn.execute("delete from job_record_scans where record_id = ?", [record_id])
                cursor = conn.execute(
                    f"update job_records set {blank}, phone_key = null, pin_hash = null, "
                    "agency_licence = null, agency_name = null, erased_at = ?, "
                    "erased_reason = ?, updated_at = ? where id = ? and erased_at is null",
                    [at, reason, at, record_id])
                erased += int(cursor.rowcount or 0)
    return erased


def _one(conn: Conn, where: str, params: list[Any]) -> dict[str, Any] | None:
    return one(conn.execute(f"select {_SQL_COLUMNS} from job_records where {where}", params))
