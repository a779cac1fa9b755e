"""``Store``: the database of one deployment, composed of the store's parts.

The write-behind sessions buffer (``sessions``), the outbox's reads
(``outbox``) and the write probe (``health``) are mixins on one connection
per thread (``base.Connections``); the tables' other SQL are functions in
their modules that take a ``Store``. Opening a store applies the migrations
(``migrations.MIGRATIONS``) it has not had.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sqlite_utils import Database

import ussd_app.store.migrations as schema
from ussd_app.store.base import DB_ERRORS
from ussd_app.store.health import HealthProbe
from ussd_app.store.outbox import OutboxReads
from ussd_app.store.sessions import Sessions


class Store(Sessions, OutboxReads, HealthProbe):
    """The database of one deployment, safe to share between threads."""

    def migrate(self) -> list[str]:
        """Apply what this database has not had; return the names applied."""
        if self.postgres:
            return schema.apply(self.db())
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Owner-only before SQLite opens it: its WAL and SHM files take the database's mode.
        # Only a new file is opened here: closing any descriptor of a database this process
        # has open drops SQLite's POSIX locks on it, and another process could then take
        # itself for the last user and delete the WAL (found with two stores in one process).
        try:
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        for path in (self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")):
            if path.exists() and path.stat().st_mode & 0o077:
                path.chmod(0o600)
        db = self.db()
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal" and isinstance(db, Database):
            db.enable_wal()
        return schema.apply(db)

    def pending_migrations(self) -> list[str]:
        return schema.pending(self.db())

    @property
    def engine(self) -> str:
        return "postgresql" if self.postgres else "sqlite"

    def health(self) -> dict[str, Any]:
        try:
            db = self.db()
            mode = ("postgresql" if self.postgres
                    else db.execute("PRAGMA journal_mode").fetchone()[0])
            applied = schema.applied(db)
            pending = schema.pending(db)
            return {"status": "ok" if not pending else "migrations pending",
                    "engine": self.engine, "journal_mode": mode, "migrations": len(applied),
                    "pending": pending}
        except DB_ERRORS as exc:
            return {"status": "error", "error": str(exc)}


class PendingMigrations(RuntimeError):
    """A PostgreSQL database behind this code's schema: ``migrantline db upgrade`` first."""


def database_url() -> str | None:
    """``MIGRANTLINE_DATABASE_URL`` (declared in settings.py), when it names PostgreSQL."""
    url = os.environ.get("MIGRANTLINE_DATABASE_URL", "").strip()
    return url or None


def open_store(data_dir: Path, flush_ms: int = 100, url: str | None = None,
               migrate: bool | None = None) -> Store:
    """The deployment's store: the SQLite file in ``data_dir``, or ``url``'s PostgreSQL.

    SQLite upgrades in place on opening (a field office runs one command).
    PostgreSQL is upgraded by the deploy step ``migrantline db upgrade``: a node
    that finds migrations pending refuses to start (``PendingMigrations``)
    rather than let every worker of every node race to alter shared tables.
    """
    url = url if url is not None else database_url()
    store = Store(data_dir / "migrantline.db", flush_ms=flush_ms, url=url)
    if migrate if migrate is not None else not store.postgres:
        store.migrate()
    elif store.postgres:
        pending = store.pending_migrations()
        if pending:
            raise PendingMigrations(
                f"the database has {len(pending)} migration(s) pending ({', '.join(pending)}): "
                "run `migrantline db upgrade` once, then start the nodes")
    return store
