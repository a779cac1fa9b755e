"""A complaint's voice messages in the dashboard: listed, played, audited, guarded."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from ussd_app.channels.voice.recordings import VoiceRecordings

from ..conftest import make_app
from ..recording_server import RecordingServer, Reply
from .conftest import add_operator, audit, cheap_hashes, file_complaint, page, post, sign_in


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    """The dashboard's app (an operator and a supervisor), fetching from 127.0.0.1."""
    app = make_app(tmp_path, MIGRANTLINE_RECORDING_HOSTS="http://127.0.0.1")
    cheap_hashes(app)
    add_operator(app, "op@example.org", "operator", "Asha")
    add_operator(app, "boss@example.org", "supervisor")
    yield app
    app.extensions["migrantline"].store.close()


def rec(app: Flask) -> VoiceRecordings:
    return app.extensions["migrantline"].recordings


def recorded(app: Flask, recording_server: RecordingServer, body: bytes, key: str,
             complaint: dict[str, Any] | None = None,
             reply: Reply | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """A complaint with one voice message fetched from the stand-in: (complaint, recording)."""
    c = complaint or file_complaint(app)
    url = recording_server.route(f"/rec/{key}.mp3", reply or Reply(body=body))
    rec(app).expect(c["reference"], "africastalking", url, 3, key=key)
    deadline = time.monotonic() + 10
    while True:
        rows = [r for r in rec(app).for_complaint(c["reference"])
                if r["status"] not in ("pending", "fetching")]
        if len(rows) == len(rec(app).for_complaint(c["reference"])):
            return c, rows[-1]
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_the_operator_plays_the_message_and_the_play_is_audited(
        app: Flask, op: FlaskClient, recording_server: RecordingServer,
        audio: dict[str, bytes]) -> None:
    c, r = recorded(app, recording_server, audio["mp3"], "play")
    html = page(op, f"/operator/complaints/{c['id']}")
    src = f"/operator/complaints/{c['id']}/recordings/{r['id']}"
    assert f'<audio controls preload="none" src="{src}">' in html
    assert "Voice messages" in html and "3 s" in html and "Stored" in html
    assert f"{max(1, round(len(audio['mp3']) / 1000))} KB" in html
    assert not audit(app, "play_recording")  # showing the player plays nothing
    response = op.get(src)
    assert response.status_code == 200
    assert response.data == audio["mp3"]
    assert response.mimetype == "audio/mpeg"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert "media-src 'self'" in response.headers["Content-Security-Policy"]
    assert "media-src 'self'" in op.get(f"/operator/complaints/{c['id']}").headers[
        "Content-Security-Policy"]  # the page may embed its player
    [played] = audit(app, "play_recording")
    assert played["complaint_id"] == c["id"] and played["operator_email"] == "op@example.org"
    assert played["detail"] == f"recording {r['id']}"


def test_a_browser_seeks_with_range_requests(
        app: Flask, op: FlaskClient, recording_server: RecordingServer,
        audio: dict[str, bytes]) -> None:
    c, r = recorded(app, recording_server, audio["wav"], "seek")
    src = f"/operator/complaints/{c['id']}/recordings/{r['id']}"
    first = op.get(src, headers={"Range": "bytes=0-99"})
    assert first.status_code == 206 and first.data == audio["wav"][:100]
    assert first.headers["Content-Range"] == f"bytes 0-99/{len(audio['wav'])}"
    assert first.mimetype == "audio/wav" and first.headers["Cache-Control"] == "no-store"
    rest = op.get(src, headers={"Range": "bytes=1000-"})
    assert rest.status_code == 206 and rest.data == audio["wav"][1000:]
    beyond = op.get(src, headers={"Range": f"bytes={len(audio['wav']) + 10}-"})
    assert beyond.status_code == 416
    assert len(audit(app, "play_recording")) == 3  # every read of the voice is a row


def test_the_same_rules_as_the_complaint_page(
        app: Flask, op: FlaskClient, boss: FlaskClient, recording_server: RecordingServer,
        audio: dict[str, bytes]) -> None:
    c, r = recorded(app, recording_server, audio["mp3"], "rules")
    src = f"/operator/complaints/{c['id']}/recordings/{r['id']}"
    # Signed out: to the sign-in page, no audio, nothing audited as a play.
    anonymous = app.test_client()
    response = anonymous.get(src)
    assert response.status_code == 302 and "/operator/login" in response.location
    assert audio["mp3"][:100] not in response.data
    # Both roles open complaints, so both may listen (each play is theirs in the log).
    assert boss.get(src).data == audio["mp3"]
    assert {p["operator_email"] for p in audit(app, "play_recording")} == {"boss@example.org"}
    # A disabled operator is signed out at the next request, this one included.
    operator = app.extensions["dashboard"].accounts.get("op@example.org")
    assert post(boss, f"/operator/operators/{operator['id']}/active",
                active="0").status_code == 303
    response = op.get(src)
    assert response.status_code == 302 and "/operator/login" in response.location
    # An idle session ends the same way.
    add_operator(app, "late@example.org")
    late = app.test_client()
    sign_in(late, "late@example.org")
    with late.session_transaction() as session:
        session["seen"] = time.time() - 3600
    assert late.get(src).status_code == 302
    assert len(audit(app, "play_recording")) == 1


def test_only_a_stored_recording_of_this_complaint_plays(
        app: Flask, op: FlaskClient, recording_server: RecordingServer,
        audio: dict[str, bytes]) -> None:
    c, r = recorded(app, recording_server, audio["mp3"], "mine")
    other, _ = recorded(app, recording_server, audio["mp3"], "theirs")
    assert op.get(f"/operator/complaints/{other['id']}/recordings/{r['id']}").status_code \
        == 404
    assert op.get(f"/operator/complaints/{c['id']}/recordings/99999").status_code == 404
    assert op.get(f"/operator/complaints/99999/recordings/{r['id']}").status_code == 404
    assert op.get(f"/operator/complaints/{c['id']}/recordings/abc").status_code == 404
    # One that could not be fetched is listed with its status, without a player.
    _, dead = recorded(app, recording_server, b"", "dead", complaint=c,
                       reply=Reply(body=b"<html>no</html>", content_type="text/html"))
    html = page(op, f"/operator/complaints/{c['id']}")
    assert dead["status"] == "dead" and "Could not be fetched" in html
    assert html.count("<audio ") == 1
    assert "Voice message could not be fetched" in html  # in the history too
    assert op.get(f"/operator/complaints/{c['id']}/recordings/{dead['id']}").status_code == 404
    assert not audit(app, "play_recording")


def test_an_erased_complaint_has_nothing_left_to_play(
        app: Flask, op: FlaskClient, recording_server: RecordingServer,
        audio: dict[str, bytes]) -> None:
    c, r = recorded(app, recording_server, audio["mp3"], "gone")
    app.extensions["migrantline"].complaints.erase(c["reference"])
    html = page(op, f"/operator/complaints/{c['id']}")
    assert "<audio " not in html and "Erased" in html
    assert op.get(f"/operator/complaints/{c['id']}/recordings/{r['id']}").status_code == 404


def test_the_section_speaks_the_operators_language(
        app: Flask, op: FlaskClient, recording_server: RecordingServer,
        audio: dict[str, bytes]) -> None:
    c, _ = recorded(app, recording_server, audio["mp3"], "lang")
    post(op, "/operator/language", lang="fr")
    html = page(op, f"/operator/complaints/{c['id']}")
    assert "Messages vocaux" in html and "Enregistré" in html and "Ko" in html
    assert "Message vocal reçu" in html
    post(op, "/operator/language", lang="ar")
    html = page(op, f"/operator/complaints/{c['id']}")
    assert "الرسائل الصوتية" in html and re.search(r"\d+ كيلوبايت", html)
