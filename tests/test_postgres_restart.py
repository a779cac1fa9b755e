"""PostgreSQL stopped and started again under a running ``migrantline serve``.

A private cluster (initdb in a temporary folder, its own port), never the
shared one the other tests use. While it is down a caller mid-session gets a
clean USSD ``END`` (HTTP 200, "try again later" in their language), an SMS
gets a 503 so the provider retries it, a call hears a goodbye and is hung up;
a complaint being sent at that moment is not half-written. Once PostgreSQL is
back, the same ``serve`` (never restarted) answers the next session: each
thread's broken connection is replaced (``store.base.Connections.db``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from ussd_app.engine import messages as m

from .conftest import ROOT, Phone
from .http_client import HttpClient
from .test_cli import BIN, env_for, free_port
from .test_complaints import choice, file_report, reference_in, start_report, title
from .voice_phone import VoiceCaller

PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
pytestmark = [pytest.mark.postgres_only,
              pytest.mark.skipif(PG_BIN is None, reason="PostgreSQL's server is not installed "
                                 "(.ci/postgres installs it)")]
TOKEN = "pg-restart-token"
SORRY = m.UNAVAILABLE  # English: the phones below pick English


@dataclass
class Cluster:
    """A private PostgreSQL: its folder, port and URL; stop() and start() it."""

    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def pg(self, *args: str) -> None:
        as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run([*as_postgres, str(PG_BIN / args[0]), *args[1:]], check=True,
                       capture_output=True, timeout=60)

    def start(self) -> None:
        self.pg("pg_ctl", "-D", str(self.data / "db"), "-w", "-l", str(self.data / "log"),
                "start", "-o", f"-h 127.0.0.1 -p {self.port} -k {self.data} -c fsync=off")

    def stop(self) -> None:
        self.pg("pg_ctl", "-D", str(self.data / "db"), "-w", "stop", "-m", "fast")

    def count(self, table: str) -> int:
        with psycopg.connect(self.url) as conn:
            row = conn.execute(f"select count(*) from {table}").fetchone()  # noqa: S608
            return int(row[0]) if row else 0


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    # not pytest's tmp_path: the postgres user must reach the folder (root's is 0700)
    folder = Path(tempfile.mkdtemp(prefix="migrantline-pg-", dir="/var/tmp"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    cluster = Cluster(folder, free_port())
    try:
        cluster.pg("initdb", "-D", str(folder / "db"), "-A", "trust", "-U", "postgres",
                   "--no-sync")
        cluster.start()
        yield cluster
    finally:
        try:
            cluster.stop()
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def served(tmp_path: Path, cluster: Cluster) -> Iterator[HttpClient]:
    env = env_for(tmp_path, MIGRANTLINE_DATABASE_URL=cluster.url,
                  MIGRANTLINE_WEBHOOK_TOKEN=TOKEN, MIGRANTLINE_PROMPTS_RENDER="off")
    upgrade = subprocess.run([str(BIN), "db", "upgrade"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    port = free_port()
    serve = subprocess.Popen([str(BIN), "serve", "--port", str(port), "--workers", "1"],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 40
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                if serve.poll() is not None or time.time() > deadline:
                    out = serve.stdout.read().decode() if serve.stdout else ""
                    pytest.fail(f"serve did not start: {out[-2000:]}")
                time.sleep(0.2)
        yield HttpClient(port, TOKEN)
    finally:
        serve.terminate()
        serve.communicate(timeout=30)


def to_confirm(phone: Phone) -> str:
    """A complaint walked up to its last screen (``1`` would send it)."""
    start_report(phone, "en")
    screen = ""
    for key in (choice("report_danger", "no"), choice("report_who", "self"),
                choice("report_category", "unpaid_wages"), choice("report_against", "employer"),
                "Golden Sands Contracting", choice("report_country", "qa"), "Doha",
                "They kept my passport and have not paid me for three months.",
                choice("report_contact", "any"), choice("report_pin_choice", "no"),
                choice("report_share", "no")):
        screen = phone.press(key)
    assert title("report_confirm", "en") in screen
    return screen


def test_an_outage_is_answered_gracefully_and_recovered_without_restart(
        served: HttpClient, cluster: Cluster) -> None:
    phone = Phone(served)  # type: ignore[arg-type]  # posts like a Flask test client
    to_confirm(phone)
    cluster.stop()

    # USSD: the hop that would send the complaint is answered cleanly, in the caller's
    # language: the sending step's own "try again" screen (1 sends again) while the
    # session's progress needs no write, else the END every failed hop gets
    sending = phone.press("1")
    assert sending == "END " + SORRY or sending.startswith("CON Not possible now. Try again "
                                                          "later."), sending
    assert Phone(served).dial() == "END " + SORRY  # a new caller  # type: ignore[arg-type]
    # SMS: 503, so the provider delivers it again later
    sms = served.post("/sms/africastalking", {"from": "+9779811111111", "to": "12345",
                                              "text": "HELP", "id": "sms-outage-1",
                                              "date": "2026-01-01 00:00:00"})
    assert sms.status_code == 503 and b"Traceback" not in sms.body
    # voice: a spoken goodbye and a hang-up, never an error page or dead air
    heard = VoiceCaller(served, "twilio", token=TOKEN).dial()  # type: ignore[arg-type]
    assert heard.kind == "hangup" and (heard.says or heard.plays), heard.xml

    cluster.start()
    assert cluster.count("complaints") == 0 and cluster.count("outbox") == 0  # nothing half-written
    # the same serve, never restarted: the next session and a whole filing work
    fresh = Phone(served)  # type: ignore[arg-type]
    assert "English" in fresh.dial()
    reference_in(file_report(Phone(served)))  # type: ignore[arg-type]
    assert cluster.count("complaints") == 1
    sms = served.post("/sms/africastalking", {"from": "+9779811111111", "to": "12345",
                                              "text": "HELP", "id": "sms-outage-2",
                                              "date": "2026-01-01 00:00:00"})
    assert sms.status_code == 200
