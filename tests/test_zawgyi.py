"""Burmese typed in Zawgyi (issue 16): converted to Unicode where caller text enters, before
a keyword is matched or an answer stored; Unicode Burmese, other scripts and short
ambiguous words come through exactly as typed. Driven through the provider endpoints."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ussd_app.zawgyi import THRESHOLD, to_unicode, ussd_to_unicode, zawgyi_probability

from .conftest import Phone
from .test_complaints import choice, file_report, rows, title
from .test_complaints_sms import LANG_KEYS
from .test_sms import Texter

# Zawgyi as Myanmar phones type it, and the Unicode it means.
ZG_REPORT, REPORT = "တိုင္ၾကား", "တိုင်ကြား"  # the REPORT keyword in Burmese
ZG_STORY = "အလုပ္ရွင္က ေငြ ၃၀၀၀၀ ဘတ္ ယူၿပီး ပတ္စပို႔ကို သိမ္းထားတယ္"
STORY = "အလုပ်ရှင်က ငွေ ၃၀၀၀၀ ဘတ် ယူပြီး ပတ်စပို့ကို သိမ်းထားတယ်"
# Unicode with stacked letters (U+1039), which a Zawgyi converter would break, and Latin.
UNICODE_MIXED = "Desert Star ကုမ္ပဏီက မိတ္တူ မပေးဘူး 2026"


@pytest.mark.parametrize("zawgyi, unicode", [
    (ZG_REPORT, REPORT), (ZG_STORY, STORY), ("ေအဂ်င္စီ", "အေဂျင်စီ"),
    ("ကၽြန္မကို အခန္းထဲမွာ ပိတ္ထားတယ္", "ကျွန်မကို အခန်းထဲမှာ ပိတ်ထားတယ်"),
    ("ေရႊ႕ေျပာင္းအလုပ္သမား", "ရွှေ့ပြောင်းအလုပ်သမား"), ("အႏၲရာယ္", "အန္တရာယ်"),
])
def test_zawgyi_becomes_unicode(zawgyi: str, unicode: str) -> None:
    assert to_unicode(zawgyi) == unicode
    assert to_unicode(unicode) == unicode  # converting twice changes nothing


@pytest.mark.parametrize("text", [
    UNICODE_MIXED, STORY, "ကိစ္စ", "မင်္ဂလာပါ", "Help ไทย ខ្មែរ", "", "1*2*3",
    "ဤကိစ္စ၏",  # Unicode the detector calls Zawgyi (p > 0.95): no Zawgyi-only sign, kept
    "သြား", "ပြဲစား",  # Zawgyi or Unicode? Too short to tell: kept as typed
])
def test_unicode_other_scripts_and_ambiguous_words_are_kept(text: str) -> None:
    assert to_unicode(text) == text


def test_the_guard_is_needed_the_detector_alone_would_convert_unicode() -> None:
    assert zawgyi_probability("ဤကိစ္စ၏") > THRESHOLD
    assert zawgyi_probability("hello") == 0.0


def test_each_ussd_answer_is_converted_on_its_own() -> None:
    assert ussd_to_unicode(f"7*1*{ZG_STORY}*ကိစ္စ") == f"7*1*{STORY}*ကိစ္စ"


def test_a_zawgyi_sms_keyword_answers_as_its_unicode_twin(app: Flask) -> None:
    zawgyi, unicode = Texter(app), Texter(app)
    for texter in (zawgyi, unicode):
        texter.send("")
        texter.send(LANG_KEYS["my"])
    reply = zawgyi.send(ZG_REPORT) or ""
    assert title("report_consent", "my") in reply
    assert reply == unicode.send(REPORT)


def test_a_zawgyi_complaint_by_sms_is_stored_in_unicode(app: Flask) -> None:
    texter = Texter(app)
    texter.send("")
    texter.send(LANG_KEYS["my"])
    texter.send(ZG_REPORT)
    steps = [choice("report_consent", "yes"), choice("report_danger", "no"),
             choice("report_who", "self"), choice("report_category", "documents"),
             choice("report_against", "employer"), UNICODE_MIXED,
             choice("report_country", "th"), "ျမဝတီ", ZG_STORY,
             choice("report_contact", "any"), choice("report_pin_choice", "no"),
             choice("report_share", "no"), "1"]
    for text in steps:
        texter.send(text)
    [row] = rows(app)
    shown = app.extensions["migrantline"].complaints.reveal(row)
    assert (row["lang"], row["channel"], row["country"]) == ("my", "sms", "TH")
    assert (shown["description"], shown["employer"], shown["city"]) == \
        (STORY, UNICODE_MIXED, "မြဝတီ")


def test_a_zawgyi_complaint_by_ussd_is_stored_in_unicode(app: Flask,
                                                        client: FlaskClient) -> None:
    file_report(Phone(client), "my", description=ZG_STORY)
    file_report(Phone(client), "my", description=UNICODE_MIXED)
    shown = [app.extensions["migrantline"].complaints.reveal(row) for row in rows(app)]
    assert [s["description"] for s in shown] == [STORY, UNICODE_MIXED]
