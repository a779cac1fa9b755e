"""The recruitment-agency registry from content/agencies.csv (see ``agencies/registry.py``).

One row per agency keyed by its normalised licence number, replaced whole in
one transaction when a content tree with a new registry file is loaded.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ussd_app.store.base import Db, Handle, write_transaction

AGENCY_COLUMNS = ("licence_key", "licence", "licence_digits", "name", "other_names",
                  "country", "status", "expires", "source", "data_date")
_AGENCY_SQL = ", ".join(AGENCY_COLUMNS)


def m_agencies_001(db: Db) -> None:
    db.table("agencies").create(
        {"licence_key": str, "licence": str, "licence_digits": str, "name": str,
         "other_names": str, "country": str, "status": str, "expires": str, "source": str,
         "data_date": str},
        pk="licence_key", not_null={"licence", "name", "country", "status", "source",
                                    "data_date"})
    db.table("agencies").create_index(["licence_digits"])
    db.table("agency_registry").create({"id": int, "version": str, "file": str, "count": int,
                                        "loaded_at": float}, pk="id")


def agency_registry_version(store: Handle) -> str | None:
    """The version (a hash of the file) of the registry in the database, if any."""
    row = store.db().execute("select version from agency_registry where id = 1").fetchone()
    return str(row[0]) if row and row[0] is not None else None


def replace_agencies(store: Handle, rows: Iterable[Mapping[str, Any]], version: str,
                     file: str) -> int:
    """Swap the whole registry for ``rows``; readers see the old one until it commits."""
    records = [tuple(r[c] for c in AGENCY_COLUMNS) for r in rows]
    conn = store.db().conn
    with write_transaction(conn):
        # Workers load the same file at the same time: the first one stores it.
        row = conn.execute("select version from agency_registry where id = 1").fetchone()
        if row and row[0] == version:
            return len(records)
        conn.execute("delete from agencies")
        conn.executemany(f"insert into agencies ({_AGENCY_SQL}) values "
                         f"({', '.join('?' * len(AGENCY_COLUMNS))})", records)
        conn.execute("insert into agency_registry (id, version, file, count, loaded_at) "
                     "values (1, ?, ?, ?, ?) on conflict(id) do update set "
                     "version = excluded.version, file = excluded.file, "
                     "count = excluded.count, loaded_at = excluded.loaded_at",
                     [version, file, len(records), time.time()])
    return len(records)


def agency_names(store: Handle) -> list[tuple[str, str, str]]:
    """(licence key, name, other names joined by |) of every agency, for the name index."""
    rows: list[tuple[str, str, str]] = store.db().execute(
        "select licence_key, name, other_names from agencies order by rowid").fetchall()
    return rows


def agencies_by_licence_key(store: Handle, keys: Sequence[str]) -> list[dict[str, Any]]:
    """The agencies with these normalised licence numbers (primary key look-ups)."""
    if not keys:
        return []
    cursor = store.db().execute(
        f"select {_AGENCY_SQL} from agencies where licence_key in "
        f"({', '.join('?' * len(keys))})", list(keys))
    return [dict(zip(AGENCY_COLUMNS, row, strict=True)) for row in cursor]


def agencies_by_licence_digits(store: Handle, digits: str, limit: int) -> list[dict[str, Any]]:
    """Agencies whose licence number has exactly these digits (what a keypad types)."""
    cursor = store.db().execute(
        f"select {_AGENCY_SQL} from agencies where licence_digits = ? order by rowid limit ?",
        [digits, limit])
    return [dict(zip(AGENCY_COLUMNS, row, strict=True)) for row in cursor]
