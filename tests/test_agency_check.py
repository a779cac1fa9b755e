"""Issue 19: an agency check that protects, tried as a migrant would on USSD, SMS and voice.

Keys that cannot collide (items 1-5 open an agency, actions from 7), the caller's
corridor first, licence numbers in any form, and the status said everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ussd_app.agencies.agency import licence_forms, licence_query
from ussd_app.engine import messages as m
from ussd_app.engine.keys import key_problems

from .conftest import Phone, make_app
from .test_agencies import AGENCY_KEY, LANG_KEYS, LANGS, TREE, flat, pin_today, read, t
from .test_sms import Texter
from .voice_phone import VoiceCaller

NEPAL, KENYA = "+9779812345678", "+254712345678"
EXPIRED = "Licence EXPIRED on {date}"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path)
    pin_today(app)
    yield app
    app.extensions["migrantline"].store.close()


def check(client: FlaskClient, lang: str, query: str, number: str | None = None
          ) -> tuple[Phone, str]:
    phone = Phone(client, number)
    phone.dial()
    phone.press(LANG_KEYS[lang], AGENCY_KEY)
    return phone, phone.press(query)


def text_of(client: FlaskClient, lang: str, query: str, number: str | None = None) -> str:
    """What the check says over all its pages, titles and keys left out."""
    phone, first = check(client, lang, query, number)
    pages = [first]
    while t(lang, m.NO_MORE) not in pages[-1] and len(pages) < 60:
        pages.append(phone.press("98"))
    return read(pages[:-1])


def keys_on(screen: str, lang: str) -> list[str]:
    """Every key a USSD screen offers: '1.' items, '7 Report it' actions (a line each),
    and the last line's '98 More 0 Back'."""
    lines = [line.replace("\u200f", "").replace("\u200e", "")
             for line in screen[4:].splitlines()]
    labels = [TREE.text(o.label, lang) for o in TREE.nodes["check_agency"].options]
    keys = []
    for line in lines[:-1]:
        item = re.match(r"^(\d+)\. ", line)
        action = re.fullmatch(r"(\d+) (.+)", line)
        if item:
            keys.append(item.group(1))
        elif action and action.group(2) in labels:
            keys.append(action.group(1))
    return keys + re.findall(r"(?:^|\s)(\d+) ", lines[-1])


# ---------------------------------------------------------------- 1. keys


@pytest.mark.parametrize("lang", LANGS)
def test_items_and_actions_never_share_a_key(client: FlaskClient, lang: str) -> None:
    phone, first = check(client, lang, "manpower")
    screen, items = first, set()
    for _ in range(40):  # every page of the list: no key twice, and items never 7+
        keys = keys_on(screen, lang)
        assert len(keys) == len(set(keys)), (keys, screen)
        assert "7" in keys and "0" in keys, screen
        items |= {k for k in keys if k not in ("7", "98", "0", "00")}
        screen = phone.press("98")
        if t(lang, m.NO_MORE) in screen:
            break
    assert items == {"1", "2", "3", "4", "5"}
    while phone.press("0") != first:
        pass
    report = TREE.text(TREE.nodes["check_agency"].options[0].label, lang)
    # 1 opens the first agency (its own screen, with its actions), not a complaint
    opened = phone.press("1")
    assert TREE.text(TREE.nodes["report_consent"].title, lang) not in opened
    assert f"7 {report}" in opened
    assert "1. " not in opened  # one agency: no item numbers on its screen
    assert phone.press("0") == first  # back to the list
    phone.press("2")
    assert TREE.text(TREE.nodes["report_consent"].title, lang) in phone.press("7")


def test_an_item_opened_shows_that_agency_and_its_status(client: FlaskClient) -> None:
    assert text_of(client, "en", "everest", NEPAL).startswith(
        "Everest Path Overseas (sample)")  # one agency: shown whole
    phone, listing = check(client, "en", "demo 2", NEPAL)
    assert re.search(r"^1\. Everest Path Overseas", listing[4:], re.M), listing
    opened = flat(phone.press("1"))
    assert "NP-DEMO-0002, Nepal" in opened
    assert flat(t("en", EXPIRED, date="2026-03-31")) in opened
    assert t("en", m.INVALID) in phone.press("3")  # an agency opened: 1-5 mean nothing


def test_content_check_refuses_a_key_meaning_two_things() -> None:
    assert key_problems(TREE.nodes) == []
    node = TREE.nodes["check_agency"]
    crowded = replace(node, options=node.options * 92)  # 7..98: 98 is also "more"
    problems = key_problems({node.id: crowded})
    assert problems and "key 98 means both more and option" in problems[0].message
    # the content schema allows 20 options at most: keys 7..26, clear of 98 and 99


# ---------------------------------------------------------------- 2. corridor


@pytest.mark.parametrize("lang", LANGS)
def test_the_callers_corridor_comes_first(client: FlaskClient, lang: str) -> None:
    from ussd_app.agencies.agency import country_name
    for number, country in ((NEPAL, "NP"), (KENYA, "KE")):
        text = text_of(client, lang, "manpower", number)
        first = text.index("1. ")
        # the first agency's lines name its country: the caller's own
        licence = re.search(r"([A-Z]{2})-DEMO-\d{4}", text[first:])
        assert licence and licence.group(1) == country, (number, text)
        assert country_name(country, lang) in text[first:]


def test_the_found_line_is_two_sentences(client: FlaskClient) -> None:
    _, screen = check(client, "en", "manpower", NEPAL)
    assert re.search(r"\d+ agencies found\. The closest 5:", flat(screen)), screen


# ---------------------------------------------------------------- 3. licence numbers


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("query", [
    "NP-DEMO-0002",  # as printed
    "np demo 0002",  # any case, spaces for punctuation
    "np.demo.0002",  # other punctuation
    "npdemo0002",  # nothing between
    "np demo 2",  # no leading zeros (issue 19: was not found)
    "NP-DEMO-02",
    "np-demo 2",
])
def test_a_licence_number_in_any_form(client: FlaskClient, lang: str, query: str) -> None:
    text = text_of(client, lang, query)
    assert text.startswith("Everest Path Overseas (sample)"), (query, text)
    assert flat(t(lang, EXPIRED, date="2026-03-31")) in text


@pytest.mark.parametrize("query", ["demo 2", "demo 0002", "0002", "DEMO-02"])
def test_a_missing_prefix_or_digits_alone_give_a_tie_list(client: FlaskClient,
                                                          query: str) -> None:
    text = text_of(client, "en", query, NEPAL)
    assert text.startswith("5 agencies found"), (query, text)
    assert text.index("NP-DEMO-0002") < text.index("MA-DEMO-0002")  # corridor first
    assert "NP-DEMO-0012" not in text  # 2 is not 12


def test_licence_forms() -> None:
    forms = licence_forms("NP-DEMO-0002")
    for typed in ("np demo 2", "NPDEMO0002", "demo 02", "0002", "2"):
        assert licence_query(typed) in forms, typed
    assert licence_query("12") not in forms
    assert licence_query("np demo 12") not in forms
    assert "demo" not in forms  # a word alone is a name, not a number
    assert licence_query("12 345 2019") in licence_forms("12/345/2019")
    assert "123452019" in licence_forms("12/345/2019")  # digits alone, run together


# ---------------------------------------------------------------- 4. status everywhere


@pytest.mark.parametrize("lang", LANGS)
def test_sms_says_the_licence_expired(app: Flask, lang: str) -> None:
    texter = Texter(app, NEPAL)
    texter.send("")
    texter.send(LANG_KEYS[lang])
    reply = texter.send("agency np demo 2") or ""
    assert "Everest Path Overseas" in reply
    reply += " " + (texter.send("98") or "")  # the status may be on the next part
    assert flat(t(lang, EXPIRED, date="2026-03-31")) in flat(reply)
    listing = texter.send("agency manpower") or ""
    assert re.search(r"^\u200f?1\. ", listing, re.M), listing
    report = TREE.text(TREE.nodes["check_agency"].options[0].label, lang)
    opened = texter.send("1") or ""
    assert f"7 {report}" in opened and "1. " not in opened


# Which lines are said by the provider and which are played as generated audio varies
# with what is rendered already, so voice is checked by its keys: the text itself is
# the USSD screen's, read above in every language.
@pytest.mark.parametrize("lang", ["en", "fr"])
def test_voice_digits_alone_and_keys(app: Flask, lang: str) -> None:
    caller = VoiceCaller(app.test_client(), number=NEPAL)
    caller.dial()
    caller.press(LANG_KEYS[lang])
    caller.press(AGENCY_KEY)
    caller.press("0002")
    listing = caller.wait_out()  # the result is rendered as speech meanwhile
    report = TREE.text(TREE.nodes["check_agency"].options[0].label, lang)
    assert listing.kind == "gather" and report in listing.says, listing.says
    seven = listing.says[listing.says.index(report) + 2]  # "Report it", "press", "seven"
    caller.press("1")
    opened = caller.wait_out()  # one agency opened: its own screen, 7 still reports it
    assert opened.kind == "gather" and report in opened.says
    assert opened.says[opened.says.index(report) + 2] == seven
    assert opened.plays != listing.plays or opened.says != listing.says


def test_dashboard_never_says_licensed_past_the_date(app: Flask) -> None:
    registry = app.extensions["migrantline"].ussd.services["agency_search"]
    assert registry.lookup("np demo 0002")["state"] == "expired"
    assert registry.lookup("NP-DEMO-0001")["state"] == "licensed"
    assert registry.lookup("NP-DEMO-0003")["state"] == "suspended"


# The complaint flow: the agency a caller names is checked before it is kept.

WARN_EXPIRED = "This agency's licence EXPIRED on {date}."


def every_page(phone: Phone, first: str) -> str:
    """The text of a screen and of the pages after it (98), flattened, titles and
    keys left out: a UCS-2 screen is short."""
    pages = [first]
    while re.search(r"(^|\s)98 ", pages[-1].splitlines()[-1]) and len(pages) < 10:
        pages.append(phone.press("98"))
    lines = [line for n, page in enumerate(pages) for line in page[4:].splitlines()[n == 0:]
             if not re.match(r"^\u200f?\d+ ", line)]
    return flat(" ".join(lines))


def to_agency_question(phone: Phone, lang: str, against: str = "agency") -> str:
    from .test_complaints import choice, start_report
    start_report(phone, lang)
    for key in (choice("report_danger", "no"), choice("report_who", "self"),
                choice("report_category", "fees")):
        phone.press(key)
    return phone.press(choice("report_against", against))


@pytest.mark.parametrize("lang", LANGS)
def test_the_complaint_flow_says_the_licence_expired(app: Flask, lang: str) -> None:
    from .test_complaints import choice, rows, title
    phone = Phone(app.test_client(), NEPAL)
    assert title("report_agency", lang) in to_agency_question(phone, lang)
    first = phone.press("np demo 2")  # Everest Path: expired on 2026-03-31
    warned = t(lang, WARN_EXPIRED, date="2026-03-31")
    assert flat(warned) in flat(first), first  # on one screen, the sentence whole
    # 2: name another agency; a licensed one goes straight on
    assert title("report_agency", lang) in phone.press("2")
    assert title("report_country", lang) in phone.press("NP-DEMO-0001")
    phone.press("0")  # back to the agency question: name the expired one again, continue
    assert title("report_agency_warn", lang) in phone.press("Everest Path Overseas")
    assert title("report_country", lang) in phone.press("1")
    for key in (choice("report_country", "np"), "Kathmandu", "They took 2000 dollars",
                choice("report_contact", "never"), choice("report_pin_choice", "no"),
                choice("report_share", "no")):
        phone.press(key)
    assert phone.press("1").startswith("END ")
    [row] = rows(app)
    assert (row["against_kind"], row["agency_licence"]) == ("agency", "NP-DEMO-0002")


def test_agency_and_employer_warns_then_asks_the_employer(app: Flask) -> None:
    from .test_complaints import title
    phone = Phone(app.test_client(), NEPAL)
    to_agency_question(phone, "en", "both")
    warned = every_page(phone, phone.press("NP-DEMO-0003"))  # Golden Gate: suspended
    assert "This agency's licence is SUSPENDED." in warned
    assert title("report_employer", "en") in phone.press("1")


def test_a_flagged_agency_outside_the_registry_is_said_before_it_is_kept(app: Flask) -> None:
    from ussd_app.agencies.agency import fold
    from ussd_app.store import agency_flags as flags_db

    from .test_complaints import title
    store = app.extensions["migrantline"].store
    flags_db.add_flag(store, "", "", "Shadow Visa Brokers", fold("Shadow Visa Brokers"),
                      "not_licensed", "Migrant Resource Centre", "2026-11-02", 1.0, None)
    app.extensions["migrantline"].ussd.services["agency_search"].flags.expire()
    phone = Phone(app.test_client(), NEPAL)
    to_agency_question(phone, "fr")
    warned = every_page(phone, phone.press("shadow visa brokers"))
    assert "Migrant Resource Centre, 2026-11-02" in warned, warned
    assert title("report_country", "fr") in phone.press("1")


def test_a_licensed_agency_or_free_text_goes_straight_on(app: Flask) -> None:
    from .test_complaints import title
    for number, typed in ((NEPAL, "Sunrise Himal Manpower"),
                          (KENYA, "some agency in Doha nobody knows")):
        phone = Phone(app.test_client(), number)
        to_agency_question(phone, "en")
        assert title("report_country", "en") in phone.press(typed), typed


@pytest.mark.parametrize("lang", ["en", "ar"])
def test_sms_complaint_says_the_licence_expired(app: Flask, lang: str) -> None:
    from .test_complaints import choice
    texter = Texter(app, NEPAL)
    texter.send("")
    texter.send(LANG_KEYS[lang])
    texter.send("report")
    replies = [texter.send(key) or "" for key in (
        choice("report_consent", "yes"), choice("report_danger", "no"),
        choice("report_who", "self"), choice("report_category", "fees"),
        choice("report_against", "agency"), "np demo 2")]
    assert flat(t(lang, WARN_EXPIRED, date="2026-03-31")) in flat(replies[-1]), replies


def test_the_country_the_flow_knows_comes_first(app: Flask) -> None:
    """A caller whose number names no registry country (+1) named Morocco in a complaint
    this session: Moroccan agencies come first when they check one (#19 point 2)."""
    from .test_complaints import choice, menu_key
    usa = "+12025550123"
    plain = text_of(app.test_client(), "en", "demo 2", "+12025550199")
    assert plain.index("NP-DEMO-0002") < plain.index("MA-DEMO-0002"), plain
    phone = Phone(app.test_client(), usa)
    to_agency_question(phone, "en", "employer")
    for key in ("Atlas Farms", choice("report_country", "ma")):
        phone.press(key)
    phone.press("00")
    phone.press(menu_key("main", "check_agency"))
    going = every_page(phone, phone.press("demo 2"))
    assert going.index("MA-DEMO-0002") < going.index("NP-DEMO-0002"), going
