"""``Store``: the database of one deployment, composed of the store's parts.

The write-behind sessions buffer (``sessions``), the outbox's reads
(``outbox``) and the write probe (``health``) are mixins on one connection
per thread (``base.Connections``); the tables' other SQL are functions in
their modules that take a ``Store``. Opening a store applies the migrations
(``migrations.MIGRATIONS``) it has not had.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import Any

import ussd_app.store.migrations as schema
from ussd_app.store.health import HealthProbe
from ussd_app.store.outbox import OutboxReads
from ussd_app.store.sessions import Sessions


class Store(Sessions, OutboxReads, HealthProbe):
    """The database of one deployment, safe to share between threads."""

    def migrate(self) -> None:
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
        if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            db.enable_wal()
        schema.apply(db)

    def health(self) -> dict[str, Any]:
        try:
            db = self.db()
            mode = db.execute("PRAGMA journal_mode").fetchone()[0]
            applied = schema.applied(db)
            pending = schema.pending(db)
            return {"status": "ok" if not pending else "migrations pending",
                    "journal_mode": mode, "migrations": len(applied), "pending": pending}
        except sqlite3.Error as exc:
            return {"status": "error", "error": str(exc)}


def open_store(data_dir: Path, flush_ms: int = 100) -> Store:
    store = Store(data_dir / "migrantline.db", flush_ms=flush_ms)
    store.migrate()
    return store
