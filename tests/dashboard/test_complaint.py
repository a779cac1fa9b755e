"""One complaint in the dashboard: what it shows, what is audited, and every action."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ussd_app.privacy.protect import open_text
from ussd_app.store import operators as operators_db

from .conftest import audit, file_complaint, page, post

PHONE = "+9779812345678"


def outbox(app: Flask) -> list[dict]:
    """The outbox with bodies opened (they are sealed at rest)."""
    services = app.extensions["migrantline"]
    return [{**r, "body": open_text(services.complaints.phone_sealer, r["body"])}
            for r in services.store.outbox()]


def test_the_page_shows_everything_and_audits_the_view(app: Flask, op: FlaskClient) -> None:
    c = file_complaint(app, lang="fr", employer="Desert Build LLC", city="Doha",
                       against_kind="employer", contact="times", contact_when="after 8 pm")
    html = page(op, f"/operator/complaints/{c['id']}")
    for text in ("No pay for three months", "Desert Build LLC", "Doha", "after 8 pm",
                 "Contact only at these times", "Unpaid wages", "+977••••••••78",
                 "Qatar", "French"):
        assert text in html, text
    assert PHONE not in html and "9812345678" not in html
    [view] = audit(app, "view")
    assert view["complaint_id"] == c["id"] and view["operator_email"] == "op@example.org"
    assert view["ip"] == "127.0.0.1"
    html = post(op, f"/operator/complaints/{c['id']}/reveal").get_data(as_text=True)
    assert PHONE in html and audit(app, "reveal_phone")
    missing = op.get("/operator/complaints/999999")
    assert missing.status_code == 404 and "There is no such page" in missing.text


@pytest.mark.parametrize("contact", ["never", "unknown"])
def test_do_not_contact_is_prominent_and_messages_are_refused(
        app: Flask, op: FlaskClient, contact: str) -> None:
    """"Never" is a prominent "do not call or SMS"; "not asked" is never shown as that
    (the issue's urgent case read "Do not call or SMS. Not asked"), yet no SMS goes."""
    c = file_complaint(app, contact=contact)
    html = page(op, f"/operator/complaints/{c['id']}")
    if contact == "never":
        assert 'class="contact danger" role="alert"><strong>Do not call or SMS.' in html
        assert "Sending is refused" in html
    else:
        assert "Do not call" not in html and "Sending is refused" not in html
        assert '<p class="contact caution"><strong>Contact was not asked yet.' in html
        assert "Sending is held: the caller was not asked yet" in html
    response = post(op, f"/operator/complaints/{c['id']}/message", template="call_us")
    assert response.status_code == 303
    assert "Not sent: the caller did not say" in page(op, response.location)
    assert audit(app, "message_refused") and not outbox(app)
    post(op, f"/operator/complaints/{c['id']}/status", status="in_progress")
    assert not outbox(app)


def test_script_in_a_complaint_stays_inert(app: Flask, op: FlaskClient) -> None:
    c = file_complaint(app, description='<script>alert("x")</script><img src=x onerror=alert(1)>',
                       employer="<b>bold</b>", against_kind="employer")
    html = page(op, f"/operator/complaints/{c['id']}")
    assert "<script>alert" not in html and "<img src=x" not in html and "<b>bold" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "&lt;b&gt;bold&lt;/b&gt;" in html
    assert "<script" not in html  # the dashboard itself has no script at all


def test_cut_text_shows_a_notice(app: Flask, op: FlaskClient) -> None:
    c = file_complaint(app, description="word " * 500)
    html = page(op, f"/operator/complaints/{c['id']}")
    assert "were cut" in html and "What happened" in html.split("were cut")[1][:300]


def test_assign_note_and_status_change_queue_the_sms(app: Flask, op: FlaskClient) -> None:
    c = file_complaint(app, lang="fr")
    receipt = outbox(app)  # the receipt, sent when the complaint was filed
    boss = app.extensions["dashboard"].accounts.get("boss@example.org")
    post(op, f"/operator/complaints/{c['id']}/assign", operator_id=boss["id"])
    post(op, f"/operator/complaints/{c['id']}/note", note="Called the embassy")
    response = post(op, f"/operator/complaints/{c['id']}/status", status="in_progress",
                    note="")
    assert "An SMS to the migrant was queued" in page(op, response.location)
    sms = [m for m in outbox(app) if m not in receipt]
    assert len(sms) == 1 and sms[0]["lang"] == "fr" and c["reference"][:4] in sms[0]["body"]
    html = page(op, f"/operator/complaints/{c['id']}")
    outbox_part = html.split('id="outbox"')[1]
    assert sms[0]["body"] in outbox_part.replace("&#39;", "'") and "Queued" in outbox_part
    assert "Called the embassy" in html and "Asha" in html and "boss@example.org" in html
    row = app.extensions["migrantline"].complaints.get(c["id"])
    assert row["status"] == "in_progress" and row["assigned_to"] == boss["id"]
    assert [a["detail"] for a in audit(app, "status")] == ["in_progress"]
    assert audit(app, "assign") and audit(app, "note")[0]["detail"] == ""  # no note text


def test_a_message_from_a_template_in_the_migrants_language(app: Flask,
                                                            op: FlaskClient) -> None:
    c = file_complaint(app, lang="fr")
    catalogs = app.extensions["migrantline"].catalogs
    from ussd_app.complaints.service import MESSAGE_TEMPLATES

    french = catalogs.gettext("fr", MESSAGE_TEMPLATES["more_info"])
    assert french != MESSAGE_TEMPLATES["more_info"]
    preview = french.format(reference=f"{c['reference'][:4]} {c['reference'][4:]}")
    html = page(op, f"/operator/complaints/{c['id']}")
    assert preview.replace("'", "&#39;") in html
    response = post(op, f"/operator/complaints/{c['id']}/message", template="more_info")
    assert "The SMS was queued" in page(op, response.location)
    assert outbox(app)[-1]["body"] == preview
    assert audit(app, "message")[0]["detail"] == "more_info"


def test_referral_to_a_partner(app: Flask, op: FlaskClient, boss: FlaskClient) -> None:
    c = file_complaint(app)
    assert "No partner organisation yet" in page(op, f"/operator/complaints/{c['id']}")
    post(boss, "/operator/partners", name="Pravasi <Help>", country="np", contact="01-555")
    [partner] = operators_db.partners(app.extensions["migrantline"].store)
    assert partner["country"] == "NP"
    assert "Pravasi &lt;Help&gt;" in page(boss, "/operator/partners")
    post(op, f"/operator/complaints/{c['id']}/refer", partner_id=partner["id"],
         note="wages case")
    html = page(op, f"/operator/complaints/{c['id']}")
    assert "Referred to a partner" in html and "Pravasi &lt;Help&gt;: wages case" in html
    assert app.extensions["migrantline"].complaints.get(c["id"])["status"] == "referred"
    assert audit(app, "referral")[0]["detail"] == \
        f"to partner {partner['id']}; shared category,country,contact"  # the default share
    post(boss, f"/operator/partners/{partner['id']}/active", active="0")
    post(op, f"/operator/complaints/{c['id']}/refer", partner_id=partner["id"])
    assert len(audit(app, "referral")) == 1  # an inactive partner takes no referral


def test_the_audit_log_page(app: Flask, op: FlaskClient, boss: FlaskClient) -> None:
    c = file_complaint(app)
    page(op, f"/operator/complaints/{c['id']}")
    html = page(boss, f"/operator/audit?reference={c['reference']}")
    assert re.search(r"op@example.org</td><td>view</td>", html)
    assert "sign_in" not in html  # only this complaint's rows
    assert "sign_in" in page(boss, "/operator/audit")
    response = boss.get("/operator/audit?reference=1234")
    assert "No complaint has the reference 1234" in page(boss, response.location)


def test_no_personal_data_in_the_logs(app: Flask, op: FlaskClient,
                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    c = file_complaint(app, description="secret story", employer="Secret Employer",
                       against_kind="employer")
    page(op, f"/operator/complaints/{c['id']}")
    post(op, f"/operator/complaints/{c['id']}/reveal")
    post(op, f"/operator/complaints/{c['id']}/note", note="secret note")
    post(op, f"/operator/complaints/{c['id']}/status", status="resolved")
    text = caplog.text
    for secret in ("secret story", "Secret Employer", "secret note", "9812345678"):
        assert secret not in text


def test_french_and_arabic_dashboards(app: Flask, op: FlaskClient) -> None:
    post(op, "/operator/language", lang="fr")
    html = page(op, "/operator/")
    assert 'lang="fr"' in html and "File d" in html
    post(op, "/operator/language", lang="ar")
    html = page(op, "/operator/")
    assert 'dir="rtl"' in html and "قائمة الانتظار" in html and "Queue" not in html


def test_the_last_content_sync_is_shown(app: Flask, op: FlaskClient,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    assert "Content sync is not configured" in page(op, "/operator/")
    import ussd_app.dashboard.app as dashboard

    monkeypatch.setattr(dashboard, "sync_health", lambda config: {
        "configured": True, "result": "failed", "message": "central store unreachable",
        "last_attempt": 1_796_000_000, "last_success": 1_795_000_000})
    html = page(op, "/operator/")
    assert "Last content sync" in html and "central store unreachable" in html
    assert "2026-11-30 00:53 UTC" in html and 'class="sync-failed"' in html


def test_the_agency_as_the_registry_has_it(app: Flask, op: FlaskClient) -> None:
    c = file_complaint(app, against_kind="agency", against="np demo 0002")
    assert c["agency_licence"] == "NP-DEMO-0002"
    html = re.sub(r"</?bdi[^>]*>", "", page(op, f"/operator/complaints/{c['id']}"))
    # expired on 2026-03-31: said so, as of today, never "licensed"
    assert ("Everest Path Overseas (sample) · NP-DEMO-0002 · <strong class=\"agency-expired\">"
            "licence EXPIRED on 2026-03-31</strong>") in html
    assert "licensed (until 2026-03-31)" not in html
    licensed = file_complaint(app, against_kind="agency", against="np demo 1")
    assert "NP-DEMO-0001 · licensed (until 2028-07-15)" in re.sub(r"</?bdi[^>]*>", "", page(
        op, f"/operator/complaints/{licensed['id']}"))
    assert "Everest Path" in page(op, "/operator/?q=everest")


def test_two_sources_on_the_agency_are_both_on_the_case(tmp_path: Path) -> None:
    """A ministry's newer list says revoked, the demo registry said licensed: the case
    page shows both, newest first (#19: two sources disagreeing)."""
    import shutil

    from ..conftest import DEMO_CONTENT, make_app
    from .conftest import add_operator, cheap_hashes, sign_in
    tree = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, tree)
    with (tree / "agencies.csv").open("a", encoding="utf-8") as registry:
        registry.write("NP-DEMO-0001,Sunrise Himal Manpower (sample),,NP,revoked,,"
                       "Labour Ministry,2026-12-02\n")
    app = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(tree))
    cheap_hashes(app)
    add_operator(app, "op@example.org")
    op = app.test_client()
    assert sign_in(op, "op@example.org").status_code == 303
    c = file_complaint(app, against_kind="agency", against="NP-DEMO-0001")
    html = page(op, f"/operator/complaints/{c['id']}")
    assert ('NP-DEMO-0001</bdi> · <strong>licence REVOKED</strong> · Nepal · Labour Ministry '
            '(<bdi dir="ltr">2026-12-02</bdi>)') in html, html
    assert ('<span class="agency-also">Demo registry NP (sample) (<bdi dir="ltr">2026-11-01'
            '</bdi>): licensed (until <bdi dir="ltr">2028-07-15</bdi>)</span>') in html
    app.extensions["migrantline"].store.close()
