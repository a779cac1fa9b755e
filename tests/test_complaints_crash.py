"""The production server SIGKILLed during a burst of filings: no reference shown is lost.

Callers file complaints over USSD (a whole session each) while the server is
killed at random moments and started again. Like Africa's Talking, a caller
whose hop got no answer sends it again (same session id, same text) once the
server is back. At the end every reference any caller saw must name a
complaint holding exactly what that caller typed, and no session may have
filed twice.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ussd_app.complaints.service import Complaints, parse_reference
from ussd_app.i18n import default_catalogs
from ussd_app.store import open_store

from .conftest import TEST_SECRET
from .test_complaints import choice, menu_key

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent / "migrantline"
KILLS = 4


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, tmp: Path):
        self.port = free_port()
        self.env = {**os.environ, "MIGRANTLINE_DATA_DIR": str(tmp / "var"),
                    "MIGRANTLINE_SECRET_KEY": TEST_SECRET,
                    "MIGRANTLINE_CONTENT_POLL_SECONDS": "0",
                    "MIGRANTLINE_SYNC_INTERVAL_SECONDS": "0", "MIGRANTLINE_DEMO": "on"}
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--port", str(self.port), "--workers", "2"], cwd=ROOT,
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                    return
            except (OSError, urllib.error.URLError):
                time.sleep(0.1)
        raise AssertionError("the server did not start")

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)  # the server and its workers, no cleanup
        self.proc.wait(timeout=10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


RETRIED: list[str] = []  # hops that had to be sent again: the kills landed mid-session


def hop(url: str, session: str, phone: str, text: str) -> str:
    """One callback, sent again and again until it is answered (the provider's retries)."""
    data = urllib.parse.urlencode({"sessionId": session, "phoneNumber": phone,
                                   "serviceCode": "*384#", "text": text}).encode()
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/ussd/africastalking", data=data,
                                        timeout=5) as response:
                return response.read().decode()
        except (OSError, urllib.error.URLError):
            RETRIED.append(session)
            time.sleep(0.05)
    raise AssertionError("no answer for 90 s")


def test_sigkill_during_filings_loses_no_reference_and_doubles_none(tmp_path: Path) -> None:
    server = Server(tmp_path)
    server.start()
    shown: dict[str, tuple[str, str]] = {}  # reference -> (session, description)
    stop = threading.Event()
    sessions: list[str] = []

    def caller(number: int) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            session, phone = f"crash-{number}-{n}", f"+9779800{number:02d}{n:04d}"
            description = f"caller {number} filing {n}: wages unpaid since March"
            inputs = ["1", menu_key("main", "complaints"),
                      menu_key("complaints", "report_consent"), choice("report_consent", "yes"),
                      choice("report_danger", "no"), choice("report_who", "self"),
                      choice("report_category", "unpaid_wages"),
                      choice("report_against", "employer"), "Crash Test Ltd",
                      choice("report_country", "qa"), "Doha", description,
                      choice("report_contact", "never"), choice("report_pin_choice", "no"),
                      choice("report_share", "no"), "1"]
            sessions.append(session)
            hop(server.url, session, phone, "")
            for i in range(1, len(inputs) + 1):
                body = hop(server.url, session, phone, "*".join(inputs[:i]))
            assert body.startswith("END "), body
            words = body.replace(".", " ").split()
            digits = [w for w in words if w.isdigit() and len(w) == 4]
            reference = digits[0] + digits[1]
            assert parse_reference(reference), body
            shown[reference] = (session, description)

    callers = [threading.Thread(target=caller, args=(i,), daemon=True) for i in range(4)]
    for thread in callers:
        thread.start()
    rng = random.Random(7)
    try:
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.5, 2.0))
            server.kill()
            time.sleep(rng.uniform(0.0, 0.3))
            server.start()
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in callers:
            thread.join(timeout=120)
        server.kill()

    assert len(shown) >= 10, "too few filings to say anything"
    assert len(set(RETRIED)) >= KILLS, "the kills did not interrupt any session"
    print(f"{len(shown)} references shown, {len(set(RETRIED))} sessions interrupted")
    store = open_store(tmp_path / "var")
    complaints = Complaints(store, TEST_SECRET.encode(), default_catalogs().gettext)
    rows = [dict(r) for r in store.db().query("select * from complaints")]
    by_reference = {r["reference"]: r for r in rows}
    for reference, (session, description) in shown.items():
        row = by_reference.get(reference)
        assert row is not None, f"reference {reference} was shown but is not stored"
        assert row["key"].startswith(f"ussd:{session}:")
        assert complaints.reveal(row)["description"] == description
    per_session: dict[str, int] = {}
    for row in rows:
        session = row["key"].split(":")[1]
        per_session[session] = per_session.get(session, 0) + 1
    assert all(count == 1 for count in per_session.values()), per_session
    assert set(per_session) <= set(sessions)
