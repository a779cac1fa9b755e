"""What one store statement costs through our translation layer, beside the driver and SQLAlchemy.

Why it exists: the store keeps its SQL as text with ``?`` placeholders and
runs it through ``store/base.py`` (on PostgreSQL, each text is translated to
psycopg's ``%s`` once and cached). The issue suggested SQLAlchemy 2 Core
instead; this measures, in the same run on the same database, one read by
primary key and one upsert (the statements a USSD hop makes) through:

* the bare driver (psycopg 3 / sqlite3): the baseline;
* ``store.base`` (what the service uses);
* ``store.prepared.run_prepared``: the hop's statements on PostgreSQL, by libpq's
  prepared-statement call instead of psycopg's cursor path;
* SQLAlchemy 2 Core, ``connection.execute(text(...))`` with the same SQL.

Each figure is the wall time per pair and this process's CPU time per pair (what a
node spends: on a machine shared with PostgreSQL, the figure that decides throughput).

    .venv/bin/python bench/store_overhead.py --database-url postgresql://...   # and SQLite
    .venv/bin/python bench/store_overhead.py --statements 20000

Needs SQLAlchemy for the comparison only (``pip install sqlalchemy``); the
service does not depend on it.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from ussd_app.store.base import PgConnection, connect_postgres
from ussd_app.store.prepared import run_prepared

READ = "select lang from phones where key = ?"
WRITE = ("insert into phones (key, lang, updated_at) values (?, ?, ?) on conflict(key) "
         "do update set lang = excluded.lang, updated_at = excluded.updated_at")
SETUP = "create table if not exists phones (key text primary key, lang text, updated_at float)"


def timed(run: Callable[[int], None], n: int) -> tuple[float, float]:
    """µs per pair: wall time, and this process's CPU time."""
    run(min(n, 500))  # warm up (prepared statements, caches)
    started, cpu = time.perf_counter(), time.process_time()
    run(n)
    return ((time.perf_counter() - started) / n * 1e6, (time.process_time() - cpu) / n * 1e6)


def sqlite_case(n: int) -> dict[str, tuple[float, float]]:
    from sqlalchemy import create_engine, text

    folder = Path(tempfile.mkdtemp())
    raw = sqlite3.connect(folder / "b.db", isolation_level=None)
    raw.execute("pragma journal_mode = wal")
    raw.execute(SETUP)

    def bare(k: int) -> None:
        for i in range(k):
            raw.execute(WRITE, [f"p{i % 100}", "en", float(i)])
            raw.execute(READ, [f"p{i % 100}"]).fetchone()

    engine = create_engine(f"sqlite:///{folder / 'b.db'}", isolation_level="AUTOCOMMIT")
    conn = engine.connect()
    read = text(READ.replace("?", ":k"))
    write = text(WRITE.replace("(?, ?, ?)", "(:k, :l, :t)"))

    def alchemy(k: int) -> None:
        for i in range(k):
            conn.execute(write, {"k": f"p{i % 100}", "l": "en", "t": float(i)})
            conn.execute(read, {"k": f"p{i % 100}"}).fetchone()

    # On SQLite the store hands the statement to sqlite3 itself: ours is the bare driver.
    return {"bare sqlite3 (= ours)": timed(bare, n), "SQLAlchemy Core": timed(alchemy, n)}


def postgres_case(url: str, n: int) -> dict[str, tuple[float, float]]:
    from sqlalchemy import create_engine, text

    raw = psycopg.connect(url, autocommit=True)
    raw.execute(SETUP.replace("float", "double precision"))
    pg_read, pg_write = READ.replace("?", "%s"), WRITE.replace("?", "%s")

    def bare(k: int) -> None:
        for i in range(k):
            raw.execute(pg_write, [f"p{i % 100}", "en", float(i)])
            raw.execute(pg_read, [f"p{i % 100}"]).fetchone()

    ours_conn: PgConnection = connect_postgres(url)

    def ours(k: int) -> None:
        for i in range(k):
            ours_conn.execute(WRITE, [f"p{i % 100}", "en", float(i)])
            ours_conn.execute(READ, [f"p{i % 100}"]).fetchone()

    def hot(k: int) -> None:
        for i in range(k):
            run_prepared(ours_conn, WRITE, [f"p{i % 100}", "en", float(i)])
            run_prepared(ours_conn, READ, [f"p{i % 100}"])

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"),
                           isolation_level="AUTOCOMMIT")
    conn = engine.connect()
    read = text(READ.replace("?", ":k"))
    write = text(WRITE.replace("(?, ?, ?)", "(:k, :l, :t)"))

    def alchemy(k: int) -> None:
        for i in range(k):
            conn.execute(write, {"k": f"p{i % 100}", "l": "en", "t": float(i)})
            conn.execute(read, {"k": f"p{i % 100}"}).fetchone()

    result = {"bare psycopg": timed(bare, n), "ours (store.base)": timed(ours, n),
              "ours, a hop (run_prepared)": timed(hot, n), "SQLAlchemy Core": timed(alchemy, n)}
    raw.execute("drop table phones")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--statements", type=int, default=5000, help="pairs (upsert + read)")
    parser.add_argument("--database-url", default=os.environ.get("MIGRANTLINE_TEST_DATABASE_URL"))
    args = parser.parse_args()
    cases = {"SQLite": sqlite_case(args.statements)}
    if args.database_url:
        cases["PostgreSQL"] = postgres_case(args.database_url, args.statements)
    for engine, figures in cases.items():
        wall, cpu = next(iter(figures.values()))
        print(f"{engine}: µs per upsert + read, wall and this process's CPU (ratio to the "
              "bare driver)")
        for name, (us, cpu_us) in figures.items():
            print(f"  {name:28} {us:8.1f}  {us / wall:5.2f}x   CPU {cpu_us:7.1f}  "
                  f"{cpu_us / cpu:5.2f}x")


if __name__ == "__main__":
    main()
