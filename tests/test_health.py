"""/healthz tells the truth: 503 with the reason when the database cannot be written, the
disk is nearly full, a background job has died or keeps failing, or SMS wait too long."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask

from ussd_app import jobs
from ussd_app import store as db
from ussd_app.store import PROBE_SECONDS

from .conftest import make_app

STALL_SECONDS = 5.0  # half the busy timeout a stuck writer would cost


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path)
    yield app
    app.extensions["migrantline"].store.close()


def health(app: Flask) -> tuple[int, dict[str, object]]:
    started = time.monotonic()
    response = app.test_client().get("/healthz")
    # What must never happen is a wait on a lock (the 10 s busy timeout, or without a
    # statement timeout no end at all); a shared CI machine can take a second or two to
    # open a first PostgreSQL connection, which is not what this bound is about.
    assert time.monotonic() - started < STALL_SECONDS, "a monitor polling /healthz must not wait"
    return response.status_code, dict(response.get_json())


def wait_for(app: Flask, code: int, seconds: float = PROBE_SECONDS + 3) -> dict[str, object]:
    deadline = time.monotonic() + seconds
    while True:
        status, body = health(app)
        if status == code or time.monotonic() > deadline:
            assert status == code, body
            return body
        time.sleep(0.2)


def data_dir(app: Flask) -> str:
    return str(app.extensions["migrantline"].store.path.parent)


def test_a_healthy_deployment_says_ok_with_its_figures(app: Flask) -> None:
    status, body = health(app)
    assert status == 200 and body["status"] == "ok" and body["problems"] == []
    assert body["disk"]["free_mb"] > body["disk"]["min_free_mb"] == 200
    assert {j["name"] for j in body["jobs"]} >= {"session-purge", "voice-purge"}
    assert body["outbox"]["checked"] is False  # the outbox provider only stores
    # Languages no native speaker has reviewed are said, without degrading the status.
    tree = app.extensions["migrantline"].content.current
    unreviewed = [lang.code for lang in tree.languages
                  if not lang.reviewed_by and lang.code != tree.default_language]
    assert unreviewed and body["content"]["languages_unreviewed"] == unreviewed


def test_a_database_that_cannot_be_written_is_a_503(app: Flask) -> None:
    store = app.extensions["migrantline"].store
    holder = store.new_connection()
    if store.postgres:  # another node holding the probe's row (a stuck writer)
        holder.execute("begin")
        holder.execute("lock table health_probe in access exclusive mode")
        says = "timeout"  # the lock's or the statement's, whichever fires first
    else:
        holder.execute("begin exclusive")  # another process holding the write lock
        says = "locked"
    try:
        body = wait_for(app, 503)
        assert body["status"] == "error"
        assert any("database cannot be written" in p and says in p
                   for p in body["problems"]), body["problems"]
    finally:
        holder.execute("rollback")
        holder.close()
    assert wait_for(app, 200)["problems"] == []  # seen again within a few seconds


def test_a_nearly_full_disk_is_a_503(tmp_path: Path) -> None:
    app = make_app(tmp_path, MIGRANTLINE_MIN_FREE_MB=str(10 ** 9))  # more than any disk
    status, body = health(app)
    assert status == 503
    assert any("MIGRANTLINE_MIN_FREE_MB" in p and "MB free" in p for p in body["problems"])
    app.extensions["migrantline"].store.close()


def test_a_background_job_that_keeps_failing_is_a_503(app: Flask) -> None:
    def broken() -> None:
        raise RuntimeError("cannot reach the disk")

    job = jobs.every(0.02, broken, "test-broken", run_at_stop=False, owner=data_dir(app))
    try:
        body = wait_for(app, 503, 5)
        assert any("test-broken failed its last" in p and "cannot reach the disk" in p
                   for p in body["problems"]), body["problems"]
    finally:
        job.stop()
    assert wait_for(app, 200, 2)["problems"] == []  # stopped on purpose: not a problem


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_background_job_whose_thread_died_is_a_503(app: Flask) -> None:
    died = threading.Event()

    def fatal() -> None:
        died.set()
        raise SystemExit  # not an Exception: the loop does not catch it, the thread ends

    job = jobs.every(0.02, fatal, "test-fatal", run_at_stop=False, owner=data_dir(app))
    try:
        assert died.wait(5)
        body = wait_for(app, 503, 5)
        assert "background job test-fatal has stopped (its thread died)" in body["problems"]
    finally:
        job.stop()


def test_the_outbox_worker_is_watched(tmp_path: Path) -> None:
    app = make_app(tmp_path, MIGRANTLINE_OUTBOX_WORKER="on", MIGRANTLINE_SMS_PROVIDER="kannel",
                   KANNEL_SENDSMS_URL="http://127.0.0.1:9/cgi-bin/sendsms",
                   KANNEL_USERNAME="u", KANNEL_PASSWORD="p")
    status, body = health(app)
    assert "outbox-worker" in {j["name"] for j in body["jobs"]}
    worker = next(j for j in body["jobs"] if j["name"] == "outbox-worker")
    assert worker["alive"] is True
    app.extensions["migrantline"].store.close()


def test_the_outbox_worker_stops_with_the_jobs_of_its_app(tmp_path: Path) -> None:
    """A process that outlives an app (the tests, whose PostgreSQL database goes with each
    test) stops its outbox thread as it stops its periodic jobs: left running, it retried
    a dropped database every second."""
    started = time.time()
    app = make_app(tmp_path, MIGRANTLINE_OUTBOX_WORKER="on", MIGRANTLINE_SMS_PROVIDER="kannel",
                   KANNEL_SENDSMS_URL="http://127.0.0.1:9/cgi-bin/sendsms",
                   KANNEL_USERNAME="u", KANNEL_PASSWORD="p")
    threads = [h.thread for h in jobs.heartbeats(data_dir(app)) if h.name == "outbox-worker"]
    assert len(threads) == 1 and threads[0] is not None and threads[0].is_alive()
    jobs.stop_started_since(started)
    assert not threads[0].is_alive()
    assert "outbox-worker" not in {j["name"] for j in health(app)[1]["jobs"]}
    app.extensions["migrantline"].store.close()


def _old_message(app: Flask, minutes: float) -> None:
    item = db.OutboxItem(key=f"test-old-{minutes}", to_sealed="x", lang="en", body="hello",
                         encoding="GSM-7", segments=1)
    assert db.enqueue(app.extensions["migrantline"].store, item, now=time.time() - 60 * minutes)


def test_an_sms_waiting_too_long_is_a_503_with_a_real_provider(tmp_path: Path) -> None:
    app = make_app(tmp_path, MIGRANTLINE_SMS_PROVIDER="kannel",
                   KANNEL_SENDSMS_URL="http://127.0.0.1:9/cgi-bin/sendsms",
                   KANNEL_USERNAME="u", KANNEL_PASSWORD="p",
                   MIGRANTLINE_OUTBOX_MAX_AGE_MINUTES="30")
    _old_message(app, 10)
    status, body = health(app)
    assert status == 200 and body["outbox"]["checked"] is True
    _old_message(app, 45)
    status, body = health(app)
    assert status == 503
    assert any("MIGRANTLINE_OUTBOX_MAX_AGE_MINUTES (30)" in p for p in body["problems"])
    assert body["outbox"]["oldest_unsent_minutes"] >= 45
    app.extensions["migrantline"].store.close()


def test_an_old_message_is_not_a_problem_when_sms_are_only_stored(app: Flask) -> None:
    _old_message(app, 24 * 60)  # MIGRANTLINE_SMS_PROVIDER=outbox keeps messages by design
    status, body = health(app)
    assert status == 200 and body["outbox"]["checked"] is False
