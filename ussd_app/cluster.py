"""Periodic jobs that run once per cluster, not once per worker of every node.

Every worker process of every node starts the same periodic jobs
(``services.py``): purges, retention, prompt rendering. Queue work (the
outbox, call-backs, recording fetches) is safe to run everywhere at once,
because its rows are claimed with ``FOR UPDATE SKIP LOCKED``; a purge is not
wrong when run twice, but N nodes running it every interval is N times the
load for the same result, and prompt rendering twice is twice the CPU.

``once_per_cluster(store, name, fn)`` wraps such a job. On PostgreSQL each
run first takes ``pg_try_advisory_lock(lock_id(name))`` on a connection kept
for that job alone (session-level, so the lock lasts as long as ``fn`` runs,
across the transactions ``fn`` opens on its own connections); if another node
holds it, this run is skipped (that node is doing it). Under the lock the run
is recorded in ``job_runs`` (``store/cluster.py``) and skipped when another
node started one less than 0.9 of the interval ago, so nodes whose timers are
out of step do not each run it: once per cluster per interval. The lock is
released after the run, and by PostgreSQL itself if the node dies. On SQLite (one
machine) nothing is taken: the threads remain, as they were; a job that must
not run in two processes of one machine takes its own file lock (prompt
rendering does).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from ussd_app import jobs
from ussd_app.store import Store
from ussd_app.store.base import DB_ERRORS, Conn, lock_id
from ussd_app.store.cluster import start_run

log = logging.getLogger(__name__)
T = TypeVar("T")
SKIPPED = None  # what a wrapped job returns when another node held its lock


class ClusterLock:
    """A named session-level advisory lock on a connection of its own (PostgreSQL)."""

    def __init__(self, store: Store, name: str, gap: float = 0.0) -> None:
        self.store, self.name, self.key = store, name, lock_id(f"job:{name}")
        self.gap = gap  # a run started on any node less than this ago: not due
        self._conn: Conn | None = None
        self._mutex = threading.Lock()  # one run per process at a time, too

    def _connection(self) -> Conn:
        conn = self._conn
        if conn is None or not getattr(conn, "usable", True):
            conn = self._conn = self.store.new_connection()
        return conn

    def try_run(self, fn: Callable[[], T]) -> tuple[bool, T | None]:
        """(True, fn()) if this process got the lock, (False, None) if another holds it."""
        if not self._mutex.acquire(blocking=False):
            return False, None
        try:
            try:
                conn = self._connection()
                got = conn.execute("select pg_try_advisory_lock(?)", [self.key]).fetchone()[0]
            except DB_ERRORS:
                self.close()  # a restarted database: a new connection next run
                raise
            if not got:
                return False, None
            try:
                if not start_run(self.store, self.name, time.time(), self.gap):
                    return False, None
                return True, fn()
            finally:
                try:
                    conn.execute("select pg_advisory_unlock(?)", [self.key])
                except DB_ERRORS:  # the connection died: the lock died with it
                    self.close()
        finally:
            self._mutex.release()

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except DB_ERRORS:
                pass
            self._conn = None


def once_per_cluster(store: Store, name: str, fn: Callable[[], T],
                     every: float = 0.0) -> Callable[[], T | None]:
    """``fn`` run by one node at a time on PostgreSQL, at most once per ``every`` seconds
    in the cluster (skipped where another node holds it or ran it); on SQLite, ``fn``."""
    if not store.postgres:
        return fn
    lock = ClusterLock(store, name, gap=0.9 * every)

    def run() -> T | None:
        ran, result = lock.try_run(fn)
        if not ran:
            log.debug("job %s: another node is running it; skipped", name)
        return result

    run.lock = lock  # type: ignore[attr-defined]  # tests and shutdown reach it here
    return run


def every(store: Store, interval: float, name: str, fn: Callable[[], object]) -> jobs.Periodic:
    """A periodic job (a purge) run once per cluster per ``interval``; not again at
    exit, since it flushes no buffer."""
    return jobs.every(interval, once_per_cluster(store, name, fn, interval), name,
                      run_at_stop=False)
