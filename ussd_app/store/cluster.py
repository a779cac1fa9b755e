"""The runs of periodic jobs shared by every node (PostgreSQL): ``job_runs``.

``ussd_app.cluster`` takes a job's advisory lock, then asks ``start_run``
whether the job is due: a node whose timer fires just after another node's
run finished skips it, so a job runs once per cluster per interval, not once
per node. The table is also the count of runs an administrator (or a test)
can read. On SQLite nothing writes it: one machine keeps its threads.
"""

from __future__ import annotations

import socket

from ussd_app.store.base import Db, Handle


def m_cluster_001_job_runs(db: Db) -> None:
    """One row per periodic job: when it last started, where, and how often it ran."""
    db.table("job_runs").create({"name": str, "runs": int, "last_started": float,
                                 "last_node": str},
                                pk="name", not_null={"runs"}, defaults={"runs": 0})


def start_run(store: Handle, name: str, now: float, gap: float) -> bool:
    """Record a run of ``name`` starting now unless one started less than ``gap`` ago.

    Called under the job's advisory lock, so two nodes never both pass; one
    statement, so it needs no transaction of its own.
    """
    cursor = store.db().execute(
        "insert into job_runs (name, runs, last_started, last_node) values (?, 1, ?, ?) "
        "on conflict(name) do update set runs = job_runs.runs + 1, "
        "last_started = excluded.last_started, last_node = excluded.last_node "
        "where job_runs.last_started <= ? returning runs",
        [name, now, socket.gethostname()[:100], now - gap])
    return cursor.fetchone() is not None


def job_runs(store: Handle, name: str) -> int:
    """How many times ``name`` has run in the cluster (0: never, or SQLite)."""
    row = store.db().execute("select runs from job_runs where name = ?", [name]).fetchone()
    return int(row[0]) if row else 0
