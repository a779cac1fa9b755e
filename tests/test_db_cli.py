"""``migrantline db upgrade``/``db status`` and the refusal to start with migrations pending.

On SQLite the service upgrades its file itself; on PostgreSQL the upgrade is a
deploy step, run once (concurrent runs apply each migration once), and a node
on a database behind its code refuses to start, saying what to run.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import psycopg
import pytest

from tests import databases
from tests.conftest import DEMO_CONTENT, ROOT, TEST_SECRET
from ussd_app.store import migrations

BIN = Path(sys.executable).parent / "migrantline"
NAMES = [name for name, _ in migrations.MIGRATIONS]


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN), *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def env_for(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIGRANTLINE_")}
    env.update({"MIGRANTLINE_DATA_DIR": str(tmp_path / "var"),
                "MIGRANTLINE_CONTENT_DIR": str(DEMO_CONTENT),
                "MIGRANTLINE_SECRET_KEY": TEST_SECRET,
                "MIGRANTLINE_WEBHOOK_TOKEN": "db-cli-test-token-" + "x" * 24, **extra})
    return env


@pytest.mark.sqlite_only
def test_sqlite_upgrade_makes_then_finds_nothing_to_do(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    missing = run(env, "db", "status")
    assert missing.returncode == 1 and "no database" in missing.stderr
    first = run(env, "db", "upgrade")
    assert first.returncode == 0, first.stderr
    assert "new database" in first.stdout
    assert all(f"applied {name}" in first.stdout for name in NAMES)
    again = run(env, "db", "upgrade")
    assert again.returncode == 0 and "up to date" in again.stdout
    status = run(env, "db", "status")
    assert status.returncode == 0 and "engine: sqlite" in status.stdout
    assert f"migrations applied: {len(NAMES)}" in status.stdout


@pytest.fixture
def empty_database() -> object:
    """A PostgreSQL database with no schema at all (not copied from the template)."""
    name = f"mlt_empty_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(databases.ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'create database "{name}"')
    url = databases.url_for(name)
    yield url
    databases.drop(url)


@pytest.mark.postgres_only
def test_postgres_node_refuses_to_start_until_upgraded(tmp_path: Path,
                                                        empty_database: str) -> None:
    env = env_for(tmp_path, MIGRANTLINE_DATABASE_URL=empty_database)
    refused = run(env, "serve", "--port", "1")
    assert refused.returncode != 0
    assert "migrantline db upgrade" in refused.stderr and "pending" in refused.stderr
    status = run(env, "db", "status")
    assert status.returncode == 1 and "engine: postgresql" in status.stdout
    assert NAMES[0] in status.stdout
    upgraded = run(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert all(f"applied {name}" in upgraded.stdout for name in NAMES)
    assert run(env, "db", "upgrade").stdout.strip().endswith("up to date, nothing to apply")
    status = run(env, "db", "status")
    assert status.returncode == 0 and "pending: none" in status.stdout


@pytest.mark.postgres_only
def test_two_upgrades_at_once_apply_each_migration_once(tmp_path: Path,
                                                         empty_database: str) -> None:
    env = env_for(tmp_path, MIGRANTLINE_DATABASE_URL=empty_database)
    results: list[subprocess.CompletedProcess[str]] = []
    threads = [threading.Thread(target=lambda: results.append(run(env, "db", "upgrade")))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    applied = sum(r.stdout.count("  applied ") for r in results)
    assert applied == len(NAMES)  # one run did the work; the others found it done
    with psycopg.connect(empty_database) as conn:
        rows = conn.execute("select name, count(*) from _sqlite_migrations "
                            "group by name").fetchall()
    assert sorted(rows) == sorted((name, 1) for name in NAMES)


@pytest.mark.postgres_only
def test_postgres_needs_a_configured_secret_key(tmp_path: Path, database: str) -> None:
    env = env_for(tmp_path, MIGRANTLINE_DATABASE_URL=database)
    del env["MIGRANTLINE_SECRET_KEY"]
    refused = run(env, "serve", "--port", "1")
    assert refused.returncode != 0 and "MIGRANTLINE_SECRET_KEY is required" in refused.stderr
    assert not (tmp_path / "var" / "secret_key").exists()  # no per-node key made


@pytest.mark.postgres_only
def test_unreachable_database_says_what_to_check(tmp_path: Path) -> None:
    env = env_for(tmp_path, MIGRANTLINE_DATABASE_URL="postgresql://nobody:x@127.0.0.1:1/none")
    result = run(env, "db", "upgrade")
    assert result.returncode == 1
    assert "check MIGRANTLINE_DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr
