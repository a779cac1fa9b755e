"""A hop's statements on PostgreSQL, sent by libpq's prepared-statement call.

Why: every USSD hop commits at least one statement before it is answered, and
psycopg's cursor path (query conversion, adaptation, its generator-driven wait)
cost 50-70 µs of a node's CPU per statement on top of the round trip itself,
against ~20 µs for the same prepared statement through ``PGconn.exec_prepared``
(bench/README.md, "Several nodes on PostgreSQL"). On two cores shared with
PostgreSQL and the balancer, that was a fifth of what a node spends on a hop.

Only the few statements of the hot path come here (``store/sessions.py``); the
rest of the store keeps psycopg's cursors. What it keeps of psycopg: the
connection (autocommit; its timeouts set at connect), its error classes
(``error_from_result``: a unique violation is still an ``IntegrityError``)
and its loaders for the rows returned, so a value reads back as the same type.
Parameters go as text with a type only where the server cannot infer it from
the column: ``str`` as "unknown" (what the store's str dumper sends too), a NUL
stored as U+FFFD as there (``base._NulSafeStr``), ``float`` as float8, ``int``
as int8, ``bool`` as bool, ``None`` as NULL. Any other type goes the cursor way.

The blocking libpq call releases the GIL while it waits (as psycopg's own wait
does), and returns at once when the server is gone: the connection is then
``BAD``, ``PgConnection.usable`` says so and the next ``Connections.db()`` opens
a new one, with its own prepared statements.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, cast

import psycopg
from psycopg import errors, pq
from psycopg.adapt import Transformer

from ussd_app.store.base import PgConnection, split_placeholders

_TYPES: dict[type, int] = {str: 0, float: 701, int: 20, bool: 16, type(None): 0}
_FALLBACK = -1


@lru_cache(maxsize=256)
def to_native(sql: str) -> bytes:
    """``?``/``?N`` placeholders to PostgreSQL's own ``$N``, once per text."""
    pieces, _ = split_placeholders(sql)
    return "".join(f"${p + 1}" if isinstance(p, int) else p for p in pieces).encode()


def _text(value: Any) -> bytes | None:
    if value is None:
        return None
    if value is True or value is False:
        return b"t" if value else b"f"
    if isinstance(value, str):
        return (value.replace("\x00", "\ufffd") if "\x00" in value else value).encode()
    return repr(value).encode() if isinstance(value, float) else str(value).encode()


class _Statements:
    """The statements one connection has prepared, and its row loader."""

    def __init__(self, conn: PgConnection):
        self.names: dict[tuple[str, tuple[int, ...]], bytes] = {}
        self.rows = Transformer(conn.raw)
        self.utf8 = conn.raw.info.encoding == "utf-8"  # parameters are sent as UTF-8


def run_prepared(conn: PgConnection, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    """The rows ``sql`` returns (none for a write), as ``execute(...).fetchall()`` gives.

    ``sql`` uses the store's placeholders; ``?N`` refers to the N-th parameter.
    """
    values = tuple(params or ())
    types = tuple(_TYPES.get(type(v), _FALLBACK) for v in values)
    statements: _Statements | None = conn.statements
    if statements is None:
        statements = conn.statements = _Statements(conn)
    if _FALLBACK in types or not statements.utf8:
        cursor = conn.execute(sql, values)
        return list(cursor.fetchall()) if cursor.description else []
    pgconn = conn.raw.pgconn
    key = (sql, types)
    name = statements.names.get(key)
    if name is None:
        name = f"migrantline_{len(statements.names)}".encode()
        _check(pgconn, pgconn.prepare(name, to_native(sql), types))
        statements.names[key] = name
    # None is NULL: libpq takes it (psycopg's own stub omits it for this call alone)
    texts = cast("list[bytes]", [_text(v) for v in values])
    result = _check(pgconn, pgconn.exec_prepared(name, texts))
    if result.status != pq.ExecStatus.TUPLES_OK:
        return []
    loader = statements.rows
    loader.set_pgresult(result)
    return list(loader.load_rows(0, result.ntuples, tuple))


def _check(pgconn: pq.abc.PGconn, result: pq.abc.PGresult) -> pq.abc.PGresult:
    if result.status in (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK):
        return result
    if pgconn.status == pq.ConnStatus.BAD:  # the server went away: replaced on next use
        message = pgconn.error_message.decode("utf-8", "replace").strip()
        raise psycopg.OperationalError(f"the connection to PostgreSQL was lost: {message}")
    raise errors.error_from_result(result, encoding="utf-8")
