"""The connection every store module shares, and the small helpers their SQL uses.

The bottom of the store: it imports no other store module, and every other
one imports it (never ``ussd_app.store`` itself), so the store has no ring.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from sqlite_utils import Database


class Connections:
    """The database file of one deployment and one connection to it per thread."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._lock = threading.Lock()

    def db(self) -> Database:
        """One connection per thread (sqlite3 objects are not thread-safe)."""
        db: Database | None = getattr(self._local, "db", None)
        if db is None or getattr(self._local, "pid", None) != os.getpid():
            conn = sqlite3.connect(str(self.path), timeout=10, isolation_level=None,
                                   check_same_thread=True)
            db = Database(conn)
            db.execute("PRAGMA busy_timeout = 10000")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute("PRAGMA foreign_keys = ON")
            # Whatever is deleted or rewritten (a draft replaced, a session purged) is
            # zeroed in the file, not left in free pages for a copy of the folder to find.
            db.execute("PRAGMA secure_delete = ON")
            self._local.db, self._local.pid = db, os.getpid()
        return db


class Handle(Protocol):
    """What the table modules' functions need of a ``Store``: a connection, and (for an
    erasure) a way to drop what its write-behind buffer holds for some phones."""

    def db(self) -> Database: ...

    def forget_phones(self, phone_keys: Iterable[str]) -> None: ...


def dicts(cursor: sqlite3.Cursor) -> list[dict[str, Any]]:
    """The rows a query returned, as dicts keyed by column name."""
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def one(cursor: sqlite3.Cursor) -> dict[str, Any] | None:
    """The first row a query returned, as a dict, or None."""
    rows = dicts(cursor)
    return rows[0] if rows else None


def rowcount(cursor: sqlite3.Cursor) -> int:
    """How many rows a write changed."""
    return int(cursor.rowcount or 0)


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT: one writer, all or nothing.

    Connections here run in autocommit mode (``isolation_level=None``), where
    ``with conn:`` opens no transaction at all; this does, and takes the write
    lock up front so a concurrent writer waits instead of failing midway.
    """
    conn.execute("begin immediate")
    try:
        yield
    except BaseException:
        conn.execute("rollback")
        raise
    conn.execute("commit")


@contextmanager
def secure_delete(conn: sqlite3.Connection) -> Iterator[None]:
    """Pages freed or rewritten by the erasure are zeroed, not only unlinked."""
    was = int(conn.execute("PRAGMA secure_delete").fetchone()[0])
    conn.execute("PRAGMA secure_delete = ON")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA secure_delete = {was}")
