"""What a test's database holds, read through SQL on either engine.

On SQLite "at rest" is the file (tests read its bytes); on PostgreSQL it is
every live value of every text or bytea column, which is what a dump (or a
stolen copy of the database read with SQL) gives. Dead row versions are the
business of ``privacy.vacuum``, not visible here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests import databases
from ussd_app.store.base import is_postgres


def tables(conn: Any) -> list[str]:
    if is_postgres(conn):
        return [r[0] for r in conn.execute(
            "select table_name from information_schema.tables "
            "where table_schema = current_schema() and table_type = 'BASE TABLE'")]
    return [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")]


def columns(conn: Any, table: str) -> list[tuple[str, str]]:
    """(name, declared type) of every column of ``table``."""
    if is_postgres(conn):
        return [(r[0], r[1]) for r in conn.execute(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = current_schema() and table_name = ?", [table])]
    return [(r[1], str(r[2]).lower()) for r in conn.execute(f"PRAGMA table_info({table})")]


def all_values(conn: Any) -> bytes:
    """Every text and binary value of every table (PostgreSQL), joined."""
    out: list[bytes] = []
    for table in tables(conn):
        for name, kind in columns(conn, table):
            if kind not in ("text", "bytea", "character varying"):
                continue
            for (value,) in conn.execute(f'select "{name}" from "{table}" '
                                         f'where "{name}" is not null'):
                out.append(bytes(value) if kind == "bytea" else str(value).encode())
    return b"\n".join(out)


def at_rest(data: Path, conn: Any | None = None) -> bytes:
    """What is stored: the SQLite files' bytes, or PostgreSQL's values (``conn``'s)."""
    if databases.on_postgres():
        assert conn is not None
        return all_values(conn)
    return b"".join(p.read_bytes() for p in data.glob("migrantline.db*"))
