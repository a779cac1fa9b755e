"""Complaints by SMS: the same flow as USSD by numbered replies, and the STATUS keyword."""

from __future__ import annotations

import re

import pytest
from flask import Flask

from ussd_app.complaints.service import parse_reference, show_reference
from ussd_app.engine.encoding import sms_segments
from ussd_app.engine.loader import read_tree
from ussd_app.i18n import default_catalogs

from .conftest import DEMO_CONTENT
from .test_complaints import choice, rows
from .test_sms import Texter

TREE = read_tree(DEMO_CONTENT)
t = default_catalogs().gettext
REPORT = {"en": "report", "ar": "بلاغ", "fr": "signaler", "ne": "उजुरी", "lo": "ລາຍງານ"}
STATUS = {"en": "status", "ar": "حالة", "fr": "suivi", "ne": "स्थिति", "lo": "ສະຖານະ"}
LANG_KEYS = {lang.code: str(i + 1) for i, lang in enumerate(TREE.languages)}


def reference_in(text: str) -> str:
    found = re.search(r"\b(\d{4}) (\d{4})\b", text)
    assert found, text
    assert parse_reference(found[1] + found[2]), text
    return found[1] + found[2]


def file_by_sms(texter: Texter, lang: str, description: str = "No pay since June",
                pin: str | None = None) -> tuple[str, list[str]]:
    texter.send("")  # the language list
    texter.send(LANG_KEYS[lang])
    replies = [texter.send(REPORT[lang]) or ""]
    steps = [choice("report_consent", "yes"), choice("report_danger", "no"),
             choice("report_who", "self"), choice("report_category", "unpaid_wages"),
             choice("report_against", "employer"), "Desert Star Hotels",
             choice("report_country", "sa"), "Riyadh", description,
             choice("report_contact", "any")]
    steps += [choice("report_pin_choice", "yes"), pin] if pin else \
        [choice("report_pin_choice", "no")]
    steps.append(choice("report_share", "no"))
    for text in [*steps, "1"]:
        replies.append(texter.send(text) or "")
    return reference_in(replies[-1]), replies


@pytest.mark.parametrize("lang", ["en", "ar", "fr", "ne", "lo"])
def test_report_by_sms_in_each_language(app: Flask, lang: str) -> None:
    texter = Texter(app)
    reference, replies = file_by_sms(texter, lang)
    assert TREE.text(TREE.nodes["report_consent"].title, lang) in replies[0]
    for reply in replies:
        assert sms_segments(reply)[1] <= 2, reply
    [row] = rows(app)
    assert (row["reference"], row["channel"], row["lang"], row["country"]) == \
        (reference, "sms", lang, "SA")
    # The reply carries the reference: no second SMS saying the same.
    assert len([m for m in texter.outbox() if reference[:4] in m["body"]]) == 1
    status = texter.send(f"{STATUS[lang]} {show_reference(reference)}") or ""
    assert show_reference(reference) in status and t(lang, "Received") in status


def test_a_long_sms_is_the_whole_description(app: Flask) -> None:
    texter = Texter(app)
    story = ("Help, my employer took my passport in March and has not paid me since. " * 12)
    file_by_sms(texter, "en", description=story)
    shown = app.extensions["migrantline"].complaints.reveal(rows(app)[0])
    assert shown["description"] == " ".join(story.split())[:1000]
    assert rows(app)[0]["truncated"] == ""  # 876 characters: kept whole


def test_status_by_keyword_from_another_phone_needs_the_pin(app: Flask) -> None:
    reference, _ = file_by_sms(Texter(app), "en", pin="2468")
    other = Texter(app)
    assert "add the case's PIN" in (other.send(f"status {reference}") or "")
    assert "wrong PIN" in (other.send(f"status {reference} 1357") or "")
    assert "Received" in (other.send(f"status {reference} 2468") or "")
    assert "Check the number" in (other.send("status 12345670") or "")
    assert "STATUS" in (other.send("status") or "")


def test_the_draft_is_sealed_in_the_conversation(app: Flask) -> None:
    texter = Texter(app)
    texter.send("")
    texter.send("1")
    for text in ("report", "1", "2", "1", "1", "2", "Moonlight Farms"):
        texter.send(text)
    store = app.extensions["migrantline"].store
    [(state,)] = store.db().execute("select state from sms_conversations").fetchall()
    assert state.startswith("sealed:") and "Moonlight" not in state


def test_status_sms_for_a_complaint_filed_by_sms(app: Flask) -> None:
    texter = Texter(app)
    reference, _ = file_by_sms(texter, "ar")
    services = app.extensions["migrantline"]
    services.complaints.set_status(rows(app)[0]["id"], "referred", None, "operator:test")
    last = texter.outbox()[-1]
    assert last["lang"] == "ar" and show_reference(reference) in last["body"]
