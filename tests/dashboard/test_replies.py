"""Free-text replies (issue 15): template as a start, preview, send, held until safe."""

from __future__ import annotations

import html as markup
import re
from datetime import datetime
from zoneinfo import ZoneInfo

from flask import Flask
from flask.testing import FlaskClient

from ussd_app.complaints.service import Caller
from ussd_app.privacy.protect import open_text

from .conftest import audit, file_complaint, page, post

THURSDAY = datetime(2026, 12, 3, 16, 18, tzinfo=ZoneInfo("Asia/Qatar")).timestamp()
FRIDAY_17 = datetime(2026, 12, 4, 17, tzinfo=ZoneInfo("Asia/Qatar")).timestamp()


def replies(app: Flask) -> list[dict]:
    services = app.extensions["migrantline"]
    return [{**r, "body": open_text(services.complaints.phone_sealer, r["body"])}
            for r in services.store.outbox() if ":reply:" in r["key"]]


def reply(op: FlaskClient, cid: int, **form: str) -> str:
    response = post(op, f"/operator/complaints/{cid}/reply", **form)
    if response.status_code == 303:
        return markup.unescape(page(op, response.headers["Location"]))
    assert response.status_code == 200
    return markup.unescape(response.get_data(as_text=True))


def test_start_from_a_template_preview_then_send_at_once(app: Flask, op: FlaskClient) -> None:
    c = file_complaint(app, lang="fr")
    html = page(op, f"/operator/complaints/{c['id']}")
    assert 'id="reply-text"' in html and "<script" not in html
    html = reply(op, c["id"], step="template", template="call_us")
    template = app.extensions["migrantline"].t("fr", "MigrantLine: please call us when it is "
                                                      "safe for you. Case {reference}.")
    assert template.split("{")[0] in html  # in the migrant's language
    text = "Bonjour, nous avons reçu votre message. Appelez-nous. Dossier " + \
        c["reference"]
    html = reply(op, c["id"], step="preview", text=text)
    assert "1 SMS part" in html and "UCS-2" in html and "Sent at once." in html
    assert 'value="send"' in html and replies(app) == []  # a preview sends nothing
    html = reply(op, c["id"], step="send", text=text)
    assert "The reply was queued." in html and text in html  # listed on the case page
    [sent] = replies(app)
    assert sent["body"] == text and sent["key"].startswith(f"complaint-message:{c['id']}:reply:")
    [event] = audit(app, "message")
    assert event["detail"] == "reply" and text not in str(event)


def test_a_reply_waits_for_the_caller_s_safe_time(app: Flask, op: FlaskClient) -> None:
    complaints = app.extensions["migrantline"].complaints
    complaints.clock = lambda: THURSDAY
    c = file_complaint(app, contact="times", contact_days="fri", contact_hours="h17_21",
                       country="QA", at=THURSDAY)
    html = markup.unescape(page(op, f"/operator/complaints/{c['id']}"))
    assert "Friday only, 17:00 to 21:00, the caller's time (Asia/Qatar)" in html
    html = reply(op, c["id"], step="preview", text="Please call us today.")
    assert "1 SMS part" in html and "GSM-7" in html
    assert "Held until the caller's safe time: 2026-12-04 17:00 Asia/Qatar " \
           "(2026-12-04 14:00 UTC)" in re.sub(r"</?bdi[^>]*>", "", html)
    html = reply(op, c["id"], step="send", text="Please call us today.")
    assert "It is held until the caller's safe time" in html
    [held] = replies(app)
    assert held["next_attempt_at"] == FRIDAY_17 and held["status"] == "queued"
    assert 'class="held"' in html  # the timeline says it is held


def test_over_six_parts_is_refused_and_the_text_kept(app: Flask, op: FlaskClient) -> None:
    c = file_complaint(app)
    text = "word " * 200  # 1000 GSM-7 characters: 7 parts
    html = reply(op, c["id"], step="send", text=text)
    assert "Too long: 7 SMS parts; a reply may have at most 6." in html
    assert text.strip() in html and replies(app) == []


def test_never_and_withheld_are_refused_with_a_reason(app: Flask, op: FlaskClient) -> None:
    never = file_complaint(app, contact="never")
    html = reply(op, never["id"], step="send", text="Hello")
    assert "Not sent: the caller did not say it is safe" in html
    services = app.extensions["migrantline"]
    caller = Caller("sms", "anonymous", services.ussd.hasher.session_key("sms", "s-1"))
    withheld = services.complaints.file("withheld-1", caller, "en",
                                        {"category": "fees", "contact": "any"})
    html = reply(op, withheld["id"], step="preview", text="Hello")
    assert "Not sent: the number was withheld" in html
    assert replies(app) == [] and len(audit(app, "message_refused")) == 2


def test_an_empty_reply_asks_for_text(app: Flask, op: FlaskClient) -> None:
    c = file_complaint(app)
    html = reply(op, c["id"], step="preview", text="   ")
    assert "Write the reply first." in html and replies(app) == []
