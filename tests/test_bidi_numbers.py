"""Phone numbers, references and dates read left to right inside Arabic (issue 16).

Every Arabic screen of the demo tree (the crawl, in every layout the content check pages
for: USSD and both SMS replies), the screens and SMS a complaint produces (reference,
dates) and the contact lists sent by SMS are laid out with a real bidi implementation
(``tests/bidi_check.py``), and each number's digits must appear in the order they were
written. The dashboard's Arabic pages are checked in ``tests/dashboard/test_bidi.py``.
"""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from ussd_app import settings
from ussd_app.content.layouts import content_layouts
from ussd_app.engine.bidi import LRM, RLM, for_display, rtl_lines
from ussd_app.engine.encoding import fits
from ussd_app.engine.loader import read_tree
from ussd_app.engine.model import ARTICLE
from ussd_app.engine.paging import node_pages
from ussd_app.i18n import Catalogs

from .bidi_check import misdrawn, numbers_in, unmarked
from .conftest import DEMO_CONTENT, Phone
from .test_complaints import (
    choice,
    dial,
    file_report,
    follow,
    menu_key,
    opened_outbox,
    reference_in,
    start_report,
)

TREE = read_tree(DEMO_CONTENT)
T = Catalogs().gettext
LAYOUTS = content_layouts(settings.load({}))


def arabic_screens() -> list[str]:
    screens = []
    for layout in LAYOUTS:
        types = getattr(layout, "node_types", ())
        for node in TREE.nodes.values():
            if types and node.type not in types:
                continue
            screens += [layout.render(page, T) for page in
                        node_pages(TREE, node, "ar", layout, T, root=node.id == TREE.main)]
    return screens


def test_every_number_on_every_arabic_screen_reads_left_to_right() -> None:
    screens = arabic_screens()
    lines = [line for screen in screens for line in screen.split("\n")]
    checked = [line for line in lines if numbers_in(line)]
    assert len(checked) > 50  # hotlines, embassies, opening hours
    assert [(line, misdrawn(line)) for line in checked if misdrawn(line)] == []
    # Without the marks the same lines are drawn wrong: the test can fail.
    assert sum(bool(misdrawn(unmarked(line))) for line in checked) > 20


def test_the_marks_fit_the_screens() -> None:
    """The crawl still fits: the marks are counted when pages are cut."""
    ussd = LAYOUTS[0]
    for node in TREE.nodes.values():
        for page in node_pages(TREE, node, "ar", ussd, T, root=node.id == TREE.main):
            assert fits(ussd.render(page, T), ussd.limits)


def test_marks_only_where_a_number_needs_them() -> None:
    assert for_display("+974 4000 0000", "en") == "+974 4000 0000"
    assert rtl_lines("سنة 2012 و 10:00") == "سنة 2012 و 10:00"  # drawn right already
    assert rtl_lines("+974 4000 0000") == LRM + "+974 4000 0000"  # no RLM: no Arabic
    assert rtl_lines("قطر +974 4000 0000") == "قطر " + LRM + "+974 4000 0000"
    # Another number follows before any letter: the RLM stops the first one's reach.
    marked = rtl_lines("قطر +974 4000 0000 (24 ساعة)")
    assert marked == "قطر " + LRM + "+974 4000 0000" + RLM + " (24 ساعة)"
    assert misdrawn(marked) == []
    assert rtl_lines(rtl_lines("قطر +974 4000 0000")) == rtl_lines("قطر +974 4000 0000")


def test_a_contact_list_by_sms_reads_left_to_right(app: Flask, client: FlaskClient) -> None:
    phone = Phone(client)
    dial(phone, "ar")
    phone.press(menu_key("main", "help_now"))
    screen = phone.press(menu_key("help_now", "help_hotlines"))
    assert all(misdrawn(line) == [] for line in screen.split("\n"))
    phone.press("1")  # send me this list
    phone.press("1")  # yes
    [(_, body)] = opened_outbox(app)
    lines = [line for line in body.split("\n") if numbers_in(line)]
    assert lines and [misdrawn(line) for line in lines] == [[] for _ in lines]


def test_the_reference_and_dates_of_an_arabic_complaint(app: Flask,
                                                         client: FlaskClient) -> None:
    phone = Phone(client)
    done = file_report(phone, "ar")
    reference = reference_in(done)
    shown = f"{reference[:4]} {reference[4:]}"
    assert shown in unmarked(done) and all(misdrawn(line) == [] for line in done.split("\n"))
    status = follow(phone, reference, "ar")
    status += "\n" + phone.press("98")  # the dates are on the next page
    assert shown in unmarked(status)
    assert [misdrawn(line) for line in status.split("\n")] == [[]] * len(status.split("\n"))
    date_lines = [line for line in status.split("\n") if "-" in unmarked(line)
                  and any(n.count("-") == 2 for n in numbers_in(line))]
    assert date_lines  # the filing date, marked too
    [(_, receipt)] = opened_outbox(app)
    assert shown in unmarked(receipt) and misdrawn(receipt) == []


def test_articles_are_untouched_where_no_number_needs_a_mark() -> None:
    """Marks cost characters: an article with only plain numbers (years) gets none."""
    layout = LAYOUTS[0]
    for node in TREE.nodes.values():
        if node.type != ARTICLE:
            continue
        for page in node_pages(TREE, node, "ar", layout, T):
            text = layout.render(page, T)
            if not any(numbers_in(line) for line in text.split("\n")):
                assert LRM not in text


def test_an_agency_s_licence_and_dates_read_left_to_right(client: FlaskClient) -> None:
    """"Check an agency" in Arabic: licence numbers, expiry and source dates."""
    phone = Phone(client)
    dial(phone, "ar")
    phone.press(menu_key("main", "check_agency"))
    screens = [phone.press("np demo 0002")]
    while "98 " in screens[-1] and len(screens) < 20:
        screens.append(phone.press("98"))
    text = "\n".join(screens)
    assert "NP-DEMO-0002" in text and "2026-03-31" in unmarked(text)
    assert [line for line in text.split("\n") if misdrawn(line)] == []



def test_the_number_a_caller_typed_reads_left_to_right(client: FlaskClient) -> None:
    """The summary before sending repeats the contact number the caller typed."""
    phone = Phone(client)
    start_report(phone, "ar")
    steps = [choice("report_danger", "no"), choice("report_who", "self"),
             choice("report_category", "unpaid_wages"), choice("report_against", "employer"),
             "Golden Sands", choice("report_country", "qa"), "Doha", "No pay",
             choice("report_contact", "other"), "00977 9812345678",
             choice("report_pin_choice", "no"), choice("report_share", "no")]
    screens = [phone.press(key) for key in steps]
    while "98 " in screens[-1] and len(screens) < 40:
        screens.append(phone.press("98"))
    lines = [line for screen in screens for line in screen.split("\n")]
    assert any("9812345678" in unmarked(line) for line in lines), lines
    assert [line for line in lines if misdrawn(line)] == []
