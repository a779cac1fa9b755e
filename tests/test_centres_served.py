"""Two centres as two real `migrantline serve` processes on loopback ports (#17 "done when").

Each has its own data folder and keys (its own database on PostgreSQL). They pair by
exchanging cards with the CLI. A Khmer-speaking caller files at the origin (Phnom Penh)
by USSD (over HTTP), in Khmer, and agrees to share; the origin's operator refers the case
from its page while the destination (Bangkok) is down; the destination starts later and
gets it once; its operator, whose dashboard is in Thai, sees "referred from" in Thai,
moves it on and records compensation; the origin's case shows it and the migrant's SMS
is queued in Khmer. A replayed envelope is answered "idempotent" and a
tampered one is refused, by the served inbox.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests import databases
from ussd_app.centres import crypto
from ussd_app.complaints.service import Complaints
from ussd_app.i18n import default_catalogs
from ussd_app.privacy.protect import open_text
from ussd_app.store import open_store

from .conftest import TEST_SECRET, Phone
from .test_complaints import file_report, reference_in
from .test_complaints_crash import free_port

ROOT = Path(__file__).resolve().parent.parent
KHMER_DESCRIPTION = "ពួកគេមិនទាន់បើកប្រាក់ខែខ្ញុំទេ សូមជួយ"  # "They still have not paid me, please help"
RECOVERED = ("MigrantLine: case {reference}: {amount} {currency} was recovered for you. "
             "Call us to know more.")
catalogs = default_catalogs()
BIN = Path(sys.executable).parent / "migrantline"
PASSWORD = "correct horse battery"


class Served:
    """One centre: its settings, its CLI, its `serve` process."""

    def __init__(self, tmp: Path, name: str, country: str, db_url: str | None) -> None:
        self.port = free_port()
        self.data = tmp / country
        self.env = {**os.environ, "MIGRANTLINE_DATA_DIR": str(self.data),
                    "MIGRANTLINE_SECRET_KEY": TEST_SECRET,
                    "MIGRANTLINE_CONTENT_POLL_SECONDS": "0",
                    "MIGRANTLINE_SYNC_INTERVAL_SECONDS": "0", "MIGRANTLINE_DEMO": "on",
                    "MIGRANTLINE_PROMPTS_RENDER": "off",
                    "MIGRANTLINE_BASE_URL": self.url, "MIGRANTLINE_CENTRE_NAME": name,
                    "MIGRANTLINE_CENTRE_COUNTRY": country,
                    "MIGRANTLINE_REFERRAL_INTERVAL_SECONDS": "0.2",
                    "MIGRANTLINE_REFERRAL_BACKOFF_SECONDS": "0.2",
                    "MIGRANTLINE_REFERRAL_MAX_BACKOFF_SECONDS": "1"}
        if db_url:
            self.env["MIGRANTLINE_DATABASE_URL"] = db_url
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cli(self, *args: str, stdin: str = "") -> str:
        done = subprocess.run([str(BIN), *args], cwd=ROOT, env=self.env, input=stdin.encode(),
                              capture_output=True, timeout=60)
        assert done.returncode == 0, done.stderr.decode()
        return done.stdout.decode() + done.stderr.decode()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [str(BIN), "serve", "--port", str(self.port), "--workers", "1"], cwd=ROOT,
            env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        wait_for(lambda: self.health() is not None, "the server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=20)

    def health(self) -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as response:
                return json.loads(response.read())  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())  # type: ignore[no-any-return]
        except OSError:
            return None

    def query(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        store = open_store(self.data, url=self.env.get("MIGRANTLINE_DATABASE_URL"),
                           migrate=False)
        try:
            cursor = store.db().execute(sql, params or [])
            names = [c[0] for c in cursor.description]
            return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
        finally:
            store.close()

    def operator(self) -> requests.Session:
        self.cli("operators", "add", "sup@example.org", "--role", "supervisor",
                 stdin=PASSWORD + "\n")
        session = requests.Session()
        token = csrf(session, f"{self.url}/operator/login")
        session.post(f"{self.url}/operator/login", timeout=10,
                     data={"email": "sup@example.org", "password": PASSWORD,
                           "csrf_token": token}).raise_for_status()
        return session

    def form(self, session: requests.Session, path: str, **fields: Any) -> str:
        response = session.post(f"{self.url}{path}", timeout=10,
                                data={**fields, "csrf_token": csrf(session,
                                                                   f"{self.url}/operator/")})
        response.raise_for_status()
        return response.text


def csrf(session: requests.Session, url: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', session.get(url, timeout=10).text)
    assert found
    return found.group(1)


def wait_for(check: Callable[[], object], what: str, seconds: float = 30) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(what)


class HttpClient:
    """What ``Phone`` needs of a Flask test client, over real HTTP."""

    def __init__(self, base: str) -> None:
        self.base = base

    def post(self, path: str, data: dict[str, str]) -> Any:
        response = requests.post(self.base + path, data=data, timeout=10)

        class Answer:
            status_code = response.status_code
            mimetype = response.headers["Content-Type"].split(";")[0]

            @staticmethod
            def get_data(as_text: bool = True) -> str:
                return response.text
        return Answer()


@pytest.fixture
def centres(tmp_path: Path, database: str | None) -> Iterator[tuple[Served, Served]]:
    other = databases.create() if database else None
    origin = Served(tmp_path, "Phnom Penh MRC", "KH", database)
    dest = Served(tmp_path, "Bangkok MRC", "TH", other)
    yield origin, dest
    for served in (origin, dest):
        served.stop()
    if other:
        databases.drop(other)


def test_two_served_centres_refer_and_report_back(centres: tuple[Served, Served],
                                                  tmp_path: Path) -> None:
    origin, dest = centres
    # Pairing: each exports its card, the other imports it (no shared server).
    origin.cli("partners", "export", str(tmp_path / "kh.json"))
    dest.cli("partners", "export", str(tmp_path / "th.json"))
    assert "added centre" in origin.cli("partners", "import", str(tmp_path / "th.json"))
    assert "added centre" in dest.cli("partners", "import", str(tmp_path / "kh.json"))
    origin.start()  # the destination stays down for now
    phone = Phone(HttpClient(origin.url))  # type: ignore[arg-type]
    reference = reference_in(file_report(phone, lang="km", pin=None, share="yes",
                                         description=KHMER_DESCRIPTION))
    [case] = origin.query("select id, share_consent from complaints where reference = ?",
                          [reference])
    assert case["share_consent"] == "yes"
    op = origin.operator()
    said = origin.form(op, f"/operator/complaints/{case['id']}/centre_refer", centre_id="1",
                       share=["category", "description"])
    assert "Referred to Bangkok MRC" in said

    def waiting() -> dict[str, Any]:
        health = origin.health()
        assert health is not None
        return health["partners"][0]  # type: ignore[no-any-return]
    wait_for(lambda: waiting()["last_error"], "no failed delivery while the partner is down")
    assert waiting()["queued"] == 1 and waiting()["last_delivery"] is None
    dest.start()
    wait_for(lambda: waiting()["queued"] == 0, "not delivered once the partner came back")
    [got] = dest.query("select id, channel, category from complaints")
    assert got["category"] == "unpaid_wages" and got["channel"] == "partner"
    assert len(dest.query("select * from centre_inbox")) == 1
    # The destination works the case; the changes travel back.
    boss = dest.operator()
    dest.form(boss, "/operator/language", lang="th")  # the Bangkok operator reads Thai
    referred = catalogs.gettext("th", "Referred from %(centre)s") % {"centre": "Phnom Penh MRC"}
    assert referred != "Referred from Phnom Penh MRC"  # translated, not the English fallback
    assert referred in boss.get(f"{dest.url}/operator/", timeout=10).text
    case_page = boss.get(f"{dest.url}/operator/complaints/{got['id']}", timeout=10).text
    assert KHMER_DESCRIPTION in case_page  # the migrant's own words, shared as agreed
    dest.form(boss, f"/operator/complaints/{got['id']}/status", status="in_progress")
    dest.form(boss, f"/operator/complaints/{got['id']}/status", status="closed")
    dest.form(boss, f"/operator/complaints/{got['id']}/outcome", outcome="compensation",
              amount="12000", currency="THB")
    wait_for(lambda: len(origin.query("select * from centre_inbox")) == 3,
             "the updates did not come back")
    page = op.get(f"{origin.url}/operator/complaints/{case['id']}", timeout=10).text
    assert "From Bangkok MRC" in page and "12000.00 THB" in page
    complaints = Complaints(open_store(origin.data, url=origin.env.get(
        "MIGRANTLINE_DATABASE_URL"), migrate=False), TEST_SECRET.encode(),
        default_catalogs().gettext)
    try:
        bodies = [open_text(complaints.phone_sealer, r["body"]) for r in origin.query(
            "select body from outbox where key like ? order by id",
            [f"complaint-status:{case['id']}:centre:%"])]
    finally:
        complaints.store.close()
    assert len(bodies) == 3 and "12000.00 THB" in bodies[-1]
    # The caller's Khmer: the status's name, and every fixed word of the recovered message.
    assert catalogs.gettext("km", "In progress") in bodies[0]
    recovered = catalogs.gettext("km", RECOVERED)
    assert recovered != RECOVERED
    assert all(part.strip() in bodies[-1]
               for part in re.split(r"\{[a-z]+\}", recovered) if part.strip()), bodies[-1]
    # The served inbox: a replay stores nothing again, a tampered envelope is refused.
    [sent] = origin.query("select envelope from centre_outbox where kind = 'referral'")
    replay = requests.post(f"{dest.url}/partners/inbox", data=sent["envelope"], timeout=10)
    assert (replay.status_code, replay.json()) == (200, {"ok": True, "idempotent": True})
    tampered = json.loads(sent["envelope"])
    box = bytearray(crypto.unb64(tampered["box"]))
    box[-1] ^= 1
    tampered["box"] = crypto.b64(bytes(box))
    refused = requests.post(f"{dest.url}/partners/inbox", json=tampered, timeout=10)
    assert (refused.status_code, refused.json()["error"]) == (400, "bad_signature")
    assert len(dest.query("select * from complaints")) == 1
    actions = {r["action"] for r in dest.query("select action from audit_log")}
    assert {"centre_import", "centre_referral_received", "centre_inbox_replay",
            "centre_inbox_refused", "centre_update", "centre_delivered"} <= actions
    assert "Bangkok MRC" in origin.cli("partners", "list")
