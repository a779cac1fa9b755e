"""The voice line, driven as Twilio and Africa's Talking drive it: webhooks in, XML out.

Prompts are generated for real (espeak-ng, sox) once per test session for the
screens these calls visit, and every ``<Play>`` URL is fetched from ``/audio/``.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from flask import Flask

from tests import stored
from tests.conftest import DEMO_CONTENT, ROOT, make_app
from tests.voice_phone import Heard, VoiceCaller
from ussd_app import store as db
from ussd_app.engine.loader import read_tree
from voice_prompts import tts

LANGS = {"en": "1", "ar": "2", "fr": "3", "ne": "4"}  # walked by voice (speech takes time)
SHIPPED = [lang.code for lang in read_tree(DEMO_CONTENT).languages]
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
    # The language menu names each walked language, and says its key, in its own voice.
    wanted = {(code, f"{kind}/{name}") for code, key in LANGS.items()
              for kind, name in (("language", code), ("digit", key))}
    wanted |= {(code, prompt_id) for prompt_id in ids for code in (lang, "en")}
    for code, prompt_id in sorted(wanted):
        prompt = manifest.get(code, prompt_id)
        if prompt is not None:
            s.prompts.render_prompt(prompt)


def _audio_digest() -> str:
    """What the walk's audio depends on: the demo content, the interface catalogs, the
    code that picks and renders prompts, and the speech tools' versions."""
    digest = hashlib.sha256()
    roots = [DEMO_CONTENT, ROOT / "translations", ROOT / "voice_prompts", ROOT / "ussd_app"]
    for path in sorted(p for root in roots for p in root.rglob("*") if p.is_file()
                       and p.suffix in {".py", ".yaml", ".yml", ".json", ".po", ".md",
                                        ".txt", ".csv"}):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    for tool in ("espeak-ng", "ffmpeg"):
        digest.update(subprocess.run([tool, "--version"] if tool == "espeak-ng" else
                                     [tool, "-version"], capture_output=True).stdout)
    return digest.hexdigest()[:16]


STALE_SECONDS = 86_400  # another checkout's run may use its own folder meanwhile


def _prune_stale(keep: Path) -> None:
    """Remove the folders earlier code left (another digest), once untouched for a day:
    a developer machine otherwise keeps one per change to the code, a few MB each."""
    cutoff = time.time() - STALE_SECONDS
    for folder in keep.parent.glob("migrantline-test-voice-*"):
        if folder == keep or not folder.is_dir():
            continue
        try:
            newest = max([folder.stat().st_mtime,
                          *(p.stat().st_mtime for p in folder.iterdir())])
        except OSError:  # removed by another worker meanwhile
            continue
        if newest < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def rendered_audio() -> Callable[[str], Path]:
    """The generated audio of one language's walk, made once per machine: the xdist
    workers and both engines' passes share it (rendering is the same on either engine),
    each language under its own lock so workers render different languages at once."""
    shared = Path(tempfile.gettempdir()) / f"migrantline-test-voice-{_audio_digest()}"
    shared.mkdir(exist_ok=True)
    _prune_stale(shared)

    def audio(lang: str) -> Path:
        done = shared / lang / "var" / "audio"
        with open(shared / f"{lang}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not (shared / f"{lang}.done").exists():
                shutil.rmtree(shared / lang, ignore_errors=True)
                app = make_app(shared / lang)
                _render_walk(app, lang)
                services(app).store.close()
                (shared / f"{lang}.done").touch()
        return done
    return audio


@pytest.fixture
def voiced(tmp_path: Path, rendered_audio: Callable[[str], Path],
           request: pytest.FixtureRequest) -> Iterator[Flask]:
    lang = request.node.callspec.params.get("lang", "en") \
        if hasattr(request.node, "callspec") else "en"
    shutil.copytree(rendered_audio(lang), tmp_path / "var" / "audio")
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


# English on both engines; the other languages differ in speech, not in what the store
# does, so the PostgreSQL pass does not repeat them (``engine_independent``).
@pytest.mark.parametrize("lang", [
    pytest.param(lang, marks=[pytest.mark.engine_independent] if n else [])
    for n, lang in enumerate(LANGS)])
def test_a_whole_call_in_each_language_plays_real_audio(voiced: Flask, lang: str) -> None:
    caller = VoiceCaller(voiced.test_client(), auth_token=TOKEN)
    first = caller.dial()
    assert first.kind == "gather" and first.action.endswith("/voice/twilio?s=0")
    # The language menu: each language announced in its own language, all played.
    assert len(first.plays) == 2 * len(LANGS) and not first.says  # no English welcome
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
    # "For help now, press 9 9" is said once a call: on the first menu, not again.
    # ("press" then opens the options, said by the announcement on the first menu)
    assert main.plays[3:] == home.plays[1:] and main.plays[1] == main.plays[2]
    assert services(voiced).store.phone_language(
        services(voiced).ussd.hasher.key(caller.number)) == lang


def test_the_menu_keys_match_ussd_and_are_announced(app: Flask) -> None:
    caller = VoiceCaller(app.test_client())
    caller.dial()
    main = caller.press("1")
    # "For help now, press 9 9" once, then "press 1 Before you go, 2 ..." four options at a
    # time, and "for more, press 9"; the USSD keys, all of them work at any time.
    # "press" is the announcement's own: not said again before the options.
    assert main.says[:6] == ["For help now, press", "nine", "nine", "one",
                             "Before you go", "two"]
    assert main.says[-2:] == ["For more, press", "nine"] and "press" not in main.says
    options = services(app).content.current.nodes["main"].options
    more = caller.press("9")
    assert more.says[:3] == ["press", "four", "Coming home"]
    assert more.says.count("press") == 1 and more.says[-2:] == ["For more, press", "nine"]
    assert more.action.endswith("p=1") and main.action.endswith("s=1")
    last = caller.press("9")
    assert last.action.endswith("p=2") and "For more, press" not in last.says
    assert len(options) == 8 and last.says[-2:] == ["eight", "Language"]
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
    wrong = caller.press("42")
    assert wrong.says[0] == "Invalid choice"
    # help now was said once; "press" before the options, now the announcement is not
    assert wrong.says[1:] == ["press", *main.says[3:]]
    assert wrong.kind == "gather"


def test_no_input_repeats_once_then_ends_politely(app: Flask) -> None:
    caller = VoiceCaller(app.test_client())
    caller.dial()
    main = caller.press("1")
    assert "ev=silence" in main.redirect
    once = caller.silent()
    assert once.kind == "gather" and once.says[0] == "We did not hear a key."
    assert once.says[1:] == ["press", *main.says[3:]]
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
    # "press" and "one" (after "for help now, press 9 9"): each heard once on this screen
    paths[3].write_bytes(b"RIFF\x00\x00")
    paths[4].unlink()
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


@pytest.mark.parametrize("lang", ["ar"])  # the Arabic walk: Arabic and English prompts
def test_healthz_shows_the_voice_prompts_per_language(voiced: Flask, lang: str) -> None:
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
    assert set(prompts) == set(SHIPPED)
    for code, row in prompts.items():
        assert row["total"] == row["recorded"] + row["stale"] + row["generated"] + row["missing"]
        if code in (lang, "en"):  # the walk's prompts, generated for this test session
            assert row["generated"] > 10, (code, row)
        elif code not in LANGS:  # not on the language menu: nothing generated
            assert row["generated"] == 0, (code, row)
    assert health["voice"]["recordings"] is not None
    assert health["status"] == "ok"


def test_the_purge_forgets_calls_by_their_last_webhook(app: Flask) -> None:
    """Calls are found by their start (indexed) and kept while a webhook updated them."""
    from ussd_app.store.voice import (
        purge_voice_calls,
        save_voice_step,
        start_voice_call,
        voice_call,
    )

    store = app.extensions["migrantline"].store
    now = time.time()
    for key in ("CA-old", "CA-long"):
        start_voice_call(store, key, "twilio", "pk", "inbound", "v1", "{}", 0, now - 2 * 86400)
    assert save_voice_step(store, "CA-long", 0, "{}", 1, now)  # still on the line
    assert purge_voice_calls(store, now - 86400) == 1
    assert voice_call(store, "CA-old") is None and voice_call(store, "CA-long") is not None
