"""SMS sent once: a worker killed after the provider accepted a message (and answered with
its id) does not get it sent a second time by the next worker. Driven against a local
Kannel stand-in at its HTTP boundary, with real worker processes and real SQLite."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from sms_flows.outbox import make_worker
from sms_flows.providers import TIMEOUT, send_timeout
from ussd_app import settings
from ussd_app import store as db

from .conftest import TEST_SECRET, make_app

LEASE = 2.0


class Kannel:
    """Kannel's sendsms; ``on_accept`` runs after a message is taken, before the answer."""

    def __init__(self) -> None:
        self.received: list[dict[str, str]] = []
        self.accepted = threading.Event()
        self.on_accept: Any = None
        kannel = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - the http.server convention
                kannel.received.append(dict(parse_qsl(urlsplit(self.path).query)))
                if kannel.on_accept is not None:
                    kannel.on_accept()
                body = b"0: Accepted for delivery"
                self.send_response(202)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                kannel.accepted.set()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/cgi-bin/sendsms"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def kannel() -> Iterator[Kannel]:
    server = Kannel()
    yield server
    server.close()


def env(tmp_path: Path, kannel: Kannel) -> dict[str, str]:
    return {**os.environ, "MIGRANTLINE_DATA_DIR": str(tmp_path / "var"),
            "MIGRANTLINE_SECRET_KEY": TEST_SECRET, "MIGRANTLINE_SMS_PROVIDER": "kannel",
            "KANNEL_SENDSMS_URL": kannel.url, "KANNEL_USERNAME": "u", "KANNEL_PASSWORD": "p",
            "MIGRANTLINE_OUTBOX_LEASE_SECONDS": str(LEASE)}


CLI = [str(Path(sys.executable).parent / "migrantline"), "outbox", "send"]


@pytest.mark.sqlite_only  # the file journal and SQLite's one writer lock
def test_a_worker_killed_after_the_provider_answered_does_not_send_twice(
        tmp_path: Path, kannel: Kannel) -> None:
    app = make_app(tmp_path)
    store = app.extensions["migrantline"].store
    db.enqueue(store, db.OutboxItem(
        "once:1", app.extensions["migrantline"].ussd.sealer.seal("+9779800000001"), "en",
        "your reference is 1234 5678", "GSM-7", 1))
    store.close()
    path = tmp_path / "var" / "migrantline.db"
    holder = sqlite3.connect(str(path), isolation_level=None, timeout=10,
                             check_same_thread=False)

    def lock_the_database() -> None:
        # Another writer holds the database (a purge, a long import) at the moment the
        # provider answers: the worker cannot commit "sent" and is killed while it waits.
        holder.execute("begin immediate")

    kannel.on_accept = lock_the_database
    worker = subprocess.Popen([*CLI, "--forever", "--interval", "0.1"], env=env(tmp_path, kannel),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              start_new_session=True)
    try:
        assert kannel.accepted.wait(20), "the worker never sent"
        time.sleep(0.5)  # the answer has reached the worker, which now waits on the lock
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
        kannel.on_accept = None
        holder.execute("rollback")
        holder.close()
    assert len(kannel.received) == 1
    time.sleep(LEASE + 0.5)  # the killed worker's lease has run out
    again = subprocess.run(CLI, env=env(tmp_path, kannel), capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
    assert len(kannel.received) == 1, "the message was sent a second time"
    rows = db.open_store(tmp_path / "var").outbox()
    assert [(r["status"], r["provider_id"]) for r in rows] == [("sent", f"kannel-{rows[0]['id']}")]
    assert not (tmp_path / "var" / "outbox-sent.journal").read_bytes()  # replayed, emptied


@pytest.mark.postgres_only  # the journal in the database, which every node sees
def test_a_node_killed_after_the_provider_answered_does_not_get_it_sent_twice(
        tmp_path: Path, kannel: Kannel) -> None:
    app = make_app(tmp_path)
    store = app.extensions["migrantline"].store
    db.enqueue(store, db.OutboxItem(
        "once:pg", app.extensions["migrantline"].ussd.sealer.seal("+9779800000001"), "en",
        "your reference is 1234 5678", "GSM-7", 1))
    holder = store.new_connection()
    holding = threading.Event()

    def hold_the_row() -> None:
        # Another transaction holds the message's row (an erasure, a purge) when the
        # provider answers: the sender cannot mark it sent and is killed while it waits.
        holder.raw.execute("begin")  # type: ignore[union-attr]
        holder.execute("select id from outbox for update")
        holding.set()

    kannel.on_accept = hold_the_row
    sender = subprocess.Popen([*CLI, "--forever", "--interval", "0.1"],
                              env=env(tmp_path, kannel), stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, start_new_session=True)
    try:
        assert kannel.accepted.wait(20), "the sender never sent"
        time.sleep(0.5)  # the answer has reached the sender, which now waits on the row
        sender.send_signal(signal.SIGKILL)
        sender.wait(timeout=10)
    finally:
        if sender.poll() is None:
            sender.kill()
        kannel.on_accept = None
        holder.raw.execute("rollback")  # type: ignore[union-attr]
        holder.close()
    assert holding.is_set() and len(kannel.received) == 1
    (journaled,) = store.db().execute("select outbox_id, provider_id from outbox_sent").fetchall()
    time.sleep(LEASE + 0.5)  # the killed sender's lease has run out: another "node" sends
    again = subprocess.run(CLI, env=env(tmp_path, kannel), capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
    assert len(kannel.received) == 1, "the message was sent a second time"
    rows = store.outbox()
    assert [(r["status"], r["provider_id"]) for r in rows] == [("sent", journaled[1])]
    assert store.db().execute("select count(*) from outbox_sent").fetchone()[0] == 0
    store.close()


def test_a_message_with_a_provider_id_is_never_claimed_again(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    store = app.extensions["migrantline"].store
    db.enqueue(store, db.OutboxItem("once:2", "x", "en", "hello", "GSM-7", 1))
    (claimed,) = db.claim_outbox(store, time.time(), 0.01, 10)
    # The provider's id is known but the worker died before "sent": never claimed again.
    store.db().execute("update outbox set provider_id = 'AT-1' where id = ?", [claimed["id"]])
    assert db.claim_outbox(store, time.time() + 3600, LEASE, 10) == []
    store.close()


def test_the_send_timeouts_stay_well_inside_the_lease(tmp_path: Path) -> None:
    for lease in (2.0, 20.0, 120.0, 3600.0):
        connect, read = send_timeout(lease)
        assert connect + read <= lease / 2
        assert (connect, read) <= TIMEOUT
    config = settings.load(environ={}, overrides={
        "MIGRANTLINE_SMS_PROVIDER": "kannel", "KANNEL_SENDSMS_URL": "http://127.0.0.1:9/",
        "KANNEL_USERNAME": "u", "KANNEL_PASSWORD": "p", "MIGRANTLINE_OUTBOX_LEASE_SECONDS": "2"})
    store = db.open_store(tmp_path / "var")
    worker = make_worker(config, store, TEST_SECRET.encode())
    assert worker.lease == 2.0 and sum(worker.provider.timeout) <= 1.0  # type: ignore[attr-defined]
    store.close()
