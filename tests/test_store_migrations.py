"""The store's one ordered migration list makes the schema the old code made.

``store_schema_v1.json`` is ``sqlite_master`` (and the applied migrations) of
a data folder made by the store before its migrations became one list (commit
de29c45, where their order came from imports): a database from then must open
as it is, and a new one must be made the same.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from ussd_app.store import open_store
from ussd_app.store.migrations import MIGRATIONS, migrations

OLD = json.loads((Path(__file__).parent / "store_schema_v1.json").read_text())
# Tables that migrations after v1 added columns to (``add_column``: nothing else changes).
ADDED_TO = {"voice_recordings"}


def schema(path: Path) -> list[list[Any]]:
    conn = sqlite3.connect(path)
    try:
        return [list(r) for r in conn.execute(
            "select type, name, tbl_name, sql from sqlite_master order by type, name")]
    finally:
        conn.close()


def old_database(path: Path) -> None:
    """A database as the old code left it: its tables, indexes and migration records."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = wal")
    rows = OLD["sqlite_master"]
    for kind in ("table", "index"):
        for _, _, _, sql in (r for r in rows if r[0] == kind and r[3]):
            conn.execute(sql)
    conn.executemany("insert into _sqlite_migrations (migration_set, name, applied_at) "
                     "values ('migrantline', ?, '2026-01-01 00:00:00+00:00')",
                     [[name] for name in OLD["migrations"]])
    conn.execute("insert into outbox (key, channel, to_sealed, body, status) "
                 "values ('old:1', 'sms', 'x', 'hello', 'queued')")
    conn.close()


def brought_up_to_date(tmp_path: Path) -> list[list[Any]]:
    """The schema of a database of then, once it ran the migrations added since."""
    folder = tmp_path / "old-then-migrated"
    folder.mkdir()
    old_database(folder / "migrantline.db")
    open_store(folder).close()
    return schema(folder / "migrantline.db")


def test_a_new_database_has_the_old_schema(tmp_path: Path) -> None:
    """The same as an old one brought up to date (migrations since v1 only add to it)."""
    store = open_store(tmp_path)
    assert schema(tmp_path / "migrantline.db") == brought_up_to_date(tmp_path)
    names = [name for name, _ in MIGRATIONS]
    assert names[:len(OLD["migrations"])] == OLD["migrations"]
    recorded = [r[0] for r in store.db().execute(
        "select name from _sqlite_migrations order by id")]
    assert recorded == names
    store.close()


def test_an_old_database_opens_unchanged(tmp_path: Path) -> None:
    old_database(tmp_path / "migrantline.db")
    store = open_store(tmp_path)
    health = store.health()
    assert health["status"] == "ok" and health["pending"] == []
    assert health["migrations"] == len(MIGRATIONS)
    new = schema(tmp_path / "migrantline.db")  # v1's tables and indexes, as they were,
    assert [row for row in OLD["sqlite_master"] if row not in new] == [  # but for columns
        row for row in OLD["sqlite_master"] if row[0] == "table" and row[1] in ADDED_TO]
    assert [r["key"] for r in store.outbox()] == ["old:1"]
    store.close()


def test_each_migration_runs_once_in_order(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.migrate()  # again: nothing to do
    count = store.db().execute("select count(*) from _sqlite_migrations").fetchone()[0]
    assert count == len(MIGRATIONS)
    store.close()


def test_a_database_part_way_through_catches_up(tmp_path: Path) -> None:
    db = Database(tmp_path / "migrantline.db")
    migrations.apply(db, stop_before="m_complaints_001")  # as a release of that time left it
    db.close()
    store = open_store(tmp_path)
    assert store.health()["pending"] == []
    assert schema(tmp_path / "migrantline.db") == brought_up_to_date(tmp_path)
    store.close()
