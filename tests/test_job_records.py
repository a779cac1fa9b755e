"""Job-offer records and lost-contact reports by USSD, SMS and voice, checked in storage."""

from __future__ import annotations

import re
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests.voice_phone import VoiceCaller
from ussd_app.complaints.service import parse_reference
from ussd_app.engine.encoding import Limits, fits
from ussd_app.engine.loader import read_tree
from ussd_app.job_records.model import is_record_reference, quoted_record_reference
from ussd_app.store.base import dicts

from .conftest import DEMO_CONTENT, Phone
from .test_complaints import choice, dial, menu_key
from .test_sms import Texter

TREE = read_tree(DEMO_CONTENT)
LIMITS = Limits(160, 70)
AGENCY = "Sunrise Himal Manpower"


def rows(app: Flask, table: str) -> list[dict[str, Any]]:
    return dicts(app.extensions["migrantline"].store.db().execute(
        f"select * from {table} order by id"))


def record_reference_in(screen: str) -> str:
    found = re.search(r"\b(\d{4}) (\d{4})\b", screen)
    assert found, screen
    reference = found[1] + found[2]
    assert is_record_reference(reference), screen
    return reference


def record_steps() -> list[str]:
    """The answers after consent, as keys and text: Qatar, an employer, a registry agency..."""
    return [choice("rec_country", "qa"), "Golden Sands Contracting", AGENCY, "Driver", "1500",
            choice("rec_currency", "qar"), "March 2027", choice("rec_months", "24"),
            "Sita, +977 9800000001", "2580"]


def file_record(phone: Phone, lang: str = "en", seen: list[str] | None = None) -> str:
    screens = seen if seen is not None else []
    dial(phone, lang)
    screens.append(phone.press(menu_key("main", "before_you_go")))
    screens.append(phone.press(menu_key("before_you_go", "rec_consent")))
    screens.append(phone.press(choice("rec_consent", "yes")))
    for key in record_steps():
        screens.append(phone.press(key))
    assert TREE.text(TREE.nodes["rec_confirm"].title, lang) in screens[-1], screens[-1]
    screens.append(phone.press("1"))
    return screens[-1]


def test_a_job_record_by_ussd_is_kept_sealed_with_a_record_reference(
        app: Flask, client: FlaskClient) -> None:
    phone = Phone(client)
    screens: list[str] = []
    last = file_record(phone, "en", screens)
    assert last.startswith("END ") and "Record kept" in last
    reference = record_reference_in(last)
    assert reference.startswith("0") and parse_reference(reference) == reference
    for screen in screens:
        assert fits(screen[4:], LIMITS), screen
    [row] = rows(app, "job_records")
    assert (row["reference"], row["channel"], row["country"], row["currency"], row["months"],
            row["agency_licence"]) == (reference, "ussd", "QA", "QAR", 24, "NP-DEMO-0001")
    assert row["pin_hash"] and "2580" not in str(row)
    # Sealed at rest: nothing the migrant typed is in the row as they typed it.
    for typed in ("Golden Sands", "Driver", "1500", "March 2027", "Sita", "9800000001"):
        assert typed not in str(row), typed
    shown = app.extensions["migrantline"].records.reveal(row)
    assert (shown["employer"], shown["job"], shown["wage"], shown["family"]) == \
        ("Golden Sands Contracting", "Driver", "1500", "Sita, +977 9800000001")
    assert not rows(app, "complaints")  # a record is not a case


def test_no_consent_keeps_nothing(app: Flask, client: FlaskClient) -> None:
    phone = Phone(client)
    dial(phone, "en")
    phone.press(menu_key("main", "before_you_go"), menu_key("before_you_go", "rec_consent"))
    assert "Nothing" in phone.press(choice("rec_consent", "no"))
    assert not rows(app, "job_records")


def test_a_job_record_in_arabic_fits_every_screen(app: Flask, client: FlaskClient) -> None:
    screens: list[str] = []
    last = file_record(Phone(client), "ar", screens)
    record_reference_in(last)
    for screen in screens:
        assert fits(screen[4:], LIMITS), screen


def test_a_job_record_by_sms(app: Flask) -> None:
    texter = Texter(app)
    texter.send("")
    texter.send("1")  # English
    texter.send(menu_key("main", "before_you_go"))
    texter.send(menu_key("before_you_go", "rec_consent"))
    texter.send(choice("rec_consent", "yes"))
    for text in record_steps():
        texter.send(text)
    done = texter.send("1") or ""
    reference = record_reference_in(done)
    [row] = rows(app, "job_records")
    assert (row["reference"], row["channel"], row["country"]) == (reference, "sms", "QA")


def test_a_job_record_by_voice(app: Flask) -> None:
    caller = VoiceCaller(app.test_client(), number="+9779812300077")
    caller.dial()
    caller.keys("1", menu_key("main", "before_you_go"),
                menu_key("before_you_go", "rec_consent"), choice("rec_consent", "yes"),
                choice("rec_country", "my"))
    # Text questions are spoken; a spoken answer with no recording is asked again, so
    # the test answers the keypad ones only after recording the spoken ones.
    assert caller.last is not None and caller.last.kind == "record"
    for field in ("employer", "agency", "job"):
        heard = caller.speak(f"http://127.0.0.1:9/{field}.mp3", seconds=3)
    assert heard.kind == "gather"  # the wage: keys
    caller.press("1200#")
    caller.keys(choice("rec_currency", "myr"))
    caller.speak("http://127.0.0.1:9/start.mp3", seconds=2)
    caller.keys(choice("rec_months", "12"))
    caller.speak("http://127.0.0.1:9/family.mp3", seconds=4)
    caller.press("1357#")
    done = caller.press("1")
    [row] = rows(app, "job_records")
    assert (row["channel"], row["country"], row["currency"], row["months"]) == \
        ("voice", "MY", "MYR", 12)
    assert set(row["spoken"].split(",")) == {"employer", "agency", "job", "start", "family"}
    assert "Record kept" in done.says


def test_a_lost_contact_report_by_ussd_is_a_case(app: Flask, client: FlaskClient) -> None:
    phone = Phone(client)
    dial(phone, "en")
    phone.press(menu_key("main", "complaints"), menu_key("complaints", "lost_consent"))
    phone.press(choice("lost_consent", "yes"), "Ram Bahadur", choice("lost_country", "sa"),
                AGENCY, "June 2026", choice("lost_reach", "other"), "00977 9812345678")
    last = phone.press("1")
    assert "Report sent" in last
    [row] = rows(app, "complaints")
    assert (row["category"], row["filed_by"], row["country"], row["against_kind"],
            row["agency_licence"], row["contact"]) == \
        ("lost_contact", "family", "SA", "agency", "NP-DEMO-0001", "other")
    shown = app.extensions["migrantline"].complaints.reveal(row)
    assert (shown["relative_name"], shown["last_contact"], shown["contact_phone"]) == \
        ("Ram Bahadur", "June 2026", "+9779812345678")


def test_a_quoted_record_reference_is_found() -> None:
    assert quoted_record_reference("nothing here 1234 5678") is None
    from ussd_app.complaints.references import damm
    body = "0123456"
    reference = body + str(damm(body))
    assert quoted_record_reference(f"my record is {reference[:4]} {reference[4:]}") == reference


def test_the_owner_follows_and_erases_a_record_by_its_reference(app: Flask,
                                                               client: FlaskClient) -> None:
    phone = Phone(client)
    reference = record_reference_in(file_record(phone))
    dial(phone, "en")
    phone.press(menu_key("main", "complaints"), menu_key("complaints", "erase_ref"))
    confirm = phone.press(reference)
    assert "Delete it?" in confirm
    done = phone.press(choice("erase_confirm", "yes"))
    assert "Deleted" in done
    [row] = rows(app, "job_records")
    assert row["erased_at"] and not row["employer_sealed"] and not row["pin_hash"]
    # From another phone, the PIN is asked; once erased, nothing is found.
    other = Phone(client)
    dial(other, "en")
    other.press(menu_key("main", "complaints"), menu_key("complaints", "status_ref"))
    assert "PIN" in other.press(reference)
    assert "wrong PIN" in other.press("2580")


def test_the_record_keyword_starts_a_record_by_sms(app: Flask) -> None:
    texter = Texter(app)
    texter.send("")
    texter.send("3")  # French
    start = texter.send("offre") or ""
    assert TREE.text(TREE.nodes["rec_consent"].title, "fr") in start


def test_a_lost_contact_report_by_sms(app: Flask) -> None:
    texter = Texter(app)
    texter.send("")
    texter.send("1")
    texter.send(menu_key("main", "complaints"))
    texter.send(menu_key("complaints", "lost_consent"))
    for text in (choice("lost_consent", "yes"), "Maya Gurung", choice("lost_country", "kw"),
                 "Desert Star Hotels", "April 2026", choice("lost_reach", "any")):
        texter.send(text)
    done = texter.send("1") or ""
    assert re.search(r"\b\d{4} \d{4}\b", done), done
    [row] = rows(app, "complaints")
    assert (row["category"], row["channel"], row["country"], row["filed_by"]) == \
        ("lost_contact", "sms", "KW", "family")


def test_only_the_scan_upload_path_takes_a_bigger_body() -> None:
    from types import SimpleNamespace

    from ussd_app.job_records.scans import MAX_SCAN_BYTES
    from ussd_app.server import Bridge
    bridge = Bridge()
    upload = SimpleNamespace(method="POST", path="/operator/records/12/scans")
    assert bridge._limit(upload) > MAX_SCAN_BYTES
    for method, path in (("POST", "/ussd/africastalking"), ("GET", upload.path),
                         ("POST", "/operator/records/12/scans/3"),
                         ("POST", "/operator/complaints/12/note")):
        assert bridge._limit(SimpleNamespace(method=method, path=path)) == 64 * 1024
