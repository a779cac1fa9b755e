"""Proof that the database takes writes, for ``/healthz``.

One row the probe rewrites (``health_probe``), on a connection of its own, so
a read-only file, a full disk or a writer holding the lock too long all show.
"""

from __future__ import annotations

import os
import time

from ussd_app.store.base import DB_ERRORS, Connections, Db, is_postgres

PROBE_SECONDS = 5.0  # /healthz is polled: the write probe runs at most this often
PROBE_TIMEOUT = 0.5  # a probe waits no longer than this for the write lock


def m_health_001(db: Db) -> None:
    """One row /healthz rewrites: proof that the database takes writes (see ``write_probe``)."""
    db.table("health_probe").create({"id": int, "at": float, "pid": int}, pk="id")


class HealthProbe(Connections):
    """The ``Store`` method that tells whether the database can take a write now."""

    _probe: tuple[float, str | None] | None = None

    def write_probe(self) -> str | None:
        """Why the database cannot take a write now (None when it can); cached a few seconds.

        A real write (an UPSERT of one row, committed) on a connection of its
        own, waiting at most ``PROBE_TIMEOUT`` for the lock: a read-only file, a
        full disk or a writer holding the lock too long all show, and a monitor
        polling /healthz never waits long. The result is kept ``PROBE_SECONDS``.
        On PostgreSQL the wait is ``lock_timeout``/``statement_timeout``.
        """
        now = time.monotonic()
        with self._lock:
            cached = self._probe
            if cached is not None and now - cached[0] < PROBE_SECONDS:
                return cached[1]
        problem: str | None = None
        try:
            conn = self.new_connection(timeout=PROBE_TIMEOUT)
            try:
                if is_postgres(conn):
                    ms = int(PROBE_TIMEOUT * 1000)
                    conn.execute(f"set lock_timeout = {ms}")
                    conn.execute(f"set statement_timeout = {ms}")
                conn.execute("insert into health_probe (id, at, pid) values (1, ?, ?) "
                             "on conflict(id) do update set at = excluded.at, pid = excluded.pid",
                             [time.time(), os.getpid()])
            finally:
                conn.close()
        except DB_ERRORS as exc:
            problem = f"the database cannot be written: {exc}"
        with self._lock:
            self._probe = (time.monotonic(), problem)
        return problem
