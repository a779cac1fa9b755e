"""Complaints over USSD, driven as Africa's Talking drives them, checked in the database."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from ussd_app.cli import main
from ussd_app.complaints.references import misreadings, reads_backwards
from ussd_app.complaints.service import damm, new_reference, parse_reference, show_reference
from ussd_app.engine.answers import country_name
from ussd_app.engine.bidi import for_display
from ussd_app.engine.encoding import Limits, fits
from ussd_app.engine.loader import read_tree
from ussd_app.i18n import default_catalogs
from ussd_app.privacy.protect import open_text

from . import stored
from .conftest import DEMO_CONTENT, TEST_SECRET, Phone, make_app

TREE = read_tree(DEMO_CONTENT)
LANG_KEYS = {lang.code: str(i + 1) for i, lang in enumerate(TREE.languages)}
LIMITS = Limits(160, 70)
t = default_catalogs().gettext
DESCRIPTION = "They kept my passport and did not pay me for three months"


def menu_key(node_id: str, target: str) -> str:
    node = TREE.nodes[node_id]
    return str(next(i for i, o in enumerate(node.options) if o.target == target) + 1)


def choice(node_id: str, value: str) -> str:
    node = TREE.nodes[node_id]
    return str(next(i for i, o in enumerate(node.options) if o.value == value) + 1)


def title(node_id: str, lang: str) -> str:
    return TREE.text(TREE.nodes[node_id].title, lang)


def dial(phone: Phone, lang: str) -> str:
    """Dial in; a phone whose language is known starts at the main menu."""
    first = phone.dial()
    return phone.press(LANG_KEYS[lang]) if "English" in first else first


def complaints_menu(phone: Phone, lang: str) -> str:
    dial(phone, lang)
    return phone.press(menu_key("main", "complaints"))


def start_report(phone: Phone, lang: str) -> str:
    complaints_menu(phone, lang)
    phone.press(menu_key("complaints", "report_consent"))
    return phone.press(choice("report_consent", "yes"))


def file_report(phone: Phone, lang: str = "en", contact: str = "any", pin: str | None = "4321",
                description: str = DESCRIPTION, seen: list[str] | None = None,
                share: str = "no") -> str:
    """Walk the whole filing flow; every screen goes into ``seen``."""
    screens = seen if seen is not None else []
    screens.append(start_report(phone, lang))
    steps = [choice("report_danger", "no"), choice("report_who", "self"),
             choice("report_category", "unpaid_wages"), choice("report_against", "employer"),
             "Golden Sands Contracting", choice("report_country", "qa"), "Doha", description,
             choice("report_contact", contact)]
    if contact == "times":
        steps += [choice("report_contact_when", "fri"), choice("report_contact_hours", "h17_21")]
    if contact == "other":
        steps.append("00977 9812345678")
    steps += [choice("report_pin_choice", "yes"), pin] if pin else \
        [choice("report_pin_choice", "no")]
    steps.append(choice("report_share", share))
    for key in steps:
        screens.append(phone.press(key))
    assert title("report_confirm", lang) in screens[-1]
    last = phone.press("1")  # send: "1" works on every page of the summary
    screens.append(last)
    return last


def reference_in(screen: str) -> str:
    found = re.search(r"\b(\d{4}) (\d{4})\b", screen)
    assert found, screen
    reference = found[1] + found[2]
    assert parse_reference(reference), screen
    return reference


def rows(app: Flask) -> list[dict]:
    db = app.extensions["migrantline"].store.db()
    return [dict(r) for r in db.query("select * from complaints order by id")]


def opened_outbox(app: Flask) -> list[tuple[str, str]]:
    services = app.extensions["migrantline"]
    return [(services.ussd.sealer.open(r["to_sealed"]), open_text(services.ussd.sealer, r["body"]))
            for r in services.store.outbox() if r["to_sealed"]]


# ---------------------------------------------------------------- filing


@pytest.mark.parametrize("lang", ["en", "ar", "fr", "ne", "lo"])
def test_file_a_complaint_in_each_language(app: Flask, client: FlaskClient, lang: str) -> None:
    phone = Phone(client)
    screens: list[str] = []
    last = file_report(phone, lang, seen=screens)
    assert last.startswith("END ") and title("report_done", lang) in last
    reference = reference_in(last)
    assert damm(reference) == 0 and show_reference(reference) in last
    for screen in screens:
        assert fits(screen[4:], LIMITS), screen
    [row] = rows(app)
    assert (row["reference"], row["lang"], row["category"], row["country"], row["contact"],
            row["filed_by"], row["against_kind"], row["status"]) == \
        (reference, lang, "unpaid_wages", "QA", "any", "self", "employer", "new")
    # Personal data is sealed at rest: neither the number nor the words are in the file.
    complaints = app.extensions["migrantline"].complaints
    shown = complaints.reveal(row)
    assert (shown["description"], shown["employer"], shown["city"], shown["phone"]) == \
        (DESCRIPTION, "Golden Sands Contracting", "Doha", phone.number)
    app.extensions["migrantline"].store.flush()
    raw = stored.at_rest(Path(app.config["MIGRANTLINE_DATA_DIR"]),
                         app.extensions["migrantline"].store.db().conn)
    for secret in (DESCRIPTION, "Golden Sands", phone.number, phone.number.lstrip("+")):
        assert secret.encode() not in raw
    # The receipt SMS, in the caller's language, to the caller.
    [(to, body)] = opened_outbox(app)
    assert to == phone.number and show_reference(reference) in body
    assert body == for_display(t(lang, "MigrantLine: your reference is {reference}. Keep it to "
                                       "follow your case.").format(
        reference=show_reference(reference)), lang)


def test_a_retried_callback_files_nothing_twice(app: Flask, client: FlaskClient) -> None:
    phone = Phone(client)
    last = file_report(phone)
    assert phone.hop_text("*".join(phone.inputs)) == last  # the provider retries the hop
    assert len(rows(app)) == 1 and len(opened_outbox(app)) == 1


def test_another_worker_replaying_the_hop_finds_the_same_complaint(tmp_path: Path) -> None:
    first, second = make_app(tmp_path), make_app(tmp_path)  # two processes, one database
    try:
        phone = Phone(first.test_client())
        last = file_report(phone)
        first.extensions["migrantline"].store.flush()
        other = Phone(second.test_client(), number=phone.number)
        other.session, other.inputs = phone.session, list(phone.inputs)
        assert other.hop_text("*".join(phone.inputs)) == last  # no cache: a full replay
        assert len(rows(first)) == 1 and len(opened_outbox(first)) == 1
    finally:
        for app in (first, second):
            app.extensions["migrantline"].store.close()


def test_no_sms_when_contact_is_not_safe(app: Flask, client: FlaskClient) -> None:
    last = file_report(Phone(client), contact="never")
    assert t("en", "We will not send you any SMS.") in last
    assert rows(app)[0]["contact"] == "never" and opened_outbox(app) == []


def test_the_receipt_goes_to_the_other_number_given(app: Flask, client: FlaskClient) -> None:
    file_report(Phone(client), contact="other")
    [(to, body)] = opened_outbox(app)
    assert to == "+9779812345678" and "reference" in body


def test_safe_times_are_kept_for_the_operators(app: Flask, client: FlaskClient) -> None:
    file_report(Phone(client), contact="times")
    shown = app.extensions["migrantline"].complaints.reveal(rows(app)[0])
    assert shown["contact"] == "times" and shown["contact_when"] == ""
    assert shown["contact_window"] == "days=fri;hours=17-21"
    assert shown["time_zone"] == "Asia/Qatar"  # where the caller said they are


def test_consent_comes_first_and_no_keeps_nothing(app: Flask, client: FlaskClient) -> None:
    phone = Phone(client)
    complaints_menu(phone, "en")
    consent = phone.press(menu_key("complaints", "report_consent"))
    assert "advisers" in consent and "agree" in consent
    declined = phone.press(choice("report_consent", "no"))
    assert "Nothing was kept" in declined
    assert rows(app) == []


# ---------------------------------------------------------------- danger now


QATAR = "+97455123456"  # a Qatari mobile: the urgent path names Qatar


def hotline_pages(phone: Phone, first: str) -> list[str]:
    pages = [first]
    while "98 " in pages[-1].splitlines()[-1] and len(pages) < 80:
        pages.append(phone.press("98"))
    return pages


def numbers_in_order(pages: list[str]) -> list[str]:
    text = "\n".join(pages)
    found = [(text.index(e.phone), e.phone) for e in TREE.nodes["help_hotlines"].entries]
    return [number for _, number in sorted(found)]


@pytest.mark.parametrize("lang", ["en", "ar", "fr", "ne"])
def test_in_danger_a_case_is_filed_then_two_questions_then_their_hotline_first(
        app: Flask, client: FlaskClient, lang: str) -> None:
    """Filed on "I am in danger" (in the queue before any question); then "can we call
    you now?" and "where are you? 1 Qatar 2 another country", each added to the case;
    then the hotline of where they are first, each option on its own line."""
    phone = Phone(client, number=QATAR)
    start_report(phone, lang)
    asked = phone.press(choice("report_danger", "yes"))
    assert title("danger_call", lang) in asked and fits(asked[4:], LIMITS)
    [row] = rows(app)  # filed before the first question is answered
    assert (row["urgent"], row["contact"], row["call_now"], row["where_now"],
            row["number_country"]) == (1, "unknown", None, None, "QA")
    where = phone.press(choice("danger_call", "yes"))
    assert fits(where[4:], LIMITS)
    assert f"1{'-' if lang == 'ar' else '.'} {country_name('QA', lang)}" in where
    assert rows(app)[0]["call_now"] == "yes"
    urgent = phone.press(choice("danger_where", "here"))
    assert fits(urgent[4:], LIMITS)
    reference = reference_in(urgent)
    [row] = rows(app)
    assert (row["reference"], row["call_now"], row["where_now"], row["country"]) == \
        (reference, "yes", "here", "QA")
    pages = hotline_pages(phone, urgent)
    qatar = next(e.phone for e in TREE.nodes["help_hotlines"].entries if e.country == "qa")
    assert numbers_in_order(pages)[0] == qatar  # the hotline they can call now, first
    for page in pages:
        lines = page.splitlines()
        assert any(line.startswith("1 ") for line in lines[-3:])  # "1 Add details" alone
        assert not any(line.startswith("98 ") and " 1 " in line for line in lines)
    assert opened_outbox(app) == []  # never asked whether an SMS is safe: none


def test_questions_skipped_or_another_country_keep_the_hotlines_in_their_order(
        app: Flask, client: FlaskClient) -> None:
    default = [e.phone for e in TREE.nodes["help_hotlines"].entries]  # the content's order
    phone = Phone(client, number=QATAR)
    start_report(phone, "en")
    phone.press(choice("report_danger", "yes"), choice("danger_call", "skipped"))
    urgent = phone.press(choice("danger_where", "other"))
    assert numbers_in_order(hotline_pages(phone, urgent)) == default
    row = rows(app)[0]
    assert (row["call_now"], row["where_now"], row["country"]) == ("skipped", "other", None)
    # Skipping where: the number's country comes first (Nepal's number, Nepal's hotline).
    nepali = Phone(client)
    start_report(nepali, "en")
    nepali.press(choice("report_danger", "yes"), choice("danger_call", "no"))
    urgent = nepali.press(choice("danger_where", "skipped"))
    assert numbers_in_order(hotline_pages(nepali, urgent))[0] == "+977 1 4000000"
    assert (rows(app)[1]["call_now"], rows(app)[1]["where_now"]) == ("no", "skipped")


def test_a_withheld_number_gets_the_hotlines_at_once_and_no_question(
        app: Flask, client: FlaskClient) -> None:
    phone = Phone(client, number="anonymous")
    start_report(phone, "en")
    urgent = phone.press(choice("report_danger", "yes"))
    assert title("danger_call", "en") not in urgent
    reference_in(urgent)
    assert TREE.nodes["help_hotlines"].entries[0].phone in urgent
    [row] = rows(app)
    assert (row["urgent"], row["call_now"], row["number_country"]) == (1, None, None)


def test_going_back_to_an_urgent_question_changes_the_answer_not_the_case(
        app: Flask, client: FlaskClient) -> None:
    phone = Phone(client, number=QATAR)
    start_report(phone, "en")
    phone.press(choice("report_danger", "yes"), choice("danger_call", "yes"))
    phone.press("0")  # back to "can we call you now?"
    phone.press(choice("danger_call", "no"))
    phone.press("0", "0")  # back to "are you in danger?", and yes again
    phone.press(choice("report_danger", "yes"))
    [row] = rows(app)  # one case
    assert row["call_now"] == "no"
    kinds = [e["kind"] for e in app.extensions["migrantline"].store.db().query(
        "select kind from complaint_events where complaint_id = ? order by id", [row["id"]])]
    assert kinds.count("urgent") == 1 and kinds.count("urgent_answer") == 2


def test_urgent_details_complete_the_same_case(app: Flask, client: FlaskClient) -> None:
    phone = Phone(client)
    start_report(phone, "en")
    phone.press(choice("report_danger", "yes"), choice("danger_call", "skipped"))
    reference = reference_in(phone.press(choice("danger_where", "skipped")))
    # Adding the details completes the same case.
    phone.press("1")  # add details
    for key in (choice("report_who", "family"), choice("report_category", "abuse"),
                choice("report_against", "employer"), "Villa 12 household",
                choice("report_country", "ae"), "Dubai", "I am locked in the house",
                choice("report_contact", "any"), choice("report_pin_choice", "no"),
                choice("report_share", "no")):
        phone.press(key)
    last = phone.press("1")
    assert show_reference(reference) in last
    [row] = rows(app)
    assert (row["urgent"], row["category"], row["filed_by"], row["contact"]) == \
        (1, "abuse", "family", "any")
    assert len(opened_outbox(app)) == 1  # now the receipt may go


# ---------------------------------------------------------------- following


def follow(phone: Phone, reference: str, lang: str = "en") -> str:
    complaints_menu(phone, lang)
    phone.press(menu_key("complaints", "status_ref"))
    return phone.press(reference)


@pytest.mark.parametrize("lang", ["en", "ar", "fr", "ne", "lo"])
def test_status_from_the_filing_phone(client: FlaskClient, lang: str) -> None:
    phone = Phone(client)
    reference = reference_in(file_report(phone, lang))
    status = follow(phone, reference, lang)
    assert show_reference(reference) in status
    assert t(lang, "Received") in status
    assert fits(status[4:], LIMITS)


def test_status_from_another_phone_needs_the_pin(app: Flask, client: FlaskClient) -> None:
    reference = reference_in(file_report(Phone(client), pin="4321"))
    other = Phone(client)
    asked = follow(other, reference)
    assert title("status_pin", "en") in asked and "Received" not in asked
    assert "Received" in other.press("4321")
    # Without the PIN, another phone learns nothing: not even whether the case exists.
    stranger = Phone(client)
    wrong = follow(stranger, reference)
    body = stranger.press("1111")
    assert "Not found, or wrong PIN" in body and reference[:4] not in body
    unknown_ref = next(r for r in (f"{n}{damm(str(n))}" for n in range(1000000, 1000100))
                       if r != reference and not reads_backwards(r))
    nobody = Phone(client)
    assert follow(nobody, unknown_ref) .replace(unknown_ref, "") == wrong.replace(reference, "")
    assert nobody.press("1111") == body


def test_three_wrong_pins_lock_the_reference(app: Flask, client: FlaskClient) -> None:
    reference = reference_in(file_report(Phone(client), pin="4321"))
    other = Phone(client)
    follow(other, reference)
    assert "wrong PIN" in other.press("1111")
    assert "wrong PIN" in other.press("2222")
    locked = other.press("3333")
    assert "Too many wrong PINs" in locked
    again = Phone(client)  # another phone, the right PIN: still locked for a while
    follow(again, reference)
    assert "Too many wrong PINs" in again.press("4321")
    # The filing phone itself is not locked out of its own case.


def test_a_retried_pin_hop_counts_once(app: Flask, client: FlaskClient) -> None:
    reference = reference_in(file_report(Phone(client), pin="4321"))
    other = Phone(client)
    follow(other, reference)
    first = other.press("1111")
    for _ in range(3):
        assert other.hop_text("*".join(other.inputs)) == first  # the provider retries
    assert "wrong PIN" in other.press("2222")  # only the second wrong PIN so far
    assert "Received" in other.press("4321")


def test_a_mistyped_reference_is_caught_by_its_check_digit(client: FlaskClient) -> None:
    phone = Phone(client)
    reference = reference_in(file_report(phone))
    typo = reference[:-1] + str((int(reference[-1]) + 1) % 10)
    screen = follow(phone, typo)
    assert "Not found. Check the number." in screen
    assert title("status_ref", "en") in screen  # asked again, not ended
    assert "Received" in phone.press(show_reference(reference))  # spaces are fine
    phone.press("00")
    phone.press(menu_key("main", "complaints"), menu_key("complaints", "status_ref"))
    assert "Type digits only" in phone.press("12ab")  # letters where digits go


def test_a_reference_copied_backwards_is_not_found(client: FlaskClient) -> None:
    """A right-to-left screen that draws "9698 5189" as "5189 9698": the swapped number
    passes the Damm check, so it would ask for a PIN as if it were a case (issue 16)."""
    assert damm("96985189") == 0 and damm("51899698") == 0
    assert reads_backwards("51899698") and reads_backwards("96985189")
    issued = [new_reference() for _ in range(300)]
    assert not any(reads_backwards(r) for r in issued)
    assert all(damm(m) != 0 for r in issued for m in misreadings(r))
    phone = Phone(client)
    screen = follow(phone, "51899698", "ar")
    assert t("ar", "Not found. Check the number.") in screen
    assert title("status_pin", "ar") not in screen
    # An issued reference swapped fails its check digit: "not found" too.
    reference = reference_in(file_report(Phone(client)))
    other = Phone(client)
    assert "Not found. Check the number." in follow(other, reference[4:] + reference[:4])


def test_status_sms_when_an_operator_changes_it(app: Flask, client: FlaskClient) -> None:
    phone = Phone(client)
    file_report(phone, "fr")
    services = app.extensions["migrantline"]
    row = rows(app)[0]
    services.complaints.set_status(row["id"], "in_progress", None, "operator:test")
    messages = opened_outbox(app)
    assert len(messages) == 2 and messages[1][0] == phone.number
    assert messages[1][1] == t("fr", "MigrantLine: case {reference} is in progress. An adviser "
                                     "is working on it.").format(
        reference=show_reference(row["reference"]))
    assert "En cours" in follow(phone, row["reference"], "fr")


def test_no_status_sms_when_contact_is_not_safe(app: Flask, client: FlaskClient) -> None:
    file_report(Phone(client), contact="never")
    services = app.extensions["migrantline"]
    services.complaints.set_status(rows(app)[0]["id"], "resolved", None, "operator:test")
    assert opened_outbox(app) == []


# ---------------------------------------------------------------- drafts


def test_a_dropped_draft_resumes(tmp_path: Path) -> None:
    # No resume for menu walks: only the draft of a complaint is offered again.
    app = make_app(tmp_path, MIGRANTLINE_RESUME_MINUTES="0")
    try:
        client = app.test_client()
        phone = Phone(client)
        start_report(phone, "en")
        for key in (choice("report_danger", "no"), choice("report_who", "self"),
                    choice("report_category", "fees"), choice("report_against", "employer"),
                    "Blue Sky Trading", choice("report_country", "my")):
            phone.press(key)
        city = phone.press("Kuala Lumpur")
        store = app.extensions["migrantline"].store  # written in its hop: nothing to flush
        drafts = [r[0] for r in store.db().execute(
            "select last_text from ussd_sessions where last_text != ''")]
        assert drafts and all(d.startswith("sealed:") for d in drafts)  # the draft is sealed
        raw = stored.at_rest(tmp_path / "var", store.db().conn)
        assert b"Blue Sky" not in raw and b"Kuala" not in raw
        offer = phone.dial()  # the network cut; the caller dials again
        assert "Continue where you stopped?" in offer
        assert phone.press("1") == city
        phone.press("I paid 2000 dollars for the visa", choice("report_contact", "never"),
                    choice("report_pin_choice", "no"), choice("report_share", "no"))
        last = phone.press("1")
        assert last.startswith("END ")
        shown = app.extensions["migrantline"].complaints.reveal(rows(app)[0])
        assert (shown["employer"], shown["city"], shown["category"]) == \
            ("Blue Sky Trading", "Kuala Lumpur", "fees")
        # A menu walk, dropped, is not offered again (resume window 0 here).
        walker = Phone(client)
        walker.dial()
        walker.press("1", "1")
        assert "Continue" not in walker.dial()
    finally:
        app.extensions["migrantline"].store.close()


def test_drafts_are_purged_after_their_time(app: Flask, client: FlaskClient) -> None:
    phone = Phone(client)
    start_report(phone, "en")
    phone.press(choice("report_danger", "no"))
    store = app.extensions["migrantline"].store
    store.flush()
    assert store.purge_sessions(time.time() - 86400, drafts_older_than=time.time() + 1) == 1
    assert "Continue" not in phone.dial()


# ---------------------------------------------------------------- bad input


def test_inputs_that_do_not_fit_the_question_ask_again(client: FlaskClient) -> None:
    phone = Phone(client)
    start_report(phone, "en")
    for key in (choice("report_danger", "no"), choice("report_who", "self"),
                choice("report_category", "other"), choice("report_against", "employer"),
                "X", choice("report_country", "np"), "Kathmandu", "Something",
                choice("report_contact", "other")):
        phone.press(key)
    assert "country code" in phone.press("call me")
    phone.press("+977 9812345678", choice("report_pin_choice", "yes"))
    assert "Type digits only" in phone.press("12ab")
    assert "Type 4 digits" in phone.press("123")
    assert title("report_share", "en") in phone.press("١٢٣٤")  # Arabic-Indic digits count


def test_text_past_the_limit_is_cut_with_a_notice(app: Flask, client: FlaskClient) -> None:
    phone = Phone(client)
    start_report(phone, "en")
    for key in (choice("report_danger", "no"), choice("report_who", "self"),
                choice("report_category", "other"), choice("report_against", "employer"),
                "X", choice("report_country", "np"), "Pokhara"):
        phone.press(key)
    contact = phone.press("word " * 300)  # 1500 characters
    assert "Too long: shortened" in contact
    phone.press(choice("report_contact", "never"), choice("report_pin_choice", "no"),
                choice("report_share", "no"))
    summary = [phone.press("98") for _ in range(12)]
    assert any("(shortened)" in s for s in summary)
    phone.press("1")
    row = rows(app)[0]
    assert row["truncated"] == "description"
    description = app.extensions["migrantline"].complaints.reveal(row)["description"]
    assert len(description) == 1000 - 1 and description.startswith("word word")


def test_html_in_a_complaint_is_stored_as_typed(app: Flask, client: FlaskClient) -> None:
    file_report(Phone(client), description="<script>alert(1)</script> & more")
    shown = app.extensions["migrantline"].complaints.reveal(rows(app)[0])
    assert shown["description"] == "<script>alert(1)</script> & more"


# ---------------------------------------------------------------- agency, erasure


def test_report_an_agency_from_its_check_result(app: Flask, client: FlaskClient) -> None:
    phone = Phone(client)
    dial(phone, "en")
    phone.press(menu_key("main", "check_agency"), "golden gate")
    phone.press("7", choice("report_consent", "yes"), choice("report_danger", "no"),
                choice("report_who", "self"))
    after_category = phone.press(choice("report_category", "fees"))
    assert title("report_country", "en") in after_category  # "against whom" already known
    for key in (choice("report_country", "np"), "Kathmandu", "They asked 3000 dollars",
                choice("report_contact", "never"), choice("report_pin_choice", "no"),
                choice("report_share", "no")):
        phone.press(key)
    phone.press("1")
    row = rows(app)[0]
    assert (row["against_kind"], row["agency_licence"]) == ("agency", "NP-DEMO-0003")


def test_a_caller_erases_their_data(app: Flask, client: FlaskClient) -> None:
    phone = Phone(client)
    reference = reference_in(file_report(phone))
    complaints_menu(phone, "en")
    phone.press(menu_key("complaints", "erase_ref"))
    confirm = phone.press(reference)
    assert title("erase_confirm", "en") in confirm
    assert "deleted" in phone.press(choice("erase_confirm", "yes"))
    row = rows(app)[0]
    assert row["erased_at"] and row["description_sealed"] is None and row["phone_key"] is None
    assert row["category"] == "unpaid_wages"  # still counted
    # Another phone cannot erase it (it is asked for the PIN, and a wrong one fails).
    assert title("status_pin", "en") in follow(phone, reference)  # no phone matches now


def test_another_phone_cannot_erase_without_the_pin(app: Flask, client: FlaskClient) -> None:
    reference = reference_in(file_report(Phone(client), pin="4321"))
    other = Phone(client)
    complaints_menu(other, "en")
    other.press(menu_key("complaints", "erase_ref"), reference)
    assert "wrong PIN" in other.press("9999")
    assert rows(app)[0]["erased_at"] is None
    assert title("erase_confirm", "en") in other.press("4321")


def test_retention_purge_erases_closed_complaints(app: Flask, client: FlaskClient,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    file_report(Phone(client))
    file_report(Phone(client))
    services = app.extensions["migrantline"]
    first, second = rows(app)
    services.complaints.set_status(first["id"], "closed", None, "operator:test")
    services.store.db().execute("update complaints set closed_at = ? where id = ?",
                                [time.time() - 400 * 86400, first["id"]])
    monkeypatch.setenv("MIGRANTLINE_DATA_DIR", app.config["MIGRANTLINE_DATA_DIR"])
    monkeypatch.setenv("MIGRANTLINE_SECRET_KEY", TEST_SECRET)
    runner = CliRunner()
    dry = runner.invoke(main, ["retention", "purge", "--dry-run"])
    assert dry.exit_code == 0 and "1 closed complaint(s)" in dry.output
    result = runner.invoke(main, ["retention", "purge"])
    assert result.exit_code == 0, result.output
    assert "erased the personal data of 1 complaint(s)" in result.output
    first, second = rows(app)
    assert first["erased_at"] and first["description_sealed"] is None
    assert second["erased_at"] is None and second["description_sealed"]


def test_a_late_flush_from_another_worker_never_reopens_a_filed_session(tmp_path: Path) -> None:
    """Hops of one session land on two workers; the stale buffer is flushed last."""
    first, second = make_app(tmp_path), make_app(tmp_path)
    try:
        phone = Phone(first.test_client())
        start_report(phone, "en")
        steps = [choice("report_danger", "no"), choice("report_who", "self"),
                 choice("report_category", "fees"), choice("report_against", "employer"),
                 "Sunny Farms", choice("report_country", "np"), "Pokhara", "Fees of 900",
                 choice("report_contact", "never"), choice("report_pin_choice", "no"),
                 choice("report_share", "no")]
        phone.press(*steps)  # worker one has the session up to the confirm screen
        finisher = Phone(second.test_client(), number=phone.number)
        finisher.session, finisher.inputs = phone.session, list(phone.inputs)
        assert finisher.press("1").startswith("END ")  # worker two files it
        second.extensions["migrantline"].store.flush()
        first.extensions["migrantline"].store.flush()  # the older hop, flushed late
        redial = phone.dial()
        assert "Continue" not in redial  # a filed complaint is not offered again
        assert len(rows(first)) == 1
    finally:
        for app in (first, second):
            app.extensions["migrantline"].store.close()
