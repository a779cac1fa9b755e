"""The recruitment-agency registry from content/agencies.csv (see ``agencies/registry.py``).

Rows are keyed by the registry's version (a hash of the file) and the agency's
normalised licence number (``agency_rows``); ``agency_versions`` lists the
versions stored. Why by version, rather than one table replaced whole: the
nodes of a cluster serve different content versions for a while (a sync
reaches each in turn, an operator rolls one back), and a session keeps the
version it started on. Each searches the registry of its own tree, and no
node flips the rows under another. A version is stored once per cluster, by
the first process that loads it, under the ``agencies`` lock; a version no
process has said it serves (``used_at``) for ``KEEP_UNUSED_SECONDS`` is
dropped when another is stored.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ussd_app.store.base import Db, Handle, is_postgres, write_transaction

AGENCY_COLUMNS = ("licence_key", "licence", "licence_digits", "name", "other_names",
                  "country", "status", "expires", "source", "data_date", "also")
_AGENCY_SQL = ", ".join(AGENCY_COLUMNS)
# The columns as m_agencies_003 found and made them (before "also").
_V3_COLUMNS = AGENCY_COLUMNS[:-1]
KEEP_UNUSED_SECONDS = 7 * 86400.0  # a version no process served for a week is dropped
LOCK = "agencies"


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


def m_agencies_002_seq(db: Db) -> None:
    """``seq``: the row's place in the registry file, the order searches list agencies in.

    SQLite listed them by ``rowid`` (insertion order), which PostgreSQL has no
    equivalent of. Existing SQLite rows take their rowid (the same order); a
    PostgreSQL registry loaded before this column is forgotten, so the next
    content load stores it again with its order.
    """
    db.table("agencies").add_column("seq", int)
    if is_postgres(db):
        db.execute("delete from agency_registry")
    else:
        db.execute("update agencies set seq = rowid")


def m_agencies_003_by_version(db: Db) -> None:
    """Rows keyed by (registry version, licence key), so that every version a node
    serves is kept side by side; the registry stored so far is copied under its
    version (nothing is lost), then the one-version tables go."""
    db.table("agency_rows").create(
        {"version": str, "seq": int, "licence_key": str, "licence": str,
         "licence_digits": str, "name": str, "other_names": str, "country": str,
         "status": str, "expires": str, "source": str, "data_date": str},
        pk=("version", "licence_key"),
        not_null={"seq", "licence", "name", "country", "status", "source", "data_date"})
    db.table("agency_rows").create_index(["version", "licence_digits"])
    db.table("agency_versions").create(
        {"version": str, "file": str, "count": int, "loaded_at": float, "used_at": float},
        pk="version")
    old_columns = ", ".join(f"a.{c}" for c in _V3_COLUMNS)
    db.execute(f"insert into agency_rows (version, seq, {', '.join(_V3_COLUMNS)}) "
               f"select r.version, coalesce(a.seq, 0), {old_columns} "
               "from agencies a, agency_registry r where r.id = 1 and r.version is not null")
    db.execute("insert into agency_versions (version, file, count, loaded_at, used_at) "
               "select version, file, count, loaded_at, loaded_at from agency_registry "
               "where id = 1 and version is not null and count > 0")
    db.execute("drop table agencies")
    db.execute("drop table agency_registry")


def m_agencies_004_also(db: Db) -> None:
    """``also``: what other sources say of the same licence (JSON, newest first; "" when
    one source lists it). Versions stored before keep ""."""
    db.table("agency_rows").add_column("also", str)


def has_agency_version(store: Handle, version: str) -> bool:
    """Whether the registry ``version`` is stored (by any process of the cluster)."""
    row = store.db().execute("select 1 from agency_versions where version = ?",
                             [version]).fetchone()
    return row is not None


def agency_versions(store: Handle) -> list[dict[str, Any]]:
    """Every registry version stored, oldest first: version, file, count, loaded_at, used_at."""
    cursor = store.db().execute("select version, file, count, loaded_at, used_at "
                                "from agency_versions order by loaded_at, version")
    names = ("version", "file", "count", "loaded_at", "used_at")
    return [dict(zip(names, row, strict=True)) for row in cursor]


def store_agencies(store: Handle, rows: Iterable[Mapping[str, Any]], version: str,
                   file: str, now: float | None = None) -> bool:
    """Store the registry ``version`` unless it is stored; True when this call stored it.

    One transaction under the ``agencies`` lock: processes loading the same file at
    the same moment store it once, and a reader sees a version whole or not at all.
    Versions unused for ``KEEP_UNUSED_SECONDS`` are dropped in the same transaction.
    """
    records = [(version, seq, *(r[c] for c in AGENCY_COLUMNS)) for seq, r in enumerate(rows, 1)]
    now = time.time() if now is None else now
    conn = store.db().conn
    with write_transaction(conn, lock=LOCK):
        if conn.execute("select 1 from agency_versions where version = ?",
                        [version]).fetchone():
            conn.execute("update agency_versions set used_at = ? where version = ?",
                         [now, version])
            return False
        stale = [str(r[0]) for r in conn.execute(
            "select version from agency_versions where used_at < ?",
            [now - KEEP_UNUSED_SECONDS]).fetchall()]
        for old in stale:
            conn.execute("delete from agency_rows where version = ?", [old])
            conn.execute("delete from agency_versions where version = ?", [old])
        conn.executemany(f"insert into agency_rows (version, seq, {_AGENCY_SQL}) values "
                         f"({', '.join('?' * (len(AGENCY_COLUMNS) + 2))})", records)
        conn.execute("insert into agency_versions (version, file, count, loaded_at, used_at) "
                     "values (?, ?, ?, ?, ?)", [version, file, len(records), now, now])
    return True


def touch_agency_version(store: Handle, version: str, now: float | None = None) -> None:
    """A process still serves ``version``: it is not dropped as unused."""
    store.db().execute("update agency_versions set used_at = ? where version = ?",
                       [time.time() if now is None else now, version])


def agency_names(store: Handle, version: str) -> list[tuple[str, str, str, str, str]]:
    """(licence key, name, other names joined by |, licence, country) of a version's
    agencies, in file order."""
    rows = store.db().execute(
        "select licence_key, name, other_names, licence, country from agency_rows "
        "where version = ? order by seq", [version]).fetchall()
    return [(str(k), str(n), str(o or ""), str(lic), str(c)) for k, n, o, lic, c in rows]


def agencies_by_licence_key(store: Handle, version: str,
                            keys: Sequence[str]) -> list[dict[str, Any]]:
    """A version's agencies with these normalised licence numbers (primary key look-ups)."""
    if not keys:
        return []
    cursor = store.db().execute(
        f"select {_AGENCY_SQL} from agency_rows where version = ? and licence_key in "
        f"({', '.join('?' * len(keys))})", [version, *keys])
    return [dict(zip(AGENCY_COLUMNS, row, strict=True)) for row in cursor]


def agencies_by_licence_digits(store: Handle, version: str, digits: str,
                               limit: int) -> list[dict[str, Any]]:
    """A version's agencies whose licence number has exactly these digits (a keypad's)."""
    cursor = store.db().execute(
        f"select {_AGENCY_SQL} from agency_rows where version = ? and licence_digits = ? "
        "order by seq limit ?", [version, digits, limit])
    return [dict(zip(AGENCY_COLUMNS, row, strict=True)) for row in cursor]
