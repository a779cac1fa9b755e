"""Which secret key sealed the data, and the SQL of a key rotation.

``key_check`` holds a keyed hash of a constant (``privacy/rekey.py``'s
``fingerprint``): a service started with another key refuses to start rather
than seal new data the right key cannot read.

A rotation (``migrantline keys rotate``) re-seals every sealed value and
recomputes every keyed hash in one transaction. What is sealed where, and how
each value is re-sealed, is ``rekey.py``'s logic; the reads and writes it
needs are here (``Rekeying``), table and column names coming from its lists.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ussd_app.store.base import (
    Conn,
    Db,
    Handle,
    is_postgres,
    rowcount,
    secure_delete,
    write_transaction,
)


def m_keys_001(db: Db) -> None:
    """Which secret key sealed this data: a keyed hash of a constant (see ``rekey.py``)."""
    db.table("key_check").create({"id": int, "fingerprint": str, "set_at": float}, pk="id")


def recorded_fingerprint(store: Handle, first: str, at: float) -> str:
    """The fingerprint of the key the data is sealed with; ``first`` is recorded (at the
    first start) when there is none yet."""
    conn = store.db().conn
    row = conn.execute("select fingerprint from key_check where id = 1").fetchone()
    if row is None:
        conn.execute("insert into key_check (id, fingerprint, set_at) values (1, ?, ?) "
                     "on conflict(id) do nothing", [first, at])
        row = conn.execute("select fingerprint from key_check where id = 1").fetchone()
    return str(row[0])


@contextmanager
def rekeying(store: Handle) -> Iterator[Rekeying]:
    """One write transaction for a whole rotation, a failure changing nothing.

    Freed and rewritten pages are zeroed (old ciphertexts' space is not only
    freed), and the WAL, which still holds the old pages, is checkpointed and
    truncated once the rotation is committed. On PostgreSQL the tables it
    rewrote are vacuumed instead (what that leaves: ``privacy.vacuum``).
    """
    conn = store.db().conn
    rows = Rekeying(conn)
    with secure_delete(conn), write_transaction(conn):
        yield rows
    if is_postgres(conn):
        for table in sorted(rows.touched):
            conn.execute(f"vacuum {table}")
    else:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class Rekeying:
    """The reads and writes of a rotation, inside ``rekeying``'s transaction.

    ``table`` and ``column`` are names from ``rekey.py``'s lists, never input.
    A row is named by its ``rowid`` on SQLite and by its primary key on
    PostgreSQL (which has no rowid): a value, or a tuple for a key of several
    columns.
    """

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.touched: set[str] = set()
        self._keys: dict[str, tuple[str, ...]] = {}

    def _key(self, table: str) -> tuple[str, ...]:
        """The columns that name a row of ``table``."""
        if not is_postgres(self.conn):
            return ("rowid",)
        if table not in self._keys:
            self._keys[table] = tuple(r[0] for r in self.conn.execute(
                "select a.attname from pg_index i join pg_attribute a on a.attrelid = "
                "i.indrelid and a.attnum = any(i.indkey) where i.indrelid = ?::regclass "
                "and i.indisprimary order by array_position(i.indkey, a.attnum)", [table]))
        return self._keys[table]

    def _select(self, table: str, columns: str, where: str) -> list[tuple[Any, ...]]:
        """(row name, *columns) of the rows matching ``where``."""
        key = self._key(table)
        rows = self.conn.execute(
            f"select {', '.join(key)}, {columns} from {table} where {where}").fetchall()
        n = len(key)
        return [(r[0] if n == 1 else tuple(r[:n]), *r[n:]) for r in rows]

    def _is(self, table: str, row: Any) -> tuple[str, list[Any]]:
        """The where clause and parameters that pick one row by its name."""
        key = self._key(table)
        values = list(row) if len(key) > 1 else [row]
        return " and ".join(f"{c} = ?" for c in key), values

    def values(self, table: str, column: str) -> list[tuple[Any, Any]]:
        """(row, value) of every row holding something: '' is an erased value."""
        return [(r[0], r[1]) for r in self._select(
            table, column, f"{column} is not null and {column} != ''")]

    def rowids(self, table: str, column: str) -> list[Any]:
        """Rows whose ``column`` is not null (binary values, read one at a time)."""
        return [r[0] for r in self._select(table, column, f"{column} is not null")]

    def value_with(self, table: str, column: str, other: str, row: Any) -> tuple[Any, Any]:
        """One row's ``column`` and ``other`` (a binary value and its context)."""
        where, params = self._is(table, row)
        value, context = self.conn.execute(
            f"select {column}, {other} from {table} where {where}", params).fetchone()
        return value, context

    def set(self, table: str, column: str, row: Any, value: Any) -> None:
        where, params = self._is(table, row)
        self.touched.add(table)
        self.conn.execute(f"update {table} set {column} = ? where {where}", [value, *params])

    def delete(self, table: str, row: Any) -> None:
        where, params = self._is(table, row)
        self.touched.add(table)
        self.conn.execute(f"delete from {table} where {where}", params)

    def not_null(self, table: str, column: str) -> bool:
        """Whether ``column`` is declared NOT NULL (emptied with '' rather than null)."""
        if is_postgres(self.conn):
            row = self.conn.execute(
                "select is_nullable from information_schema.columns where table_schema = "
                "current_schema() and table_name = ? and column_name = ?",
                [table, column]).fetchone()
            return bool(row) and row[0] == "NO"
        return any(r[1] == column and r[3]
                   for r in self.conn.execute(f"PRAGMA table_info({table})"))

    def clear(self, table: str, column: str) -> int:
        """Set ``column`` to null in every row; how many held something."""
        self.touched.add(table)
        return rowcount(self.conn.execute(
            f"update {table} set {column} = null where {column} is not null"))

    def pin_hashes(self, table: str = "complaints") -> list[tuple[Any, str, str]]:
        """(row, reference, PIN hash) of every complaint (or job record) with a PIN."""
        return [(r[0], str(r[1]), str(r[2])) for r in self._select(
            table, "reference, pin_hash", "pin_hash is not null")]

    def operator_emails(self) -> list[str]:
        return [str(r[0]) for r in self.conn.execute("select email from operators").fetchall()]

    def login_attempt_emails(self) -> list[tuple[Any, str]]:
        return [(r[0], r[1]) for r in self._select("login_attempts", "email", "1 = 1")]

    def audit_email_details(self) -> list[tuple[Any, str]]:
        """Audit rows whose detail is an email's keyed hash (``email#...``)."""
        return [(r[0], r[1]) for r in self._select("audit_log", "detail",
                                                   "detail like 'email#%'")]

    def end_operator_sessions(self) -> None:
        """Every signed-in browser of every operator is signed out at its next request."""
        self.touched.add("operators")
        self.conn.execute("update operators set session_epoch = session_epoch + 1")

    def set_fingerprint(self, fingerprint: str, at: float) -> None:
        self.conn.execute("insert into key_check (id, fingerprint, set_at) values (1, ?, ?) "
                          "on conflict(id) do update set fingerprint = excluded.fingerprint, "
                          "set_at = excluded.set_at", [fingerprint, at])
