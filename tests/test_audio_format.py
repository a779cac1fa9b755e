"""Prompts as MP3 (issue 18): converted with the real ffmpeg, listened to, published, synced.

"Listened to" means decoded whole by ffmpeg (volumedetect): the converted file
lasts as long as its source and is as loud, neither silent nor clipped.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_sync import Setup, server, setup  # noqa: F401 - fixtures of the sync tests
from tests.test_voice_prompts import cli, env, library_of, no_say, t  # noqa: F401 - fixtures
from ussd_app.channels.voice.ui_messages import VOICE_UI_MESSAGES
from ussd_app.cli import main
from ussd_app.engine.loader import read_tree
from voice_prompts import build_manifest, tts

TEXTS = {"en": "Welcome. To hear your rights, press one.",
         "ar": "مرحبا. لمعرفة حقوقك، اضغط واحد.",
         "fr": "Bienvenue. Pour connaître vos droits, tapez un.",
         "ne": "स्वागत छ। तपाईंको अधिकार सुन्न एक थिच्नुहोस्।"}


def tone(path: Path, *effects: str, seconds: str = "2") -> Path:
    tts._run(["sox", "-n", "-r", "8000", "-c", "1", str(path), "synth", seconds, *effects])
    return path


@pytest.mark.engine_independent
@pytest.mark.parametrize("speech", [False, True], ids=["ffmpeg", "sox-for-speech"])
@pytest.mark.parametrize("lang", sorted(TEXTS))
def test_speech_converted_to_mp3_sounds_the_same_in_an_eighth_of_the_bytes(
        tmp_path: Path, lang: str, speech: bool) -> None:
    """Either converter: ffmpeg (recordings) or sox (speech espeak-ng just made)."""
    wav, mp3 = tmp_path / "p.wav", tmp_path / "p.mp3"
    tts.synthesize(TEXTS[lang], lang, wav, "off")
    tts.to_phone_mp3(wav, mp3, speech=speech)
    before, after = tts.listen(wav), tts.listen(mp3)
    assert before.seconds > 1.5
    # no speech cut (the silence at the ends may be), no long padding
    assert before.seconds - 0.5 < after.seconds < before.seconds + 0.1
    assert abs(after.mean_db - before.mean_db) < 1.5  # as loud on average
    assert -20 < after.peak_db < -0.1  # neither silent nor clipped
    assert mp3.stat().st_size * 3 < wav.stat().st_size
    assert mp3.read_bytes()[:1] == b"\xff"  # an MPEG frame, no ID3 tag before it


@pytest.mark.engine_independent
def test_a_loud_recording_is_not_clipped_and_a_quiet_one_not_lost(tmp_path: Path) -> None:
    loud = tone(tmp_path / "loud.wav", "sine", "440", "vol", "0.97")
    quiet = tone(tmp_path / "quiet.wav", "sine", "440", "vol", "0.03")
    for source in (loud, quiet):
        out = source.with_suffix(".mp3")
        tts.to_phone_mp3(source, out)
        before, after = tts.listen(source), tts.listen(out)
        assert after.peak_db < 0.0 and abs(after.peak_db - before.peak_db) < 1.0
        assert abs(after.mean_db - before.mean_db) < 1.0
        # a frame or two of encoder padding: without the header frame no player drops it
        assert tts.check_recording(out).seconds == pytest.approx(2.0, abs=0.2)


@pytest.mark.engine_independent
def test_silence_at_the_ends_is_cut_but_a_silent_file_is_kept(tmp_path: Path) -> None:
    """A recording with two seconds of silence before and after the speech: the caller
    waits 50 ms before it and 150 ms after, not two seconds each."""
    padded = tmp_path / "padded.wav"
    tts._run(["sox", "-n", "-r", "8000", "-c", "1", str(padded), "synth", "1", "sine", "440",
              "vol", "0.5", "pad", "2", "2"])
    out = tmp_path / "padded.mp3"
    tts.to_phone_mp3(padded, out)
    assert tts.listen(padded).seconds == pytest.approx(5.0, abs=0.01)
    assert 1.0 < tts.listen(out).seconds < 1.5
    silent = tone(tmp_path / "silent.wav", "vol", "0")
    for speech in (False, True):  # sox for speech leaves an all-silent file to ffmpeg
        tts.to_phone_mp3(silent, silent.with_suffix(".mp3"), speech=speech)  # kept whole
        assert tts.listen(silent.with_suffix(".mp3")).seconds == pytest.approx(2.0, abs=0.2)


@pytest.mark.engine_independent
def test_render_makes_mp3_and_converts_the_wavs_made_before(env: dict[str, str],  # noqa: F811
                                                           tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("voice_prompts.library.RESOLVED_SECONDS", 0.0)
    cli({**env, "MIGRANTLINE_AUDIO_FORMAT": "wav"}, "render", "--lang", "en")
    library = library_of(env)  # now MP3, the default
    tree = read_tree(env["MIGRANTLINE_CONTENT_DIR"])
    before = library.prompt(tree, t, "en", "node/info/body", no_say)
    assert before.source == "generated" and ".wav?v=" in before.url  # still heard
    # a field officer drops a WAV with its sidecar into the recordings folder by hand
    prompt = library.manifest(tree, t).get("en", "node/main/title")
    dropped = Path(env["MIGRANTLINE_RECORDINGS_DIR"]) / "en" / "node/main/title.wav"
    tts.synthesize(prompt.text, "en", dropped, "off")
    dropped.with_suffix(".json").write_text(json.dumps({"text_sha256": prompt.sha256}))
    heard = library.prompt(tree, t, "en", "node/main/title", no_say)
    assert heard.source == "recording" and ".wav?v=" in heard.url
    out = cli(env, "render", "--lang", "en")
    assert "rendered" in out
    after = library.prompt(tree, t, "en", "node/info/body", no_say)
    assert after.source == "generated" and ".mp3?v=" in after.url
    assert not library.generated_path("en", "Keep your passport.").with_suffix(".wav").exists()
    heard = library.prompt(tree, t, "en", "node/main/title", no_say)
    assert heard.source == "recording" and "/audio/rec1/en/node/main/title.mp3?v=" in heard.url
    assert not dropped.exists() and dropped.with_suffix(".json").exists()
    assert tts.listen(dropped.with_suffix(".mp3")).seconds > 0.5


@pytest.mark.engine_independent
def test_a_silent_corrupt_or_unknown_recording_is_refused_and_the_old_one_kept(
        env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    good = tone(tmp_path / "good.wav", "sine", "440", "vol", "0.5")
    cli(env, "record", "en", "node/info/body", str(good), "--by", "Asha")
    kept = Path(env["MIGRANTLINE_RECORDINGS_DIR"]) / "en" / "node/info/body.mp3"
    first = kept.read_bytes()
    silent = tone(tmp_path / "silent.wav", "sine", "440", "vol", "0")
    corrupt = tmp_path / "cut.mp3"
    corrupt.write_bytes(b"\xff\xfb\x90\x00" + os.urandom(3000))
    unknown = tmp_path / "notes.ogg"
    unknown.write_text("this is a text file, not a recording\n" * 50)
    for bad, says in ((silent, "is silent"), (corrupt, "could not be converted"),
                      (unknown, "is not audio ffmpeg can read")):
        result = CliRunner().invoke(main, ["prompts", "record", "en", "node/info/body",
                                           str(bad), "--by", "Bo"], env=env)
        assert result.exit_code == 1 and says in result.output, result.output
        assert "Traceback" not in result.output
        assert kept.read_bytes() == first  # the old recording keeps playing
    sidecar = json.loads(kept.with_suffix(".json").read_text())
    assert sidecar["recorded_by"] == "Asha"


@pytest.mark.engine_independent
def test_without_ffmpeg_render_and_publish_say_what_to_install(
        env: dict[str, str], tmp_path: Path, setup: Setup) -> None:  # noqa: F811
    bin_dir = tmp_path / "bin"  # espeak-ng only: no ffmpeg, no sox
    bin_dir.mkdir()
    (bin_dir / "espeak-ng").symlink_to("/usr/bin/espeak-ng")
    result = CliRunner().invoke(main, ["prompts", "render"], env={**env, "PATH": str(bin_dir)})
    assert result.exit_code == 1 and "sox and ffmpeg (or libsox-fmt-mp3) not installed" in (
        result.output)
    assert not (Path(env["MIGRANTLINE_DATA_DIR"]) / "audio" / "generated").exists()
    wav = setup.tree / "audio" / "en" / "x.wav"
    wav.parent.mkdir(parents=True)
    tone(wav, "sine", "440")
    result = setup.cli("content", "publish", str(setup.tree), str(setup.out),
                       MIGRANTLINE_AUDIO_FORMAT="mp3", PATH=str(bin_dir))
    assert result.exit_code == 1 and "apt-get install ffmpeg" in result.output
    assert not (setup.out / "latest.json").exists()  # nothing was published


def _recordings(setup: Setup) -> dict[str, int]:  # noqa: F811
    """A WAV recording (and its sidecar) of one prompt per language, in the content tree."""
    tree = read_tree(setup.tree)
    manifest = build_manifest(tree, t, VOICE_UI_MESSAGES)
    sizes = {}
    for lang in ("en", "ar", "fr", "ne"):
        prompt = manifest.get(lang, f"node/{tree.main}/title") or manifest.get(lang, "digit/1")
        path = setup.tree / "audio" / lang / f"{prompt.id}.wav"
        tts.synthesize(prompt.text, lang, path, "off")
        path.with_suffix(".json").write_text(json.dumps({"text_sha256": prompt.sha256}))
        sizes[lang] = path.stat().st_size
    return sizes


def _listed(setup: Setup) -> dict[str, int]:  # noqa: F811
    """path -> size of every file the newest published version lists."""
    envelope = json.loads((setup.out / "latest.json").read_bytes())
    manifest = json.loads(envelope["manifest"])
    files = {}
    for part in manifest["parts"]:
        data = json.loads((setup.out / "files" / part["sha256"]).read_bytes())
        files.update({f["path"]: f["size"] for f in data["files"]})
    return files


def test_publish_carries_wav_recordings_as_mp3_and_the_sync_plays_them(
        setup: Setup) -> None:  # noqa: F811
    wav_sizes = _recordings(setup)
    setup.publish(MIGRANTLINE_AUDIO_FORMAT="wav")
    as_wav = {p: s for p, s in _listed(setup).items() if p.startswith("audio/")}
    setup.publish(MIGRANTLINE_AUDIO_FORMAT="mp3")
    as_mp3 = {p: s for p, s in _listed(setup).items() if p.startswith("audio/")}
    assert sorted(p.removesuffix(".wav") for p in as_wav) == sorted(
        p.removesuffix(".mp3") for p in as_mp3)  # same files, named .mp3: nothing else changes
    assert sum(v for p, v in as_mp3.items() if p.endswith(".mp3")) * 3 < sum(wav_sizes.values())
    assert list((setup.tree / "audio" / "en").rglob("*.wav"))  # the tree is left as it was
    result = setup.sync(MIGRANTLINE_AUDIO_FORMAT="mp3")
    assert result.exit_code == 0, result.output
    app = setup.app(MIGRANTLINE_AUDIO_FORMAT="mp3")
    services = app.extensions["migrantline"]
    try:
        tree = services.content.current
        spoken = services.prompts.prompt(tree, t, "ar", f"node/{tree.main}/title", no_say)
        assert spoken.source == "recording" and "/audio/rec0/ar/" in spoken.url
        got = app.test_client().get(spoken.url.removeprefix(services.prompts.base_url))
        assert got.status_code == 200 and got.mimetype == "audio/mpeg"
        played = setup.tmp / "played.mp3"
        played.write_bytes(got.data)
        assert tts.check_recording(played).seconds > 0.5
    finally:
        services.store.close()


def test_a_corrupt_wav_in_the_tree_is_not_published(setup: Setup) -> None:  # noqa: F811
    setup.publish(MIGRANTLINE_AUDIO_FORMAT="mp3")
    latest = (setup.out / "latest.json").read_bytes()
    bad = setup.tree / "audio" / "fr" / "broken.wav"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"RIFF\0\0\0\0WAVEjunk" * 200)
    result = setup.cli("content", "publish", str(setup.tree), str(setup.out),
                       MIGRANTLINE_AUDIO_FORMAT="mp3")
    assert result.exit_code == 1 and "audio/fr/broken.wav: not converted to MP3" in result.output
    assert (setup.out / "latest.json").read_bytes() == latest  # the last version keeps serving


@pytest.mark.engine_independent
def test_without_ffmpeg_sox_makes_the_mp3(env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    """sox with libsox-fmt-mp3 (installed beside ffmpeg by .ci/run) is the fallback."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("espeak-ng", "sox"):
        (bin_dir / tool).symlink_to(f"/usr/bin/{tool}")
    result = CliRunner().invoke(main, ["prompts", "render", "--lang", "en"],
                                env={**env, "PATH": str(bin_dir)})
    assert result.exit_code == 0, result.output
    made = sorted((Path(env["MIGRANTLINE_DATA_DIR"]) / "audio" / "generated" / "en").iterdir())
    assert made and all(p.suffix == ".mp3" for p in made)
    for path in made[:3]:  # listened to with ffmpeg, outside the render's PATH
        heard = tts.check_recording(path)
        assert heard.seconds > 0.3 and heard.peak_db < 0
