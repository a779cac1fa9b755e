"""Voice prompts: the manifest, real espeak-ng/sox audio, recordings, the CLI and /audio/."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import DEMO_CONTENT, make_app
from tests.voice_phone import wav_info
from ussd_app.channels.voice.prompts import prompt_library
from ussd_app.channels.voice.ui_messages import VOICE_UI_MESSAGES
from ussd_app.cli import main
from ussd_app.engine.loader import read_tree
from ussd_app.i18n import default_catalogs
from voice_prompts import build_manifest, tts
from voice_prompts.manifest import fragments, key, normalise

from .trees import INFO, LANGUAGE, MAIN, SITE

HELP = "id: help_now\ntype: article\ntitle: {en: Help, fr: Aide}\nbody: {en: Call, fr: Appelez}\n"
t = default_catalogs().gettext


def write_tree(root: Path, info: str = INFO) -> Path:
    for name, text in {"site.yaml": SITE, "nodes/main/language.yaml": LANGUAGE,
                       "nodes/main/main.yaml": MAIN, "nodes/info/info.yaml": info,
                       "nodes/help_now.yaml": HELP}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    content = write_tree(tmp_path / "content")
    return {"MIGRANTLINE_DATA_DIR": str(tmp_path / "var"),
            "MIGRANTLINE_CONTENT_DIR": str(content),
            "MIGRANTLINE_RECORDINGS_DIR": str(tmp_path / "recordings"),
            "MIGRANTLINE_TTS_ONLINE": "off", "MIGRANTLINE_CENTRAL_URL": "",
            "MIGRANTLINE_BASE_URL": "https://voice.example.org"}


def cli(env: dict[str, str], *args: str) -> str:
    result = CliRunner().invoke(main, ["prompts", *args], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def library_of(env: dict[str, str]):  # as build_services makes it
    config = {"MIGRANTLINE_DATA_DIR": env["MIGRANTLINE_DATA_DIR"],
              "MIGRANTLINE_CONTENT_DIR": env["MIGRANTLINE_CONTENT_DIR"],
              "MIGRANTLINE_RECORDINGS_DIR": env["MIGRANTLINE_RECORDINGS_DIR"],
              "MIGRANTLINE_BASE_URL": env["MIGRANTLINE_BASE_URL"],
              "MIGRANTLINE_TTS_ONLINE": "off",
              "MIGRANTLINE_AUDIO_FORMAT": env.get("MIGRANTLINE_AUDIO_FORMAT", "mp3")}
    return prompt_library(config)


def no_say(_lang: str) -> bool:
    return False


def status_row(output: str, lang: str) -> list[str]:
    return next(line.split() for line in output.splitlines() if line.startswith(lang + " "))


@pytest.mark.engine_independent
def test_manifest_covers_every_node_text_of_the_demo_in_every_language() -> None:
    tree = read_tree(DEMO_CONTENT)
    manifest = build_manifest(tree, t, VOICE_UI_MESSAGES)
    assert set(manifest.languages) == set(tree.language_codes)  # every shipped language
    seen = 0
    for node in tree.nodes.values():
        values = [node.title, node.label, node.intro, node.body, node.prompt,
                  *(o.label for o in node.options),
                  *(v for e in node.entries for v in (e.name, e.hours, e.where))]
        for value in filter(None, values):
            for lang, text in value.items():
                if "{" in text:  # filled in when shown: its fixed words are the prompts
                    for part in fragments(text):
                        assert manifest.find(lang, part) is not None, (node.id, part)
                    seen += 1
                    continue
                prompt = manifest.find(lang, text)
                assert prompt is not None, (node.id, lang, text)
                assert key(prompt.text) == key(text)  # the same words (a "?" aside)
                seen += 1
    assert seen > 1000
    for lang in manifest.languages:
        assert manifest.get(lang, f"language/{lang}") is not None
        assert [manifest.get(lang, f"digit/{d}").text for d in range(3)] == [
            t(lang, w) for w in ("zero", "one", "two")]
        assert manifest.get(lang, "ui/goodbye").text == t(lang, "Goodbye.")
    assert manifest.get("ar", "digit/1").text == "واحد"
    assert manifest.get("ar", "language/ar").text == "للغة العربية، اضغط"
    body = next(n for n in tree.nodes.values() if n.body)
    assert manifest.get("en", f"node/{body.id}/body").text == normalise(body.body["en"])


@pytest.mark.engine_independent
@pytest.mark.parametrize("lang", ["en", "ar", "fr", "ne"])
def test_espeak_renders_real_8khz_mono_wav(tmp_path: Path, lang: str) -> None:
    out = tmp_path / f"{lang}.wav"
    text = {"en": "Keep your passport.", "ar": "احتفظ بجواز سفرك.",
            "fr": "Gardez votre passeport.", "ne": "आफ्नो राहदानी आफैंसँग राख्नुहोस्।"}[lang]
    assert tts.synthesize(text, lang, out, "off") == "espeak-ng"
    info = wav_info(out.read_bytes())
    assert (info["rate"], info["channels"], info["format"], info["bits"]) == (8000, 1, 7, 8)
    assert info["frames"] > 8000 * 0.5  # over half a second of speech, 8 kB a second


@pytest.mark.engine_independent
def test_languages_without_an_espeak_voice_say_so(tmp_path: Path) -> None:
    assert tts.espeak_voice("km") is None and "km" in tts.NO_ESPEAK_VOICE
    with pytest.raises(tts.TtsError, match="no voice for 'km'"):
        tts.synthesize("ជំរាបសួរ", "km", tmp_path / "km.wav", "off")
    with pytest.raises(tts.TtsError, match="empty"):
        tts.synthesize("  ", "en", tmp_path / "x.wav", "off")


@pytest.mark.engine_independent
def test_an_mp3_is_converted_to_phone_wav(tmp_path: Path) -> None:
    """The gTTS path's conversion, on an MP3 made here (gTTS itself needs the internet)."""
    raw = tmp_path / "raw.wav"
    tts.synthesize("One moment, please.", "en", raw, "off")
    mp3 = tmp_path / "g.mp3"
    tts._run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(raw), "-ac", "1", "-ar",
              "22050", "-b:a", "32k", str(mp3)])
    out = tmp_path / "out.wav"
    tts.to_phone_wav(mp3, out)
    info = wav_info(out.read_bytes())
    assert (info["rate"], info["channels"], info["format"]) == (8000, 1, 7)


@pytest.mark.engine_independent
def test_render_then_status_shows_generated_and_speak_plays_it(env: dict[str, str]) -> None:
    before = cli(env, "status")
    assert status_row(before, "en")[1:5] == ["0", "0", "0", status_row(before, "en")[5]]
    out = cli(env, "render", "--lang", "en")
    assert "rendered" in out and "en:" in out and "fr:" not in out
    after = cli(env, "status")
    en, fr = status_row(after, "en"), status_row(after, "fr")
    assert en[3] == en[5] and en[4] == "0"  # every en prompt generated, none missing
    assert fr[3] == "0" and fr[4] == fr[5]
    library = library_of(env)
    tree = read_tree(env["MIGRANTLINE_CONTENT_DIR"])
    spoken = library.speak(tree, t, "en", "Keep your  passport.", no_say)
    assert spoken is not None and spoken.kind == "play" and spoken.source == "generated"
    assert spoken.url.startswith("https://voice.example.org/audio/tts/en/")
    # French: nothing rendered, the provider does not speak it -> the English prompt
    spoken = library.speak(tree, t, "fr", "Gardez votre passeport.", no_say)
    assert spoken is not None and (spoken.lang, spoken.source) == ("en", "fallback")
    spoken = library.speak(tree, t, "fr", "Gardez votre passeport.", lambda lang: lang == "fr")
    assert spoken == type(spoken)("say", text="Gardez votre passeport.", lang="fr",
                                  source="provider")
    assert library.digit(tree, t, "en", "7", no_say).source == "generated"
    assert library.digit(tree, t, "en", "x", no_say) is None
    assert library.speak(tree, t, "en", "Not a prompt at all", no_say) is None


@pytest.mark.engine_independent
def test_recording_replaces_generated_then_goes_stale_or_corrupt(
        env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Files change under the library here (the CLI, another process): a service looks again
    # within RESOLVED_SECONDS; this test looks at every step.
    monkeypatch.setattr("voice_prompts.library.RESOLVED_SECONDS", 0.0)
    env["MIGRANTLINE_AUDIO_FORMAT"] = "wav"  # the WAV path, for a provider that needs it
    cli(env, "render", "--lang", "en")
    library = library_of(env)
    tree = read_tree(env["MIGRANTLINE_CONTENT_DIR"])
    generated = library.prompt(tree, t, "en", "node/info/body", no_say)
    assert generated.source == "generated"
    field = tmp_path / "field.mp3"  # a phone's recorder: MP3 at 44.1 kHz stereo
    tts._run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
              "sine=frequency=440:duration=1", "-ac", "2", "-ar", "44100", str(field)])
    out = cli(env, "record", "en", "node/info/body", str(field), "--by", "Asha")
    assert "(recording)" in out
    rec = Path(env["MIGRANTLINE_RECORDINGS_DIR"]) / "en" / "node/info/body.wav"
    sidecar = json.loads(rec.with_suffix(".json").read_text())
    assert sidecar["recorded_by"] == "Asha" and sidecar["text"] == "Keep your passport."
    info = wav_info(rec.read_bytes())
    assert (info["rate"], info["channels"], info["format"]) == (8000, 1, 7)
    first = library.prompt(tree, t, "en", "node/info/body", no_say)
    assert first.source == "recording" and "/audio/rec1/en/node/info/body.wav?v=" in first.url
    assert "1" == status_row(cli(env, "status"), "en")[1]
    # re-recorded: a new ?v=, so no cache plays the old one
    tts._run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
              "sine=frequency=660:duration=1", str(field)])
    cli(env, "record", "en", "node/info/body", str(field), "--by", "Asha")
    second = library.prompt(tree, t, "en", "node/info/body", no_say)
    assert second.source == "recording" and second.url != first.url
    # a corrupt file falls back to the generated audio, never to silence
    good = rec.read_bytes()
    rec.write_bytes(b"RIFF\0\0\0\0garbage" * 100)
    assert library.prompt(tree, t, "en", "node/info/body", no_say) == generated
    rec.write_bytes(good[:len(good) // 2])  # a copy cut short: the header promises more
    assert library.prompt(tree, t, "en", "node/info/body", no_say) == generated
    rec.write_bytes(good)
    assert library.prompt(tree, t, "en", "node/info/body", no_say) == second
    # the article's text changes: the recording is stale, the new text is rendered
    write_tree(Path(env["MIGRANTLINE_CONTENT_DIR"]),
               INFO.replace("Keep your passport.", "Keep your passport safe."))
    tree = read_tree(env["MIGRANTLINE_CONTENT_DIR"])
    row = status_row(cli(env, "status"), "en")
    assert row[1:3] == ["0", "1"]
    assert library.prompt(tree, t, "en", "node/info/body", no_say) is None  # en is the fallback
    cli(env, "render", "--lang", "en")
    now = library.speak(tree, t, "en", "Keep your passport safe.", no_say)
    assert now.source == "generated" and now.url != generated.url
    assert "node/info/body,en,Keep your passport safe.,stale" in cli(env, "manifest")


@pytest.mark.engine_independent
def test_record_refuses_an_unknown_prompt_or_a_non_audio_file(
        env: dict[str, str], tmp_path: Path) -> None:
    junk = tmp_path / "junk.wav"
    junk.write_text("not audio")
    runner = CliRunner()
    result = runner.invoke(main, ["prompts", "record", "en", "node/nope/body", str(junk),
                                  "--by", "x"], env=env)
    assert result.exit_code == 1 and "prompts manifest" in result.output
    result = runner.invoke(main, ["prompts", "record", "en", "node/info/body", str(junk),
                                  "--by", "x"], env=env)
    assert result.exit_code == 1 and "could not be converted" in result.output
    assert not (Path(env["MIGRANTLINE_RECORDINGS_DIR"]) / "en" / "node/info/body.json").exists()


@pytest.mark.engine_independent
def test_render_without_espeak_says_what_to_install(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["prompts", "render"], env={**env, "PATH": "/nonexistent"})
    assert result.exit_code == 1 and "apt-get install espeak-ng sox" in result.output


@pytest.mark.engine_independent
def test_dynamic_renders_are_found_and_purged(env: dict[str, str]) -> None:
    library = library_of(env)
    tree = read_tree(env["MIGRANTLINE_CONTENT_DIR"])
    assert library.speak(tree, t, "en", "Your reference is 4 7 1", no_say) is None
    library.render_dynamic("en", "Your reference is 4 7 1")
    spoken = library.speak(tree, t, "en", "Your reference is 4 7 1", no_say)
    assert spoken.kind == "play" and "/audio/dyn/en/" in spoken.url
    assert library.purge_dynamic() == 0
    path = library.dynamic_path("en", "Your reference is 4 7 1")
    os.utime(path, (0, 0))
    assert library.purge_dynamic() == 1 and not path.exists()


@pytest.mark.engine_independent
def test_audio_endpoint_serves_safely(env: dict[str, str], tmp_path: Path) -> None:
    cli(env, "render", "--lang", "en")
    app = make_app(tmp_path, **{k: v or None for k, v in env.items()
                                if k != "MIGRANTLINE_DATA_DIR"})
    services = app.extensions["migrantline"]
    try:
        tree = read_tree(env["MIGRANTLINE_CONTENT_DIR"])
        spoken = services.prompts.speak(tree, t, "en", "Keep your passport.", no_say)
        path = spoken.url.removeprefix("https://voice.example.org")
        client = app.test_client()
        got = client.get(path)
        assert got.status_code == 200 and got.mimetype == "audio/mpeg"  # MP3 by default
        assert path.split("?")[0].endswith(".mp3") and got.headers["ETag"]
        assert got.data[0] == 0xFF and got.data[1] & 0xE0 == 0xE0  # an MPEG frame
        assert "immutable" in got.headers["Cache-Control"]
        again = client.get(path, headers={"If-None-Match": got.headers["ETag"]})
        assert again.status_code == 304 and again.data == b""
        head = client.head(path)
        assert head.status_code == 200 and head.headers["ETag"] == got.headers["ETag"]
        assert "max-age=300" in client.get(path.split("?")[0]).headers["Cache-Control"]
        # an MP3 recording is served as audio/mpeg
        rec_dir = Path(env["MIGRANTLINE_RECORDINGS_DIR"]) / "en"
        rec_dir.mkdir(parents=True)
        tts._run(["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                  "sine=duration=1", "-b:a", "32k", str(rec_dir / "a.mp3")])
        assert client.get("/audio/rec1/en/a.mp3").mimetype == "audio/mpeg"
        (rec_dir / "fake.wav").write_bytes(b"x" * 2000)  # not audio: never served
        (rec_dir / "out.wav").symlink_to(tmp_path / "outside.wav")  # points out: refused
        (tmp_path / "outside.wav").write_bytes(got.data)
        for bad in ("/audio/../app.py", "/audio/%2e%2e/app.py", "/audio/rec1/%2e%2e/%2e%2e/x.wav",
                    "/audio/rec1/..%2f..%2fapp.py", "/audio//etc/passwd",
                    "/audio/%2Fetc%2Fpasswd", "/audio/tts//etc/x.wav", "/audio/rec1/en/out.wav",
                    "/audio/rec1/en/fake.wav", "/audio/rec1/en/missing.wav", "/audio/nope/x.wav",
                    "/audio/rec1/en/a.json", "/audio/rec1/en/%00.wav"):
            assert client.get(bad).status_code == 404, bad
    finally:
        services.store.close()


@pytest.mark.engine_independent
def test_record_into_the_content_tree_comes_first(env: dict[str, str], tmp_path: Path) -> None:
    """`record --content` keeps it in content/audio/, which bundles carry and sync mirrors."""
    field = tmp_path / "field.wav"
    tts.synthesize("Keep your passport.", "en", field, "off")
    cli(env, "record", "en", "node/info/body", str(field), "--by", "Asha")
    out = cli(env, "record", "en", "node/info/body", str(field), "--by", "Bo", "--content")
    path = Path(env["MIGRANTLINE_CONTENT_DIR"]) / "audio" / "en" / "node/info/body.mp3"
    assert path.is_file() and "/audio/rec0/en/node/info/body.mp3?v=" in out
    result = CliRunner().invoke(main, ["prompts", "record", "en", "node/info/body", str(field),
                                       "--by", "x", "--content"],
                                env={**env, "MIGRANTLINE_CENTRAL_URL": "http://127.0.0.1:9"})
    assert result.exit_code == 1 and "central content tree" in result.output


@pytest.mark.engine_independent
def test_an_untranslated_text_is_spoken_in_its_own_language(env: dict[str, str]) -> None:
    """A French node without French text shows the English one: it is played as English."""
    write_tree(Path(env["MIGRANTLINE_CONTENT_DIR"]),
               INFO.replace("  fr: Gardez votre passeport.\n", ""))
    cli(env, "render", "--lang", "en")
    library = library_of(env)
    tree = read_tree(env["MIGRANTLINE_CONTENT_DIR"])
    assert library.manifest(tree, t).get("fr", "node/info/body") is None
    for spoken in (library.speak(tree, t, "fr", "Keep your passport.", no_say),
                   library.prompt(tree, t, "fr", "node/info/body", no_say)):
        assert (spoken.kind, spoken.lang, spoken.source) == ("play", "en", "fallback")
    assert library.prompt(tree, t, "fr", "digit/3", lambda lang: True) == type(spoken)(
        "say", text="trois", lang="fr", source="provider")


def test_the_service_generates_what_is_missing_in_the_background(
        env: dict[str, str], caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """MIGRANTLINE_PROMPTS_RENDER=on: a deployment that never ran `prompts render` plays
    generated audio all the same; without espeak-ng it says so once, not per prompt."""
    from ussd_app.channels.voice.prompts import render_missing

    app = make_app(Path(env["MIGRANTLINE_DATA_DIR"]).parent, **env)
    services = app.extensions["migrantline"]
    services.prompts.ui_messages = ()  # the tree's own texts and the digits: enough to see it
    data = Path(env["MIGRANTLINE_DATA_DIR"])
    monkeypatch.setenv("PATH", "/nonexistent")  # no espeak-ng, no sox
    assert render_missing(services.prompts, services.content, services.t, data) == 0
    assert len([r for r in caplog.records if "not generated" in r.getMessage()]) == 1
    monkeypatch.undo()
    made = render_missing(services.prompts, services.content, services.t, data)
    status = services.prompts.status(services.content.current, services.t)
    assert 0 < made <= sum(row["generated"] for row in status.values())
    assert all(row["missing"] == 0 for row in status.values())
    assert render_missing(services.prompts, services.content, services.t, data) == 0  # done
    services.store.close()
