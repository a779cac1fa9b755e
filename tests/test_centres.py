"""Partner centres abroad (#17 points 1-3), in one process: two apps on their own data
(their own database on PostgreSQL), each delivering to the other's real inbox through
its Flask test client. The two-process run over loopback ports is
``test_centres_served.py``; here, the bad input, each refused with a reason and an
audit row, and the dashboard's pages.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests import databases
from ussd_app.centres import crypto
from ussd_app.centres.service import Centres, ReferralRefused
from ussd_app.store import centres as centres_db
from ussd_app.store import operators as operators_db

from .conftest import Phone, make_app
from .dashboard.conftest import add_operator, cheap_hashes, csrf, page, sign_in
from .test_complaints import file_report, reference_in


@dataclass
class Centre:
    app: Flask
    db_url: str | None = None

    @property
    def centres(self) -> Centres:
        return self.app.extensions["migrantline"].centres  # type: ignore[no-any-return]

    @property
    def store(self) -> Any:
        return self.app.extensions["migrantline"].store

    def audit(self, action: str) -> list[dict[str, Any]]:
        rows, _ = operators_db.audit_rows(self.store, 500, 0)
        return [r for r in rows if r["action"] == action]

    def query(self, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        cursor = self.store.db().execute(sql, params or [])
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def centre(tmp_path: Path, name: str, country: str, url: str, **extra: str) -> Centre:
    db_url = databases.create() if databases.on_postgres() else None
    app = make_app(tmp_path / name, MIGRANTLINE_CENTRE_NAME=name,
                   MIGRANTLINE_CENTRE_COUNTRY=country, MIGRANTLINE_BASE_URL=url,
                   MIGRANTLINE_BACKGROUND="off", MIGRANTLINE_REFERRAL_BACKOFF_SECONDS="0",
                   **({"MIGRANTLINE_DATABASE_URL": db_url} if db_url else {}), **extra)
    cheap_hashes(app)
    add_operator(app, f"op@{country.lower()}.example", "supervisor", "Op")
    return Centre(app, db_url)


def wire(sender: Centre, receiver: Centre | None) -> None:
    """The sender's deliveries go to the receiver's inbox (None: the link is down)."""
    def post(url: str, body: bytes, timeout: float) -> int:
        if receiver is None:
            raise ConnectionRefusedError("the partner is down")
        assert url == receiver.app.config["MIGRANTLINE_BASE_URL"] + "/partners/inbox"
        return receiver.app.test_client().post("/partners/inbox", data=body,
                                               content_type="application/json").status_code
    sender.centres.post = post


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[Centre, Centre]]:
    origin = centre(tmp_path, "Kathmandu MRC", "NP", "http://127.0.0.1:1")
    dest = centre(tmp_path, "Doha MRC", "QA", "http://127.0.0.1:2")
    origin.centres.import_card(dest.centres.card_bytes(), "test")
    dest.centres.import_card(origin.centres.card_bytes(), "test")
    wire(origin, dest)
    wire(dest, origin)
    yield origin, dest
    for c in (origin, dest):
        c.store.close()
        if c.db_url:
            databases.drop(c.db_url)


def signed_in(c: Centre) -> FlaskClient:
    client = c.app.test_client()
    email = next(r["email"] for r in c.query("select email from operators"))
    assert sign_in(client, email).status_code == 303
    return client


def form(client: FlaskClient, path: str, **fields: Any) -> str:
    response = client.post(path, data={**fields, "csrf_token": csrf(client, "/operator/")},
                           follow_redirects=True)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def filed(c: Centre, share: str) -> int:
    phone = Phone(c.app.test_client())
    reference = reference_in(file_report(phone, pin=None, share=share))
    return int(c.query("select id from complaints where reference = ?", [reference])[0]["id"])


def partner_id(c: Centre, name: str) -> int:
    return int(c.query("select id from centres where name = ?", [name])[0]["id"])


def test_refer_update_and_outcome_travel_both_ways(pair: tuple[Centre, Centre]) -> None:
    origin, dest = pair
    cid = filed(origin, share="yes")
    op = signed_in(origin)
    said = form(op, f"/operator/complaints/{cid}/centre_refer",
                centre_id=partner_id(origin, "Doha MRC"), share=["category", "description"])
    assert "Referred to Doha MRC" in said
    assert origin.centres.deliver() == {"sent": 1, "retry": 0, "refused": 0}
    [row] = dest.query("select * from complaints")
    assert row["channel"] == "partner" and row["category"] == "unpaid_wages"
    assert row["contact"] == "never" and row["phone_sealed"] is None
    # The destination's queue says where it came from; its case page shows what was shared.
    boss = signed_in(dest)
    assert "Referred from Kathmandu MRC" in page(boss, "/operator/")
    case = page(boss, f"/operator/complaints/{row['id']}")
    assert "They kept my passport" in case and "Golden Sands" not in case  # employer not sent
    # Status and outcome come back; the migrant is told in their language.
    form(boss, f"/operator/complaints/{row['id']}/status", status="in_progress")
    form(boss, f"/operator/complaints/{row['id']}/status", status="closed")
    said = form(boss, f"/operator/complaints/{row['id']}/outcome", outcome="compensation",
                amount="1500", currency="QAR")
    assert "The referring centre will be told." in said
    form(boss, f"/operator/complaints/{row['id']}/centre_message", message="Employer paid.")
    assert dest.centres.deliver()["sent"] == 4
    shown = page(op, f"/operator/complaints/{cid}")
    assert "From Doha MRC" in shown and "1500.00 QAR" in shown and "Employer paid." in shown
    sms = origin.query("select key from outbox where key like ?", [f"complaint-status:{cid}:%"])
    assert len([s for s in sms if ":centre:" in s["key"]]) == 3  # in progress, closed, 1500
    assert not dest.query("select key from outbox")  # the destination never texts the migrant
    for action in ("centre_refer", "centre_delivered", "centre_update_received"):
        assert origin.audit(action), action
    for action in ("centre_referral_received", "centre_update", "centre_delivered"):
        assert dest.audit(action), action


def test_no_consent_unknown_and_revoked_centres_are_refused(
        pair: tuple[Centre, Centre]) -> None:
    origin, dest = pair
    op = signed_in(origin)
    cid = filed(origin, share="no")
    said = form(op, f"/operator/complaints/{cid}/centre_refer",
                centre_id=partner_id(origin, "Doha MRC"))
    assert "did not agree to share" in said
    assert origin.audit("centre_refer_refused")[0]["detail"].endswith("no_consent")
    consenting = filed(origin, share="yes")
    with pytest.raises(ReferralRefused, match="unknown_centre"):
        origin.centres.refer(consenting, 999, [], None)
    origin.centres.revoke(partner_id(origin, "Doha MRC"), "test")
    with pytest.raises(ReferralRefused, match="revoked_centre"):
        origin.centres.refer(consenting, partner_id(origin, "Doha MRC"), [], None)
    # A revoked key's card cannot come back.
    with pytest.raises(crypto.BadCard, match="revoked"):
        origin.centres.import_card(dest.centres.card_bytes(), "test")
    assert not origin.query("select * from centre_outbox")


def inbox(c: Centre, body: bytes) -> tuple[int, dict[str, Any]]:
    response = c.app.test_client().post("/partners/inbox", data=body,
                                        content_type="application/json")
    return response.status_code, response.get_json()


def envelope(sender: crypto.KeyPair, to: Centre, **payload: Any) -> bytes:
    base = {"kind": "referral", "id": crypto.new_id(), "referral": crypto.new_id(), "at": 1.0,
            "fields": ["category"], "case": {"reference": "1234 5678", "lang": "en",
                                             "category": "fees"}}
    return crypto.seal_envelope(sender, to.centres.keys().box_public, {**base, **payload})


def test_the_inbox_refuses_bad_envelopes_with_a_reason_and_an_audit_row(
        pair: tuple[Centre, Centre], tmp_path: Path) -> None:
    origin, dest = pair
    keys = origin.centres.keys()
    stranger = crypto.KeyPair.generate()
    assert inbox(dest, b"not json") == (400, {"ok": False, "error": "malformed"})
    assert inbox(dest, b"{}")[0] == 400  # refused again; audited once a minute per address
    assert inbox(dest, envelope(stranger, dest)) == (403, {"ok": False,
                                                           "error": "unknown_sender"})
    # Encrypted to another centre: a third one's box key.
    third = crypto.KeyPair.generate()
    other = crypto.seal_envelope(keys, third.box_public, {"kind": "referral", "id": "x" * 22})
    assert inbox(dest, other)[1]["error"] == "not_for_us"
    # Tampered: one byte of the sealed box changed, or the signature of another message.
    good = json.loads(envelope(keys, dest))
    box = bytearray(crypto.unb64(good["box"]))
    box[40] ^= 1
    assert inbox(dest, json.dumps({**good, "box": crypto.b64(bytes(box))}).encode())[1] == \
        {"ok": False, "error": "bad_signature"}
    # Signed by the wrong key inside: a known partner passing off another's box.
    forged = crypto.seal_envelope(stranger, dest.centres.keys().box_public,
                                  {"kind": "referral", "id": "y" * 22})
    forged_data = json.loads(forged)
    resigned = json.loads(crypto.seal_envelope(keys, dest.centres.keys().box_public, {}))
    assert inbox(dest, json.dumps({**forged_data, "from": keys.sign_public,
                                   "sig": resigned["sig"]}).encode())[0] == 400
    # Replayed: stored once, then "idempotent".
    body = envelope(keys, dest)
    assert inbox(dest, body) == (200, {"ok": True})
    assert inbox(dest, body) == (200, {"ok": True, "idempotent": True})
    assert len(dest.query("select * from complaints")) == 1
    # Revoked: refused from then on.
    dest.centres.revoke(partner_id(dest, "Kathmandu MRC"), "test")
    assert inbox(dest, envelope(keys, dest)) == (403, {"ok": False, "error": "revoked_sender"})
    reasons = [r["detail"].rsplit(": ", 1)[1] for r in dest.audit("centre_inbox_refused")]
    # Each refusal of what no known centre signed is audited once a minute per address,
    # claimed sender and reason: the second bad signature is only logged.
    assert sorted(reasons) == sorted(["malformed", "unknown_sender", "not_for_us",
                                      "bad_signature", "revoked_sender"])
    assert dest.audit("centre_inbox_replay")


def test_a_partner_down_for_days_gets_everything_once_when_it_returns(
        pair: tuple[Centre, Centre]) -> None:
    origin, dest = pair
    wire(origin, None)
    cids = [filed(origin, share="yes") for _ in range(3)]
    for cid in cids:
        origin.centres.refer(cid, partner_id(origin, "Doha MRC"), [], None)
    for _ in range(4):
        assert origin.centres.deliver()["retry"] == 3
    link = origin.centres.links()[0]
    assert link["queued"] == 3 and link["last_delivery"] is None
    assert "the partner is down" in link["last_error"]
    origin.centres.post = lambda url, body, timeout: 500  # up, but failing: retried too
    assert origin.centres.deliver()["retry"] == 3
    assert "answered 500" in origin.centres.links()[0]["last_error"]
    # A delivery that answered 200 but whose answer was lost is delivered again and stored
    # once (the inbox's id).
    wire(origin, dest)
    [first] = origin.query("select envelope from centre_outbox order by id limit 1")
    assert inbox(dest, first["envelope"].encode())[0] == 200
    assert origin.centres.deliver()["sent"] == 3
    assert len(dest.query("select * from complaints")) == 3
    assert origin.centres.links()[0]["queued"] == 0
    assert centres_db.counts(origin.store) == {"sent": 3}


def test_a_card_is_checked_before_it_is_imported(pair: tuple[Centre, Centre]) -> None:
    origin, dest = pair
    card = json.loads(dest.centres.card_bytes())
    card["card"]["url"] = "http://127.0.0.1:9/evil"
    with pytest.raises(crypto.BadCard, match="signature"):
        origin.centres.import_card(json.dumps(card).encode(), "test")
    with pytest.raises(crypto.BadCard, match="own card"):
        origin.centres.import_card(origin.centres.card_bytes(), "test")
    with pytest.raises(crypto.BadCard, match="not JSON"):
        origin.centres.import_card(b"\xff", "test")
    boss = signed_in(origin)
    listing = page(boss, "/operator/centres")
    assert "Doha MRC" in listing and origin.centres.fingerprint() in listing
    download = boss.get("/operator/centres/card.json")
    assert crypto.read_card(download.data)["name"] == "Kathmandu MRC"
    health = origin.app.test_client().get("/healthz").get_json()
    assert health["partners"][0]["name"] == "Doha MRC" and health["partners"][0]["queued"] == 0


def test_erasing_a_case_stops_its_referral_and_forgets_what_came_back(
        pair: tuple[Centre, Centre]) -> None:
    origin, dest = pair
    sent, waiting = filed(origin, share="yes"), filed(origin, share="yes")
    doha = partner_id(origin, "Doha MRC")
    origin.centres.refer(sent, doha, [], None)
    origin.centres.deliver()
    [row] = dest.query("select id from complaints")
    dest.centres.send_update(int(row["id"]), None, message="We met the employer.")
    dest.centres.deliver()
    wire(origin, None)
    origin.centres.refer(waiting, doha, ["description"], None)
    origin.centres.deliver()
    complaints = origin.app.extensions["migrantline"].complaints
    for cid in (sent, waiting):
        complaints.erase(complaints.get(cid)["reference"])
    assert not [r for r in origin.query("select remote_message_sealed from centre_referrals")
                if r["remote_message_sealed"]]
    wire(origin, dest)
    assert centres_db.retry_now(origin.store, doha, 2e9) == 0
    assert origin.centres.deliver()["sent"] == 0
    assert centres_db.counts(origin.store) == {"sent": 1, "refused": 1}
    assert len(dest.query("select id from complaints")) == 1


def test_a_referral_carries_the_job_offer_record_when_ticked(
        pair: tuple[Centre, Centre]) -> None:
    """The pre-departure record goes with the case only if the operator ticks it (and the
    migrant consented to share): the destination reads what was promised; the family
    contact never goes."""
    from .test_job_records import file_record
    origin, dest = pair
    phone = Phone(origin.app.test_client())
    file_record(phone)  # Qatar, Golden Sands Contracting, Driver, 1500 QAR, family: Sita
    reference = reference_in(file_report(phone, pin=None,
                                         share="yes"))
    cid = int(origin.query("select id from complaints where reference = ?",
                           [reference])[0]["id"])
    assert origin.query("select job_record_id from complaints where id = ?",
                        [cid])[0]["job_record_id"]
    op = signed_in(origin)
    form(op, f"/operator/complaints/{cid}/centre_refer",
         centre_id=partner_id(origin, "Doha MRC"), share=["category", "record"])
    assert origin.centres.deliver()["sent"] == 1
    [row] = dest.query("select * from complaints")
    case = page(signed_in(dest), f"/operator/complaints/{row['id']}")
    assert "promised_employer: Golden Sands Contracting" in case, case
    assert "promised_wage: 1500" in case and "Sita" not in case
