"""Callers with no usable number (issue 12, point 5).

'anonymous', 'Restricted', '+', 'Unknown' all have no digits: keyed on the
number, they were one caller, and one read another's draft and case. Now each
session (USSD), message (SMS) or call (voice) of such a caller is a caller of
its own: the menus and filing work, nothing is resumed or remembered, and a
case is only followed or erased by its reference and PIN.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.voice_phone import VoiceCaller

from .conftest import Phone, make_app
from .test_complaints import (
    choice,
    complaints_menu,
    file_report,
    menu_key,
    reference_in,
    start_report,
    title,
)
from .test_sms import Texter

WITHHELD = ["anonymous", "Restricted", "+", "Unknown", "private", "withheld", ""]


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    # Resume offered for menu walks too: nothing below may come back from another caller.
    app = make_app(tmp_path, MIGRANTLINE_RESUME_MINUTES="30")
    yield app
    app.extensions["migrantline"].store.close()


def draft(phone: Phone) -> str:
    """Half a report: who, what, against whom and the employer's name."""
    start_report(phone, "en")
    for key in (choice("report_danger", "no"), choice("report_who", "self"),
                choice("report_category", "fees"), choice("report_against", "employer")):
        phone.press(key)
    return phone.press("Blue Sky Trading")


def test_two_withheld_callers_never_see_each_others_draft(app: Flask,
                                                         client: FlaskClient) -> None:
    first = Phone(client, "anonymous")
    draft(first)
    app.extensions["migrantline"].store.flush()
    for number in WITHHELD:
        other = Phone(client, number)
        screen = other.dial()
        assert "Continue where you stopped?" not in screen, number
        assert "English" in screen, number  # no language remembered either
    # The same withheld caller dialling again is no one we can recognise: no resume.
    assert "Continue where you stopped?" not in first.dial()
    # A caller with a number still gets theirs.
    known = Phone(client)
    draft(known)
    app.extensions["migrantline"].store.flush()
    assert "Continue where you stopped?" in known.dial()


def test_a_withheld_caller_files_and_follows_only_with_reference_and_pin(
        app: Flask, client: FlaskClient) -> None:
    services = app.extensions["migrantline"]
    filer = Phone(client, "anonymous")
    done = file_report(filer, pin="4826")
    reference = reference_in(done)
    assert "We will not send you any SMS." in done  # nobody to send it to
    row = services.store.db().execute(
        "select phone_sealed, contact from complaints").fetchone()
    assert row[0] is None and row[1] == "any"
    assert services.store.outbox() == []  # no receipt SMS
    # Another withheld caller: asked for the PIN, refused without the right one.
    other = Phone(client, "Restricted")
    complaints_menu(other, "en")
    other.press(menu_key("complaints", "status_ref"))
    assert title("status_pin", "en") in other.press(reference)
    assert "wrong PIN" in other.press("1111")
    # The same "anonymous" label, in a new session: the PIN too, never "the filing phone".
    again = Phone(client, "anonymous")
    complaints_menu(again, "en")
    again.press(menu_key("complaints", "status_ref"))
    assert title("status_pin", "en") in again.press(reference)
    assert "Received" in again.press("4826")
    # Deleting it needs the PIN as well.
    eraser = Phone(client, "+")
    complaints_menu(eraser, "en")
    eraser.press(menu_key("complaints", "erase_ref"))
    assert title("erase_pin", "en") in eraser.press(reference)
    assert title("erase_confirm", "en") in eraser.press("4826")
    assert "deleted" in eraser.press(choice("erase_confirm", "yes"))
    assert services.store.db().execute(
        "select erased_at is not null from complaints").fetchone()[0] == 1


def test_a_status_question_from_a_withheld_caller_needs_the_pin_in_the_filing_session(
        app: Flask, client: FlaskClient) -> None:
    filer = Phone(client, "anonymous")
    reference = reference_in(file_report(filer, pin="4826"))
    # A case filed by a number-less caller is never shown for "the phone": not even to
    # a later hop that says the same nothing.
    follower = Phone(client, "anonymous")
    complaints_menu(follower, "en")
    follower.press(menu_key("complaints", "status_ref"))
    assert title("status_pin", "en") in follower.press(reference)


def test_withheld_sms_get_no_conversation_and_no_reply_queued(app: Flask) -> None:
    services = app.extensions["migrantline"]
    for number in ("anonymous", "Restricted"):
        texter = Texter(app)
        texter.number = number
        texter.send("")
        texter.send("1")
    db = services.store.db()
    assert db.execute("select count(*) from sms_conversations").fetchone()[0] == 0
    assert db.execute("select count(*) from outbox").fetchone()[0] == 0
    assert db.execute("select count(*) from phones").fetchone()[0] == 0


def test_withheld_voice_callers_share_nothing_and_get_no_call_back(app: Flask) -> None:
    services = app.extensions["migrantline"]
    first = VoiceCaller(app.test_client(), number="anonymous")
    first.dial()
    first.press("2")  # a language: remembered for a number, not for nobody
    first.hang_up(duration=40)
    services.store.flush()
    second = VoiceCaller(app.test_client(), number="anonymous")
    heard = second.dial()
    assert heard.kind == "gather"
    assert services.store.db().execute("select count(*) from phones").fetchone()[0] == 0
    keys = [r[0] for r in services.store.db().execute("select phone_key from voice_calls")]
    assert len(set(keys)) == 2  # two callers, not one
    second.hang_up(duration=3)  # a "missed call" with no number: nobody to call back
    assert services.store.db().execute("select count(*) from callbacks").fetchone()[0] == 0
