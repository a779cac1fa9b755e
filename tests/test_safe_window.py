"""Safe contact times (issue 15): a window of days and hours on the caller's clock.

Asked as two choices on USSD; every SMS of the case (the receipt too) is queued
with ``next_attempt_at`` at the window's next opening, and the outbox worker,
against a Kannel stand-in, checks the window again just before sending: a message
that became due after the window closed, or across a clock change, is held again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sms_flows.outbox import OutboxWorker
from ussd_app.complaints import safe_window
from ussd_app.providers.kannel import KannelSms
from ussd_app.store import complaints as complaints_db

from .conftest import Phone
from .test_complaints import file_report, opened_outbox, rows
from .test_outbox_once import Kannel

DOHA = ZoneInfo("Asia/Qatar")
FRI_EVENING = safe_window.parse("days=fri;hours=17-21")


def at(zone: str | ZoneInfo, *when: int) -> float:
    tz = ZoneInfo(zone) if isinstance(zone, str) else zone
    return datetime(*when, tzinfo=tz).timestamp()  # type: ignore[misc]


@pytest.fixture
def kannel() -> Iterator[Kannel]:
    server = Kannel()
    yield server
    server.close()


def worker(app: Flask, kannel: Kannel) -> OutboxWorker:
    services = app.extensions["migrantline"]
    provider = KannelSms(kannel.url, "ml", "pw", "5555", "https://ml.example.org/sms/dlr")
    return OutboxWorker(services.store, provider, services.ussd.sealer, services.ussd.hasher,
                        threads=1)


def test_windows_parse_and_open_on_the_caller_s_clock() -> None:
    assert FRI_EVENING is not None and str(FRI_EVENING) == "days=fri;hours=17-21"
    assert safe_window.parse("Friday after 6pm") is None and safe_window.parse(None) is None
    assert safe_window.from_answers("sun_thu", "h8_12") == safe_window.Window("sun-thu", "8-12")
    thursday = at(DOHA, 2026, 12, 3, 16, 18)  # the case: Thursday 16:18 in Doha
    assert safe_window.next_start(FRI_EVENING, "Asia/Qatar", thursday) == \
        at(DOHA, 2026, 12, 4, 17)
    inside = at(DOHA, 2026, 12, 4, 20, 59)
    assert safe_window.next_start(FRI_EVENING, "Asia/Qatar", inside) == inside
    closed = at(DOHA, 2026, 12, 4, 21, 0)
    assert safe_window.next_start(FRI_EVENING, "Asia/Qatar", closed) == \
        at(DOHA, 2026, 12, 11, 17)


def test_zones_come_from_where_the_caller_is() -> None:
    assert safe_window.zone_for("QA", "NP") == "Asia/Qatar"
    assert safe_window.zone_for("other", "US") == "America/New_York"  # the first listed
    assert safe_window.zone_for(None, "") == "UTC"


@pytest.mark.parametrize(("zone", "before", "opens_utc"), [
    # Europe springs forward on 29 March 2026: Sunday 08:00 is 06:00 UTC, not 07:00.
    ("Europe/Paris", (2026, 3, 28, 13, 0), (2026, 3, 29, 6, 0)),
    # New York falls back on 1 November 2026: Sunday 08:00 is 13:00 UTC, not 12:00.
    ("America/New_York", (2026, 10, 31, 13, 0), (2026, 11, 1, 13, 0)),
])
def test_a_clock_change_moves_the_opening_with_the_local_clock(
        zone: str, before: tuple[int, ...], opens_utc: tuple[int, ...]) -> None:
    window = safe_window.parse("days=sat-sun;hours=8-12")
    assert window is not None
    opens = safe_window.next_start(window, zone, at(zone, *before))
    assert opens == at("UTC", *opens_utc)
    assert safe_window.local_time(opens, zone).hour == 8
    assert not safe_window.inside(window, zone, opens - 60)


def test_the_receipt_waits_for_friday_evening_in_doha(app: Flask, client: FlaskClient) -> None:
    """The issue: "Friday after 6pm" got its receipt at once, Thursday 16:18 in Doha."""
    thursday = at(DOHA, 2026, 12, 3, 16, 18)
    app.extensions["migrantline"].complaints.clock = lambda: thursday
    last = file_report(Phone(client), contact="times")
    assert "We will send it to you by SMS at the times you chose." in last
    [case] = rows(app)
    assert (case["contact_window"], case["time_zone"]) == ("days=fri;hours=17-21",
                                                           "Asia/Qatar")
    [receipt] = app.extensions["migrantline"].store.outbox()
    assert receipt["next_attempt_at"] == at(DOHA, 2026, 12, 4, 17)
    assert (receipt["safe_window"], receipt["time_zone"]) == ("days=fri;hours=17-21",
                                                              "Asia/Qatar")
    assert "reference" in opened_outbox(app)[0][1]


def test_status_sms_are_held_too_and_old_free_text_cases_get_none(app: Flask,
                                                                  client: FlaskClient) -> None:
    complaints = app.extensions["migrantline"].complaints
    thursday = at(DOHA, 2026, 12, 3, 16, 18)
    complaints.clock = lambda: thursday
    file_report(Phone(client), contact="times")
    [case] = rows(app)
    complaints.set_status(case["id"], "in_progress", None, "operator")
    status = app.extensions["migrantline"].store.outbox_by_key_prefix("complaint-status:")
    assert [m["next_attempt_at"] for m in status] == [at(DOHA, 2026, 12, 4, 17)]
    # A case filed before the window existed (free text only): no automatic SMS, as before.
    complaints_db.update(complaints.store, case["id"], {"contact_window": None})
    complaints.set_status(case["id"], "referred", None, "operator")
    assert len(app.extensions["migrantline"].store.outbox_by_key_prefix(
        "complaint-status:")) == 1


def test_the_worker_sends_inside_the_window_and_holds_what_came_due_late(
        app: Flask, client: FlaskClient, kannel: Kannel) -> None:
    complaints = app.extensions["migrantline"].complaints
    store = app.extensions["migrantline"].store
    complaints.clock = lambda: at(DOHA, 2026, 12, 3, 16, 18)
    file_report(Phone(client), contact="times")
    sender = worker(app, kannel)
    assert sender.run_once(at(DOHA, 2026, 12, 3, 16, 19)) == {}  # not due yet
    # The worker was down all Friday evening: due, but the window has closed.
    assert sender.run_once(at(DOHA, 2026, 12, 4, 21, 30)) == {"held": 1}
    [held] = store.outbox()
    assert (held["status"], held["attempts"]) == ("queued", 0)
    assert held["next_attempt_at"] == at(DOHA, 2026, 12, 11, 17)
    assert kannel.received == []
    assert sender.run_once(at(DOHA, 2026, 12, 11, 17, 1)) == {"sent": 1}
    assert len(kannel.received) == 1 and store.outbox()[0]["status"] == "sent"


def test_a_message_due_in_the_hour_a_clock_change_moved_is_held(
        app: Flask, kannel: Kannel) -> None:
    """Due at 12:00 UTC on the Sunday New York falls back: 07:00 local, before the window
    (08:00 local is 13:00 UTC that day). The worker holds it to the real opening."""
    from ussd_app import store as db
    from ussd_app.store import OutboxItem

    services = app.extensions["migrantline"]
    sealer = services.ussd.sealer
    item = OutboxItem("test-dst", sealer.seal("+12125550123"), "en", sealer.seal("hello"),
                      "GSM-7", 1, safe_window="days=sat-sun;hours=8-12",
                      time_zone="America/New_York", send_at=at("UTC", 2026, 11, 1, 12, 0))
    db.enqueue(services.store, item, now=at("UTC", 2026, 10, 31, 20, 0))
    assert services.store.outbox()[0]["next_attempt_at"] == at("UTC", 2026, 11, 1, 12, 0)
    sender = worker(app, kannel)
    assert sender.run_once(at("UTC", 2026, 11, 1, 12, 5)) == {"held": 1}
    assert services.store.outbox()[0]["next_attempt_at"] == at("UTC", 2026, 11, 1, 13, 0)
    assert kannel.received == []
