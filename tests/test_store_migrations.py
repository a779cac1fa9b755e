"""The store's one ordered migration list makes the schema the old code made.

``store_schema_v1.json`` is ``sqlite_master`` (and the applied migrations) of
a data folder made by the store before its migrations became one list (commit
de29c45, where their order came from imports): a database from then must open
and upgrade in place, and a new one must be made the same as an upgraded one
(the migrations added since come after the old ones).

On PostgreSQL: a fresh database gets every migration once, and nodes
upgrading at the same time run each migration once (``migrations.apply``'s
advisory lock).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from ussd_app.store import Store, agency_names, agency_versions, open_store
from ussd_app.store.migrations import MIGRATIONS, migrations

from . import databases

OLD = json.loads((Path(__file__).parent / "store_schema_v1.json").read_text())
# What later migrations replaced: m_agencies_003_by_version keys the registry by version;
# m_sessions_003_hot_updates and m_voice_calls_002_hot_updates index sessions and calls by
# their start, not by their last update.
DROPPED = {("table", "agencies"), ("table", "agency_registry"),
           ("index", "idx_agencies_licence_digits"), ("index", "sqlite_autoindex_agencies_1"),
           ("index", "idx_ussd_sessions_phone_key_updated_at"),
           ("index", "idx_voice_calls_updated_at")}


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


NAMES = [name for name, _ in MIGRATIONS]


def upgraded_schema(tmp_path: Path) -> list[list[Any]]:
    """The schema of an old database once it has had the migrations added since."""
    folder = tmp_path / "upgraded"
    folder.mkdir()
    old_database(folder / "migrantline.db")
    open_store(folder, url="").close()
    return schema(folder / "migrantline.db")


@pytest.mark.sqlite_only  # the SQLite file's own schema text
def test_a_new_database_has_the_old_schema(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    assert NAMES[:len(OLD["migrations"])] == OLD["migrations"]  # new ones come after
    assert schema(tmp_path / "migrantline.db") == upgraded_schema(tmp_path)
    old = {(r[0], r[1]) for r in OLD["sqlite_master"]} - DROPPED
    assert old <= {(r[0], r[1]) for r in schema(tmp_path / "migrantline.db")}
    recorded = [r[0] for r in store.db().execute(
        "select name from _sqlite_migrations order by id")]
    assert recorded == NAMES
    store.close()


@pytest.mark.sqlite_only  # a data folder's file, upgraded in place
def test_an_old_database_opens_unchanged(tmp_path: Path) -> None:
    old_database(tmp_path / "migrantline.db")
    store = open_store(tmp_path)
    health = store.health()
    assert health["status"] == "ok" and health["pending"] == []
    assert health["migrations"] == len(NAMES)
    assert [r["key"] for r in store.outbox()] == ["old:1"]
    store.close()


@pytest.mark.sqlite_only  # a data folder's file, upgraded in place
def test_an_old_registry_is_kept_under_its_version(tmp_path: Path) -> None:
    """The one-version agency tables of before become rows keyed by that version."""
    old_database(tmp_path / "migrantline.db")
    conn = sqlite3.connect(tmp_path / "migrantline.db", isolation_level=None)
    for key, name in (("np1", "First (sample)"), ("np2", "Second (sample)")):
        conn.execute("insert into agencies (licence_key, licence, licence_digits, name, "
                     "country, status, source, data_date) values (?, ?, '1', ?, 'NP', "
                     "'licensed', 'test', '2026-11-01')", [key, key.upper(), name])
    conn.execute("insert into agency_registry (id, version, file, count, loaded_at) "
                 "values (1, 'abc123', 'agencies.csv', 2, 1.0)")
    conn.close()
    store = open_store(tmp_path)
    assert [v["version"] for v in agency_versions(store)] == ["abc123"]
    assert [n[1] for n in agency_names(store, "abc123")] == ["First (sample)",
                                                              "Second (sample)"]
    store.close()


def test_each_migration_runs_once_in_order(tmp_path: Path) -> None:
    store = open_store(tmp_path)
    store.migrate()  # again: nothing to do
    count = store.db().execute("select count(*) from _sqlite_migrations").fetchone()[0]
    assert count == len(MIGRATIONS)
    store.close()


@pytest.mark.sqlite_only  # a file left by an older release
def test_a_database_part_way_through_catches_up(tmp_path: Path) -> None:
    db = Database(tmp_path / "migrantline.db")
    migrations.apply(db, stop_before="m_complaints_001")  # as a release of that time left it
    db.close()
    store = open_store(tmp_path)
    assert store.health()["pending"] == []
    assert schema(tmp_path / "migrantline.db") == upgraded_schema(tmp_path)
    store.close()


def empty_database() -> str:
    """A PostgreSQL database with nothing in it (not copied from the migrated template)."""
    name = f"mlt_test_{uuid.uuid4().hex[:16]}"
    with databases._admin() as admin:
        admin.execute(f'create database "{name}"')
    return databases.url_for(name)


@pytest.mark.postgres_only
def test_a_fresh_postgresql_database_gets_every_migration_once(tmp_path: Path) -> None:
    url = empty_database()
    try:
        store = Store(tmp_path / "migrantline.db", url=url)
        assert store.pending_migrations() == NAMES
        assert store.migrate() == NAMES
        assert store.migrate() == []  # again: nothing to do
        rows = store.db().execute("select name, count(*) from _sqlite_migrations "
                                  "group by name").fetchall()
        assert sorted(r[0] for r in rows) == sorted(NAMES) and {r[1] for r in rows} == {1}
        tables = {t for t in store.db().table_names()}
        assert {"complaints", "outbox", "agency_rows", "ussd_sessions"} <= tables
        store.close()
    finally:
        databases.drop(url)


@pytest.mark.postgres_only
def test_nodes_upgrading_at_once_run_each_migration_once(tmp_path: Path) -> None:
    """Four stores (as four nodes) upgrade one empty database at the same moment: the
    advisory lock lets one run the migrations; the others find nothing left to do."""
    url = empty_database()
    try:
        start = threading.Barrier(4)
        ran: list[list[str]] = []
        errors: list[BaseException] = []

        def node() -> None:
            store = Store(tmp_path / "migrantline.db", url=url)
            try:
                start.wait()
                ran.append(store.migrate())
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)
            finally:
                store.close()

        threads = [threading.Thread(target=node) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        assert sorted(ran, key=len) == [[], [], [], NAMES]
        check = Store(tmp_path / "migrantline.db", url=url)
        count = check.db().execute("select count(*) from _sqlite_migrations").fetchone()[0]
        assert count == len(NAMES) and check.pending_migrations() == []
        check.close()
    finally:
        databases.drop(url)
