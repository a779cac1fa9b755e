"""The hop's statements by libpq's prepared-statement call (store/prepared.py), on a real
PostgreSQL: values read back as psycopg's cursors read them, errors are psycopg's classes,
and a connection the server dropped is replaced, its statements prepared again."""

from __future__ import annotations

import math
import os
from pathlib import Path

import psycopg
import pytest

from ussd_app.store.base import DB_ERRORS, INTEGRITY_ERRORS, Connections, PgConnection
from ussd_app.store.prepared import run_prepared

pytestmark = pytest.mark.postgres_only

TABLE = ("create table probe (id text primary key, n bigint, small int, f float8, "
         "flag boolean, note text)")
INSERT = ("insert into probe (id, n, small, f, flag, note) values (?, ?, ?, ?, ?, ?) "
          "returning id, n, small, f, flag, note")


@pytest.fixture
def connections(tmp_path: Path) -> Connections:
    conns = Connections(tmp_path / "unused.db", os.environ["MIGRANTLINE_DATABASE_URL"])
    conns.db().execute(TABLE)
    return conns


def conn_of(connections: Connections) -> PgConnection:
    conn = connections.db().conn
    assert isinstance(conn, PgConnection)
    return conn


def test_values_read_back_as_the_cursor_reads_them(connections: Connections) -> None:
    conn = conn_of(connections)
    cases = [
        ("a", 2**40, 7, 1765000123.4567891, True, "नेपाली ✓ عربي"),
        ("b", -1, 0, 0.1 + 0.2, False, ""),
        ("c", None, None, None, None, None),
        ("d", 3, 1, math.inf, True, "x" * 5000),
    ]
    for row in cases:
        assert run_prepared(conn, INSERT, row) == [row]  # the first call prepares
    cursor_rows = conn.execute("select id, n, small, f, flag, note from probe order by id")
    assert run_prepared(conn, "select id, n, small, f, flag, note from probe order by id") \
        == cursor_rows.fetchall()
    # The same statement again, now prepared: same answer, same types
    again = run_prepared(conn, "select n, f from probe where id = ?", ["a"])
    assert again == [(2**40, 1765000123.4567891)]
    assert type(again[0][0]) is int and type(again[0][1]) is float


def test_a_nul_is_stored_as_the_str_dumper_stores_it(connections: Connections) -> None:
    """PostgreSQL refuses NUL in text; the store writes U+FFFD for it on every path."""
    conn = conn_of(connections)
    run_prepared(conn, "insert into probe (id, note) values (?, ?)", ["nul", "a\x00b"])
    conn.execute("insert into probe (id, note) values (?, ?)", ["nul2", "a\x00b"])
    notes = run_prepared(conn, "select note from probe where id in (?, ?) order by id",
                         ["nul", "nul2"])
    assert notes == [("a\ufffdb",), ("a\ufffdb",)]


def test_numbered_placeholders_repeat_and_reorder(connections: Connections) -> None:
    conn = conn_of(connections)
    run_prepared(conn, "insert into probe (id, note, small) values (?2, ?1 || ?2, ?3)",
                 ["x", "y", 5])
    assert run_prepared(conn, "select id, note, small from probe") == [("y", "xy", 5)]
    # A question mark inside a quoted literal is text, not a parameter
    assert run_prepared(conn, "select '?', ?1", ["z"]) == [("?", "z")]


def test_errors_are_psycopgs(connections: Connections) -> None:
    conn = conn_of(connections)
    run_prepared(conn, "insert into probe (id) values (?)", ["dup"])
    with pytest.raises(INTEGRITY_ERRORS):
        run_prepared(conn, "insert into probe (id) values (?)", ["dup"])
    with pytest.raises(psycopg.errors.UndefinedColumn):
        run_prepared(conn, "select nothing_here from probe")
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        run_prepared(conn, "insert into probe (id, small) values (?, ?)", ["big", 2**40])
    # The connection is still good after each (autocommit: no aborted transaction)
    assert run_prepared(conn, "select count(*) from probe") == [(1,)]


def test_other_types_go_the_cursor_way(connections: Connections) -> None:
    conn = conn_of(connections)
    assert run_prepared(conn, "select ?::bytea", [b"\x00\x01"]) == [(b"\x00\x01",)]


def test_a_dropped_connection_is_replaced(connections: Connections) -> None:
    """A restart or a terminated backend: the call fails as psycopg's would, the next
    ``db()`` opens a new connection and the statement is prepared on it again."""
    conn = conn_of(connections)
    run_prepared(conn, "insert into probe (id) values (?)", ["before"])
    pid = conn.raw.info.backend_pid
    with psycopg.connect(os.environ["MIGRANTLINE_DATABASE_URL"], autocommit=True) as other:
        other.execute("select pg_terminate_backend(%s)", [pid])
    with pytest.raises(DB_ERRORS) as lost:
        run_prepared(conn, "insert into probe (id) values (?)", ["during"])
    assert isinstance(lost.value, psycopg.OperationalError)
    assert not conn.usable
    fresh = conn_of(connections)
    assert fresh is not conn
    run_prepared(fresh, "insert into probe (id) values (?)", ["after"])
    assert run_prepared(fresh, "select id from probe order by id") == [("after",), ("before",)]
