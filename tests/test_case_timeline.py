"""The case timeline (issue 15, point 3): what a migrant texts from a phone with an open case
goes to that case, sealed, is acknowledged in their language, and shows on the case page in
order with what was sent back. Driven as providers and operators do: the SMS webhooks, the
USSD and SMS filing flows, the dashboard over HTTP."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ussd_app.complaints.model import ATTACHED_SMS, Caller
from ussd_app.complaints.service import show_reference
from ussd_app.engine.bidi import for_display
from ussd_app.engine.encoding import sms_segments
from ussd_app.i18n import default_catalogs
from ussd_app.store.privacy import checkpoint

from . import stored
from .conftest import Phone, make_app
from .dashboard.conftest import add_operator, audit, cheap_hashes, page, sign_in
from .test_complaints import (
    choice,
    complaints_menu,
    file_report,
    menu_key,
    reference_in,
    title,
)
from .test_complaints_sms import TREE, file_by_sms
from .test_sms import Texter, _twilio_signature

t = default_catalogs().gettext
UNPAID = "They still have not paid me, please help"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path)
    cheap_hashes(app)
    add_operator(app, "op@example.org", "operator", "Asha")
    yield app
    app.extensions["migrantline"].store.close()


@pytest.fixture
def op(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert sign_in(client, "op@example.org").status_code == 303
    return client


def case_id(app: Flask, reference: str) -> int:
    row = app.extensions["migrantline"].store.db().execute(
        "select id from complaints where reference = ?", [reference]).fetchone()
    return int(row[0])


def messages(app: Flask) -> list[dict[str, Any]]:
    db = app.extensions["migrantline"].store.db()
    return [dict(r) for r in db.query("select * from complaint_messages order by id")]


def timeline_of(client: FlaskClient, cid: int) -> str:
    """The case page's messages section, as text an operator reads."""
    part = page(client, f"/operator/complaints/{cid}").split('id="outbox"')[1]
    return html.unescape(part.split("</section>")[0])


def acknowledgement(lang: str, reference: str) -> str:
    """As sent: in Arabic, marked to read right (engine.bidi)."""
    return for_display(t(lang, ATTACHED_SMS).format(reference=show_reference(reference)), lang)


@pytest.mark.parametrize("lang", ["en", "ar", "fr", "ne", "lo"])
def test_a_text_from_the_filing_phone_goes_to_its_case(app: Flask, op: FlaskClient,
                                                       lang: str) -> None:
    texter = Texter(app)
    reference, _ = file_by_sms(texter, lang)
    reply = texter.send(UNPAID)
    assert reply == acknowledgement(lang, reference)
    assert lang == "en" or reply != acknowledgement("en", reference)  # translated
    assert sms_segments(reply)[1] == 1
    ack = texter.outbox()[-1]
    assert ack["kind"] == "reply" and ack["lang"] == lang and ack["segments"] == 1
    [message] = messages(app)
    assert message["complaint_id"] == case_id(app, reference) and message["other_open"] == 0
    assert message["body_sealed"] and UNPAID not in message["body_sealed"]
    shown = timeline_of(op, case_id(app, reference))
    # In order: the message, then what was sent back.
    assert UNPAID in shown and reply in shown and shown.index(UNPAID) < shown.index(reply)
    assert "The migrant (SMS)" in shown and "To the migrant (SMS)" in shown
    assert [a["complaint_id"] for a in audit(app, "view")] == [case_id(app, reference)]


def test_keywords_still_work_and_other_text_goes_to_the_case(app: Flask,
                                                              op: FlaskClient) -> None:
    client = app.test_client()
    filer = Phone(client)
    reference = reference_in(file_report(filer))  # filed by USSD
    texter = Texter(app, filer.number)
    assert TREE.text(TREE.nodes[TREE.help].title, "en") in (texter.send("help") or "")
    assert messages(app) == []
    status = texter.send(f"status {show_reference(reference)}") or ""
    assert show_reference(reference) in status and "Received" in status
    assert "no more messages" in (texter.send("STOP") or "")
    assert "on again" in (texter.send("START") or "")
    assert messages(app) == []
    # A keyword followed by more words is words for a person (as an answer to a question is).
    assert texter.send("Help, my boss took my phone") == acknowledgement("en", reference)
    # A retry of the same message by the provider: attached once, acknowledged once.
    before = len(texter.outbox())
    assert texter.send(UNPAID, message_id="ATXid_retry_1") == acknowledgement("en", reference)
    assert texter.send(UNPAID, message_id="ATXid_retry_1") is None
    assert len(texter.outbox()) == before + 1
    assert [m["key"] for m in messages(app)][-1] == "sms:africastalking:ATXid_retry_1"
    assert len(messages(app)) == 2
    shown = timeline_of(op, case_id(app, reference))
    assert shown.count(UNPAID) == 1 and "Help, my boss took my phone" in shown
    # The receipt of the USSD filing comes first, then each message and its reply.
    receipt = shown.index("your reference is")
    assert receipt < shown.index("Help, my boss") < shown.index(UNPAID)


def test_twilio_and_kannel_texts_reach_the_case(tmp_path: Path) -> None:
    app = make_app(tmp_path, TWILIO_AUTH_TOKEN="tw-secret",
                   MIGRANTLINE_BASE_URL="https://ml.example.org")
    try:
        client = app.test_client()
        filer = Phone(client)
        reference = reference_in(file_report(filer))
        params = {"From": filer.number, "To": "+15005550006", "Body": UNPAID,
                  "MessageSid": "SM-case-1", "NumMedia": ""}
        signature = _twilio_signature("tw-secret", "https://ml.example.org/sms/twilio", params)
        for _ in range(2):  # Twilio retries: the same MessageSid is attached once
            assert client.post("/sms/twilio", data=params,
                               headers={"X-Twilio-Signature": signature}).status_code == 200
        assert client.get("/sms/kannel", query_string={
            "from": filer.number, "to": "5555", "text": "Kannel: still no pay",
            "id": "kn-case-1"}).status_code == 200
        assert [(m["provider"], m["complaint_id"]) for m in messages(app)] == \
            [("twilio", case_id(app, reference)), ("kannel", case_id(app, reference))]
        replies = [r for r in app.extensions["migrantline"].store.outbox()
                   if r["key"].startswith("complaint-reply:")]
        assert len(replies) == 2
    finally:
        app.extensions["migrantline"].store.close()


def test_a_withheld_number_reaches_no_case(app: Flask) -> None:
    client = app.test_client()
    withheld = Phone(client, "anonymous")
    reference_in(file_report(withheld, contact="never"))  # a case keyed on its one session
    for number in ("anonymous", "Restricted", "+"):
        assert Texter(app, number).send(UNPAID) is None
    assert messages(app) == []
    assert [r for r in app.extensions["migrantline"].store.outbox()
            if r["key"].startswith("complaint-reply:")] == []


def test_odd_and_oversized_text(app: Flask, op: FlaskClient) -> None:
    texter = Texter(app)
    reference, _ = file_by_sms(texter, "ar")
    odd = "\u200fلم\x00 يدفعوا\u202e لي <script>alert(1)</script>"
    assert texter.send(odd) == acknowledgement("ar", reference)
    assert texter.send("x" * 2000) == acknowledgement("ar", reference)
    shown = timeline_of(op, case_id(app, reference))
    assert "لم يدفعوا لي <script>" in shown and "\x00" not in shown and "\u202e" not in shown
    assert "<script>alert" not in page(op, f"/operator/complaints/{case_id(app, reference)}")
    assert "x" * 1600 in shown and "x" * 1601 not in shown
    assert "(longer than the limit: cut)" in shown
    assert [m["truncated"] for m in messages(app)] == [0, 1]


def test_several_open_cases_the_most_recent_and_no_other_leaks(app: Flask,
                                                               op: FlaskClient) -> None:
    client = app.test_client()
    phone = Phone(client)
    older = reference_in(file_report(phone))
    newer = reference_in(file_report(phone))
    texter = Texter(app, phone.number)
    reply = texter.send(UNPAID) or ""
    assert reply == acknowledgement("en", newer)
    assert show_reference(older) not in reply and older not in reply
    [message] = messages(app)
    assert message["complaint_id"] == case_id(app, newer) and message["other_open"] == 1
    assert "1 other open complaint: the message was added to the most recent one" in \
        timeline_of(op, case_id(app, newer))
    assert UNPAID not in timeline_of(op, case_id(app, older))
    # A resolved or closed case is not open: the next message goes to the older one ...
    services = app.extensions["migrantline"]
    services.complaints.set_status(case_id(app, newer), "resolved", None, "operator:test")
    assert texter.send("Second message") == acknowledgement("en", older)
    services.complaints.set_status(case_id(app, older), "closed", None, "operator:test")
    # ... and with no open case, any other text gets the keyword help, as before.
    assert (texter.send("Third message") or "").startswith("MigrantLine: reply MENU")
    assert len(messages(app)) == 2


@pytest.mark.parametrize("contact", ["never"])
def test_no_acknowledgement_where_contact_is_not_safe(app: Flask, op: FlaskClient,
                                                      contact: str) -> None:
    client = app.test_client()
    phone = Phone(client)
    reference = reference_in(file_report(phone, contact=contact))
    before = len(Texter(app, phone.number).outbox())
    assert Texter(app, phone.number).send(UNPAID) is None  # no reply at all: not even help
    assert len(Texter(app, phone.number).outbox()) == before
    [message] = messages(app)
    assert message["complaint_id"] == case_id(app, reference)
    assert UNPAID in timeline_of(op, case_id(app, reference))


def test_the_acknowledgement_waits_for_the_caller_s_safe_time(app: Flask) -> None:
    """"Only at some times" (Friday 17-21 in Doha): the acknowledgement is queued held
    until the window opens (issue 15), never sent at once."""
    from ussd_app.complaints import safe_window

    phone = Phone(app.test_client())
    reference = reference_in(file_report(phone, contact="times"))
    texter = Texter(app, phone.number)
    before = len(texter.outbox())
    assert texter.send(UNPAID) == acknowledgement("en", reference)  # queued...
    [ack] = texter.outbox()[before:]  # ... and held
    assert ack["body"] == acknowledgement("en", reference)
    window = safe_window.parse(ack["safe_window"])
    assert window is not None and ack["time_zone"] == "Asia/Qatar"
    assert ack["next_attempt_at"] == safe_window.next_start(window, "Asia/Qatar",
                                                            ack["created_at"])
    assert safe_window.inside(window, "Asia/Qatar", ack["next_attempt_at"])


def test_the_acknowledgement_goes_to_the_other_number_given(app: Flask) -> None:
    client = app.test_client()
    phone = Phone(client)
    reference = reference_in(file_report(phone, contact="other"))
    assert Texter(app, phone.number).send(UNPAID) is None  # not to this phone
    other = Texter(app, "+9779812345678")  # file_report's "another number"
    assert other.outbox()[-1]["body"] == acknowledgement("en", reference)


def test_only_signed_in_operators_read_it(app: Flask) -> None:
    texter = Texter(app)
    reference, _ = file_by_sms(texter, "en")
    texter.send(UNPAID)
    anonymous = app.test_client().get(f"/operator/complaints/{case_id(app, reference)}")
    assert anonymous.status_code in (302, 303) and UNPAID not in anonymous.get_data(as_text=True)


def test_erasing_the_case_erases_its_messages(app: Flask, op: FlaskClient) -> None:
    client = app.test_client()
    phone = Phone(client)
    reference = reference_in(file_report(phone))
    secret = "Sentinel-timeline: the foreman keeps my passport"
    texter = Texter(app, phone.number)
    assert texter.send(secret) == acknowledgement("en", reference)
    complaints_menu(phone, "en")  # "delete my data", from the filing phone
    phone.press(menu_key("complaints", "erase_ref"))
    assert title("erase_confirm", "en") in phone.press(reference)
    assert "deleted" in phone.press(choice("erase_confirm", "yes"))
    [message] = messages(app)
    assert message["body_sealed"] is None and message["phone_key"] is None
    assert message["erased_at"]
    acks = [r for r in app.extensions["migrantline"].store.outbox()
            if r["key"].startswith("complaint-reply:")]
    assert acks and all(r["body"] == "" and r["erased_at"] for r in acks)
    shown = timeline_of(op, case_id(app, reference))
    assert secret not in shown and "Erased" in shown
    store = app.extensions["migrantline"].store
    assert checkpoint(store)
    raw = stored.at_rest(store.path.parent, store.db().conn)
    assert secret.encode() not in raw
    # The phone's data is erased: its texts go to no case now (the keyword help answers).
    assert (texter.send("Another message") or "").startswith("MigrantLine: reply MENU")
    assert len(messages(app)) == 1


def test_erasing_the_phones_data_erases_every_message_it_sent(app: Flask) -> None:
    texter = Texter(app)
    reference, _ = file_by_sms(texter, "fr")
    texter.send(UNPAID)
    services = app.extensions["migrantline"]
    caller = Caller("sms", texter.number, services.ussd.hasher.key(texter.number))
    assert services.complaints.erase_for_phone(caller) == 1
    [message] = messages(app)
    assert message["body_sealed"] is None and message["erased_at"]
    assert re.fullmatch(r"\d{8}", reference)
