"""Job-offer records at the centre: scans checked by content, sealed, audited, erased;
a later complaint held against the record; a lost-contact report in the queue."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from tests import stored
from tests.conftest import Phone
from tests.test_complaints import choice, dial, file_report, menu_key
from tests.test_job_records import file_record, record_reference_in, rows

from .conftest import audit, csrf, page

# A real, minimal PDF: the signature, one empty page, the trailer.
PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
       b"2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
       b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 10 10]>>endobj\n"
       b"trailer<</Root 1 0 R>>\n%%EOF\n")
MARKER = b"CONTRACT-OF-SITA-SECRET-MARKER"


def upload(client: FlaskClient, rid: int, data: bytes, name: str, kind: str = "contract") -> Any:
    return client.post(f"/operator/records/{rid}/scans", data={
        "csrf_token": csrf(client, "/operator/"), "kind": kind,
        "scan": (io.BytesIO(data), name)}, content_type="multipart/form-data",
        follow_redirects=True)


def keep_record(app: Flask, number: str = "+9779811111111") -> tuple[str, int]:
    reference = record_reference_in(file_record(Phone(app.test_client(), number)))
    [row] = rows(app, "job_records")
    return reference, int(row["id"])


def test_scans_are_checked_by_content_sealed_audited_and_erased(app: Flask,
                                                               op: FlaskClient) -> None:
    reference, rid = keep_record(app)
    found = op.get(f"/operator/records?reference={reference[:4]}+{reference[4:]}")
    assert found.status_code == 303 and found.location.endswith(f"/operator/records/{rid}")
    shown = page(op, f"/operator/records/{rid}")
    assert "Golden Sands Contracting" in shown and "Driver" in shown
    assert len(audit(app, "view_record")) == 1
    # A text file named .pdf is refused, with the reason, and the refusal audited.
    fake = upload(op, rid, b"just some text, not a PDF at all\n", "contract.pdf")
    assert "not a PDF, JPEG or PNG" in fake.get_data(as_text=True)
    assert audit(app, "scan_refused") and not rows(app, "job_record_scans")
    # A real PDF is kept, sealed: its bytes are nowhere at rest.
    good = upload(op, rid, PDF + b"%" + MARKER + b"\n", "scan.pdf")
    assert "Scan kept" in good.get_data(as_text=True)
    [scan] = rows(app, "job_record_scans")
    assert (scan["mimetype"], scan["kind"]) == ("application/pdf", "contract")
    app.extensions["migrantline"].store.flush()
    assert MARKER not in stored.at_rest(Path(app.config["MIGRANTLINE_DATA_DIR"]),
                                        app.extensions["migrantline"].store.db().conn)
    viewed = op.get(f"/operator/records/{rid}/scans/{scan['id']}")
    assert viewed.status_code == 200 and viewed.mimetype == "application/pdf"
    assert MARKER in viewed.data and viewed.headers["Cache-Control"] == "no-store"
    assert [r["detail"] for r in audit(app, "view_scan")] == [f"record {rid}: scan {scan['id']}"]
    # Erased with the record: the scan row goes, the typed fields are blanked.
    phone_key = app.extensions["migrantline"].ussd.hasher.key("+9779811111111")
    db = app.extensions["migrantline"].store.db()
    sessions = "select count(*) from ussd_sessions where phone_key = ?"
    assert db.execute(sessions, [phone_key]).fetchone()[0]
    op.post(f"/operator/records/{rid}/erase", data={"csrf_token": csrf(op, "/operator/"),
                                                    "confirm": "yes"})
    assert not rows(app, "job_record_scans")
    [row] = rows(app, "job_records")
    assert row["erased_at"] and not row["employer_sealed"] and not row["phone_key"]
    assert not db.execute(sessions, [phone_key]).fetchone()[0]  # the session that typed it
    assert b"Golden Sands" not in stored.at_rest(
        Path(app.config["MIGRANTLINE_DATA_DIR"]), db.conn)
    assert op.get(f"/operator/records/{rid}/scans/{scan['id']}").status_code == 404
    assert audit(app, "erase_record")


def test_a_large_upload_is_refused(app: Flask, op: FlaskClient) -> None:
    from ussd_app.job_records.scans import MAX_SCAN_BYTES
    _, rid = keep_record(app)
    big = upload(op, rid, PDF + b"0" * MAX_SCAN_BYTES, "big.pdf")
    assert "larger than" in big.get_data(as_text=True)
    assert not rows(app, "job_record_scans")


def test_a_complaint_from_the_same_phone_shows_promised_against_reported(
        app: Flask, op: FlaskClient) -> None:
    number = "+9779822222222"
    reference, rid = keep_record(app, number)
    file_report(Phone(app.test_client(), number), "en")  # against "Golden Sands Contracting"
    [case] = rows(app, "complaints")
    assert case["job_record_id"] == rid
    detail = page(op, f"/operator/complaints/{case['id']}")
    assert reference[:4] in detail and "Promised before leaving" in detail
    wage_row = re.search(r'<tr class="promised-wage">(.*?)</tr>', detail, re.S)
    assert wage_row and "1500 QAR" in wage_row[1]
    op.post(f"/operator/complaints/{case['id']}/wage_paid",
            data={"csrf_token": csrf(op, "/operator/"), "wage_paid": "600 QAR"})
    detail = page(op, f"/operator/complaints/{case['id']}")
    wage_row = re.search(r'<tr class="promised-wage">(.*?)</tr>', detail, re.S)
    assert wage_row and "1500 QAR" in wage_row[1] and "600 QAR" in wage_row[1]
    employer_row = re.search(r'<tr class="promised-employer">(.*?)</tr>', detail, re.S)
    assert employer_row and employer_row[1].count("Golden Sands Contracting") == 2
    # The phone's erasure takes the record too.
    services = app.extensions["migrantline"]
    from ussd_app.complaints.service import Caller
    services.complaints.erase_for_phone(Caller("ussd", number,
                                               services.ussd.hasher.key(number)))
    assert rows(app, "job_records")[0]["erased_at"]


def test_a_complaint_quoting_the_record_reference_links_to_it(app: Flask,
                                                              op: FlaskClient) -> None:
    reference, rid = keep_record(app, "+9779833333333")
    file_report(Phone(app.test_client(), "+9779844444444"), "en",
                description=f"Not paid. My record {reference[:4]} {reference[4:]}")
    [case] = rows(app, "complaints")
    assert case["job_record_id"] == rid


def test_a_lost_contact_report_is_in_the_queue(app: Flask, op: FlaskClient) -> None:
    phone = Phone(app.test_client())
    dial(phone, "en")
    phone.press(menu_key("main", "complaints"), menu_key("complaints", "lost_consent"))
    phone.press(choice("lost_consent", "yes"), "Hari Prasad", choice("lost_country", "my"),
                "do not know", "May 2026", choice("lost_reach", "any"))
    phone.press("1")
    queue = page(op, "/operator/")
    assert "Lost contact" in queue
    [case] = rows(app, "complaints")
    detail = page(op, f"/operator/complaints/{case['id']}")
    assert "Hari Prasad" in detail and "May 2026" in detail


def test_the_referral_hook_gives_the_record_and_lost_contact_fields(app: Flask) -> None:
    from ussd_app.job_records.referral import RECORD_SHAREABLE, referral_fields
    number = "+9779855555555"
    reference, _ = keep_record(app, number)
    file_report(Phone(app.test_client(), number), "en")
    services = app.extensions["migrantline"]
    [case] = rows(app, "complaints")
    fields = referral_fields(services.complaints, services.records, case)
    assert (fields["record_reference"], fields["promised_wage"], fields["promised_currency"],
            fields["promised_agency_licence"]) == (reference, "1500", "QAR", "NP-DEMO-0001")
    assert "promised_family_contact" not in fields  # not by default
    every = referral_fields(services.complaints, services.records, case, RECORD_SHAREABLE)
    assert every["promised_family_contact"] == "Sita, +977 9800000001"


def test_a_key_rotation_reseals_records_and_scans(tmp_path: Path) -> None:
    from tests.conftest import make_app
    from tests.test_keys_rotate import NEW_KEY, rotate


    app = make_app(tmp_path)
    _, rid = keep_record(app)
    app.extensions["migrantline"].records.add_scan(rid, "passport", PDF, None)
    app.extensions["migrantline"].store.close()
    code, output = rotate(tmp_path)
    assert code == 0 and "job_record_scans.data_sealed: 1 re-sealed" in output, output
    after = make_app(tmp_path, MIGRANTLINE_SECRET_KEY=NEW_KEY)
    try:
        records = after.extensions["migrantline"].records
        assert records.reveal(records.get(rid))["employer"] == "Golden Sands Contracting"
        [scan] = records.scans(rid)
        assert records.scan(rid, scan["id"]) == (PDF, "application/pdf")
        assert records.pin_hash(records.get(rid)["reference"], "2580") == \
            records.get(rid)["pin_hash"]
    finally:
        after.extensions["migrantline"].store.close()


def test_a_voice_record_says_which_answers_were_spoken(app: Flask, op: FlaskClient) -> None:
    from tests.test_job_records import test_a_job_record_by_voice
    test_a_job_record_by_voice(app)
    [row] = rows(app, "job_records")
    shown = page(op, f"/operator/records/{row['id']}")
    assert "Said by voice, not kept as text" in shown and "Family contact" in shown
