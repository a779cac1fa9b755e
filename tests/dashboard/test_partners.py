"""Partners for real (#15 point 5): a partner's users see only the cases referred to them
and only the shared fields; a referral tells the partner by a signed webhook or e-mail,
retried with backoff and shown on the case; the case shows when the partner opened it.

The partner's webhook is a real HTTP server on 127.0.0.1 that checks the signature as a
partner would; the mail server is a minimal real SMTP server on a loopback port."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socketserver
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ussd_app.store import operators as operators_db

from ..conftest import make_app
from .conftest import (
    PASSWORD,
    add_operator,
    audit,
    cheap_hashes,
    csrf,
    file_complaint,
    page,
    post,
)

SECRET_SHOWN = re.compile(r"shown this once: give it to the partner\. ([A-Za-z0-9_-]+)")


class Receiver(ThreadingHTTPServer):
    """The partner's webhook: answers ``status`` (or hangs), keeps what it verified."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.status, self.hang, self.secret = 200, 0.0, ""
        self.received: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hooks/migrantline"


class _Handler(BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        timestamp = self.headers["X-MigrantLine-Timestamp"]
        expected = "sha256=" + hmac.new(self.server.secret.encode(),
                                        timestamp.encode() + b"." + body,
                                        hashlib.sha256).hexdigest()
        fresh = abs(time.time() - int(timestamp)) < 300
        self.server.received.append({
            "valid": hmac.compare_digest(expected, self.headers["X-MigrantLine-Signature"])
            and fresh, "json": json.loads(body)})
        if self.server.hang:
            time.sleep(self.server.hang)
        self.send_response(self.server.status)
        self.end_headers()
        self.wfile.write(b"x" * 100_000)  # more than the sender reads

    def log_message(self, *args: Any) -> None:
        pass


class Smtp(socketserver.ThreadingTCPServer):
    """Just enough SMTP to take a message (no STARTTLS: MIGRANTLINE_SMTP_STARTTLS=off)."""

    daemon_threads = allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages: list[str] = []


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: Smtp

    def handle(self) -> None:
        self.wfile.write(b"220 test\r\n")
        while line := self.rfile.readline():
            verb = line.decode().strip().upper()
            if verb.startswith(("EHLO", "HELO")):
                self.wfile.write(b"250 test\r\n")
            elif verb == "DATA":
                self.wfile.write(b"354 go\r\n")
                data = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(chunk.decode())
                self.server.messages.append("".join(data))
                self.wfile.write(b"250 ok\r\n")
            elif verb == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 ok\r\n")


def serve(server: socketserver.BaseServer) -> None:
    threading.Thread(target=server.serve_forever, daemon=True).start()


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    server = Smtp()
    serve(server)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    serve(server)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def app(tmp_path: Path, smtp: Smtp) -> Iterator[Flask]:
    app = make_app(tmp_path, MIGRANTLINE_BACKGROUND="off",  # the tests run the job
                   MIGRANTLINE_SMTP_HOST="127.0.0.1", MIGRANTLINE_SMTP_PORT=str(
                       smtp.server_address[1]), MIGRANTLINE_SMTP_STARTTLS="off",
                   MIGRANTLINE_PARTNER_NOTIFY_TIMEOUT_SECONDS="0.5",
                   MIGRANTLINE_PARTNER_NOTIFY_MAX_ATTEMPTS="3",
                   MIGRANTLINE_PARTNER_NOTIFY_BACKOFF_SECONDS="0")
    cheap_hashes(app)
    add_operator(app, "op@example.org", "operator", "Asha")
    add_operator(app, "boss@example.org", "supervisor")
    yield app
    app.extensions["migrantline"].store.close()


def partner(app: Flask, name: str, email: str) -> int:
    partner_id = operators_db.add_partner(app.extensions["migrantline"].store, name, "NP",
                                          "", time.time())
    app.extensions["dashboard"].accounts.add(email, "partner", PASSWORD, name,
                                             partner_id=partner_id)
    return partner_id


def client(app: Flask, email: str) -> FlaskClient:
    from .conftest import sign_in

    c = app.test_client()
    assert sign_in(c, email).status_code == 303
    return c


def refer(op: FlaskClient, cid: int, partner_id: int, *share: str) -> None:
    data: dict[str, Any] = {"partner_id": str(partner_id)}
    if share:
        data["share"] = list(share)
    assert post(op, f"/operator/complaints/{cid}/refer", **data).status_code == 303


def ppost(c: FlaskClient, path: str, **form: Any) -> Any:
    """A form sent by a partner's user (their pages hold the CSRF token too)."""
    return c.post(path, data={**form, "csrf_token": csrf(c, "/operator/referred/")})


def run_job(app: Flask) -> dict[str, int]:
    return app.extensions["migrantline"].partners.run()


def test_a_partner_sees_only_its_referred_cases_and_shared_fields(app: Flask) -> None:
    aid = partner(app, "Pourakhi", "staff@pourakhi.example")
    other = partner(app, "Other NGO", "staff@other.example")
    op, p = client(app, "op@example.org"), client(app, "staff@pourakhi.example")
    theirs = file_complaint(app, description="Passport taken by the broker")
    not_theirs = file_complaint(app, description="Secret of another case")
    elsewhere = file_complaint(app)
    refer(op, theirs["id"], aid)  # the default share: category, country, contact
    refer(op, elsewhere["id"], other, "description", "phone")

    queue = page(p, "/operator/referred/")
    assert theirs["reference"][:4] in queue and elsewhere["reference"][:4] not in queue
    assert p.get("/operator/").status_code == 302  # the staff queue sends them to theirs
    case = page(p, f"/operator/referred/{theirs['id']}")
    assert "Unpaid wages" in case or "unpaid" in case.lower()
    assert "Passport taken" not in case and "9812345678" not in case and "Show number" \
        not in case
    for cid in (not_theirs["id"], elsewhere["id"], 999999):  # guessed ids: no such page
        assert p.get(f"/operator/referred/{cid}").status_code == 404
        assert p.get(f"/operator/complaints/{cid}").status_code == 404
    assert p.get(f"/operator/complaints/{theirs['id']}").status_code == 404
    for staff_page in ("/operator/stats", "/operator/audit", "/operator/partners",
                       "/operator/export.csv", "/operator/alerts"):
        assert p.get(staff_page).status_code == 404, staff_page
    assert ppost(p, f"/operator/referred/{theirs['id']}/reveal").status_code == 404
    assert ppost(p, f"/operator/complaints/{theirs['id']}/note", note="x").status_code == 404
    views = [r for r in audit(app, "partner_view") if r["complaint_id"] == theirs["id"]]
    assert views and views[0]["operator_id"] is not None

    # The hotline's page says when the partner opened it, and what was shared.
    assert op.get(f"/operator/referred/{theirs['id']}").status_code == 404  # staff: own pages
    detail = page(op, f"/operator/complaints/{theirs['id']}")
    assert "Opened by Pourakhi at" in detail and "Referred to Pourakhi" in detail


def test_shared_phone_is_masked_until_shown_and_audited(app: Flask) -> None:
    aid = partner(app, "Pourakhi", "staff@pourakhi.example")
    op, p = client(app, "op@example.org"), client(app, "staff@pourakhi.example")
    case = file_complaint(app, description="Passport taken by the broker")
    refer(op, case["id"], aid, "description", "phone")
    shown = page(p, f"/operator/referred/{case['id']}")
    assert "Passport taken" in shown and "Show number" in shown and "+9779812345678" \
        not in shown
    revealed = ppost(p, f"/operator/referred/{case['id']}/reveal").get_data(as_text=True)
    assert "+9779812345678" in revealed
    assert audit(app, "partner_reveal_phone")[0]["complaint_id"] == case["id"]


def test_webhook_signed_retried_then_failed_shown_on_the_case(
        app: Flask, receiver: Receiver) -> None:
    aid = partner(app, "Pourakhi", "staff@pourakhi.example")
    boss, op = client(app, "boss@example.org"), client(app, "op@example.org")
    saved = post(boss, f"/operator/partners/{aid}/notify", webhook_url=receiver.url)
    found = SECRET_SHOWN.search(page(boss, saved.location))
    assert found
    receiver.secret = found.group(1)
    case = file_complaint(app)
    refer(op, case["id"], aid)
    receiver.status = 500
    assert run_job(app) == {"sent": 0, "retry": 1, "failed": 0}
    assert "1 attempt" in page(op, f"/operator/complaints/{case['id']}")
    receiver.status, receiver.hang = 200, 2.0  # hangs past the 0.5 s timeout
    assert run_job(app) == {"sent": 0, "retry": 1, "failed": 0}
    receiver.hang = 0
    assert run_job(app) == {"sent": 1, "retry": 0, "failed": 0}
    assert [r["valid"] for r in receiver.received] == [True, True, True]
    body = receiver.received[-1]["json"]
    assert body["event"] == "referral" and body["reference"] == case["reference"]
    assert body["case_url"].endswith(f"/operator/referred/{case['id']}")
    assert set(body) == {"event", "reference", "case_url", "at"}  # no personal data
    assert "Delivered" in page(op, f"/operator/complaints/{case['id']}")

    second = file_complaint(app)
    refer(op, second["id"], aid)
    receiver.status = 500
    for _ in range(3):
        run_job(app)
    detail = page(op, f"/operator/complaints/{second['id']}")
    assert "Failed: tell the partner yourself" in detail and "answered 500" in detail
    assert run_job(app) == {"sent": 0, "retry": 0, "failed": 0}  # not tried again


def test_email_notification_holds_no_personal_data(app: Flask, smtp: Smtp) -> None:
    aid = partner(app, "Pourakhi", "staff@pourakhi.example")
    boss, op = client(app, "boss@example.org"), client(app, "op@example.org")
    post(boss, f"/operator/partners/{aid}/notify", notify_email="cases@pourakhi.example")
    case = file_complaint(app, description="Passport taken by the broker")
    refer(op, case["id"], aid, "description", "phone")
    assert run_job(app)["sent"] == 1
    mail = smtp.messages[0]
    assert "To: cases@pourakhi.example" in mail
    assert f"{case['reference'][:4]} {case['reference'][4:]}" in mail
    assert "Passport" not in mail and "9812345678" not in mail


def test_without_smtp_the_admin_page_says_so(tmp_path: Path) -> None:
    app = make_app(tmp_path, MIGRANTLINE_BACKGROUND="off")
    cheap_hashes(app)
    add_operator(app, "boss@example.org", "supervisor")
    text = page(client(app, "boss@example.org"), "/operator/partners")
    assert "E-mail notifications are not possible" in text
    app.extensions["migrantline"].store.close()


def test_webhook_must_be_https(app: Flask) -> None:
    aid = partner(app, "Pourakhi", "staff@pourakhi.example")
    boss = client(app, "boss@example.org")
    saved = post(boss, f"/operator/partners/{aid}/notify",
                 webhook_url="http://partner.example/hook")
    assert "must be an https" in page(boss, saved.location)
