"""Keys and files: a weak secret key is refused, a key kept in the data folder is warned
about at every start, and the data folder is readable by its owner only."""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from ussd_app import settings
from ussd_app.cli import main

from . import databases
from .conftest import ROOT, TEST_SECRET, Phone, make_app
from .test_cli import BIN, env_for, free_port

WEAK = ["a", "a" * 200, "password" * 8, "test-secret", "0123456789abcdef" * 2,
        "correct horse battery staple", "ab" * 64]


@pytest.mark.parametrize("key", WEAK)
def test_a_weak_key_is_refused_with_how_to_make_one(tmp_path: Path, key: str) -> None:
    with pytest.raises(settings.SecretKeyError) as refused:
        make_app(tmp_path, MIGRANTLINE_SECRET_KEY=key)
    assert "too weak" in str(refused.value)
    assert "migrantline keys generate" in str(refused.value)
    assert "secrets.token_urlsafe(32)" in str(refused.value)


def test_serve_refuses_a_weak_key_before_listening(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run([str(BIN), "serve", "--demo", "--port", str(port)], cwd=ROOT,
                            env=env_for(tmp_path, MIGRANTLINE_SECRET_KEY="a"),
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "MIGRANTLINE_SECRET_KEY is too weak" in result.stderr
    assert "Traceback" not in result.stderr


def test_other_commands_refuse_a_weak_key_in_one_line(tmp_path: Path) -> None:
    env = {"MIGRANTLINE_DATA_DIR": str(tmp_path / "var"), "MIGRANTLINE_SECRET_KEY": "aaaa"}
    result = CliRunner().invoke(main, ["retention", "purge"], env=env)
    assert result.exit_code == 1
    assert "too weak" in result.output


def test_generated_keys_are_accepted() -> None:
    for _ in range(50):
        result = CliRunner().invoke(main, ["keys", "generate"])
        assert result.exit_code == 0
        key = result.output.strip()
        settings.check_key(key)
        assert len(key) >= 43
    settings.check_key(os.urandom(32).hex())  # 64 hex characters: also enough


@pytest.mark.sqlite_only  # a key kept in the data folder: refused on PostgreSQL
def test_a_key_in_the_data_folder_is_warned_about_at_every_start(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for start in range(2):
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            app = make_app(tmp_path, MIGRANTLINE_SECRET_KEY=None)
        app.extensions["migrantline"].store.close()
        warned = [r.getMessage() for r in caplog.records if "secret_key" in r.getMessage()]
        assert warned, f"no warning at start {start + 1}"
        assert "MIGRANTLINE_SECRET_KEY" in warned[0]
    caplog.clear()
    with caplog.at_level(logging.WARNING):  # a key in the environment: nothing to say
        make_app(tmp_path / "other", MIGRANTLINE_SECRET_KEY=TEST_SECRET).extensions[
            "migrantline"].store.close()
    assert not [r for r in caplog.records if "secret_key" in r.getMessage()]


@pytest.mark.sqlite_only  # a key kept in the data folder: refused on PostgreSQL
def test_serve_warns_about_a_key_in_the_data_folder(tmp_path: Path) -> None:
    env = env_for(tmp_path)
    del env["MIGRANTLINE_SECRET_KEY"]
    for _ in range(2):  # every start, not only the one that made the key
        proc = subprocess.Popen([str(BIN), "serve", "--demo", "--port", str(free_port()),
                                 "--workers", "1"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            seen = []
            assert proc.stdout is not None
            for line in proc.stdout:
                seen.append(line)
                if line.startswith("MigrantLine on"):
                    break
            text = "".join(seen)
            assert "warning: MIGRANTLINE_SECRET_KEY is not set" in text, text
            assert str(tmp_path / "var" / "secret_key") in text
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.sqlite_only  # a key kept in the data folder: refused on PostgreSQL
def test_the_data_folder_is_owner_only(tmp_path: Path) -> None:
    data = tmp_path / "var"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    old = data / "old-export.csv"  # a file an older version left readable by all
    old.write_text("x")
    old.chmod(0o644)
    app = make_app(tmp_path, MIGRANTLINE_SECRET_KEY=None)
    client = app.test_client()
    Phone(client).dial()
    app.extensions["migrantline"].store.flush()
    assert _mode(data) == 0o700
    assert _mode(old) == 0o600
    # The SQLite files are in the folder (on PostgreSQL the database is elsewhere).
    sqlite_files = () if databases.on_postgres() else (
        "migrantline.db", "migrantline.db-wal", "migrantline.db-shm")
    for name in (*sqlite_files, "secret_key"):
        assert (data / name).exists(), name
        assert _mode(data / name) == 0o600, name
    app.extensions["migrantline"].store.close()
    if databases.on_postgres():
        return
    # A fresh database made by the store alone (a CLI command) is owner-only from the start.
    from ussd_app.store import open_store  # lazy: only this test opens a store by hand

    store = open_store(tmp_path / "other")
    assert _mode(tmp_path / "other") == 0o700
    assert _mode(tmp_path / "other" / "migrantline.db") == 0o600
    store.close()


@pytest.mark.postgres_only
def test_postgresql_refuses_to_start_without_a_key_of_its_own(tmp_path: Path) -> None:
    """Every node must hash and seal alike: none may generate a key in its data folder."""
    with pytest.raises(settings.SecretKeyError, match="MIGRANTLINE_SECRET_KEY is required"):
        make_app(tmp_path, MIGRANTLINE_SECRET_KEY=None)
    assert not (tmp_path / "var" / "secret_key").exists()
