"""Queues many workers share: concurrent claimers (threads, and separate sender processes)
never take one message twice, and a periodic job on two nodes of one PostgreSQL runs once.

Driven against the Kannel stand-in of test_outbox_once at its HTTP boundary, with real
worker threads and ``migrantline outbox send --forever`` processes, on both engines.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from flask import Flask

from sms_flows.outbox import make_worker
from ussd_app import jobs, settings
from ussd_app import store as db
from ussd_app.cluster import once_per_cluster
from ussd_app.store.cluster import job_runs

from .conftest import TEST_SECRET, make_app
from .test_outbox_once import CLI, Kannel, env, kannel  # noqa: F401 - the fixture

MESSAGES = 200


def queue(app: Flask, n: int) -> None:
    services = app.extensions["migrantline"]
    sealed = services.ussd.sealer.seal("+9779800000001")
    for i in range(n):
        db.enqueue(services.store, db.OutboxItem(f"many:{i}", sealed, "en", f"message {i}",
                                                 "GSM-7", 1))


def texts(kannel: Kannel) -> Counter[str]:  # noqa: F811 - the fixture's type
    return Counter(r.get("text", "") for r in list(kannel.received))


def test_two_claimers_at_once_take_disjoint_rows(tmp_path: Path) -> None:
    """Ported as it was to PostgreSQL, each of two claimers took all 10 rows."""
    app = make_app(tmp_path)
    store = app.extensions["migrantline"].store
    queue(app, 10)
    barrier = threading.Barrier(2)
    taken: list[list[int]] = [[], []]

    def claim(k: int) -> None:
        barrier.wait()
        taken[k] = [int(r["id"]) for r in db.claim_outbox(store, time.time(), 60, 10)]

    threads = [threading.Thread(target=claim, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not set(taken[0]) & set(taken[1]), taken
    assert len(taken[0]) + len(taken[1]) == 10
    store.close()


def test_four_sender_threads_send_every_message_once(tmp_path: Path,
                                                     kannel: Kannel) -> None:  # noqa: F811
    app = make_app(tmp_path)
    store = app.extensions["migrantline"].store
    queue(app, MESSAGES)
    config = settings.load(environ={}, overrides={
        "MIGRANTLINE_SMS_PROVIDER": "kannel", "KANNEL_SENDSMS_URL": kannel.url,
        "KANNEL_USERNAME": "u", "KANNEL_PASSWORD": "p"})
    workers = [make_worker(config, store, TEST_SECRET.encode()) for _ in range(4)]
    for worker in workers:
        worker.batch, worker.threads = 10, 2  # small batches: the claimers interleave
    barrier = threading.Barrier(len(workers))

    def run(worker: object) -> None:
        barrier.wait()
        worker.drain()  # type: ignore[attr-defined]

    threads = [threading.Thread(target=run, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for worker in workers:
        worker.close()
    sent = texts(kannel)
    assert sent == Counter({f"message {i}": 1 for i in range(MESSAGES)})
    assert db.outbox_counts(store) == {"sent": MESSAGES}
    store.close()


def test_a_batch_that_outlasts_its_lease_sends_nothing_twice(
        tmp_path: Path, kannel: Kannel) -> None:  # noqa: F811
    """A slow provider: ten messages claimed at once take 5 s to send one by one, past their
    4 s lease, while another worker claims whatever is due every 50 ms. Before each send
    the first worker renews a lease running short (or leaves the message to the worker
    that took it meanwhile): every message is sent once."""
    app = make_app(tmp_path)
    store = app.extensions["migrantline"].store
    queue(app, 10)
    kannel.on_accept = lambda: time.sleep(0.5)
    config = settings.load(environ={}, overrides={
        "MIGRANTLINE_SMS_PROVIDER": "kannel", "KANNEL_SENDSMS_URL": kannel.url,
        "KANNEL_USERNAME": "u", "KANNEL_PASSWORD": "p", "MIGRANTLINE_OUTBOX_LEASE_SECONDS": "4"})
    slow, other = (make_worker(config, store, TEST_SECRET.encode()) for _ in range(2))
    slow.batch, slow.threads, other.threads = 10, 1, 1
    batch = threading.Thread(target=slow.run_once)
    batch.start()
    deadline = time.time() + 10
    while not kannel.received and time.time() < deadline:  # the slow worker took all ten
        time.sleep(0.01)
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            other.run_once()
            stop.wait(0.05)

    poller = threading.Thread(target=poll)
    poller.start()
    batch.join(timeout=60)
    stop.set()
    poller.join(timeout=60)
    other.drain()
    assert texts(kannel) == Counter({f"message {i}": 1 for i in range(10)})
    assert db.outbox_counts(store) == {"sent": 10}
    store.close()


def test_two_sender_processes_send_every_message_once_and_stop_on_sigterm(
        tmp_path: Path, kannel: Kannel) -> None:  # noqa: F811
    app = make_app(tmp_path)
    store = app.extensions["migrantline"].store
    queue(app, MESSAGES)
    # A 10 s lease: its HTTP read timeout (2.5 s) outlasts a stand-in slowed by a busy
    # machine. With test_outbox_once's 2 s (0.5 s) one timed out on a message the stand-in
    # had taken: sent again, the case a provider without idempotency leaves at least once.
    senders = [subprocess.Popen([*CLI, "--forever", "--interval", "0.1"],
                                env={**env(tmp_path, kannel),
                                     "MIGRANTLINE_OUTBOX_LEASE_SECONDS": "10"},
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        deadline = time.time() + 60
        while db.outbox_counts(store).get("sent", 0) < MESSAGES and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # anything sent twice would have arrived by now
        for sender in senders:
            sender.send_signal(signal.SIGTERM)
        outputs = [sender.communicate(timeout=20) for sender in senders]
    finally:
        for sender in senders:
            if sender.poll() is None:
                sender.kill()
    for sender, (_, err) in zip(senders, outputs, strict=True):
        assert sender.returncode == 0, err
        assert "outbox sender: stopped" in err, err
    assert texts(kannel) == Counter({f"message {i}": 1 for i in range(MESSAGES)})
    assert db.outbox_counts(store) == {"sent": MESSAGES}
    assert any("sent" in err.split("stopped")[0] for _, err in outputs)  # progress lines
    store.close()


@pytest.mark.postgres_only
def test_two_nodes_run_the_purge_once(tmp_path: Path) -> None:
    """Two services on one PostgreSQL, their session purges fired at the same moment."""
    nodes = [make_app(tmp_path / name) for name in ("a", "b")]
    purges = []
    for name in ("a", "b"):
        (beat,) = [h for h in jobs.heartbeats(str(tmp_path / name / "var"))
                   if h.name == "session-purge"]
        purges.append(beat.run_now)
    barrier = threading.Barrier(2)

    def fire(purge: object) -> None:
        barrier.wait()
        purge()  # type: ignore[operator]

    threads = [threading.Thread(target=fire, args=(p,)) for p in purges]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store = nodes[0].extensions["migrantline"].store
    assert job_runs(store, "session-purge") == 1
    for purge in purges:  # fired again within the interval, on either node: not due
        purge()  # type: ignore[operator]
    assert job_runs(store, "session-purge") == 1
    for node in nodes:
        node.extensions["migrantline"].store.close()


@pytest.mark.postgres_only
def test_a_job_another_node_is_running_is_skipped(tmp_path: Path) -> None:
    stores = [db.open_store(tmp_path / name) for name in ("a", "b")]
    started, release = threading.Event(), threading.Event()
    runs: list[str] = []

    def slow() -> str:
        runs.append("a")
        started.set()
        release.wait(10)
        return "done"

    first = once_per_cluster(stores[0], "test-job", slow)
    second = once_per_cluster(stores[1], "test-job", lambda: runs.append("b") or "b")
    holder = threading.Thread(target=first)
    holder.start()
    assert started.wait(10)
    assert second() is None  # node a holds the lock: node b skips this run
    release.set()
    holder.join()
    assert second() == "b"  # no interval given: the next run is due at once
    assert runs == ["a", "b"] and job_runs(stores[0], "test-job") == 2
    for job in (first, second):
        job.lock.close()  # type: ignore[attr-defined]
    for store in stores:
        store.close()


def test_on_sqlite_a_job_is_its_own_function(tmp_path: Path) -> None:
    store = db.open_store(tmp_path)

    def job() -> int:
        return 1

    wrapped = once_per_cluster(store, "x", job)
    assert (wrapped is job) is (not store.postgres)
    store.close()


def test_background_off_leaves_sending_to_the_dedicated_senders(tmp_path: Path) -> None:
    """MIGRANTLINE_BACKGROUND=off: the web node starts no sender of its own."""
    kannel_settings = {"MIGRANTLINE_SMS_PROVIDER": "kannel", "KANNEL_USERNAME": "u",
                       "KANNEL_SENDSMS_URL": "http://127.0.0.1:9/cgi-bin/sendsms",
                       "KANNEL_PASSWORD": "p", "MIGRANTLINE_OUTBOX_WORKER": "on"}
    names = {}
    for background in ("on", "off"):
        app = make_app(tmp_path / background, MIGRANTLINE_BACKGROUND=background,
                       **kannel_settings)
        names[background] = {h.name for h in jobs.heartbeats(str(tmp_path / background / "var"))}
        app.extensions["migrantline"].store.close()
    assert "outbox-worker" in names["on"] and "outbox-worker" not in names["off"]
    assert "session-purge" in names["off"]  # maintenance still runs (once per cluster)
