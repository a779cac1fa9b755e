"""Complaint recordings: expected from a callback, fetched from a stand-in provider, kept
encrypted, retried, refused when they are not what they should be, erased with the case."""

from __future__ import annotations

import base64
import itertools
import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from ussd_app import settings
from ussd_app.channels.voice.recordings import (
    LEASE,
    NotStored,
    VoiceRecordings,
    parse_hosts,
    sniff_audio,
)
from ussd_app.cli import main
from ussd_app.complaints.service import Caller
from ussd_app.store import voice_recordings as recordings_db

from .conftest import TEST_SECRET, Phone, make_app
from .recording_server import RecordingServer, Reply
from .test_complaints import choice, complaints_menu, file_report, menu_key, reference_in

SID, TOKEN = "AC0123456789abcdef0123456789abcdef", "twilio-auth-token"
TWILIO_PATH = f"/2010-04-01/Accounts/{SID}/Recordings/RE0123456789abcdef0123456789abcdef"
_keys = itertools.count(1)




def recordings_app(tmp_path: Path, **overrides: str) -> Flask:
    config = {"MIGRANTLINE_RECORDING_HOSTS": "http://127.0.0.1", "TWILIO_ACCOUNT_SID": SID,
              "TWILIO_AUTH_TOKEN": TOKEN, "MIGRANTLINE_RECORDING_MAX_MB": "1",
              "MIGRANTLINE_RECORDING_MAX_ATTEMPTS": "3"}
    return make_app(tmp_path, **{**config, **overrides})


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = recordings_app(tmp_path)
    yield app
    app.extensions["migrantline"].store.close()


def rec(app: Flask) -> VoiceRecordings:
    return app.extensions["migrantline"].recordings


def file_complaint(app: Flask, phone: str = "+9779812345678") -> dict[str, Any]:
    services = app.extensions["migrantline"]
    caller = Caller("voice", phone, services.ussd.hasher.key(phone))
    return services.complaints.file(
        f"rec-test-{next(_keys)}", caller, "en",
        {"filed_by": "self", "category": "unpaid_wages", "contact": "any", "country": "QA",
         "description": "No pay for three months"})


def settle(app: Flask, reference: str, timeout: float = 10) -> list[dict[str, Any]]:
    """The complaint's recordings once no download of them is under way."""
    deadline = time.monotonic() + timeout
    while True:
        rows = rec(app).for_complaint(reference)
        if all(r["status"] not in ("pending", "fetching") for r in rows):
            return rows
        assert time.monotonic() < deadline, rows
        time.sleep(0.02)


def events(app: Flask, complaint_id: int) -> list[dict[str, Any]]:
    return app.extensions["migrantline"].complaints.history(complaint_id)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# ---------------------------------------------------------------- fetched and stored


def test_twilio_recording_is_fetched_as_mp3_with_basic_auth(
        app: Flask, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    c = file_complaint(app)
    recording_server.route(TWILIO_PATH + ".mp3", Reply(body=audio["mp3"], auth=(SID, TOKEN)))
    assert rec(app).expect(c["reference"], "twilio", recording_server.url + TWILIO_PATH, 2,
                           key="twilio:CA1:RE1") is True
    [row] = settle(app, c["reference"])
    assert row["status"] == "stored", row
    assert (row["duration"], row["bytes"], row["mimetype"]) == (2, len(audio["mp3"]),
                                                                "audio/mpeg")
    [seen] = recording_server.log
    assert seen.path == TWILIO_PATH + ".mp3"
    assert seen.headers["Authorization"] == basic(SID, TOKEN)
    assert rec(app).audio(row["id"]) == (audio["mp3"], "audio/mpeg")
    assert [e["kind"] for e in events(app, c["id"])] == ["filed", "recording_stored"]


def test_wrong_twilio_credentials_are_not_stored(
        tmp_path: Path, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    app = recordings_app(tmp_path, TWILIO_AUTH_TOKEN="wrong-token")
    c = file_complaint(app)
    recording_server.route(TWILIO_PATH + ".mp3", Reply(body=audio["mp3"], auth=(SID, TOKEN)))
    rec(app).expect(c["reference"], "twilio", recording_server.url + TWILIO_PATH, 2, key="k")
    [row] = settle(app, c["reference"])
    assert row["status"] == "failed" and row["error"] == "HTTP 401"  # retried: fixable
    with pytest.raises(NotStored):
        rec(app).audio(row["id"])
    app.extensions["migrantline"].store.close()


def test_africastalking_recording_is_a_plain_get_of_its_url(
        app: Flask, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    c = file_complaint(app)
    url = recording_server.route("/voice/recordings/ATVId_abc123.mp3",
                                 Reply(body=audio["bare_mp3"]))
    rec(app).expect(c["reference"], "africastalking", url, None, key="at:ATVId_abc123")
    [row] = settle(app, c["reference"])
    assert row["status"] == "stored" and row["mimetype"] == "audio/mpeg"
    [seen] = recording_server.log
    assert seen.path == "/voice/recordings/ATVId_abc123.mp3"
    assert "Authorization" not in seen.headers
    assert rec(app).audio(row["id"])[0] == audio["bare_mp3"]


def test_a_wav_gets_its_length_from_the_file(
        app: Flask, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    c = file_complaint(app)
    recording_server.route(TWILIO_PATH + ".wav", Reply(body=audio["wav"],
                                                       content_type="audio/x-wav",
                                                       auth=(SID, TOKEN)))
    rec(app).expect(c["reference"], "twilio", recording_server.url + TWILIO_PATH + ".wav", None,
                    key="k")
    [row] = settle(app, c["reference"])
    assert (row["status"], row["mimetype"], row["duration"]) == ("stored", "audio/wav", 2)
    assert [s.path for s in recording_server.log] == [TWILIO_PATH + ".wav"]  # no second suffix


def test_a_retried_callback_adds_nothing(
        app: Flask, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    c = file_complaint(app)
    url = recording_server.route("/rec/1.mp3", Reply(body=audio["mp3"]))
    assert rec(app).expect(c["reference"], "africastalking", url, 5, key="at:S1:1") is True
    settle(app, c["reference"])
    assert rec(app).expect(c["reference"], "africastalking", url, 5, key="at:S1:1") is False
    rec(app).fetch_due(time.time() + 86400)
    assert len(rec(app).for_complaint(c["reference"])) == 1
    assert len(recording_server.log) == 1
    assert [e["kind"] for e in events(app, c["id"])].count("recording_stored") == 1


def test_nothing_is_kept_without_a_recording_or_a_complaint(app: Flask) -> None:
    c = file_complaint(app)
    assert rec(app).expect(c["reference"], "africastalking", "", None, key="a") is False
    assert rec(app).expect("12345674", "twilio", "https://api.twilio.com/x", 1, key="b") \
        is False
    assert rec(app).for_complaint(c["reference"]) == []
    assert rec(app).for_complaint("12345674") == []
    with pytest.raises(ValueError):
        rec(app).expect(c["reference"], "skype", "https://api.twilio.com/x", 1, key="c")
    # A duration that is not a number is not one: the recording is still kept.
    assert rec(app).expect(c["reference"], "twilio", "https://elsewhere.example/x",
                           "abc", key="d") is True  # type: ignore[arg-type]
    assert settle(app, c["reference"])[0]["duration"] is None


# ---------------------------------------------------------------- retries


def test_a_server_error_is_retried_with_backoff_then_stored(
        app: Flask, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    c = file_complaint(app)
    url = recording_server.route("/rec/flaky.mp3", Reply(500, b"oops", "text/plain"),
                       Reply(body=audio["mp3"]))
    rec(app).expect(c["reference"], "africastalking", url, 2, key="flaky")
    [row] = settle(app, c["reference"])
    assert (row["status"], row["attempts"], row["error"]) == ("failed", 1, "HTTP 500")
    assert rec(app).fetch_due() == 0  # not due yet: the backoff holds it
    assert len(recording_server.log) == 1
    assert rec(app).fetch_due(time.time() + 3600) == 1
    [row] = rec(app).for_complaint(c["reference"])
    assert (row["status"], row["attempts"], row["error"]) == ("stored", 2, None)
    assert [s.status for s in recording_server.log] == [500, 200]
    assert rec(app).audio(row["id"])[0] == audio["mp3"]


def test_dead_after_the_last_attempt_and_the_history_says_why(
        app: Flask, recording_server: RecordingServer) -> None:
    c = file_complaint(app)
    url = recording_server.route("/rec/down.mp3", Reply(503, b"down", "text/plain"))
    rec(app).expect(c["reference"], "africastalking", url, 2, key="down")
    settle(app, c["reference"])
    rec(app).fetch_due(time.time() + 86400)
    rec(app).fetch_due(time.time() + 2 * 86400)
    rec(app).fetch_due(time.time() + 3 * 86400)  # MAX_ATTEMPTS=3: nothing more is tried
    [row] = rec(app).for_complaint(c["reference"])
    assert (row["status"], row["attempts"]) == ("dead", 3)
    assert len(recording_server.log) == 3
    dead = [e for e in events(app, c["id"]) if e["kind"] == "recording_dead"]
    assert len(dead) == 1 and "HTTP 503" in dead[0]["detail"]


def test_a_worker_killed_mid_download_is_taken_over_after_its_lease(
        app: Flask, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    c = file_complaint(app)
    store = app.extensions["migrantline"].store
    # The provider is down when the callback comes; then one worker claims and "dies".
    url = recording_server.route("/rec/late.mp3", Reply(503, b"down", "text/plain"))
    rec(app).expect(c["reference"], "africastalking", url, 2, key="late")
    settle(app, c["reference"])
    recording_server.route("/rec/late.mp3", Reply(body=audio["mp3"]))
    later = time.time() + 3600
    [claimed] = recordings_db.claim(store, later, LEASE, "dead-worker", 10)
    assert rec(app).fetch_due(later + 1) == 0  # still leased
    assert rec(app).fetch_due(later + LEASE + 1) == 1
    assert not recordings_db.finish(store, claimed["id"], "dead-worker", {"status": "dead"})
    assert rec(app).for_complaint(c["reference"])[0]["status"] == "stored"


# ---------------------------------------------------------------- refused


def test_a_page_that_is_not_audio_is_refused(app: Flask, recording_server: RecordingServer) -> None:
    c = file_complaint(app)
    url = recording_server.route("/rec/page.mp3", Reply(body=b"<!doctype html><html><body>Sign in"
                                                   b"</body></html>", content_type="audio/mpeg"))
    rec(app).expect(c["reference"], "africastalking", url, 2, key="page")
    [row] = settle(app, c["reference"])
    assert row["status"] == "dead" and "not audio" in row["error"]
    assert row["bytes"] is None and len(recording_server.log) == 1  # not retried: it cannot help
    with pytest.raises(NotStored):
        rec(app).audio(row["id"])


@pytest.mark.parametrize("chunked", [False, True], ids=["with-length", "chunked"])
def test_a_recording_over_the_size_cap_is_refused(
        app: Flask, recording_server: RecordingServer, audio: dict[str, bytes],
        chunked: bool) -> None:
    c = file_complaint(app)
    big = audio["mp3"] + b"\0" * 1_000_000  # MAX_MB=1
    headers = {"Transfer-Encoding": "chunked"} if chunked else {}
    url = recording_server.route("/rec/big.mp3", Reply(body=big, headers=headers))
    rec(app).expect(c["reference"], "africastalking", url, 60, key="big")
    [row] = settle(app, c["reference"])
    assert row["status"] == "dead" and "over the limit" in row["error"], row


@pytest.mark.parametrize("url", [
    "https://metadata.internal/latest/meta-data/",
    "https://api.twilio.com.evil.example/rec.mp3",
    "file:///etc/passwd",
    "ftp://127.0.0.1/rec.mp3",
    "http://user:pw@127.0.0.1/rec.mp3",
    "not a url at all",
])
def test_a_url_not_allowed_is_never_fetched(app: Flask, recording_server: RecordingServer,
                                            url: str) -> None:
    c = file_complaint(app)
    rec(app).expect(c["reference"], "twilio", url, 2, key="bad")
    [row] = settle(app, c["reference"])
    assert row["status"] == "dead" and row["attempts"] == 1, row
    assert not recording_server.log
    assert [e["kind"] for e in events(app, c["id"])][-1] == "recording_dead"


def test_plain_http_only_where_the_allow_list_says_so(
        tmp_path: Path, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    app = recordings_app(tmp_path, MIGRANTLINE_RECORDING_HOSTS="127.0.0.1")  # https only
    c = file_complaint(app)
    url = recording_server.route("/rec/1.mp3", Reply(body=audio["mp3"]))
    rec(app).expect(c["reference"], "africastalking", url, 2, key="http")
    [row] = settle(app, c["reference"])
    assert row["status"] == "dead" and "plain http" in row["error"] and not recording_server.log
    app.extensions["migrantline"].store.close()


def test_redirects_are_checked_and_credentials_stay_with_the_first_host(
        tmp_path: Path, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    app = recordings_app(tmp_path, MIGRANTLINE_RECORDING_HOSTS="http://127.0.0.1,"
                                                               "http://localhost")
    port = recording_server.server_address[1]
    media = f"http://localhost:{port}/media/RE1.mp3"
    recording_server.route(TWILIO_PATH + ".mp3", Reply(302, b"", "text/plain", {"Location": media},
                                             auth=(SID, TOKEN)))
    recording_server.route("/media/RE1.mp3", Reply(body=audio["mp3"]))
    c = file_complaint(app)
    rec(app).expect(c["reference"], "twilio", recording_server.url + TWILIO_PATH, 2, key="redirect")
    [row] = settle(app, c["reference"])
    assert row["status"] == "stored", row
    first, second = recording_server.log
    assert first.headers["Authorization"] == basic(SID, TOKEN)
    assert second.path == "/media/RE1.mp3" and "Authorization" not in second.headers
    # A redirect to a host not allowed is not followed.
    recording_server.route("/rec/away.mp3", Reply(302, b"", "text/plain",
                                        {"Location": "https://169.254.169.254/x"}))
    rec(app).expect(c["reference"], "africastalking", recording_server.url + "/rec/away.mp3", 2,
                    key="away")
    rows = settle(app, c["reference"])
    assert rows[1]["status"] == "dead" and "169.254.169.254" in rows[1]["error"]
    app.extensions["migrantline"].store.close()


def test_the_allow_list_and_the_magic_numbers() -> None:
    hosts = parse_hosts("api.twilio.com, *.africastalking.com ,http://127.0.0.1:8080")
    assert [(h.pattern, h.port, h.http) for h in hosts] == [
        ("api.twilio.com", None, False), ("*.africastalking.com", None, False),
        ("127.0.0.1", 8080, True)]
    wild = hosts[1]
    assert wild.matches("https", "voice.africastalking.com", None)
    assert wild.matches("https", "a.b.africastalking.com", 443)
    assert not wild.matches("https", "africastalking.com", None)
    assert not wild.matches("https", "evilafricastalking.com", None)
    assert not wild.matches("http", "voice.africastalking.com", None)
    assert hosts[2].matches("http", "127.0.0.1", 8080)
    assert not hosts[2].matches("http", "127.0.0.1", 8081)
    with pytest.raises(ValueError):
        parse_hosts("host:notaport")
    assert sniff_audio(b"RIFF\x24\x00\x00\x00WAVEfmt ") == "audio/wav"
    assert sniff_audio(b"ID3\x04\x00") == "audio/mpeg"
    assert sniff_audio(b"\xff\xfb\x90\x64") == "audio/mpeg"
    assert sniff_audio(b"OggS\x00\x02") == "audio/ogg"
    assert sniff_audio(b"\xff\xf1\x50\x80") is None  # AAC in ADTS: layer bits 00
    assert sniff_audio(b"<html>") is None and sniff_audio(b"") is None


# ---------------------------------------------------------------- at rest, and erased


def database_bytes(app: Flask) -> bytes:
    """What the database holds: its files on SQLite; on PostgreSQL (whose files are the
    server's), the recordings' stored columns as a reader of the database gets them."""
    store = app.extensions["migrantline"].store
    if store.postgres:
        return b"".join(bytes(r[0] or b"") + str(r[1] or "").encode() for r in store.db().execute(
            "select audio_sealed, url_sealed from voice_recordings").fetchall())
    data_dir = Path(app.config["MIGRANTLINE_DATA_DIR"])
    return b"".join(p.read_bytes() for p in sorted(data_dir.glob("migrantline.db*")))


def checkpoint(app: Flask) -> None:
    store = app.extensions["migrantline"].store
    if not store.postgres:  # PostgreSQL has no WAL file in the data folder
        store.db().execute("PRAGMA wal_checkpoint(TRUNCATE)")


@pytest.mark.sqlite_only  # the bytes of the SQLite file itself
def test_audio_and_url_are_not_readable_in_the_database_file(
        app: Flask, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    c = file_complaint(app)
    url = recording_server.route("/rec/secret-path-ATVId_42.wav", Reply(body=audio["wav"]))
    rec(app).expect(c["reference"], "africastalking", url, 2, key="at-rest")
    [row] = settle(app, c["reference"])
    assert row["status"] == "stored"
    raw = database_bytes(app)
    checkpoint(app)
    raw += database_bytes(app)
    pcm = audio["wav"][200:264]  # a piece of the samples themselves
    assert pcm not in raw and audio["wav"][:12] not in raw
    assert b"secret-path-ATVId_42" not in raw
    # Sealed for its row: the blob moved onto another row does not open there.
    store = app.extensions["migrantline"].store
    rec(app).expect(c["reference"], "africastalking", url, 2, key="other-row")
    settle(app, c["reference"])
    conn = sqlite3.connect(store.path)
    conn.execute("update voice_recordings set audio_sealed = (select audio_sealed from "
                 "voice_recordings where key = 'at-rest') where key = 'other-row'")
    conn.commit()
    conn.close()
    other = rec(app).for_complaint(c["reference"])[1]
    with pytest.raises(NotStored):
        rec(app).audio(other["id"])
    assert rec(app).audio(row["id"])[0] == audio["wav"]


def stored_recording(app: Flask, recording_server: RecordingServer, audio: bytes,
                     reference: str, key: str) -> dict[str, Any]:
    url = recording_server.route(f"/rec/{key}.wav", Reply(body=audio))
    rec(app).expect(reference, "africastalking", url, 2, key=key)
    [row] = [r for r in settle(app, reference) if r["status"] == "stored"][-1:]
    return row


def assert_erased(app: Flask, reference: str, audio: bytes) -> None:
    rows = rec(app).for_complaint(reference)
    assert rows and all(r["status"] == "erased" for r in rows)
    for row in rows:
        with pytest.raises(NotStored):
            rec(app).audio(row["id"])
    db = app.extensions["migrantline"].store.db()
    assert db.execute("select count(*) from voice_recordings where reference = ? and "
                      "(audio_sealed is not null or url_sealed is not null)",
                      [reference]).fetchone()[0] == 0
    checkpoint(app)
    assert audio[200:264] not in database_bytes(app)


def pieces_found(sealed: bytes, raw: bytes) -> int:
    """How many 64-byte pieces of ``sealed`` are in ``raw`` (a blob spans several pages)."""
    return sum(sealed[i:i + 64] in raw for i in range(0, len(sealed) - 64, 1024))


def test_a_caller_erasing_their_data_from_the_menu_erases_the_recording(
        app: Flask, client: FlaskClient, recording_server: RecordingServer,
        audio: dict[str, bytes]) -> None:
    phone = Phone(client)
    reference = reference_in(file_report(phone))
    row = stored_recording(app, recording_server, audio["wav"], reference, "menu-erase")
    store = app.extensions["migrantline"].store
    sealed = store.db().execute("select audio_sealed from voice_recordings where id = ?",
                                [row["id"]]).fetchone()[0]
    checkpoint(app)
    assert pieces_found(sealed, database_bytes(app)) > 10  # the ciphertext is there before
    complaints_menu(phone, "en")
    phone.press(menu_key("complaints", "erase_ref"))
    phone.press(reference)
    assert "deleted" in phone.press(choice("erase_confirm", "yes"))
    assert_erased(app, reference, audio["wav"])
    checkpoint(app)
    assert pieces_found(sealed, database_bytes(app)) == 0  # overwritten, not only unlinked
    # The provider retrying its callback afterwards brings nothing back.
    assert rec(app).expect(reference, "africastalking",
                           recording_server.url + "/rec/menu-erase.wav",
                           2, key="menu-erase") is False
    assert rec(app).expect(reference, "africastalking",
                           recording_server.url + "/rec/menu-erase.wav",
                           2, key="menu-erase-2") is False
    assert_erased(app, reference, audio["wav"])


def test_the_retention_purge_erases_recordings_of_old_closed_complaints(
        app: Flask, recording_server: RecordingServer, audio: dict[str, bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    old, kept = file_complaint(app), file_complaint(app, "+9779800000001")
    stored_recording(app, recording_server, audio["wav"], old["reference"], "old")
    stored_recording(app, recording_server, audio["mp3"], kept["reference"], "kept")
    services = app.extensions["migrantline"]
    services.complaints.set_status(old["id"], "closed", None, "operator:test")
    services.store.db().execute("update complaints set closed_at = ? where id = ?",
                                [time.time() - 400 * 86400, old["id"]])
    monkeypatch.setenv("MIGRANTLINE_DATA_DIR", app.config["MIGRANTLINE_DATA_DIR"])
    monkeypatch.setenv("MIGRANTLINE_SECRET_KEY", TEST_SECRET)
    result = CliRunner().invoke(main, ["retention", "purge"])
    assert result.exit_code == 0, result.output
    assert "erased the personal data of 1 complaint(s)" in result.output
    assert_erased(app, old["reference"], audio["wav"])
    [row] = rec(app).for_complaint(kept["reference"])
    assert rec(app).audio(row["id"])[0] == audio["mp3"]


def test_a_download_finishing_after_the_erasure_stores_nothing(
        app: Flask, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    c = file_complaint(app)
    store = app.extensions["migrantline"].store
    url = recording_server.route("/rec/race.mp3", Reply(503, b"down", "text/plain"))
    rec(app).expect(c["reference"], "africastalking", url, 2, key="race")
    settle(app, c["reference"])
    later = time.time() + 3600
    [claimed] = recordings_db.claim(store, later, LEASE, "slow-worker", 10)
    app.extensions["migrantline"].complaints.erase(c["reference"])
    assert not recordings_db.finish(store, claimed["id"], "slow-worker",
                                    {"status": "stored", "audio_sealed": b"x"})
    assert rec(app).for_complaint(c["reference"])[0]["status"] == "erased"
    assert rec(app).fetch_due(later + LEASE + 1) == 0


def test_a_restarted_service_fetches_what_was_pending(
        tmp_path: Path, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    app = recordings_app(tmp_path)
    c = file_complaint(app)
    url = recording_server.route("/rec/restart.mp3", Reply(503, b"down", "text/plain"))
    rec(app).expect(c["reference"], "africastalking", url, 2, key="restart")
    settle(app, c["reference"])
    app.extensions["migrantline"].store.close()
    recording_server.route("/rec/restart.mp3", Reply(body=audio["mp3"]))
    again = recordings_app(tmp_path)  # the same data dir: a new process, say
    assert rec(again).fetch_due(time.time() + 3600) == 1
    [row] = rec(again).for_complaint(c["reference"])
    assert rec(again).audio(row["id"])[0] == audio["mp3"]
    again.extensions["migrantline"].store.close()


def test_a_shutting_down_process_starts_no_download(
        app: Flask, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    c = file_complaint(app)
    url = recording_server.route("/rec/exit.mp3", Reply(body=audio["mp3"]))
    services = app.extensions["migrantline"]
    recordings_db.insert(services.store, {  # due, as a crash would leave it (no kick)
        "key": "exit", "complaint_id": c["id"], "reference": c["reference"],
        "provider": "africastalking", "url_sealed": rec(app).url_sealer.seal(url),
        "created_at": time.time()})
    worker = VoiceRecordings(services.store, TEST_SECRET.encode(), app.config)
    worker.start()
    worker.stop()  # at exit: the periodic retry does not run once more, unlike a flush
    assert not recording_server.log
    assert worker.fetch_due() == 1 and len(recording_server.log) == 1


def test_four_fetchers_at_once_download_each_recording_once(
        app: Flask, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    """Concurrent workers (nodes, processes) claim disjoint recordings: each fetched once."""
    services = app.extensions["migrantline"]
    c = file_complaint(app)
    secret = settings.secret_key(services.config, services.config.data_dir)
    fetchers = [VoiceRecordings(services.store, secret, services.config) for _ in range(4)]
    for i in range(200):
        url = recording_server.route(f"/many/{i}.mp3", Reply(body=audio["mp3"]))
        assert recordings_db.insert(services.store, {
            "key": f"many:{i}", "complaint_id": c["id"], "reference": c["reference"],
            "provider": "africastalking", "url_sealed": fetchers[0].url_sealer.seal(url),
            "duration": 2, "created_at": time.time() - 1})
    barrier = threading.Barrier(len(fetchers))
    stored: list[int] = []

    def run(fetcher: VoiceRecordings) -> None:
        barrier.wait()
        stored.append(fetcher.fetch_due())

    threads = [threading.Thread(target=run, args=(f,)) for f in fetchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    rows = settle(app, c["reference"])
    assert [r["status"] for r in rows] == ["stored"] * 200
    paths = Counter(s.path for s in recording_server.log)
    assert paths == Counter({f"/many/{i}.mp3": 1 for i in range(200)})  # none fetched twice
