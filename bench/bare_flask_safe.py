"""bare Flask with the two guarantees every hop of ours keeps, and nothing else.

Why: ``bare_flask.py`` is the cost of a bare endpoint, not of a safe one. Each of our
hops also (1) has its body read on granian's event loop under a timeout before any
thread takes it (issue 12: under granian's WSGI interface two slow clients froze the
service) and (2) commits the session's progress before it answers (issue 14: any
hop on any worker, nothing lost at a kill). This endpoint does exactly those two
things around the same fixed screen: it runs behind ``ussd_app/server.py``'s
``Bridge`` (as ``migrantline serve`` runs our app) and commits one upsert of the
session's text per hop (a voice webhook: the call's step) to a SQLite database in
WAL mode, ``synchronous = NORMAL``, as our store does. The gap between it and ours is
what our own code costs; the gap between it and ``bare_flask.py`` is what the two
guarantees cost.

    BARE_SAFE_DB=/tmp/bare.db granian --interface rsgi --host 127.0.0.1 --port 8000 \
        --workers 2 --http1-header-read-timeout 10000 bench.bare_flask_safe:app
"""

from __future__ import annotations

import os
import sqlite3
import tempfile
import threading
import time

from flask import Flask, Response, request

from bench.bare_flask import SCREEN, TWIML
from ussd_app.server import Bridge

DB = os.environ.get("BARE_SAFE_DB") or os.path.join(tempfile.gettempdir(), "bare-safe.db")
UPSERT = ("insert into hops (id, text, updated_at) values (?, ?, ?) on conflict(id) do "
          "update set text = excluded.text, updated_at = excluded.updated_at")
_local = threading.local()


def _conn() -> sqlite3.Connection:
    """This thread's connection, set up as our store's hop writer is: no busy handler
    that sleeps whole milliseconds (``_commit`` retries after 50 µs), and no
    checkpoint inside a hop (a background thread does one a second)."""
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None or getattr(_local, "pid", None) != os.getpid():
        conn = sqlite3.connect(DB, timeout=10, isolation_level=None)
        conn.execute("pragma journal_mode = wal")
        conn.execute("pragma synchronous = normal")
        conn.execute("create table if not exists hops (id text primary key, text text, "
                     "updated_at float)")
        conn.execute("pragma busy_timeout = 0")
        conn.execute("pragma wal_autocheckpoint = 0")
        _local.conn, _local.pid = conn, os.getpid()
        threading.Thread(target=_checkpoints, daemon=True).start()
    return conn


def _checkpoints() -> None:
    conn = sqlite3.connect(DB, timeout=10, isolation_level=None)
    while True:
        time.sleep(1.0)
        conn.execute("pragma wal_checkpoint(passive)").fetchall()


def _commit(params: list[object]) -> None:
    wait, give_up = 0.00005, time.monotonic() + 10
    while True:
        try:
            _conn().execute(UPSERT, params)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > give_up:
                raise
        time.sleep(wait)
        wait = min(wait * 2, 0.002)


flask_app = Flask(__name__)


@flask_app.post("/ussd/africastalking")
def ussd() -> Response:
    """Parse the AT form, commit the hop, answer the fixed first screen."""
    form = request.form
    _commit([form.get("sessionId", ""), form.get("text", ""), time.time()])
    return Response(SCREEN, mimetype="text/plain")


@flask_app.post("/voice/twilio")
@flask_app.post("/voice/twilio/status")
def voice() -> Response:
    """Parse the Twilio form, commit the call's step, answer the fixed TwiML menu."""
    form = request.form
    _commit([form.get("CallSid", ""), form.get("Digits", ""), time.time()])
    return Response(TWIML, mimetype="text/xml")


app = Bridge(load=lambda: flask_app)
