"""The voice line, driven as Twilio and Africa's Talking drive it: webhooks in, XML out.

Prompts are generated for real (espeak-ng, sox) once per test session for the
screens these calls visit, and every ``<Play>`` URL is fetched from ``/audio/``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask

from tests import stored
from tests.conftest import DEMO_CONTENT, make_app
from tests.voice_phone import Heard, VoiceCaller
from ussd_app import store as db
from ussd_app.engine.loader import read_tree
from voice_prompts import tts

LANGS = {"en": "1", "ar": "2", "fr": "3", "ne": "4"}
TOKEN = "twilio-test-token"
# The walk: language, "Before you go", its first article; then back and main menu.
WALK = ("1", "1")


def services(app: Flask):
    return app.extensions["migrantline"]


def _render_walk(app: Flask, lang: str) -> None:
    """Generate every prompt a caller in ``lang`` hears on the walk (first call: <Say>s)."""
    s = services(app)
    tree = s.content.current
    manifest = s.prompts.manifest(tree, s.t)
    caller = VoiceCaller(app.test_client())
    heard = [caller.dial(), caller.press(LANGS[lang]), *(caller.press(k) for k in WALK)]
    ids = {"digit/" + d for d in "0123456789"} | {f"language/{code}" for code in LANGS}
    for h in heard:
        for text in h.says:
            found = manifest.find(lang, text) or manifest.find_any(text)
            assert found is not None, f"a <Say> outside the manifest: {text!r}"
            ids.add(found.id)
    for prompt_id in sorted(ids):
        for code in {lang, "en"}:
            prompt = manifest.get(code, prompt_id)
            if prompt is not None:
                s.prompts.render_prompt(prompt)


@pytest.fixture(scope="session")
def rendered_audio(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Generated audio for the walk in every language, made once."""
    base = tmp_path_factory.mktemp("voice-audio")
    app = make_app(base)
    for lang in LANGS:
        _render_walk(app, lang)
    services(app).store.close()
    return base / "var" / "audio"


@pytest.fixture
def voiced(tmp_path: Path, rendered_audio: Path) -> Iterator[Flask]:
    shutil.copytree(rendered_audio, tmp_path / "var" / "audio")
    app = make_app(tmp_path, TWILIO_AUTH_TOKEN=TOKEN)
    yield app
    services(app).store.close()


def fetch_audio(app: Flask, url: str) -> bytes:
    parts = urlsplit(url)
    response = app.test_client().get(parts.path + "?" + parts.query)
    assert response.status_code == 200, url
    assert response.mimetype in ("audio/wav", "audio/x-wav", "audio/mpeg"), response.mimetype
    assert response.headers.get("ETag")
    return response.data


def assert_real_audio(data: bytes) -> None:
    """MP3 (the default format) at 8 kHz mono, decoded whole by ffmpeg: sound, not silence."""
    assert data[0] == 0xFF and data[1] & 0xE0 == 0xE0, data[:4]  # an MPEG frame, no tag
    with tempfile.NamedTemporaryFile(suffix=".mp3") as fh:
        fh.write(data)
        fh.flush()
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                                "stream=codec_name,sample_rate,channels", "-of", "csv=p=0",
                                fh.name], capture_output=True, text=True, check=True)
        assert probe.stdout.split() == ["mp3,8000,1"], probe.stdout
        heard = tts.listen(Path(fh.name))
    assert heard.seconds > 0.1 and -40 < heard.peak_db < 0  # heard, and not clipped


@pytest.mark.parametrize("lang", list(LANGS))
def test_a_whole_call_in_each_language_plays_real_audio(voiced: Flask, lang: str) -> None:
    caller = VoiceCaller(voiced.test_client(), auth_token=TOKEN)
    first = caller.dial()
    assert first.kind == "gather" and first.action.endswith("/voice/twilio?s=0")
    # The language menu: each language announced in its own language, all played.
    assert len(first.plays) >= 1 + 2 * len(LANGS) and not first.says
    main = caller.press(LANGS[lang])
    submenu = caller.press("1")
    article = caller.press("1")
    for heard in (main, submenu, article):
        assert heard.kind == "gather"
        assert heard.plays and not heard.says, heard.xml  # recorded or generated, in lang
        for url in heard.plays:
            assert f"/{lang}/" in url or "/digit" in url or "/en/" in url
            assert_real_audio(fetch_audio(voiced, url))
    # The article is heard whole, then back (0) and the main menu (00) are announced.
    back = caller.press("0")
    assert back.plays == submenu.plays
    home = caller.press("00")
    assert home.plays == main.plays
    assert services(voiced).store.phone_language(
        services(voiced).ussd.hasher.key(caller.number)) == lang


def test_the_menu_keys_match_ussd_and_are_announced(app: Flask) -> None:
    caller = VoiceCaller(app.test_client())
    caller.dial()
    main = caller.press("1")
    # "Before you go, press one" ... every option of the main menu, in order.
    assert main.says[:4] == ["MigrantLine", "Before you go", "press", "one"]
    assert main.says.count("press") == len(services(app).content.current.nodes["main"].options)
    help_now = caller.press("99")  # help now from anywhere, as on USSD
    assert "Help now" in help_now.says[0]


def test_a_retried_webhook_is_answered_again_not_applied_twice(app: Flask) -> None:
    caller = VoiceCaller(app.test_client())
    caller.dial()
    main = caller.press("1")
    action = main.action
    submenu = caller.post(action, caller.fields(Digits="1"))
    again = caller.post(action, caller.fields(Digits="1"))  # Twilio retries the same step
    assert again.says == submenu.says and again.action == submenu.action
    call = db.voice.voice_call(services(app).store, f"twilio:{caller.call_id}")
    assert call is not None and call.seq == 2


def test_a_key_that_maps_to_nothing_replays_the_menu_with_a_hint(app: Flask) -> None:
    caller = VoiceCaller(app.test_client())
    caller.dial()
    main = caller.press("1")
    wrong = caller.press("9")
    assert wrong.says[0] == "Invalid choice"
    assert wrong.says[1:] == main.says
    assert wrong.kind == "gather"


def test_no_input_repeats_once_then_ends_politely(app: Flask) -> None:
    caller = VoiceCaller(app.test_client())
    caller.dial()
    main = caller.press("1")
    assert "ev=silence" in main.redirect
    once = caller.silent()
    assert once.kind == "gather" and once.says[0] == "We did not hear a key."
    assert once.says[1:] == main.says
    retried = caller.post(main.redirect, caller.fields())  # the same redirect, retried
    assert retried.kind == "gather"
    twice = caller.silent()
    assert twice.kind == "hangup" and twice.says == ["Goodbye."]


def test_twilio_signature_is_checked(tmp_path: Path) -> None:
    app = make_app(tmp_path, TWILIO_AUTH_TOKEN=TOKEN)
    good = VoiceCaller(app.test_client(), auth_token=TOKEN)
    assert good.dial().kind == "gather"
    forged = VoiceCaller(app.test_client(), auth_token="not-the-token")
    forged.post("/voice/twilio", forged.fields(), expect=403)
    unsigned = VoiceCaller(app.test_client())
    unsigned.post("/voice/twilio", unsigned.fields(), expect=403)
    # A signed request whose fields were changed on the way fails too.
    signed = VoiceCaller(app.test_client(), auth_token=TOKEN)
    from twilio.request_validator import RequestValidator

    fields = signed.fields()
    signature = RequestValidator(TOKEN).compute_signature(
        "http://127.0.0.1:5000/voice/twilio", fields)
    fields["Digits"] = "1"
    response = app.test_client().post("/voice/twilio", data=fields,
                                      headers={"X-Twilio-Signature": signature})
    assert response.status_code == 403
    services(app).store.close()


def test_africas_talking_call_with_token(tmp_path: Path) -> None:
    app = make_app(tmp_path, MIGRANTLINE_WEBHOOK_TOKEN="s3cret")
    caller = VoiceCaller(app.test_client(), provider="africastalking", token="s3cret")
    caller.post("/voice/africastalking", caller.fields(), expect=403)
    first = caller.dial()
    assert first.kind == "gather" and "token=s3cret" in first.action
    assert first.redirect and "ev=silence" in first.redirect
    main = caller.press("1")
    assert main.kind == "gather" and "Before you go" in main.says
    # Africa's Talking's <Say> speaks English only: French falls back to English speech
    # until French audio exists, never to silence.
    french = VoiceCaller(app.test_client(), provider="africastalking", token="s3cret")
    french.dial()
    menu = french.press("3")
    assert menu.says and "Avant le départ" not in menu.says
    assert "<Say" in menu.xml and "<GetDigits" in menu.xml
    caller.hang_up()
    call = db.voice.voice_call(services(app).store, f"africastalking:{caller.call_id}")
    assert call is not None and call.ended_at is not None
    services(app).store.close()


@pytest.mark.parametrize("body", [
    {}, {"CallSid": "CA1"}, {"From": "+9779800000001"},
    {"CallSid": "CA1" * 200, "From": "+977" + "9" * 300, "Digits": "1" * 5000},
    {"CallSid": "CA\x00\u202e", "From": "+977\ufeff98", "Digits": "١"},
])
def test_malformed_twilio_webhooks_get_a_clear_answer(client, body) -> None:
    response = client.post("/voice/twilio", data=body)
    assert response.status_code in (200, 400), response.get_data(as_text=True)
    if response.status_code == 200:
        assert "<Response" in response.get_data(as_text=True)


def test_malformed_africastalking_callbacks(client) -> None:
    assert client.post("/voice/africastalking", data={}).status_code == 400
    assert client.post("/voice/africastalking", data="x" * 70_000,
                       content_type="text/plain").status_code in (400, 413)
    odd = client.post("/voice/africastalking?s=abc&w=-4", data={
        "sessionId": "ATVId_odd", "callerNumber": "+254700000000", "isActive": "1",
        "dtmfDigits": "*#"})
    assert odd.status_code == 200 and b"<Response>" in odd.data


def test_a_missing_or_corrupt_audio_file_falls_back_never_silence(voiced: Flask) -> None:
    caller = VoiceCaller(voiced.test_client(), auth_token=TOKEN)
    caller.dial()
    main = caller.press("1")
    # Break every generated file of this screen: truncate one, delete another.
    root = services(voiced).config.data_dir / "audio" / "generated"
    paths = [root / urlsplit(u).path.split("/audio/tts/")[1] for u in main.plays]
    paths[0].write_bytes(b"RIFF\x00\x00")
    paths[1].unlink()
    services(voiced).prompts.forget()  # what the service does within RESOLVED_SECONDS
    again = VoiceCaller(voiced.test_client(), auth_token=TOKEN)
    again.dial()
    heard = again.press("1")
    assert len(heard.plays) + len(heard.says) == len(main.plays)
    assert len(heard.says) == 2  # the provider's own voice for the two broken pieces


def _hear_text(heard: Heard) -> str:
    return " ".join(heard.says)


def test_an_outbound_call_back_speaks_to_the_callee(app: Flask) -> None:
    caller = VoiceCaller(app.test_client(), direction="outbound-api")
    first = caller.dial()
    assert first.kind == "gather"
    caller.press("1")
    call = db.voice.voice_call(services(app).store, f"twilio:{caller.call_id}")
    assert call is not None
    assert call.phone_key == services(app).ussd.hasher.key(caller.number)


def test_the_phone_number_is_not_stored_in_clear(app: Flask) -> None:
    caller = VoiceCaller(app.test_client(), number="+9779812345678")
    caller.dial()
    caller.keys("1", "7")
    services(app).store.flush()
    raw = stored.at_rest(services(app).config.data_dir, services(app).store.db().conn)
    assert b"9779812345678" not in raw


def _callbacks(app: Flask) -> list[dict]:
    return services(app).callbacks.masked()


def test_a_missed_call_is_called_back_once(app: Flask) -> None:
    caller = VoiceCaller(app.test_client(), number="+9779811122233")
    caller.dial()
    caller.hang_up(duration=4)  # rang, heard the welcome, hung up: a missed call
    caller.hang_up(duration=4)  # the status callback retried
    rows = _callbacks(app)
    assert len(rows) == 1 and rows[0]["status"] == "queued"
    assert "9779811122233" not in str(rows)  # masked


def test_a_call_that_was_used_or_placed_by_us_is_not_called_back(app: Flask) -> None:
    used = VoiceCaller(app.test_client())
    used.dial()
    used.press("1")
    used.hang_up(duration=5)
    ours = VoiceCaller(app.test_client(), direction="outbound-api")
    ours.dial()
    ours.hang_up(duration=2)
    long_listener = VoiceCaller(app.test_client())
    long_listener.dial()
    long_listener.hang_up(duration=90)
    assert _callbacks(app) == []


def test_africastalking_missed_call_from_the_last_request(app: Flask) -> None:
    caller = VoiceCaller(app.test_client(), provider="africastalking")
    caller.dial()  # the service answered the call (its first request)...
    caller.hang_up(duration=3)  # ...and the caller hung up at once
    rows = _callbacks(app)
    assert len(rows) == 1 and rows[0]["provider"] == "africastalking"
    # The last request alone, for a call the service never answered, calls nobody back.
    stray = VoiceCaller(app.test_client(), provider="africastalking")
    stray.hang_up(duration=0)
    assert len(_callbacks(app)) == 1


def test_always_mode_refuses_the_call_unanswered_and_calls_back(tmp_path: Path) -> None:
    app = make_app(tmp_path, MIGRANTLINE_VOICE_CALLBACK="always",
                   MIGRANTLINE_VOICE_PROVIDER="twilio", TWILIO_ACCOUNT_SID="AC" + "1" * 32,
                   TWILIO_AUTH_TOKEN=TOKEN, TWILIO_FROM_NUMBER="+15005550006",
                   MIGRANTLINE_CALLBACK_COUNTRIES="977",
                   TWILIO_API_URL="http://127.0.0.1:9")  # nothing listens: placing is retried
    caller = VoiceCaller(app.test_client(), auth_token=TOKEN)
    assert caller.dial().kind == "reject"
    assert len(_callbacks(app)) == 1
    # The call-back itself (outbound) is answered with the menu.
    back = VoiceCaller(app.test_client(), number=caller.number, auth_token=TOKEN,
                       direction="outbound-api")
    assert back.dial().kind == "gather"
    services(app).store.close()


def test_healthz_shows_the_voice_prompts_per_language(voiced: Flask) -> None:
    import time

    client = voiced.test_client()
    deadline = time.monotonic() + 10
    while True:  # counted in the background: the first answers say "counting"
        health = client.get("/healthz").get_json()
        if health["voice"]["prompts"] != "counting":
            break
        assert time.monotonic() < deadline
        time.sleep(0.05)
    prompts = health["voice"]["prompts"]
    assert set(prompts) == set(read_tree(DEMO_CONTENT).language_codes)  # every shipped one
    for lang, row in prompts.items():
        assert row["total"] == row["recorded"] + row["stale"] + row["generated"] + row["missing"]
        if lang in LANGS:  # the walked languages: their prompts, generated for this session
            assert row["generated"] > 0
    assert health["voice"]["recordings"] is not None
    assert health["status"] == "ok"
