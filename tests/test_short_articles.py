"""USSD shows an article's short version; the full text goes by SMS or is read on USSD.

Through the Africa's Talking endpoint as a handset dials it: the short version in the
caller's language, "1 Send the full text" (one SMS per hop however often the provider
retries it, erased with the caller's data), "2 Read it all here", a withheld number told
why no SMS can come; and the content check refusing a short version past three screens
and a choice that pages its options, at their file and line.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ussd_app.channels.ussd.layout import UssdLayout
from ussd_app.content.check import check_content
from ussd_app.conversation.effects import article_bodies
from ussd_app.engine import messages as m
from ussd_app.engine.encoding import Limits, fits, sms_segments
from ussd_app.engine.fitting import HINTS
from ussd_app.engine.loader import ERROR, read_tree
from ussd_app.engine.machine import (
    NO_SMS_NODE,
    SMS_CONFIRM_NODE,
    SMS_SENT_NODE,
    Context,
    State,
    view,
)
from ussd_app.engine.paging import node_pages, short_pages
from ussd_app.engine.screen_checks import MAX_SHORT_SCREENS
from ussd_app.i18n import Catalogs
from ussd_app.privacy.protect import open_text
from ussd_app.store.privacy import erase_phones

from .conftest import DEMO_CONTENT, Phone
from .test_complaints import dial, menu_key
from .test_preview_and_checks import write_tree

TREE = read_tree(DEMO_CONTENT)
T = Catalogs().gettext
USSD = UssdLayout(Limits(160, 70))
ARTICLES = sorted(n.id for n in TREE.nodes.values() if n.type == "article")
ARTICLE = "bg_licensed_agency"


def reach(phone: Phone, lang: str) -> str:
    """Dial and open the article: Before you go, then the licensed agency."""
    dial(phone, lang)
    phone.press(menu_key("main", "before_you_go"))
    return phone.press(menu_key("before_you_go", ARTICLE))


def last_page(phone: Phone, screen: str) -> str:
    while "98 " in screen.split("\n")[-1]:
        screen = phone.press("98")
    return screen


def outbox(app: Flask) -> list[dict[str, object]]:
    return app.extensions["migrantline"].store.outbox()


@pytest.mark.parametrize("lang", ["en", "ar", "fr", "ne"])
def test_the_short_version_then_the_full_text_by_sms_once(app: Flask, client: FlaskClient,
                                                         lang: str) -> None:
    phone = Phone(client)
    first = reach(phone, lang)
    node = TREE.nodes[ARTICLE]
    assert TREE.text(node.short, lang).split()[0] in first  # the short, in their language
    last = last_page(phone, first)
    assert T(lang, m.SEND_FULL) in last and T(lang, m.READ_FULL) in last
    asked = phone.press("1")
    assert T(lang, m.SMS_FULL_QUESTION).split()[0] in asked  # asked first: is it safe?
    sent = phone.press("1")
    assert T(lang, m.SMS_QUEUED).split()[0] in sent
    for _ in range(2):  # Africa's Talking retries the hop: nothing more is queued
        assert phone.hop_text("*".join(phone.inputs)) == sent
    rows = outbox(app)
    bodies = article_bodies(TREE, ARTICLE, lang, 6)
    assert len(rows) == len(bodies)
    sealer = app.extensions["migrantline"].ussd.sealer
    assert {sealer.open(str(r["to_sealed"])) for r in rows} == {phone.number}
    assert all(r["lang"] == lang for r in rows)
    texts = [open_text(sealer, str(r["body"])) for r in rows]
    assert texts == bodies
    whole = "".join("".join(t.split()) for t in texts)
    for paragraph in TREE.text(node.body, lang).split("\n"):  # the full text, not the short
        assert "".join(paragraph.split()[:4]) in whole
    assert all(sms_segments(t)[1] <= 6 for t in texts)


def test_the_sms_is_erased_with_the_callers_data(app: Flask, client: FlaskClient) -> None:
    phone = Phone(client)
    last_page(phone, reach(phone, "en"))
    phone.press("1", "1")
    services = app.extensions["migrantline"]
    [row] = outbox(app)
    assert row["body"]
    erase_phones(services.store, [services.ussd.hasher.key(phone.number)], 1.0)
    [row] = outbox(app)
    assert not row["body"] and not row["to_sealed"]


def test_a_withheld_number_is_told_why_and_reads_it_here(app: Flask,
                                                        client: FlaskClient) -> None:
    phone = Phone(client, number="anonymous")
    last_page(phone, reach(phone, "en"))
    screen = phone.press("1")
    assert T("en", m.NO_SMS) in screen.replace("\n", " ")
    assert "2 " + T("en", m.READ_FULL) in screen
    full = phone.press("2")
    assert TREE.text(TREE.nodes[ARTICLE].body, "en").split(".")[0] in full.replace("\n", " ")
    assert outbox(app) == []


def test_read_it_all_here_and_back_to_the_short(client: FlaskClient) -> None:
    phone = Phone(client)
    first = reach(phone, "fr")
    body = TREE.text(TREE.nodes[ARTICLE].body, "fr")
    full = phone.press("2")
    assert " ".join(body.split()[:5]) in full.replace("\n", " ")
    assert T("fr", m.SEND_FULL) not in full
    assert phone.press("0") == first  # back: the short version again
    assert phone.press("99").startswith("CON ")  # help now, from any screen


def test_the_keys_do_not_clash_with_navigation() -> None:
    for node_id in ARTICLES:
        for lang in TREE.language_codes:
            pages = short_pages(TREE, TREE.nodes[node_id], lang, USSD, T)
            keys = [k for p in pages for k, _ in p.nav]
            assert {"1", "2"} <= set(keys) and not {"1", "2"} & {"0", "00", "98", "99"}
            assert all(k in ("1", "2", "0", "98") for k in keys)


@pytest.mark.parametrize("lang", ["en", "ar", "fr", "ne"])
def test_every_short_fits_three_screens_and_every_screen_fits(lang: str) -> None:
    """The crawl: each article's short pages, full pages and the SMS screens, with every
    hint, fit a 160/70 screen; no short needs more than 3 screens nor more than 1.5
    times English's."""
    ctx, withheld = Context(TREE, USSD, T), Context(TREE, USSD, T, sms_ok=False)
    for node_id in ARTICLES:
        node = TREE.nodes[node_id]
        shorts = short_pages(TREE, node, lang, USSD, T)
        assert len(shorts) <= MAX_SHORT_SCREENS, node_id
        assert len(shorts) <= 1.5 * len(short_pages(TREE, node, "en", USSD, T)), node_id
        states = [State(lang, node_id, page=i) for i in range(len(shorts))]
        states += [State(lang, node_id, page=i, full=True)
                   for i in range(len(node_pages(TREE, node, lang, USSD, T)))]
        states += [State(lang, n, sms=node_id) for n in (SMS_CONFIRM_NODE, SMS_SENT_NODE,
                                                       NO_SMS_NODE)]
        for state in states:
            for hint in ("", *HINTS):
                for context in (ctx, withheld):
                    screen = view(context, replace(state, hint=hint))
                    assert fits(USSD.render(screen, T), USSD.limits), (node_id, state)


LONG = "Word " * 120
CHOICE = """\
id: pick
type: choice
title:
  en: Pick
  fr: Choisir
field: pick
next: main
options:
  - value: a
    label:
      en: A first answer with a label far too long to share a screen with others
      fr: Une
  - value: b
    label:
      en: A second answer with a label far too long to share a screen with others
      fr: Deux
"""


def test_the_check_refuses_a_long_short_and_a_paging_choice(tmp_path: Path) -> None:
    info = ("id: info\ntype: article\ntitle:\n  en: Info\n  fr: Infos\nbody:\n"
            "  en: Keep your passport.\n  fr: Gardez votre passeport.\n"
            f"short:\n  en: Keep it.\n  fr: \"{LONG}\"\n")
    main = ("id: main\ntype: menu\ntitle:\n  en: Main\n  fr: Principal\noptions:\n"
            "  - info\n  - pick\n  - help_now\n  - language\n")
    root = write_tree(tmp_path / "content", nodes__info__info_yaml=info,
                      nodes__main__main_yaml=main, nodes__pick_yaml=CHOICE)
    checked = check_content(root, [USSD])
    errors = [str(p) for p in checked.problems if p.severity == ERROR]
    assert any(e.startswith("nodes/info/info.yaml:11: error: short.fr: the short version "
                            "needs ") for e in errors), errors
    assert any(e.startswith("nodes/pick.yaml:8: error: pick in en: the choice pages its "
                            "options over 2 screens") for e in errors), errors
    assert not any("pick in fr" in e for e in errors)  # short labels: one screen
    assert len(errors) == 2, errors


def test_a_number_past_the_first_screen_of_a_short_is_an_error(tmp_path: Path) -> None:
    late = "Keep it. " * 30 + "Call +977 1 4000000."
    info = ("id: info\ntype: article\ntitle:\n  en: Info\n  fr: Infos\nbody:\n"
            "  en: Keep your passport.\n  fr: Gardez votre passeport.\n"
            f"short:\n  en: \"{late}\"\n  fr: \"Appelez +977 1 4000000.\"\n")
    root = write_tree(tmp_path / "content", nodes__info__info_yaml=info)
    errors = [str(p) for p in check_content(root, [USSD]).problems if p.severity == ERROR]
    [late_number] = [e for e in errors if "+977" in e]
    assert late_number.startswith("nodes/info/info.yaml:10: error: short.en: +977 1 4000000 "
                                  "is on screen "), late_number
    assert "a danger or help number must be on the first" in late_number


def test_sms_still_sends_articles_whole() -> None:
    """The SMS channel pages the full text: no short version, no "Send the full text"."""
    from sms_flows.layout import SmsLayout

    layout = SmsLayout(6, node_types=("article",))
    pages = node_pages(TREE, TREE.nodes[ARTICLE], "en", layout, T)
    screen = view(Context(TREE, layout, T), State("en", ARTICLE))
    assert screen == pages[0] and TREE.text(TREE.nodes[ARTICLE].body, "en")[:40] in screen.body
