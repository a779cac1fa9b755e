"""A complaint by voice: keys for the choices, the caller's voice for the rest,
the recordings fetched from a stand-in for Twilio and played in the dashboard."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.conftest import make_app
from tests.dashboard.conftest import add_operator, cheap_hashes, page, sign_in
from tests.recording_server import RecordingServer, Reply
from tests.voice_phone import VoiceCaller
from ussd_app.store.base import dicts

SID, TOKEN = "AC" + "0123456789abcdef" * 2, "twilio-auth-token"




@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = make_app(tmp_path, MIGRANTLINE_RECORDING_HOSTS="http://127.0.0.1",
                   TWILIO_ACCOUNT_SID=SID, TWILIO_AUTH_TOKEN=TOKEN)
    cheap_hashes(app)
    yield app
    app.extensions["migrantline"].store.close()


def recording(recording_server: RecordingServer, name: str, audio: bytes) -> str:
    """A Twilio recording URL; the audio is behind ``.mp3`` and basic auth, as Twilio's."""
    path = f"/2010-04-01/Accounts/{SID}/Recordings/RE{name:0>32}"
    recording_server.route(path + ".mp3", Reply(200, audio, "audio/mpeg", auth=(SID, TOKEN)))
    return recording_server.url + path


def rows(app: Flask, sql: str) -> list[dict[str, Any]]:
    """What the tables hold, read with SQL through the app's store (either engine)."""
    return dicts(app.extensions["migrantline"].store.db().execute(sql))


def spoken_digits(says: list[str]) -> str:
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    return "".join(str(words.index(w)) for w in says if w in words)


def start_report(caller: VoiceCaller) -> Any:
    caller.dial()
    caller.keys("1", "7")  # English, complaints
    consent = caller.press("1")  # report a problem: consent comes first
    assert consent.says[0] == "Report a problem"
    return caller.keys("1", "2", "1", "1")  # agree, not in danger now, myself, unpaid wages


def test_a_voice_complaint_reaches_the_dashboard_with_its_recordings(
        app: Flask, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    services = app.extensions["migrantline"]
    caller = VoiceCaller(app.test_client(), auth_token=TOKEN, number="+9779812300001")
    against = start_report(caller)
    assert against.kind == "gather"
    employer = caller.press("2")  # against the employer: said, not typed
    assert employer.kind == "record" and employer.max_length == "30"
    assert "After the tone, say your answer, then press the hash key." in employer.says
    country = caller.speak(recording(recording_server, "employer", audio["mp3"]), seconds=6)
    assert country.kind == "gather" and "Qatar" in country.says
    city = caller.press("3")  # Qatar
    assert city.kind == "record"
    description = caller.speak(recording(recording_server, "city", audio["mp3"]), seconds=3)
    assert description.kind == "record" and description.max_length == "120"
    contact = caller.speak(recording(recording_server, "story", audio["wav"]), seconds=95)
    assert contact.kind == "gather"
    caller.keys("4", "2", "2")  # never contact me; no PIN; not shared abroad
    confirm = caller.last
    assert confirm is not None and "Send" in confirm.says
    done = caller.press("1")
    done = caller.wait_out()
    stored = rows(app, "select reference, channel, contact, category from complaints")
    assert len(stored) == 1 and stored[0]["channel"] == "voice"
    assert stored[0]["contact"] == "never" and stored[0]["category"] == "unpaid_wages"
    reference = stored[0]["reference"]
    # The reference, digit by digit between the fixed words of the last screen; then goodbye.
    assert done.kind == "hangup"
    assert done.says[:2] == ["Report sent", "Your reference"]
    assert spoken_digits(done.says) == reference
    assert done.says[-3:] == ["Write it down to follow your report",
                              "We will not send you any SMS.", "Goodbye."]
    # No SMS for a caller who said never to contact them.
    assert rows(app, "select count(*) n from outbox")[0]["n"] == 0
    # The three spoken answers are fetched for the complaint and stored encrypted.
    recordings = services.recordings
    deadline = time.monotonic() + 10
    while True:
        recordings.fetch_due()
        found = recordings.for_complaint(reference)
        if len(found) == 3 and all(r["status"] == "stored" for r in found):
            break
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    assert all(s.headers.get("Authorization", "").startswith("Basic ")
               for s in recording_server.log if s.path.endswith(".mp3"))
    # An operator sees the complaint with its voice messages and plays one.
    add_operator(app, "op@example.org", "operator", "Asha")
    op = app.test_client()
    assert sign_in(op, "op@example.org").status_code == 303
    complaint_id = rows(app, "select id from complaints")[0]["id"]
    detail = page(op, f"/operator/complaints/{complaint_id}")
    sources = re.findall(r'<audio[^>]+src="([^"]+)"', detail)
    assert len(sources) == 3, detail[:3000]
    played = op.get(sources[-1])
    assert played.status_code == 200 and played.data == audio["wav"]
    assert "(voice message)" in detail


def test_a_call_that_drops_during_the_story_keeps_what_was_said(
        app: Flask, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    services = app.extensions["migrantline"]
    caller = VoiceCaller(app.test_client(), auth_token=TOKEN, number="+9779812300002")
    start_report(caller)
    caller.press("2")
    caller.speak(recording(recording_server, "boss", audio["mp3"]))
    caller.press("1")  # Nepal
    caller.speak(recording(recording_server, "town", audio["mp3"]))
    heard = caller.speak(recording(recording_server, "cut", audio["wav"]), seconds=40, hung_up=True)
    assert heard.kind == "hangup"
    caller.hang_up(duration=80)  # the status callback follows; nothing twice
    stored = rows(app, "select reference, contact, channel from complaints")
    assert len(stored) == 1 and stored[0]["contact"] == "never"
    assert rows(app, "select count(*) n from outbox")[0]["n"] == 0
    found = services.recordings.for_complaint(stored[0]["reference"])
    assert len(found) == 3


def test_africastalking_drop_during_recording_is_kept_from_the_last_request(
        tmp_path: Path, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    app = make_app(tmp_path, MIGRANTLINE_RECORDING_HOSTS="http://127.0.0.1")
    services = app.extensions["migrantline"]
    caller = VoiceCaller(app.test_client(), provider="africastalking")
    start_report(caller)
    caller.press("2")
    recording_server.route("/rec/boss.mp3", Reply(200, audio["mp3"]))
    caller.speak(recording_server.url + "/rec/boss.mp3")
    caller.press("1")
    recording_server.route("/rec/town.mp3", Reply(200, audio["mp3"]))
    heard = caller.speak(recording_server.url + "/rec/town.mp3")
    assert heard.kind == "record"
    recording_server.route("/rec/story.mp3", Reply(200, audio["mp3"]))
    caller.speak(recording_server.url + "/rec/story.mp3", hung_up=True)
    stored = rows(app, "select reference from complaints")
    assert len(stored) == 1
    services.recordings.fetch_due()
    assert len(services.recordings.for_complaint(stored[0]["reference"])) == 3
    services.store.close()


def test_an_empty_recording_asks_again(app: Flask, recording_server: RecordingServer,
                                       audio: dict[str, bytes]) -> None:
    caller = VoiceCaller(app.test_client(), auth_token=TOKEN)
    start_report(caller)
    asked = caller.press("2")
    again = caller.speak(recording(recording_server, "empty", audio["mp3"]), seconds=0)
    assert again.kind == "record" and again.says[0] == "We did not get your voice message."
    assert again.says[1:] == asked.says


def test_status_by_voice_from_the_filing_phone(app: Flask, recording_server: RecordingServer,
                                               audio: dict[str, bytes]) -> None:
    number = "+9779812300003"
    caller = VoiceCaller(app.test_client(), auth_token=TOKEN, number=number)
    start_report(caller)
    caller.press("2")
    caller.speak(recording(recording_server, "a", audio["mp3"]))
    caller.press("3")
    caller.speak(recording(recording_server, "b", audio["mp3"]))
    caller.speak(recording(recording_server, "c", audio["mp3"]))
    caller.keys("4", "2", "2", "1")
    reference = rows(app, "select reference from complaints")[0]["reference"]
    again = VoiceCaller(app.test_client(), auth_token=TOKEN, number=number)
    again.dial()  # the language is remembered: straight to the main menu
    again.press("7")
    ask = again.press("2")  # check a report: the reference typed on the keypad, then #
    assert ask.kind == "gather" and ask.timeout == "8"
    assert "Type it on your keypad, then press the hash key." in ask.says
    status = again.press(reference + "#")
    status = again.wait_out()
    assert status.kind == "gather"
    assert status.says[:2] == ["Your report", "Case"]
    assert spoken_digits(status.says[2:10]) == reference
    assert status.says[10:12] == ["Status", "Received"]
    # Another phone learns nothing about it.
    other = VoiceCaller(app.test_client(), auth_token=TOKEN)
    other.dial()
    other.keys("1", "7", "2")
    denied = other.press(reference + "#")
    assert "Received" not in denied.says and spoken_digits(denied.says) != reference


def test_a_phone_number_typed_on_the_keypad_is_read_back_digit_by_digit(
        app: Flask, recording_server: RecordingServer, audio: dict[str, bytes]) -> None:
    caller = VoiceCaller(app.test_client(), auth_token=TOKEN)
    start_report(caller)
    caller.press("2")
    caller.speak(recording(recording_server, "p1", audio["mp3"]))
    caller.press("3")
    caller.speak(recording(recording_server, "p2", audio["mp3"]))
    caller.speak(recording(recording_server, "p3", audio["mp3"]))
    ask = caller.press("3")  # safe on another number
    assert ask.kind == "gather" and ask.timeout == "8"
    caller.press("9779811122233#")
    caller.press("2")  # no PIN
    confirm = caller.press("2")  # not shared abroad
    confirm = caller.wait_out()
    assert "Send" in confirm.says
    assert "9779811122233" in spoken_digits(confirm.says)
