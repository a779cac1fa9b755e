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

from ussd_app.store.base import Conn, Db, Handle, rowcount, secure_delete, write_transaction


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
    truncated once the rotation is committed.
    """
    conn = store.db().conn
    with secure_delete(conn), write_transaction(conn):
        yield Rekeying(conn)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


class Rekeying:
    """The reads and writes of a rotation, inside ``rekeying``'s transaction.

    ``table`` and ``column`` are names from ``rekey.py``'s lists, never input.
    """

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def values(self, table: str, column: str) -> list[tuple[int, Any]]:
        """(rowid, value) of every row holding something: '' is an erased value."""
        rows: list[tuple[int, Any]] = self.conn.execute(
            f"select rowid, {column} from {table} where {column} is not null "
            f"and {column} != ''").fetchall()
        return rows

    def rowids(self, table: str, column: str) -> list[int]:
        """Rows whose ``column`` is not null (binary values, read one at a time)."""
        return [int(r[0]) for r in self.conn.execute(
            f"select rowid from {table} where {column} is not null").fetchall()]

    def value_with(self, table: str, column: str, other: str, rowid: int) -> tuple[Any, Any]:
        """One row's ``column`` and ``other`` (a binary value and its context)."""
        value, context = self.conn.execute(
            f"select {column}, {other} from {table} where rowid = ?", [rowid]).fetchone()
        return value, context

    def set(self, table: str, column: str, rowid: int, value: Any) -> None:
        self.conn.execute(f"update {table} set {column} = ? where rowid = ?", [value, rowid])

    def delete(self, table: str, rowid: int) -> None:
        self.conn.execute(f"delete from {table} where rowid = ?", [rowid])

    def not_null(self, table: str, column: str) -> bool:
        """Whether ``column`` is declared NOT NULL (emptied with '' rather than null)."""
        return any(r[1] == column and r[3]
                   for r in self.conn.execute(f"PRAGMA table_info({table})"))

    def clear(self, table: str, column: str) -> int:
        """Set ``column`` to null in every row; how many held something."""
        return rowcount(self.conn.execute(
            f"update {table} set {column} = null where {column} is not null"))

    def pin_hashes(self) -> list[tuple[int, str, str]]:
        """(rowid, reference, PIN hash) of every complaint that has a PIN."""
        rows: list[tuple[int, str, str]] = self.conn.execute(
            "select rowid, reference, pin_hash from complaints where pin_hash is not null"
        ).fetchall()
        return rows

    def operator_emails(self) -> list[str]:
        return [str(r[0]) for r in self.conn.execute("select email from operators").fetchall()]

    def login_attempt_emails(self) -> list[tuple[int, str]]:
        rows: list[tuple[int, str]] = self.conn.execute(
            "select rowid, email from login_attempts").fetchall()
        return rows

    def audit_email_details(self) -> list[tuple[int, str]]:
        """Audit rows whose detail is an email's keyed hash (``email#...``)."""
        rows: list[tuple[int, str]] = self.conn.execute(
            "select rowid, detail from audit_log where detail like 'email#%'").fetchall()
        return rows

    def end_operator_sessions(self) -> None:
        """Every signed-in browser of every operator is signed out at its next request."""
        self.conn.execute("update operators set session_epoch = session_epoch + 1")

    def set_fingerprint(self, fingerprint: str, at: float) -> None:
        self.conn.execute("insert into key_check (id, fingerprint, set_at) values (1, ?, ?) "
                          "on conflict(id) do update set fingerprint = excluded.fingerprint, "
                          "set_at = excluded.set_at", [fingerprint, at])
