"""Nothing personal in clear at rest, and deletion deletes (issue 12, point 4).

Complaints are filed through the real endpoints (USSD and SMS) with a
sentinel word in the story, a PIN and a phone number; then every file under
the data folder (the database, its -wal and -shm, the audio folders) and the
service's log output are searched for the sentinel, the number in every
format a person or a provider writes it, and the PIN as a path would hold
it. Before deletion nothing is in clear; after "Delete my data" and after
``migrantline retention purge`` nothing linked to the case is left at all,
not even sealed: the sealed tokens themselves are gone from every file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from ussd_app.cli import main
from ussd_app.privacy.protect import SEALED, open_text
from ussd_app.store.base import connect_postgres
from ussd_app.store.privacy import linked_counts

from . import databases, stored
from .conftest import TEST_SECRET, Phone, make_app
from .test_complaints import choice, complaints_menu, file_report, menu_key, reference_in, title
from .test_complaints_sms import file_by_sms
from .test_sms import Texter

SENTINEL = "Zanzibarquokka"  # in no content, no catalog, no code
PIN = "4826"
USSD_NUMBER = "+9779841234567"
SMS_NUMBER = "+9779807654321"
PURGED_NUMBER = "+9779812398765"


def number_forms(number: str) -> list[str]:
    """A number as it may be written: +977..., 977..., 00977..., local, with spaces."""
    digits = number.lstrip("+")
    local = digits[3:]
    return [number, digits, "00" + digits, local, "0" + local,
            f"+{digits[:3]} {local}", f"{local[:3]} {local[3:6]} {local[6:]}",
            f"{local[:5]} {local[5:]}", f"+{digits[:3]}-{local[:3]}-{local[3:]}"]


def pin_forms(pin: str) -> list[str]:
    """A PIN as a stored path or state would hold it, or as an unkeyed hash of the
    message that carried it (reversed by trying all 10,000)."""
    return [f"*{pin}*", f"*{pin}", f'"{pin}"', f"pin_typed\", \"{pin}", f"'{pin}'",
            hashlib.sha256(pin.encode()).hexdigest()[:16]]


def files(data_dir: Path) -> dict[str, bytes]:
    """Every file of the data folder and, on PostgreSQL, every text and bytea value of
    every table of the database (what a dump or a stolen login would read)."""
    found = {str(p.relative_to(data_dir)): p.read_bytes() for p in sorted(data_dir.rglob("*"))
             if p.is_file() and p.name != "secret_key"}
    if databases.on_postgres():
        conn = connect_postgres(os.environ["MIGRANTLINE_DATABASE_URL"])
        try:
            found["postgresql"] = stored.all_values(conn)
        finally:
            conn.close()
    return found


def found(haystacks: dict[str, bytes], needles: list[str]) -> list[tuple[str, str]]:
    """(file, needle) for every needle in any file, as UTF-8 and as UTF-16 (SQLite can
    store either)."""
    hits = []
    for name, data in haystacks.items():
        for needle in needles:
            if needle.encode() in data or needle.encode("utf-16-le") in data:
                hits.append((name, needle))
    return hits


def log_text(caplog: pytest.LogCaptureFixture) -> dict[str, bytes]:
    return {"log": "\n".join(r.getMessage() + " " + str(r.exc_text or "")
                             for r in caplog.records).encode()}


@pytest.fixture
def app(tmp_path: Path) -> Flask:
    app = make_app(tmp_path)
    yield app
    app.extensions["migrantline"].store.close()


def test_nothing_in_clear_and_deletion_deletes(app: Flask, client: FlaskClient,
                                               caplog: pytest.LogCaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    caplog.set_level(logging.DEBUG)
    services = app.extensions["migrantline"]
    store, sealer = services.store, services.ussd.sealer
    data_dir = Path(app.config["MIGRANTLINE_DATA_DIR"])
    # By USSD, with a PIN, contact allowed (a receipt SMS is queued) ...
    phone = Phone(client, USSD_NUMBER)
    ussd_ref = reference_in(file_report(phone, pin=PIN, description=f"{SENTINEL} took it"))
    # ... asking for the hotlines by SMS too ...
    phone.dial()
    # ... and by SMS, where the "check and send" summary quotes the whole story back.
    texter = Texter(app)
    texter.number = SMS_NUMBER
    sms_ref, replies = file_by_sms(texter, "en", description=f"{SENTINEL} by SMS", pin=PIN)
    assert any(SENTINEL in r for r in replies)  # the summary did carry it
    # A status question with the PIN from another phone: the PIN typed once more.
    other = Phone(client)
    complaints_menu(other, "en")
    other.press(menu_key("complaints", "status_ref"), sms_ref)
    assert "Received" in other.press(PIN)
    store.flush()

    needles = [SENTINEL, *number_forms(USSD_NUMBER), *number_forms(SMS_NUMBER),
               *pin_forms(PIN)]
    assert found(files(data_dir), needles) == []
    assert found(log_text(caplog), needles) == []
    # Every SMS body is sealed at rest, and opens to what is sent.
    outbox = store.outbox()
    assert outbox and all(r["body"].startswith(SEALED) for r in outbox)
    assert any(SENTINEL in open_text(sealer, r["body"]) for r in outbox)

    # The sealed tokens of each case: after deletion they must be in no file at all.
    db = store.db()
    keys = {ref: db.execute("select phone_key from complaints where reference = ?",
                            [ref]).fetchone()[0] for ref in (ussd_ref, sms_ref)}
    sealed = {ref: [v for v in db.execute(
        "select phone_sealed, description_sealed, employer_sealed, city_sealed "
        "from complaints where reference = ?", [ref]).fetchone() if v]
        for ref in (ussd_ref, sms_ref)}
    sealed[ussd_ref] += [r["body"][len(SEALED):] for r in outbox
                         if r["phone_key"] == keys[ussd_ref]]
    sealed[sms_ref] += [r["body"][len(SEALED):] for r in outbox
                        if r["phone_key"] == keys[sms_ref]]
    sessions = [r[0][len("sealed:"):] for r in db.execute(
        "select last_text from ussd_sessions where phone_key = ? and last_text like 'sealed:%'",
        [keys[ussd_ref]])]
    conversation = db.execute("select state from sms_conversations where phone_key = ?",
                              [keys[sms_ref]]).fetchone()
    assert conversation is not None
    sealed[sms_ref] += [conversation[0].removeprefix("sealed:")]
    assert all(linked_counts(store, k)["outbox"] for k in keys.values())

    # "Delete my data" from the filing phone (USSD) ...
    complaints_menu(phone, "en")
    phone.press(menu_key("complaints", "erase_ref"))
    assert title("erase_confirm", "en") in phone.press(ussd_ref)
    assert "deleted" in phone.press(choice("erase_confirm", "yes"))
    # ... and by reference and PIN from another phone, for the SMS case.
    complaints_menu(other, "en")
    other.press(menu_key("complaints", "erase_ref"), sms_ref, PIN)
    assert "deleted" in other.press(choice("erase_confirm", "yes"))
    store.flush()
    for ref, key in keys.items():
        assert linked_counts(store, key) == {"ussd_sessions": 0, "sms_conversations": 0,
                                             "voice_calls": 0, "phones": 0, "outbox": 0}, ref
    erased = db.execute("select count(*) from outbox where body != '' and (key like "
                        "'complaint-receipt:%' or key like 'sms-%')").fetchone()[0]
    assert erased == 0  # the receipt and every SMS reply: text and number gone
    hits = found(files(data_dir), [*needles, *sessions,
                                   *(s for tokens in sealed.values() for s in tokens)])
    assert hits == []
    assert found(log_text(caplog), needles) == []

    # Retention: a closed case past its time goes with everything linked to it.
    third = Phone(client, PURGED_NUMBER)
    purged_ref = reference_in(file_report(third, pin=PIN, description=f"{SENTINEL} old"))
    third.dial()
    store.flush()
    row = db.execute("select id, phone_key, description_sealed from complaints "
                     "where reference = ?", [purged_ref]).fetchone()
    services.complaints.set_status(row[0], "closed", None, "operator:test")
    db.execute("update complaints set closed_at = ? where id = ?",
               [time.time() - 400 * 86400, row[0]])
    assert linked_counts(store, row[1])["ussd_sessions"] == 2
    monkeypatch.setenv("MIGRANTLINE_DATA_DIR", str(data_dir))
    monkeypatch.setenv("MIGRANTLINE_SECRET_KEY", TEST_SECRET)
    result = CliRunner().invoke(main, ["retention", "purge"])
    assert result.exit_code == 0, result.output
    assert linked_counts(store, row[1]) == {"ussd_sessions": 0, "sms_conversations": 0,
                                            "voice_calls": 0, "phones": 0, "outbox": 0}
    assert found(files(data_dir), [*needles, *number_forms(PURGED_NUMBER), row[2]]) == []
    assert found(log_text(caplog), [*needles, *number_forms(PURGED_NUMBER)]) == []


def test_no_pin_in_a_stored_path_once_filed_and_the_last_hop_still_answers(
        app: Flask, client: FlaskClient) -> None:
    services = app.extensions["migrantline"]
    phone = Phone(client)
    done = file_report(phone, pin=PIN)
    reference = reference_in(done)
    services.store.flush()
    [row] = services.store.db().execute(
        "select last_text, resumable from ussd_sessions where id = ?",
        [phone.session]).fetchall()
    assert row == ("", 0)  # nothing to resume: no path kept, PIN or not
    # The provider retries the last hop (its cumulative text holds the PIN): same reference.
    assert phone.hop_text("*".join(phone.inputs)) == done
    # Another worker (a fresh process, same database) replays it the same way.
    second = make_app(Path(app.config["MIGRANTLINE_DATA_DIR"]).parent)
    try:
        again = Phone(second.test_client(), phone.number)
        again.session = phone.session
        assert reference_in(again.hop_text("*".join(phone.inputs))) == reference
    finally:
        second.extensions["migrantline"].store.close()
    assert services.store.db().execute("select count(*) from complaints").fetchone()[0] == 1


def test_sms_state_keeps_no_pin_once_filed(app: Flask) -> None:
    services = app.extensions["migrantline"]
    texter = Texter(app)
    file_by_sms(texter, "en", pin=PIN)
    key = services.ussd.hasher.key(texter.number)
    [state] = services.store.db().execute(
        "select state from sms_conversations where phone_key = ?", [key]).fetchone()
    opened = services.ussd.sealer.open(state.removeprefix("sealed:")) \
        if state.startswith("sealed:") else state
    assert PIN not in opened and "Desert Star" not in opened
    assert '"reference"' in opened  # what the last screen showed, no more


def test_delivered_sms_lose_their_text_after_the_keep_days(app: Flask) -> None:
    from ussd_app.privacy.purges import purge_outbox_bodies

    services = app.extensions["migrantline"]
    store = services.store
    texter = Texter(app)
    texter.send("help")
    texter.send("aide")
    rows = store.outbox()
    assert len(rows) == 2
    store.db().execute("update outbox set status = 'delivered', updated_at = ? where id = ?",
                       [time.time() - 8 * 86400, rows[0]["id"]])
    assert purge_outbox_bodies(store, 7) == 1
    first, second = store.outbox()
    assert (first["body"], first["to_sealed"], first["status"], first["segments"]) == \
        ("", "", "delivered", rows[0]["segments"])  # the figures stay
    assert first["erased_at"] and second["body"] == rows[1]["body"]  # queued: kept
    assert purge_outbox_bodies(store, 7) == 0


class _Refusing(BaseHTTPRequestHandler):
    """A Kannel that refuses every message and quotes the number back (as some do)."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server convention
        to = parse_qs(urlsplit(self.path).query).get("to", [""])[0]
        body = f"Invalid destination {to}".encode()
        self.send_response(400)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_sending_logs_and_stores_no_number_and_no_text(tmp_path: Path,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    from bench.standin import StandIn
    from sms_flows.outbox import make_worker

    caplog.set_level(logging.DEBUG)
    standin, refusing = StandIn(), ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    threading.Thread(target=refusing.serve_forever, daemon=True).start()
    refusing_url = f"http://127.0.0.1:{refusing.server_address[1]}/cgi-bin/sendsms"
    # DEBUG on purpose: the HTTP client's request lines (the whole Kannel URL) stay out.
    app = make_app(tmp_path, MIGRANTLINE_LOG_LEVEL="DEBUG", MIGRANTLINE_SMS_PROVIDER="kannel",
                   KANNEL_SENDSMS_URL=standin.url + "/cgi-bin/sendsms", KANNEL_USERNAME="ml",
                   KANNEL_PASSWORD="pw", KANNEL_SENDER="5555",
                   MIGRANTLINE_BASE_URL="https://ml.example.org")
    try:
        services = app.extensions["migrantline"]
        texter = Texter(app)
        texter.number = SMS_NUMBER
        file_by_sms(texter, "en", description=f"{SENTINEL} sent", pin=PIN)
        config = dict(app.config)
        worker = make_worker(config, services.store, TEST_SECRET.encode())
        assert worker.drain().get("sent")
        assert any(SENTINEL in r.get("text", "") for r in standin.received)  # it did go
        texter.send("help")
        worker = make_worker({**config, "KANNEL_SENDSMS_URL": refusing_url}, services.store,
                             TEST_SECRET.encode())
        assert worker.drain() == {"failed": 1}
        [failed] = services.store.outbox("failed")
        assert failed["error"] == "Kannel 400: Invalid destination [number]"
        services.store.flush()
        needles = [SENTINEL, *number_forms(SMS_NUMBER), *pin_forms(PIN)]
        assert found(log_text(caplog), needles) == []
        assert found(files(tmp_path / "var"), needles) == []
    finally:
        app.extensions["migrantline"].store.close()
        standin.close()
        refusing.shutdown()
        refusing.server_close()


def test_a_voice_complaint_leaves_nothing_after_deletion(
        tmp_path: Path, recording_server: object, audio: dict[str, bytes],
        caplog: pytest.LogCaptureFixture) -> None:
    from tests.test_voice_complaints import SID, TOKEN, recording, start_report
    from tests.voice_phone import VoiceCaller

    caplog.set_level(logging.DEBUG)
    app = make_app(tmp_path, MIGRANTLINE_RECORDING_HOSTS="http://127.0.0.1",
                   TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN)
    try:
        services = app.extensions["migrantline"]
        store, data_dir = services.store, tmp_path / "var"
        number = "+9779818887776"
        caller = VoiceCaller(app.test_client(), auth_token=TOKEN, number=number)
        start_report(caller)
        caller.press("2")
        caller.speak(recording(recording_server, "e", audio["mp3"]), seconds=6)
        caller.press("3")
        caller.speak(recording(recording_server, "c", audio["mp3"]), seconds=3)
        caller.speak(recording(recording_server, "s", audio["wav"]), seconds=20)
        caller.keys("1", "1")  # contact any time; choose a PIN
        caller.press(PIN + "#")
        caller.press("2")  # not shared with a centre abroad
        caller.press("1")
        done = caller.wait_out()
        assert done.kind == "hangup"
        [(reference, phone_key)] = store.db().execute(
            "select reference, phone_key from complaints").fetchall()
        deadline = time.monotonic() + 10
        while len([r for r in services.recordings.for_complaint(reference)
                   if r["status"] == "stored"]) < 3:
            services.recordings.fetch_due()
            assert time.monotonic() < deadline
            time.sleep(0.05)
        store.flush()
        audio_chunk = audio["wav"][len(audio["wav"]) // 2:][:64]
        needles = [*number_forms(number), *pin_forms(PIN)]
        assert found(files(data_dir), needles) == []
        assert not any(audio_chunk in data for data in files(data_dir).values())
        [state] = store.db().execute("select state from voice_calls where phone_key = ?",
                                     [phone_key]).fetchone()
        opened = services.ussd.sealer.open(state.removeprefix("sealed:"))
        assert PIN not in opened  # the filed call's state keeps the reference, no PIN
        # "Delete my data" from the same phone, by voice.
        again = VoiceCaller(app.test_client(), auth_token=TOKEN, number=number)
        again.dial()
        again.keys("7", "3")
        again.press(reference + "#")
        again.wait_out()
        again.press("1")
        again.wait_out()
        store.flush()
        assert store.db().execute("select erased_at is not null from complaints").fetchone()[0]
        assert linked_counts(store, phone_key) == {"ussd_sessions": 0, "sms_conversations": 0,
                                                   "voice_calls": 0, "phones": 0, "outbox": 0}
        assert store.db().execute(
            "select count(*) from voice_recordings where audio_sealed is not null "
            "or url_sealed is not null").fetchone()[0] == 0
        assert found(files(data_dir), [*needles, state.removeprefix("sealed:")]) == []
        assert found(log_text(caplog), needles) == []
    finally:
        app.extensions["migrantline"].store.close()


def test_a_draft_offered_again_is_sealed_in_the_new_session(app: Flask,
                                                            client: FlaskClient) -> None:
    from .test_complaints import start_report

    services = app.extensions["migrantline"]
    phone = Phone(client)
    start_report(phone, "en")
    for key in (choice("report_danger", "no"), choice("report_who", "self"),
                choice("report_category", "fees"), choice("report_against", "employer")):
        phone.press(key)
    phone.press(SENTINEL)
    offer = phone.dial()  # dropped; dialled again: the new session starts on the draft
    assert "Continue where you stopped?" in offer
    services.store.flush()
    starts = [r[0] for r in services.store.db().execute("select start from ussd_sessions")]
    assert any(s.startswith("sealed:") for s in starts)
    assert found(files(Path(app.config["MIGRANTLINE_DATA_DIR"])), [SENTINEL]) == []
    assert title("report_country", "en") in phone.press("1")  # and it still resumes


def test_another_workers_late_flush_does_not_bring_erased_sessions_back(
        tmp_path: Path) -> None:
    """Worker B buffered a hop of the phone; worker A erases the case; B flushes after."""
    first = make_app(tmp_path)
    second = make_app(tmp_path, MIGRANTLINE_SESSION_FLUSH_MS="600000")  # flushes when told
    try:
        phone = Phone(first.test_client(), USSD_NUMBER)
        reference = reference_in(file_report(phone, pin=PIN))
        first.extensions["migrantline"].store.flush()
        late = Phone(second.test_client(), USSD_NUMBER)
        complaints_menu(late, "fr")  # buffered in B: a session and a new language
        key = second.extensions["migrantline"].ussd.hasher.key(USSD_NUMBER)
        assert first.extensions["migrantline"].complaints.erase(reference)
        second.extensions["migrantline"].store.flush()
        store = first.extensions["migrantline"].store
        assert linked_counts(store, key) == {"ussd_sessions": 0, "sms_conversations": 0,
                                             "voice_calls": 0, "phones": 0, "outbox": 0}
        # The phone uses the service again afterwards: that is kept as usual.
        again = Phone(second.test_client(), USSD_NUMBER)
        again.dial()
        second.extensions["migrantline"].store.flush()
        assert linked_counts(store, key)["ussd_sessions"] == 1
    finally:
        first.extensions["migrantline"].store.close()
        second.extensions["migrantline"].store.close()


@pytest.mark.sqlite_only  # SQLite's WAL file and its checkpoint, blocked by a reader
def test_an_erasure_never_hangs_on_a_long_reader(app: Flask, client: FlaskClient,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A dashboard query holding a snapshot: the erasing hop answers at once, and the
    WAL is truncated in the background once the reader is done."""
    import sqlite3

    services = app.extensions["migrantline"]
    phone = Phone(client)
    reference = reference_in(file_report(phone, pin=PIN))
    db_path = Path(app.config["MIGRANTLINE_DATA_DIR"]) / "migrantline.db"
    reader = sqlite3.connect(db_path, isolation_level=None)
    reader.execute("begin")
    reader.execute("select count(*) from complaints").fetchone()  # holds its snapshot
    try:
        complaints_menu(phone, "en")
        phone.press(menu_key("complaints", "erase_ref"), reference)
        started = time.monotonic()
        assert "deleted" in phone.press(choice("erase_confirm", "yes"))
        assert time.monotonic() - started < 5  # the 2 s wait, not the 10 s busy timeout
        assert "waits for a reader" in caplog.text  # it was blocked, and did not hang
    finally:
        reader.execute("commit")
        reader.close()
    wal = db_path.with_name("migrantline.db-wal")
    deadline = time.monotonic() + 15
    while wal.exists() and wal.stat().st_size and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not wal.exists() or wal.stat().st_size == 0
    assert services.store.db().execute(
        "select erased_at is not null from complaints").fetchone()[0]


@pytest.mark.postgres_only
def test_an_erasure_on_postgresql_vacuums_and_never_hangs_on_a_long_reader(
        app: Flask, client: FlaskClient) -> None:
    """PostgreSQL's counterpart of the WAL checkpoint is a VACUUM of the tables the
    erasure rewrote (``privacy.vacuum``): a reader holding an old snapshot does not
    make the erasing hop wait, and the erased text is in no table afterwards."""
    services = app.extensions["migrantline"]
    phone = Phone(client)
    reference = reference_in(file_report(phone, pin=PIN, description=f"{SENTINEL} read"))
    reader = connect_postgres(os.environ["MIGRANTLINE_DATABASE_URL"])
    reader.execute("begin isolation level repeatable read")
    reader.execute("select count(*) from complaints").fetchone()  # holds its snapshot
    try:
        complaints_menu(phone, "en")
        phone.press(menu_key("complaints", "erase_ref"), reference)
        started = time.monotonic()
        assert "deleted" in phone.press(choice("erase_confirm", "yes"))
        assert time.monotonic() - started < 5
    finally:
        reader.execute("commit")
        reader.close()
    assert services.store.db().execute(
        "select erased_at is not null from complaints").fetchone()[0]
    assert SENTINEL.encode() not in stored.all_values(services.store.db().conn)
    deadline = time.monotonic() + 5  # statistics reach other sessions within a second
    while not services.store.db().execute(
            "select count(*) from pg_stat_user_tables where relname = 'complaints' "
            "and last_vacuum is not null").fetchone()[0]:
        assert time.monotonic() < deadline, "the erasure did not vacuum complaints"
        time.sleep(0.2)
