"""The connection every store module shares, and the small helpers their SQL uses.

Two engines behind one face. SQLite (a file in the data folder) is the
embedded default; PostgreSQL (``MIGRANTLINE_DATABASE_URL=postgresql://...``)
carries deployments with several nodes. The store's SQL is written once, with
``?`` placeholders and the subset of SQL both engines share (upsert,
``RETURNING``, ``coalesce``); on PostgreSQL each statement is translated once
(``?`` and ``?N`` to psycopg's ``%s``) and cached. The few places where the
engines differ ask ``is_postgres(conn)`` or use a helper here.

Why not SQLAlchemy: the SQL was already plain DB-API, a translation layer of a
page keeps it readable in one dialect, and the hot path pays no per-statement
compilation (see bench/store_overhead.py for the measured difference).

The bottom of the store: it imports no other store module, and every other
one imports it (never ``ussd_app.store`` itself), so the store has no ring.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

import psycopg
from psycopg.types.string import StrDumperUnknown
from sqlite_utils import Database

from ussd_app.store.pgschema import Table

# What a store call can raise when the database is unreachable, locked or refuses a write.
DB_ERRORS: tuple[type[Exception], ...] = (sqlite3.Error, psycopg.Error)
INTEGRITY_ERRORS: tuple[type[Exception], ...] = (sqlite3.IntegrityError, psycopg.IntegrityError)

WRITER = "writer"  # the default lock of write_transaction: one writer, as SQLite has


def is_postgres_url(target: object) -> bool:
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def split_placeholders(sql: str) -> tuple[tuple[str | int, ...], bool]:
    """The text between ``?``/``?N`` placeholders, and each one's parameter (0-based).

    Returns the pieces in order (text as it is, an int for a placeholder) and
    whether any placeholder was numbered (``?N``: parameters reordered or repeated).
    Quoted strings and identifiers are copied untouched.
    """
    out: list[str | int] = []
    numbered = False
    i, n, position, text = 0, len(sql), 0, []
    while i < n:
        c = sql[i]
        if c in "'\"":
            end = i + 1
            while end < n:
                if sql[end] == c:
                    if end + 1 < n and sql[end + 1] == c:  # '' inside a literal
                        end += 2
                        continue
                    break
                end += 1
            text.append(sql[i:end + 1])
            i = end + 1
        elif c == "?":
            j = i + 1
            while j < n and sql[j].isdigit():
                j += 1
            out.append("".join(text))
            text = []
            if j > i + 1:
                numbered = True
                out.append(int(sql[i + 1:j]) - 1)
            else:
                out.append(position)
                position += 1
            i = j
        else:
            text.append(c)
            i += 1
    out.append("".join(text))
    return tuple(out), numbered


@lru_cache(maxsize=2048)
def to_psycopg(sql: str) -> tuple[str, tuple[int, ...] | None]:
    """``?``/``?N`` placeholders to psycopg's ``%s`` (and ``%`` to ``%%``), once per text.

    Returns the new text and, when ``?N`` reorders or repeats parameters, the
    index of each ``%s``'s parameter (None when they are taken in order).
    """
    pieces, numbered = split_placeholders(sql)
    text = "".join("%s" if isinstance(p, int) else p.replace("%", "%%") for p in pieces)
    order = tuple(p for p in pieces if isinstance(p, int))
    return text, (order if numbered else None)


def _params(params: Any, order: tuple[int, ...] | None) -> Any:
    if order is None or params is None:
        return params
    values = list(params)
    return [values[k] for k in order]


class PgConnection:
    """A psycopg connection that takes the store's SQL as sqlite3 takes it.

    ``execute``/``executemany`` translate the placeholders; ``begin``,
    ``commit`` and ``rollback`` are statements, as on SQLite. Autocommit: a
    transaction is only what ``write_transaction`` opens.
    """

    dialect = "postgresql"

    def __init__(self, raw: psycopg.Connection[Any]) -> None:
        self.raw = raw
        self.statements: Any = None  # what store/prepared.py has prepared on it

    def execute(self, sql: str, params: Any = None) -> Any:
        text, order = to_psycopg(sql)
        return self.raw.execute(text, _params(params, order))

    def executemany(self, sql: str, seq: Iterable[Any]) -> Any:
        text, order = to_psycopg(sql)
        cursor = self.raw.cursor()
        cursor.executemany(text, [_params(p, order) for p in seq])
        return cursor

    def close(self) -> None:
        self.raw.close()

    @property
    def usable(self) -> bool:
        return not (self.raw.closed or self.raw.broken)


class PgDb:
    """What the store asks of sqlite-utils' ``Database``, on PostgreSQL."""

    dialect = "postgresql"

    def __init__(self, conn: PgConnection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Any = None) -> Any:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, seq: Iterable[Any]) -> Any:
        return self.conn.executemany(sql, seq)

    def query(self, sql: str, params: Any = None) -> Iterator[dict[str, Any]]:
        yield from dicts(self.execute(sql, params))

    def table(self, name: str) -> Table:
        return Table(self.conn, name)

    def table_names(self) -> list[str]:
        return [r[0] for r in self.execute(
            "select table_name from information_schema.tables "
            "where table_schema = current_schema() order by table_name")]


Db = Database | PgDb
Conn = sqlite3.Connection | PgConnection


class _NulSafeStr(StrDumperUnknown):
    """Text as SQLite takes it: PostgreSQL refuses a NUL character in text, and anyone can
    put one in a webhook's field (a fuzzer did); it is stored as U+FFFD instead, the same
    in what is written and what is looked up, so nothing else changes."""

    def dump(self, obj: str) -> bytes | bytearray | memoryview | None:
        return super().dump(obj.replace("\x00", "\ufffd") if "\x00" in obj else obj)


def connect_postgres(url: str) -> PgConnection:
    """A new autocommit connection; waits bounded, so a hop never hangs on the database."""
    raw = psycopg.connect(url, autocommit=True, connect_timeout=5,
                          application_name="migrantline",
                          options="-c lock_timeout=10000 -c statement_timeout=30000 "
                                  "-c idle_in_transaction_session_timeout=60000")
    raw.adapters.register_dumper(str, _NulSafeStr)
    return PgConnection(raw)


class Connections:
    """The database of one deployment and one connection to it per thread.

    ``path`` is the SQLite file (its folder is the data folder either way);
    ``url``, when given, is the PostgreSQL database that holds the data instead.
    """

    def __init__(self, path: Path | str, url: str | None = None) -> None:
        self.path = Path(path)
        self.url = url if is_postgres_url(url) else None
        self._local = threading.local()
        self._lock = threading.Lock()

    @property
    def postgres(self) -> bool:
        return self.url is not None

    def db(self) -> Db:
        """One connection per thread (neither driver's objects are shared between threads);
        a PostgreSQL connection broken by a restart is replaced on the next call."""
        db: Db | None = getattr(self._local, "db", None)
        if db is not None and getattr(self._local, "pid", None) == os.getpid():
            if not isinstance(db, PgDb) or db.conn.usable:
                return db
        db = PgDb(connect_postgres(self.url)) if self.url else self._sqlite()
        self._local.db, self._local.pid = db, os.getpid()
        return db

    def _sqlite(self) -> Database:
        conn = sqlite3.connect(str(self.path), timeout=10, isolation_level=None,
                               check_same_thread=True)
        db = Database(conn)
        db.execute("PRAGMA busy_timeout = 10000")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute("PRAGMA foreign_keys = ON")
        # Whatever is deleted or rewritten (a draft replaced, a session purged) is
        # zeroed in the file, not left in free pages for a copy of the folder to find.
        db.execute("PRAGMA secure_delete = ON")
        return db

    def new_connection(self, timeout: float = 10) -> Conn:
        """A connection of its own, outside the per-thread one (the health probe's)."""
        if self.url:
            return connect_postgres(self.url)
        return sqlite3.connect(str(self.path), timeout=timeout, isolation_level=None)


class Handle(Protocol):
    """What the table modules' functions need of a ``Store``: a connection, and (for an
    erasure) a way to drop what its write-behind buffer holds for some phones."""

    def db(self) -> Db: ...

    def forget_phones(self, phone_keys: Iterable[str]) -> None: ...


def is_postgres(conn: object) -> bool:
    return isinstance(conn, PgConnection | PgDb)


def greatest(conn: object) -> str:
    """The name of the two-argument maximum: SQLite's scalar ``max``, PostgreSQL's ``greatest``."""
    return "greatest" if is_postgres(conn) else "max"


def least(conn: object) -> str:
    return "least" if is_postgres(conn) else "min"


def utc_day(conn: object, column: str) -> str:
    """SQL for the UTC day (``YYYY-MM-DD``) of ``column``, a Unix time in seconds."""
    if is_postgres(conn):
        return f"to_char(to_timestamp({column}) at time zone 'UTC', 'YYYY-MM-DD')"
    return f"date({column}, 'unixepoch')"


def skip_locked(conn: object) -> str:
    """The clause that lets claimers pass over rows another claimer holds (PostgreSQL).

    SQLite has one writer: a claim inside ``write_transaction`` is alone anyway.
    """
    return " for update skip locked" if is_postgres(conn) else ""


def dicts(cursor: Any) -> list[dict[str, Any]]:
    """The rows a query returned, as dicts keyed by column name."""
    columns = [c[0] for c in cursor.description]
    return [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]


def one(cursor: Any) -> dict[str, Any] | None:
    """The first row a query returned, as a dict, or None."""
    rows = dicts(cursor)
    return rows[0] if rows else None


def rowcount(cursor: Any) -> int:
    """How many rows a write changed."""
    return int(cursor.rowcount or 0)


def lock_id(name: str) -> int:
    """A stable 32-bit id for an advisory lock name (the same on every node)."""
    return zlib.crc32(f"migrantline:{name}".encode())


@contextmanager
def write_transaction(conn: Conn, lock: str | None = WRITER) -> Iterator[None]:
    """All or nothing, with writers that must not interleave taking turns.

    SQLite: ``BEGIN IMMEDIATE`` takes the one write lock up front, so a
    concurrent writer waits instead of failing midway (connections run in
    autocommit mode, where ``with conn:`` opens no transaction at all).

    PostgreSQL: ``BEGIN`` plus a transaction-scoped advisory lock named
    ``lock`` (default: one cluster-wide writer, the same check-then-write
    safety SQLite gives); ``lock=None`` takes none, for writes whose rows are
    claimed with ``FOR UPDATE SKIP LOCKED`` or made safe by a unique key.
    """
    if isinstance(conn, PgConnection):
        with conn.raw.transaction():
            if lock is not None:
                conn.execute("select pg_advisory_xact_lock(?)", [lock_id(lock)])
            yield
        return
    conn.execute("begin immediate")
    try:
        yield
    except BaseException:
        conn.execute("rollback")
        raise
    conn.execute("commit")


@contextmanager
def secure_delete(conn: Conn) -> Iterator[None]:
    """Pages freed or rewritten by the erasure are zeroed, not only unlinked (SQLite).

    PostgreSQL keeps dead row versions until VACUUM: the erasure runs one after
    its transaction (``privacy.vacuum``); here there is nothing to switch.
    """
    if isinstance(conn, PgConnection):
        yield
        return
    was = int(conn.execute("PRAGMA secure_delete").fetchone()[0])
    conn.execute("PRAGMA secure_delete = ON")
    try:
        yield
    finally:
        conn.execute(f"PRAGMA secure_delete = {was}")


def placeholders(values: Sequence[object]) -> str:
    return ", ".join("?" * len(values))
