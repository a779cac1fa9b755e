"""Urgent cases reach a person in minutes: the alert strip every dashboard page frames
(shown within seconds, a sound once), acknowledgement, the on-call SMS and escalation."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ussd_app import jobs, settings
from ussd_app.complaints.alerts import UrgentAlerts
from ussd_app.privacy.protect import open_text

from ..conftest import Phone, make_app
from .conftest import add_operator, audit, cheap_hashes, file_complaint, page, post, sign_in

ON_CALL = ("+9779800000011", "+9779800000012")


def shown(reference: str) -> str:
    return f"{reference[:4]} {reference[4:]}"


def test_the_strip_shows_a_new_urgent_case_and_rings_once(app: Flask, op: FlaskClient) -> None:
    assert "No urgent case is waiting" in page(op, "/operator/alerts")
    urgent = file_complaint(app, urgent=True, contact="unknown")
    file_complaint(app)  # not urgent: not in the strip
    response = op.get("/operator/alerts")
    strip = response.get_data(as_text=True)
    assert shown(urgent["reference"]) in strip and 'class="alert-urgent" role="alert"' in strip
    assert "1 urgent case is waiting" in strip and '<audio class="alert-sound"' in strip
    assert '<meta http-equiv="refresh" content="3">' in strip
    assert f'target="_top" class="urgent-case" href="/operator/complaints/{urgent["id"]}"' \
        in strip
    # Framed by the dashboard's own pages only; everything else is never framed.
    assert "frame-ancestors 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"
    queue = op.get("/operator/")
    assert '<iframe class="alert-strip" src="/operator/alerts"' in queue.get_data(as_text=True)
    assert "frame-ancestors 'none'" in queue.headers["Content-Security-Policy"]
    assert "<script" not in strip and "<script" not in queue.get_data(as_text=True)
    again = page(op, "/operator/alerts")  # still shown, but the sound played once
    assert shown(urgent["reference"]) in again and "<audio" not in again
    second = file_complaint(app, urgent=True, contact="unknown")
    rings = page(op, "/operator/alerts")  # a new one rings again
    assert "2 urgent cases are waiting" in rings and "<audio" in rings
    assert rings.index(shown(urgent["reference"])) < rings.index(shown(second["reference"]))


def test_acknowledging_stops_the_alert(app: Flask, op: FlaskClient) -> None:
    urgent = file_complaint(app, urgent=True, contact="unknown")
    detail = page(op, f"/operator/complaints/{urgent['id']}")
    assert "Acknowledge this urgent case" in detail
    response = post(op, f"/operator/complaints/{urgent['id']}/acknowledge")
    assert response.status_code == 303
    detail = page(op, response.location)
    assert "Acknowledged: the alert stops" in detail
    assert "Urgent case acknowledged by" in detail and "Acknowledge this urgent case" not in detail
    assert "No urgent case is waiting" in page(op, "/operator/alerts")
    [row] = audit(app, "acknowledge")
    assert row["complaint_id"] == urgent["id"]
    again = post(op, f"/operator/complaints/{urgent['id']}/acknowledge")
    assert "already acknowledged" in page(op, again.location)
    assert len(audit(app, "acknowledge")) == 1
    plain = file_complaint(app)
    refused = post(op, f"/operator/complaints/{plain['id']}/acknowledge")
    assert "Only an urgent case" in page(op, refused.location)


def test_the_strip_signed_out_says_so_and_keeps_no_session_alive(app: Flask) -> None:
    file_complaint(app, urgent=True)
    stranger = app.test_client()
    strip = page(stranger, "/operator/alerts")
    assert "Signed out" in strip and "alert-urgent" not in strip and "refresh" not in strip
    op = app.test_client()
    assert sign_in(op, "op@example.org").status_code == 303
    long_ago = time.time() - 25 * 60
    with op.session_transaction("/operator/") as session:
        session["seen"] = long_ago
    page(op, "/operator/alerts")  # refreshed by itself: not the operator's activity
    with op.session_transaction("/operator/") as session:
        assert session["seen"] == long_ago


@pytest.fixture
def on_call(tmp_path: Path) -> Flask:
    app = make_app(tmp_path, MIGRANTLINE_URGENT_ALERT_NUMBERS=",".join(ON_CALL),
                   MIGRANTLINE_URGENT_ESCALATE_NUMBERS="+9779800000099",
                   MIGRANTLINE_URGENT_ESCALATE_MINUTES="10")
    cheap_hashes(app)
    add_operator(app, "op@example.org", "operator", "Asha")
    return app


def sent(app: Flask) -> list[tuple[str, str, str]]:
    services = app.extensions["migrantline"]
    sealer = services.complaints.phone_sealer
    return [(m["key"].split(":")[0], sealer.open(m["to_sealed"]), open_text(sealer, m["body"]))
            for m in services.store.outbox() if m["key"].startswith("urgent-")]


def test_on_call_phones_are_texted_the_reference_only_and_unacknowledged_cases_escalate(
        on_call: Flask) -> None:
    phone = Phone(on_call.test_client(), number="+97455123456")
    phone.dial()
    phone.press("1", "7", "1", "1", "1")  # English, report, agree, yes: in danger now
    reference = on_call.extensions["migrantline"].store.db().execute(
        "select reference from complaints").fetchone()[0]
    [beat] = [h for h in jobs.heartbeats(str(on_call.config["MIGRANTLINE_DATA_DIR"]))
              if h.name == "urgent-alerts"]
    beat.run_now()
    texts = sent(on_call)
    body = f"MigrantLine: urgent case {shown(reference)}. Open the dashboard now."
    assert sorted(texts) == [("urgent-alerted", n, body) for n in ON_CALL]
    assert "+97455123456" not in str(texts) and "Qatar" not in str(texts)
    beat.run_now()  # again (another node, a retry): nothing twice
    assert len(sent(on_call)) == 2
    services = on_call.extensions["migrantline"]
    config = settings.of(services.config)
    alerts = UrgentAlerts(services.complaints, config.urgent_alert_numbers,
                          config.urgent_escalate_numbers, config.urgent_escalate_minutes, "en")
    assert alerts.run(time.time() + 9 * 60) == {"alerted": 0, "escalated": 0}
    assert alerts.run(time.time() + 11 * 60) == {"alerted": 0, "escalated": 1}
    [escalated] = [t for t in sent(on_call) if t[0] == "urgent-escalated"]
    assert escalated[1] == "+9779800000099" and "not acknowledged after 10 min" in escalated[2]
    assert alerts.run(time.time() + 20 * 60)["escalated"] == 0  # once
    # An acknowledged case is not escalated.
    acked = file_complaint(on_call, urgent=True)
    client = on_call.test_client()
    sign_in(client, "op@example.org")
    post(client, f"/operator/complaints/{acked['id']}/acknowledge")
    assert alerts.run(time.time() + 11 * 60) == {"alerted": 1, "escalated": 0}
    history = page(client, f"/operator/complaints/{acked['id']}")
    assert "On-call phones texted" in history and "Urgent case acknowledged" in history


@pytest.mark.parametrize("value", ["9779800000011", "+97798", "+9779800000011,x",
                                   ",".join(["+9779800000011"] * 21)])
def test_a_bad_on_call_number_is_refused_at_start(value: str) -> None:
    with pytest.raises(settings.SettingError, match="MIGRANTLINE_URGENT_ALERT_NUMBERS"):
        settings.load(environ={}, overrides={"MIGRANTLINE_URGENT_ALERT_NUMBERS": value})


def test_supervisors_are_emailed_the_reference_only(tmp_path: Path) -> None:
    from .test_partners import Smtp, serve

    server = Smtp()
    serve(server)
    try:
        app = make_app(tmp_path, MIGRANTLINE_SMTP_HOST="127.0.0.1",
                       MIGRANTLINE_SMTP_PORT=str(server.server_address[1]),
                       MIGRANTLINE_SMTP_STARTTLS="off",
                       MIGRANTLINE_URGENT_ALERT_EMAILS="duty@example.org, boss@example.org")
        urgent = file_complaint(app, urgent=True, description="They took my passport")
        [beat] = [h for h in jobs.heartbeats(str(app.config["MIGRANTLINE_DATA_DIR"]))
                  if h.name == "urgent-alerts"]
        beat.run_now()
        assert len(server.messages) == 2
        mail = server.messages[0]
        assert f"Subject: Urgent case {shown(urgent['reference'])}" in mail
        assert "passport" not in mail and "9812345678" not in mail
        assert {line.split(": ", 1)[1] for m in server.messages for line in m.splitlines()
                if line.startswith("To: ")} == {"duty@example.org", "boss@example.org"}
    finally:
        server.shutdown()
        server.server_close()


def test_a_bad_alert_address_is_refused_at_start() -> None:
    with pytest.raises(settings.SettingError, match="MIGRANTLINE_URGENT_ALERT_EMAILS"):
        settings.load(environ={}, overrides={"MIGRANTLINE_URGENT_ALERT_EMAILS": "duty@, x"})
