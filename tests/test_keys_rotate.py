"""``migrantline keys rotate``: complaints filed, the key rotated, the service restarted with
the new key reads everything back; the old key opens nothing left in the data folder."""

from __future__ import annotations

import html
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask

from sms_flows.service import sms_inbound as Inbound
from ussd_app import settings
from ussd_app.cli import main
from ussd_app.privacy import rekey
from ussd_app.privacy.protect import SEALED, BytesSealer, PhoneHasher, Sealer, open_text
from ussd_app.store import OutboxItem, enqueue, is_opted_out, open_store
from ussd_app.store import voice_recordings as recordings_db
from ussd_app.store.privacy import erase_outbox_bodies

from . import stored
from .conftest import ROOT, TEST_SECRET, Phone, make_app
from .dashboard.conftest import add_operator, cheap_hashes, page, sign_in
from .test_cli import BIN, env_for, free_port
from .test_complaints import (
    DESCRIPTION,
    choice,
    complaints_menu,
    file_report,
    follow,
    menu_key,
    reference_in,
    start_report,
    title,
)
from .test_complaints_sms import file_by_sms
from .test_sms import Texter

NEW_KEY = "rotated-9Yq2Lw7Xc4Nv1Bz8Kd5Hs3Fj6Tm0Rp-Ue_Ga4Ww"
AUDIO = b"RIFF....WAVEfmt a caller's voice, as bytes"
SMS_STORY = "Rotate-sentinel: the supervisor kept my passport"
LEGACY_BODY = "Rotate-legacy: an SMS stored before bodies were sealed"
CONTACT = "+9779812345678"  # ``file_report``'s "use another number" (typed 00977 9812345678)


def sealed_values(app: Flask) -> list[tuple[rekey.SealedColumn, bytes, object]]:
    """Every sealed value in the database: (column, its context, stored value)."""
    conn = app.extensions["migrantline"].store.db().conn
    found = []
    for column in rekey.SEALED_COLUMNS:
        context = column.context_column or "''"
        for context_value, value in conn.execute(
                f"select {context}, {column.column} from {column.table} "
                f"where {column.column} is not null"):
            if isinstance(value, str) and not (value and value.startswith(column.prefix)):
                continue
            if isinstance(value, memoryview):
                value = bytes(value)
            found.append((column, str(context_value).encode(), value))
    return found


def opens(column: rekey.SealedColumn, value: object, context: bytes, key: bytes) -> bool:
    try:
        if column.context_column is not None:
            BytesSealer(key, column.purpose).open(bytes(value), context)  # type: ignore[arg-type]
        else:
            Sealer(key, column.purpose).open(str(value)[len(column.prefix):])
        return True
    except Exception:
        return False


def erase(phone: Phone, reference: str, pin: str | None = None) -> None:
    """"Delete my data" by USSD: from the filing phone, or with the PIN from another."""
    complaints_menu(phone, "en")
    phone.press(menu_key("complaints", "erase_ref"))
    confirm = phone.press(reference) if pin is None else phone.press(reference, pin)
    assert title("erase_confirm", "en") in confirm
    assert "deleted" in phone.press(choice("erase_confirm", "yes"))


def fill(app: Flask) -> dict[str, object]:
    """Complaints with PINs, a draft left half typed, SMS, a call-back, a recording, a
    filing by SMS (its sealed "check and send"), a draft offered again on redial, erased
    phones, a withheld caller, an opt-out, an SMS body from before bodies were sealed, and
    this centre's private keys (made by the first ``keys()``)."""
    services = app.extensions["migrantline"]
    store = services.store
    services.centres.keys()
    client = app.test_client()
    filer = Phone(client)
    reference = reference_in(file_report(filer, pin="4321"))
    drafting = Phone(client)
    start_report(drafting, "en")
    drafting.press(choice("report_danger", "no"))  # then the call drops: a sealed draft
    texter = Texter(app)
    texter.send("help", message_id="ATXid-rotate-help")
    assert services.callbacks.request("+9779812340000", "twilio", "CA-rotate-1")
    # A complaint filed by SMS: the "check and send" reply quotes it all (a sealed body).
    sms = Texter(app)
    sms_reference, replies = file_by_sms(sms, "en", description=SMS_STORY, pin="5678")
    assert any(SMS_STORY in r for r in replies)
    assert "added to case" in (sms.send("Rotate-timeline: they still have not paid me") or "")
    # The same phone starts a report by USSD and drops; it dials again and is offered the
    # draft: that session's ``start`` holds the draft, sealed. Its number is held sealed (the
    # outbox), so its sessions are re-keyed, not deleted.
    redial = Phone(client, sms.number)
    start_report(redial, "en")
    redial.press(choice("report_danger", "no"))
    assert "Continue where you stopped?" in redial.dial()
    # A withheld caller: keyed on its one session, its number is nowhere.
    withheld = Phone(client, "anonymous")
    start_report(withheld, "en")
    withheld.press(choice("report_danger", "no"))
    Texter(app, "anonymous").send("help", message_id="ATXid-rotate-withheld")  # no reply
    # Erased phones: one erases its only case from its own phone (its number is then held
    # nowhere, its call-back blanked); one has a case erased by reference and PIN from
    # another phone and keeps another case, whose "contact me on" number sent STOP.
    gone = Phone(client)
    gone_reference = reference_in(file_report(gone, pin="1111"))
    assert services.callbacks.request(gone.number, "twilio", "CA-rotate-2")
    erase(gone, gone_reference)
    twice = Phone(client)
    first = reference_in(file_report(twice, pin="2222"))
    reference_in(file_report(twice, contact="other", pin="3333"))
    stop = Texter(app, CONTACT)
    stop.send("STOP")
    # The STOP reply delivered and past the keep days: the contact number stays sealed
    # only in its complaint.
    stop_rows = [r["id"] for r in store.outbox() if r["to_sealed"]
                 and services.ussd.sealer.open(r["to_sealed"]) == CONTACT]
    store.db().execute(f"update outbox set status = 'sent', updated_at = 1 where id in "
                       f"({', '.join(map(str, stop_rows))})")
    assert erase_outbox_bodies(store, 2, time.time()) == len(stop_rows)
    erase(Phone(client), first, "2222")
    # An SMS queued before bodies were sealed (plain text, as a migration left it).
    enqueue(store, OutboxItem("legacy-rotate-1", services.ussd.sealer.seal(texter.number), "en",
                              LEGACY_BODY, "gsm", 1,
                              phone_key=services.ussd.hasher.key(texter.number)))
    row = services.store.db().execute("select id from complaints where reference = ?",
                                      [reference]).fetchone()
    services.complaints.act(row[0], "note", None, "operator:test", "called her brother back")
    recordings = services.recordings
    recordings_db.insert(services.store, {
        "key": "rec-rotate-1", "complaint_id": row[0], "reference": reference,
        "provider": "twilio", "url_sealed": recordings.url_sealer.seal("https://x.test/r/1"),
        "created_at": time.time()})
    (claimed,) = recordings_db.claim(services.store, time.time(), 60, "tok", 10)
    assert recordings_db.finish(services.store, claimed["id"], "tok", {
        "status": "stored", "audio_sealed": recordings.audio_sealer.seal(AUDIO, b"rec-rotate-1"),
        "bytes": len(AUDIO), "mimetype": "audio/wav", "stored_at": time.time(),
        "updated_at": time.time()})
    services.store.flush()
    erased = [r[0] for r in store.db().execute("select phone_key from erased_phones")]
    assert sorted(erased) == sorted(services.ussd.hasher.key(p.number) for p in (gone, twice))
    return {"reference": reference, "filer": filer.number, "drafting": drafting.number,
            "recording": claimed["id"], "texter": texter.number, "complaint_id": row[0],
            "sms": sms.number, "sms_reference": sms_reference, "twice": twice.number,
            "withheld": services.ussd.hasher.caller_key("anonymous", "ussd", withheld.session)}


def rotate(tmp_path: Path, key: str = TEST_SECRET, new: str = NEW_KEY) -> tuple[int, str]:
    env = {"MIGRANTLINE_DATA_DIR": str(tmp_path / "var"), "MIGRANTLINE_SECRET_KEY": key}
    result = CliRunner().invoke(main, ["keys", "rotate", "--yes", "--new-key-stdin"],
                                input=new + "\n", env=env)
    return result.exit_code, result.output


def pseudonyms(conn: Any) -> dict[str, set[str]]:
    """Every phone pseudonym stored, by table and column: every ``phone_key`` column of
    every table (found in the schema, not in rekey's list), and ``phones.key``."""
    columns = [("phones", "key")] + [(t, "phone_key") for t in stored.tables(conn) if any(
        c[0] == "phone_key" for c in stored.columns(conn, t))]
    assert {(t, c) for t, c, _ in rekey.PSEUDONYMS} == set(columns)
    return {f"{table}.{column}": {str(v) for (v,) in conn.execute(
        f"select {column} from {table} where {column} is not null and {column} != ''")}
        for table, column in columns}


def held_numbers(conn: Any, key: bytes) -> set[str]:
    """The pseudonyms, under ``key``, of every number the database holds sealed."""
    hasher = PhoneHasher(key)
    return {hasher.key(Sealer(key, purpose).open(str(v)))
            for table, column, purpose in rekey.PHONE_SOURCES
            for (v,) in conn.execute(f"select {column} from {table} where {column} "
                                     "is not null and {column} != ''".format(column=column))}


def test_rotate_reseals_everything_and_the_old_key_opens_nothing(tmp_path: Path) -> None:
    from bench.standin import StandIn
    from sms_flows.outbox import make_worker

    app = make_app(tmp_path)
    filed = fill(app)
    before = sealed_values(app)
    columns = {(c.table, c.column) for c, _, _ in before}
    assert columns >= {("complaints", "description_sealed"), ("complaint_events",
                       "detail_sealed"), ("outbox", "to_sealed"), ("outbox", "body"),
                       ("callbacks", "phone_sealed"), ("ussd_sessions", "last_text"),
                       ("ussd_sessions", "start"), ("voice_recordings", "audio_sealed"),
                       ("complaint_messages", "body_sealed"),
                       ("centre_identity", "keys_sealed")}, columns
    old_tokens = [v[len(c.prefix):] if isinstance(v, str) else v for c, _, v in before
                  if isinstance(v, str | bytes) and len(v) > 40]
    conn = app.extensions["migrantline"].store.db().conn
    old_keys = set().union(*pseudonyms(conn).values())
    assert str(filed["withheld"]) in old_keys
    claims = conn.execute("select count(*) from sms_inbound").fetchone()[0]
    data = tmp_path / "var"
    assert LEGACY_BODY.encode() in stored.at_rest(data, conn)
    app.extensions["migrantline"].store.close()

    code, output = rotate(tmp_path)
    assert code == 0, output
    assert "complaints.description_sealed: 3 re-sealed" in output  # progress, per column
    assert "ussd_sessions.start: 1 re-sealed" in output  # the draft offered on redial
    assert f"sms_inbound.digest: {claims} emptied" in output
    assert "Set MIGRANTLINE_SECRET_KEY to the new key" in output

    # Straight after the rotation, before anything new is written: every pseudonym stored
    # is the new key's pseudonym of a number held sealed; none of the old is left (the
    # withheld caller's per-session key, the fully erased phone's marker: deleted).
    check = open_store(data)
    try:
        conn = check.db().conn
        held = held_numbers(conn, NEW_KEY.encode())
        found = pseudonyms(conn)
        for where, keys in found.items():
            assert keys <= held, (where, keys - held)
        assert not old_keys & set().union(*found.values())
        assert found["erased_phones.phone_key"] == {
            PhoneHasher(NEW_KEY.encode()).key(str(filed["twice"]))}
        # The claims of inbound SMS stay (a provider's retry is still recognised), their
        # keyed digests are emptied: they cannot be recomputed, the text is not kept.
        assert tuple(conn.execute("select count(*), count(digest) from sms_inbound"
                                  ).fetchone()) == (claims, 0)
    finally:
        check.close()

    with pytest.raises(settings.SecretKeyError, match="not the key the data"):
        make_app(tmp_path)  # the old key: refused, nothing sealed with it any more
    # --demo: webhooks need no authentication for this check; the wrong key stops it.
    served = subprocess.run([str(BIN), "serve", "--demo", "--port", str(free_port())],
                            cwd=ROOT, env=env_for(tmp_path), capture_output=True, text=True,
                            timeout=60)
    assert served.returncode == 1 and "not the key the data" in served.stderr, served.stderr
    standin = StandIn()  # the SMS provider (Kannel), on a loopback port
    app = make_app(tmp_path, MIGRANTLINE_SECRET_KEY=NEW_KEY, MIGRANTLINE_SMS_PROVIDER="kannel",
                   KANNEL_SENDSMS_URL=standin.url + "/cgi-bin/sendsms", KANNEL_USERNAME="ml",
                   KANNEL_PASSWORD="pw", KANNEL_SENDER="5555",
                   MIGRANTLINE_BASE_URL="https://ml.example.org")
    services = app.extensions["migrantline"]
    store = services.store
    client = app.test_client()
    try:
        # The complaint reads back, for operators and for the caller (PIN from another phone).
        row = services.complaints.get(int(filed["complaint_id"]))
        shown = services.complaints.reveal(row)
        assert shown["description"] == DESCRIPTION and shown["phone"] == filed["filer"]
        other = Phone(client)
        follow(other, str(filed["reference"]))
        assert "Received" in other.press("4321")
        # The filing phone is still recognised (its pseudonym was recomputed): status
        # without a PIN, and the language it chose is remembered.
        filer = Phone(client, str(filed["filer"]))
        assert "Received" in follow(filer, str(filed["reference"]))
        assert store.phone_language(services.ussd.hasher.key(filer.number)) == "en"
        # What cannot be re-keyed is gone, not left under the old key: a phone whose number
        # is held nowhere (a draft half typed, its language) starts afresh. The recording plays.
        drafting = Phone(client, str(filed["drafting"]))
        assert "Continue" not in drafting.dial()
        assert services.recordings.audio(int(filed["recording"]))[0] == AUDIO
        assert services.ussd.sealer.open(store.outbox()[0]["to_sealed"])
        notes = [e for e in services.complaints.history(int(filed["complaint_id"]))
                 if e["kind"] == "note"]
        assert notes[0]["detail"] == "called her brother back"
        # A phone whose number is held is offered its draft again: the sealed ``start`` of
        # its last session (the draft offered on redial) opens with the new key.
        assert "Continue where you stopped?" in Phone(client, str(filed["sms"])).dial()
        # A STOP from the number a case gave as its contact still holds; a provider's retry
        # of a message answered before the rotation is not answered twice.
        assert is_opted_out(store, services.ussd.hasher.key(CONTACT))
        assert Texter(app, str(filed["texter"])).send("help", "ATXid-rotate-help") is None
        assert services.sms.receive(Inbound("africastalking", "ATXid-rotate-withheld",
                                            "anonymous", "help")).status == "duplicate"

        # Every SMS text is sealed with the new key (legacy plain ones too), none with the old.
        new_sealer, old_sealer = Sealer(NEW_KEY.encode()), Sealer(TEST_SECRET.encode())
        outbox = [r for r in store.outbox() if r["body"]]
        assert outbox and all(r["body"].startswith(SEALED) for r in outbox)
        for message in outbox:
            with pytest.raises(Exception):  # noqa: B017 - any failure to open will do
                open_text(old_sealer, message["body"])
        bodies = {r["id"]: open_text(new_sealer, r["body"]) for r in outbox}
        assert LEGACY_BODY in bodies.values()
        assert any(SMS_STORY in b and "Check and send" in b for b in bodies.values())
        # The complaint page shows its SMS (the receipt) opened ...
        cheap_hashes(app)
        add_operator(app, "op@example.org")
        operator = app.test_client()
        assert sign_in(operator, "op@example.org").status_code == 303
        detail = page(operator, f"/operator/complaints/{filed['complaint_id']}")
        receipts = [bodies[r["id"]] for r in outbox
                    if r["key"].startswith("complaint-receipt:") and r["to_sealed"]
                    and new_sealer.open(r["to_sealed"]) == filed["filer"]]
        assert receipts and receipts[0] in html.unescape(detail.split('id="outbox"')[1])
        assert "cannot be decrypted" not in detail
        # The message texted about the case filed by SMS reads back on its timeline.
        (sms_case,) = store.db().execute("select id from complaints where reference = ?",
                                         [filed["sms_reference"]]).fetchone()
        timeline = page(operator, f"/operator/complaints/{sms_case}")
        assert "Rotate-timeline: they still have not paid me" in timeline
        assert "cannot be decrypted" not in timeline
        # ... and the outbox worker, with the new key, sends every one of them.
        queued = len(store.outbox("queued"))
        worker = make_worker(dict(app.config), store, NEW_KEY.encode())
        try:
            assert worker.drain() == {"sent": queued}
        finally:
            worker.close()
        texts = [r.get("text", "") for r in standin.received]
        assert len(texts) == queued and LEGACY_BODY in texts
        assert any(SMS_STORY in t for t in texts)

        # The old key opens nothing stored; the old ciphertexts are gone from the files.
        after = sealed_values(app)
        assert {(c.table, c.column) for c, _, _ in after} >= columns
        conn = store.db().conn
        for column, context, value in after:
            assert opens(column, value, context, NEW_KEY.encode()), (column, context)
            assert not opens(column, value, context, TEST_SECRET.encode()), (column, context)
        old = PhoneHasher(TEST_SECRET.encode()).key(str(filed["filer"]))
        assert conn.execute("select count(*) from phones where key = ?", [old]).fetchone()[0] == 0
        raw = stored.at_rest(data, conn)
    finally:
        store.close()
        standin.close()
    left = [t for t in old_tokens if (t.encode() if isinstance(t, str) else t) in raw]
    assert not left, f"{len(left)} old ciphertexts still in the data files"
    assert LEGACY_BODY.encode() not in raw  # sealed now, its plain text zeroed


def test_a_rotation_with_the_wrong_key_changes_nothing(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    fill(app)
    app.extensions["migrantline"].store.close()
    code, output = rotate(tmp_path, key="wrong-" + TEST_SECRET[6:])
    assert code == 1 and "not the key the data" in output
    code, output = rotate(tmp_path, new="aaaa")
    assert code == 1 and "too weak" in output
    app = make_app(tmp_path)  # the old key still opens everything
    row = app.extensions["migrantline"].complaints.get(1)
    assert app.extensions["migrantline"].complaints.reveal(row)["description"] == DESCRIPTION
    app.extensions["migrantline"].store.close()


@pytest.mark.sqlite_only  # a key kept in the data folder: refused on PostgreSQL
def test_a_key_kept_in_the_data_folder_is_replaced_there(tmp_path: Path) -> None:
    app = make_app(tmp_path, MIGRANTLINE_SECRET_KEY=None)
    fill(app)
    app.extensions["migrantline"].store.close()
    old = (tmp_path / "var" / "secret_key").read_text()
    env = {"MIGRANTLINE_DATA_DIR": str(tmp_path / "var")}
    result = CliRunner().invoke(main, ["keys", "rotate", "--yes"], env=env)
    assert result.exit_code == 0, result.output
    new = (tmp_path / "var" / "secret_key").read_text()
    assert new != old and new in result.output  # printed, and where the old one was
    assert not (tmp_path / "var" / "secret_key.new").exists()
    app = make_app(tmp_path, MIGRANTLINE_SECRET_KEY=None)
    row = app.extensions["migrantline"].complaints.get(1)
    assert app.extensions["migrantline"].complaints.reveal(row)["description"] == DESCRIPTION
    app.extensions["migrantline"].store.close()
