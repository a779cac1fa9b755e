"""The database each test runs on: SQLite (default) or a fresh PostgreSQL database.

``MIGRANTLINE_TEST_DATABASE_URL`` (set by ``make test``'s second pass, from
``.ci/postgres``) switches every test to PostgreSQL: each gets a database of
its own, copied from a template that has every migration applied, and finds
its URL in ``MIGRANTLINE_DATABASE_URL`` as a deployment would (so apps,
``serve`` processes and CLI runs it starts all use it).

A test's database is made when something first uses it (``Lazy``): a connection in the
test's process, or a process it starts. Most tests of pure functions never do, and a
database made and dropped for each of them cost a fifth of the PostgreSQL pass (0.5 s a
test on a loaded 2-core machine: ``create database`` checkpoints).
"""

from __future__ import annotations

import atexit
import hashlib
import inspect
import os
import subprocess
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Any

import psycopg

from ussd_app.store import migrations
from ussd_app.store.core import open_store

ADMIN_URL = os.environ.get("MIGRANTLINE_TEST_DATABASE_URL", "")


def on_postgres() -> bool:
    return bool(ADMIN_URL)


def url_for(name: str) -> str:
    base, _, _ = ADMIN_URL.rpartition("/")
    return f"{base}/{name}"


_connect = psycopg.connect  # the real one: ``Lazy`` stands in for psycopg.connect in tests


def _admin() -> psycopg.Connection:
    return _connect(ADMIN_URL, autocommit=True)


_template: list[str] = []


def template() -> str:
    """The migrated template, made once per schema (its name is the migrations' digest)."""
    if not _template:
        _template.append(_make_template())
    return _template[0]


def _make_template() -> str:
    # Named by the migrations' names and code: one edited in a branch gets a new template.
    digest = hashlib.sha1("\n".join(f"{n}\n{inspect.getsource(m)}"
                                    for n, m in migrations.MIGRATIONS).encode()).hexdigest()
    name = f"mlt_template_{digest[:10]}"
    with _admin() as admin:
        admin.execute("select pg_advisory_lock(7734)")  # xdist workers make it once
        try:
            if admin.execute("select 1 from pg_database where datname = %s", [name]).fetchone():
                return name
            admin.execute(f'create database "{name}_new"')
            store = open_store(Path("/nonexistent"), url=url_for(f"{name}_new"), migrate=True)
            store.db().conn.close()
            admin.execute(f'alter database "{name}_new" rename to "{name}"')
            return name
        finally:
            admin.execute("select pg_advisory_unlock(7734)")


def create() -> str:
    """A new database for one test; its URL."""
    name = f"mlt_test_{uuid.uuid4().hex[:16]}"
    _create(name)
    return url_for(name)


def _create(name: str) -> None:
    with _admin() as admin:
        # FILE_COPY (PostgreSQL 15+): 0.07 s a database here, against 0.45 s for the
        # default WAL_LOG, which writes the whole copy to the WAL (a minute per 150 tests).
        strategy = " strategy file_copy" if admin.info.server_version >= 150000 else ""
        admin.execute(f'create database "{name}" template "{template()}"{strategy}')


# Programs the tests start that never open a database: starting one makes none.
NO_DATABASE_PROGRAMS = frozenset({"espeak-ng", "ffmpeg", "ffprobe", "sox", "soxi", "lame",
                                  "nginx", "openssl", "haproxy", "bearerbox", "smsbox",
                                  "fakesmsc", "chromium", "wrk", "git", "pg_ctl"})


class Lazy:
    """A test's database, made on first use. Stands in for ``psycopg.connect`` (the one
    way the store connects) and for ``subprocess.Popen``'s start of a child (a `serve` or
    CLI process connects on its own, so the database must exist before it starts)."""

    def __init__(self) -> None:
        self.name = f"mlt_test_{uuid.uuid4().hex[:16]}"
        self.url = url_for(self.name)
        self.made = False
        self._lock = threading.Lock()
        self._execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def ensure(self) -> None:
        with self._lock:
            if not self.made:
                _create(self.name)
                self.made = True

    def connect(self, conninfo: str = "", *args: Any, **kwargs: Any) -> Any:
        if conninfo.rpartition("/")[2].partition("?")[0] == self.name:
            self.ensure()
        return _connect(conninfo, *args, **kwargs)

    def execute_child(self) -> Any:
        """A stand-in for ``Popen._execute_child`` (set on the class, so called with the
        Popen as its first argument)."""
        real = self._execute_child

        def execute_child(popen: subprocess.Popen[Any], args: Any, *rest: Any) -> Any:
            program = args if isinstance(args, (str, bytes, os.PathLike)) else args[0]
            if Path((os.fsdecode(program).split() or [""])[0]).name \
                    not in NO_DATABASE_PROGRAMS:
                self.ensure()
            return real(popen, args, *rest)
        return execute_child

    def drop(self) -> None:
        if self.made:
            drop(self.url)


def drop(url: str) -> None:
    """Drop a test's database; one still busy after a few tries is left (a later run's
    ``make test`` starts from a fresh template anyway, and a test must not fail here)."""
    name = url.rpartition("/")[2]
    for attempt in range(5):
        try:
            with _admin() as admin:
                admin.execute(f'drop database if exists "{name}" with (force)')
            return
        except psycopg.Error as exc:
            if attempt == 4:
                warnings.warn(f"test database {name} left behind: {exc}", stacklevel=2)
            time.sleep(0.2 * (attempt + 1))


_by_folder: dict[str, str] = {}


def for_folder(data_dir: Path) -> dict[str, str]:
    """The environment a process on ``data_dir`` needs: on PostgreSQL, the database of
    that data folder, the same for every process started on it (so a `serve` and a
    `simulate` reading its outbox agree). A folder first used inside a test gets that
    test's database (what its app and in-process CLI runs use); one first used outside
    a test (a module's server) gets its own, dropped when the tests end."""
    if not on_postgres():
        return {}
    key = str(Path(data_dir).resolve())
    if key not in _by_folder:
        current = os.environ.get("MIGRANTLINE_DATABASE_URL", "")
        if current:  # the running test's: conftest drops it
            return {"MIGRANTLINE_DATABASE_URL": current}
        _by_folder[key] = create()
        if len(_by_folder) == 1:
            atexit.register(lambda: [drop(url) for url in _by_folder.values()])
    return {"MIGRANTLINE_DATABASE_URL": _by_folder[key]}
