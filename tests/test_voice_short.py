"""A short voice line (issue 16, point 6), driven as Twilio and Africa's Talking call it.

The main menu is measured from the audio a caller hears (espeak-ng renders it
for real, ffmpeg decodes every ``<Play>``); 99 is announced once a call; a
caller from Qatar hears the Qatar numbers first, read in groups of digits; the
language menu names each language in its own voice; a language with no voice
(Khmer, Lao: no espeak-ng voice, gTTS unreachable here) goes down the chain:
recording, generated speech (gTTS), the provider's voice, else an honest
"sorry" in the nearest language that has one.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner
from flask import Flask

from tests.conftest import DEMO_CONTENT, make_app
from tests.voice_audio import Ears, render_walk
from tests.voice_phone import VoiceCaller
from ussd_app.channels.voice.speech import digit_groups
from ussd_app.cli import main as cli_main
from ussd_app.engine.loader import read_tree
from voice_prompts import tts

BOUND = 12.0  # seconds: the main menu, every prompt of it, in every language


def services(app: Flask):
    return app.extensions["migrantline"]


def spoken(xml: str) -> list[str]:
    """What a caller hears, in order: each <Say>'s words, each <Play>'s file name."""
    out = []
    for element in ET.fromstring(xml).iter():
        if element.tag == "Say":
            out.append((element.text or "").strip())
        elif element.tag == "Play":
            url = element.get("url") or (element.text or "")
            out.append("GAP" if "/_/gap." in url else "PLAY")
    return out


# -- the main menu's length, from its audio ------------------------------------------------

SHIPPED = [lang.code for lang in read_tree(DEMO_CONTENT).languages]


@pytest.mark.engine_independent  # audio lengths: measured once, on SQLite
def test_the_main_menu_is_heard_in_under_12_seconds_in_every_language(
        tmp_path: Path) -> None:
    app = make_app(tmp_path)  # one app: the digits and the language menu rendered once
    ears = Ears(app)
    too_long = []
    for n, lang in enumerate(SHIPPED, start=1):
        # The first prompt of the main menu, the longest ("for help now, press 99" is
        # said there); bench/voice_menus.py measures its other parts too.
        heard = render_walk(app, (str(n),), number=f"+97798000000{n}0")
        main = ears.listen_all(heard[1:])[0]
        assert main.says == 0 and main.plays  # all of it audio, measured
        if main.seconds >= BOUND:
            too_long.append((lang, round(main.seconds, 1)))
    assert not too_long, too_long
    # The frame count agrees with what ffmpeg decodes (checked on one piece).
    url = heard[1].plays[0]
    with tempfile.NamedTemporaryFile(suffix=".mp3") as fh:
        fh.write(app.test_client().get(url.split("5000", 1)[1]).data)
        fh.flush()
        assert abs(tts.listen(Path(fh.name)).seconds - ears.seconds(url)) < 0.05
    services(app).store.close()


# -- 99 once a call; the caller's country first; digit groups -------------------------------

@pytest.mark.parametrize("provider", ["twilio", "africastalking"])
def test_help_now_is_announced_once_a_call(app: Flask, provider: str) -> None:
    caller = VoiceCaller(app.test_client(), provider=provider)
    heard = [caller.dial(), caller.press("1"), caller.press("9"), caller.press("00"),
             caller.press("1"), caller.press("0"), caller.press("42"), caller.press("00")]
    said = [s for h in heard for s in h.says]
    assert said.count("For help now, press") == 1
    first_menu = heard[1].says
    assert first_menu[:3] == ["For help now, press", "nine", "nine"]
    # A caller whose language is known hears it on the first menu, after the welcome.
    again = VoiceCaller(app.test_client(), provider=provider, number=caller.number)
    menu = again.dial()
    assert menu.says[:4] == ["Welcome to MigrantLine.", "For help now, press", "nine", "nine"]
    assert [s for h in (menu, again.press("00")) for s in h.says].count(
        "For help now, press") == 1


def test_a_qatar_caller_hears_the_qatar_numbers_first_in_digit_groups(app: Flask) -> None:
    services(app).prompts.make_gap()
    caller = VoiceCaller(app.test_client(), number="+97455501234")
    caller.dial()
    caller.press("1")
    heard = caller.press("99")
    said = spoken(heard.xml)
    assert said[0] == "Help now"
    assert said[1] == "Qatar hotline (sample)"
    # "+974 4000 0000": three groups, digit by digit, a pause between; never "four thousand"
    assert said[2:17] == ["nine", "seven", "four", "GAP", "four", "zero", "zero", "zero",
                          "GAP", "zero", "zero", "zero", "zero", "press", "one"]
    assert not any("thousand" in s or "4000" in s for s in said)
    # Then the help menu, as for everyone.
    assert said[17] == "By country"
    nepal = VoiceCaller(app.test_client(), number="+9779812300001")
    nepal.dial()
    nepal.press("1")
    assert spoken(nepal.press("99").xml)[1] == "Nepal hotline (sample)"


def test_a_hotline_list_is_read_three_at_a_time_country_first(app: Flask) -> None:
    caller = VoiceCaller(app.test_client(), number="+97455501234")
    caller.dial()
    caller.keys("1", "99")
    hotlines = caller.press("2")
    names = [s for s in hotlines.says if s.endswith("(sample)")]
    assert names[0] == "Qatar hotline (sample)" and len(names) == 3
    assert hotlines.says[-2:] == ["For more, press", "nine"]
    more = caller.press("9")
    assert more.action.endswith("p=1")
    assert [s for s in more.says if s.endswith("(sample)")][0] not in names
    caller.press("1")  # the list by SMS, from any part of it
    assert caller.wait_out().kind == "gather"


def test_numbers_are_grouped_as_written_else_by_plan_else_in_fours() -> None:
    assert digit_groups("+974 4000 0000") == ["974", "4000", "0000"]
    assert digit_groups("+97440000000") == ["974", "4000", "0000"]
    assert digit_groups("+977-1-4000000") == ["977", "1", "4000000"]
    assert digit_groups("77613054") == ["7761", "3054"]
    assert digit_groups("123456789") == ["1234", "56789"]


# -- the language menu: each language in its own voice ---------------------------------------

def corridor_tree(tmp_path: Path) -> Path:
    """The demo content with Thai, Khmer and Lao added (their texts fall back to English)."""
    content = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, content)
    site = content / "site.yaml"
    shipped = set(read_tree(DEMO_CONTENT).language_codes)  # the demo ships them by now
    added = "".join(f"  - code: {code}\n    name: {name}\n"
                    for code, name in (("th", "ไทย"), ("km", "ខ្មែរ"), ("lo", "ລາວ"))
                    if code not in shipped)
    site.write_text(site.read_text("utf-8").replace("default_language:",
                                                    added + "default_language:"), "utf-8")
    return content


@pytest.fixture
def corridor(tmp_path: Path) -> Flask:
    content = corridor_tree(tmp_path)
    app = make_app(tmp_path, MIGRANTLINE_CONTENT_DIR=str(content),
                   MIGRANTLINE_RECORDINGS_DIR=str(tmp_path / "recordings"),
                   MIGRANTLINE_TTS_ONLINE="off")
    yield app
    services(app).store.close()


@pytest.mark.engine_independent  # voices and audio files
def test_the_language_menu_names_each_language_in_its_own_voice(corridor: Flask) -> None:
    s = services(corridor)
    tree = s.content.current
    manifest = s.prompts.manifest(tree, s.t)
    # Each language's line is in that language, and names it (the whole line where its
    # catalog translates "For {language}, press", else its own name alone).
    for lang in tree.languages:
        assert lang.name in manifest.get(lang.code, f"language/{lang.code}").text, lang.code
    assert manifest.get("ne", "language/ne").text == "नेपालीका लागि थिच्नुहोस्"
    assert manifest.get("ne", "digit/5").text == "पाँच"
    heard = render_walk(corridor, ())[0]
    urls = heard.plays
    assert not heard.says and heard.kind == "gather"
    langs = {u.split("/audio/tts/")[1].split("/")[0] for u in urls}
    # Every language with a voice is named in it; Khmer and Lao have none here: not
    # announced at all (no "seven", no name inside an English sentence).
    voiced = {lang.code for lang in tree.languages if tts.espeak_voice(lang.code)}
    assert langs == voiced and not {"km", "lo"} & langs
    for lang in voiced:
        name = manifest.get(lang, f"language/{lang}")
        assert any(name.sha256 in u for u in urls), lang


@pytest.mark.engine_independent  # voices and audio files
def test_a_caller_hears_the_language_of_their_numbers_country_named_first(
        corridor: Flask) -> None:
    """Twelve languages take 27 s to name: a caller from Viet Nam or Nepal hears their own
    first (``spoken_in`` in site.yaml), with the key it always has; others, site order."""
    tree = services(corridor).content.current
    order = []
    for number in ("+84901234567", "+9779800000001", "+447700900123"):
        heard = render_walk(corridor, (), number=number)[0]
        assert not heard.says and heard.kind == "gather"
        order.append([u.split("/audio/tts/")[1].split("/")[0] for u in heard.plays])
    vietnam, nepal, elsewhere = order
    assert vietnam[0] == "vi" and nepal[0] == "ne" and elsewhere[0] == "en"
    # the same languages, each named once with its own key (its name, then its digits)
    assert sorted(set(vietnam)) == sorted(set(nepal)) == sorted(set(elsewhere))
    assert vietnam[:3] == ["vi", "vi", "vi"]  # "Tiếng Việt ... press", "one", "one": key 11
    assert key_of(corridor, "vi") == "11" and tree.language_codes[10] == "vi"
    caller = VoiceCaller(corridor.test_client(), number="+84901234567")
    caller.dial()
    assert caller.press("11").kind == "gather"
    s = services(corridor)
    assert s.store.phone_language(s.ussd.hasher.key("+84901234567")) == "vi"


def test_a_country_that_is_no_iso_code_fails_the_check(tmp_path: Path) -> None:
    content = tmp_path / "content"
    shutil.copytree(DEMO_CONTENT, content)
    site = content / "site.yaml"
    site.write_text(site.read_text("utf-8").replace("spoken_in: [vn]", "spoken_in: [VN]"),
                    "utf-8")
    result = CliRunner().invoke(cli_main, ["content", "check", str(content)])
    assert result.exit_code == 1 and "site.yaml" in result.output and "'VN'" in result.output


def key_of(app: Flask, code: str) -> str:
    """The language's key on the first screen (its place in site.yaml)."""
    codes = services(app).content.current.language_codes
    return str(codes.index(code) + 1)


# -- a language with no voice: the chain -------------------------------------------------------

def test_khmer_with_no_voice_hears_an_honest_sorry_then_english(corridor: Flask) -> None:
    caller = VoiceCaller(corridor.test_client())
    caller.dial()
    sorry = caller.press(key_of(corridor, "km"))
    # In English (the nearest with a voice), with English's key: no English menu.
    assert sorry.says == ["Sorry, there is no Khmer voice yet.", "For English, press", "one"]
    assert sorry.kind == "gather"
    assert caller.silent().says[:1] == ["Sorry, there is no Khmer voice yet."]
    main = caller.press("1")
    assert main.says[:3] == ["For help now, press", "nine", "nine"]
    assert "Before you go" in main.says


def test_lao_is_offered_thai_its_nearest_voice(corridor: Flask) -> None:
    s = services(corridor)
    tree = s.content.current
    for prompt_id in ("language/th", "digit/5"):
        s.prompts.render_prompt(s.prompts.manifest(tree, s.t).get("th", prompt_id))
    s.prompts.forget()
    caller = VoiceCaller(corridor.test_client(), provider="africastalking")
    caller.dial()
    sorry = caller.press(key_of(corridor, "lo"))
    # Never an English menu: the "sorry", then Thai's own name and key, in Thai's voice.
    assert not any("English" in said for said in sorry.says)
    assert sorry.plays and all("/th/" in u for u in sorry.plays)
    thai = caller.press(key_of(corridor, "th"))
    assert thai.kind == "gather"
    assert s.store.phone_language(s.ussd.hasher.key(caller.number)) == "th"


def _record(library, tree, t, prompt_id: str, tmp: Path) -> None:
    """A field recording of a Khmer prompt (here espeak-ng's Thai, as any real audio)."""
    wav = tmp / f"{prompt_id.replace('/', '_')}.wav"
    subprocess.run(["espeak-ng", "-v", "th", "-w", str(wav), "หนึ่ง"], check=True)
    library.import_recording(tree, t, "km", prompt_id, wav, "field office")


def status_voice(env: dict[str, str]) -> dict[str, str]:
    out = CliRunner().invoke(cli_main, ["prompts", "status"], env=env, catch_exceptions=False)
    assert out.exit_code == 0, out.output
    rows = {}
    for line in out.output.splitlines():
        parts = line.split()
        if parts and parts[0] in ("en", "th", "km", "lo"):
            rows[parts[0]] = line.split("  ")[-1].strip()
    return rows


@pytest.mark.engine_independent  # voices and audio files
def test_the_chain_recording_then_gtts_then_provider_then_none(tmp_path: Path) -> None:
    content = corridor_tree(tmp_path)
    # Khmer texts for the main menu's first option, so there is something to record.
    first = content / "nodes" / "before_you_go" / "before_you_go.yaml"
    if "  km: " not in first.read_text("utf-8"):  # the demo ships Khmer by now
        first.write_text(first.read_text("utf-8").replace(
            "  ne: विदेश जानुअघि\n", "  ne: विदेश जानुअघि\n  km: មុនពេលចេញដំណើរ\n", 1), "utf-8")
    env = {"MIGRANTLINE_DATA_DIR": str(tmp_path / "var"),
           "MIGRANTLINE_CONTENT_DIR": str(content),
           "MIGRANTLINE_RECORDINGS_DIR": str(tmp_path / "recordings"),
           "MIGRANTLINE_TTS_ONLINE": "off", "MIGRANTLINE_CENTRAL_URL": ""}
    app = make_app(tmp_path, **env)
    s = services(app)
    tree, t, library = s.content.current, s.t, s.prompts
    manifest = library.manifest(tree, t)
    label = manifest.find("km", tree.label(tree.nodes[tree.main].options[0], "km"))
    assert label is not None
    # Offline, espeak-ng has no Khmer: rendering says so (and what to do), nothing made.
    with pytest.raises(tts.TtsError, match="record this prompt"):
        library.render_prompt(label)
    assert not tts.online("off")

    def twilio(lang: str) -> bool:
        return lang in ("en", "fr", "ar")

    assert not library.has_voice(tree, t, "km", twilio)
    assert status_voice(env)["km"] == "none" and status_voice(env)["lo"] == "none"
    # 3. A provider with a Khmer voice would speak it (none of ours has one).
    assert library.has_voice(tree, t, "km", lambda lang: lang == "km")
    assert library.voice_source(tree, t, "km", lambda lang: lang == "km") == "provider"
    # 2. gTTS's audio, where gTTS made it (online): the generated file for the text.
    with tempfile.TemporaryDirectory() as tmp:
        for prompt in (label, manifest.get("km", "digit/1")):
            wav = Path(tmp) / "g.wav"
            subprocess.run(["espeak-ng", "-v", "th", "-w", str(wav), "หนึ่ง"], check=True)
            tts.to_phone_audio(wav, library.generated_path("km", prompt.text))
    library.forget()
    assert library.has_voice(tree, t, "km", twilio)
    assert status_voice(env)["km"] == "gTTS"
    # 1. A field recording comes first.
    _record(library, tree, t, label.id, tmp_path)
    _record(library, tree, t, "digit/1", tmp_path)
    assert library.voice_source(tree, t, "km", twilio) == "recording"
    assert status_voice(env)["km"] == "recording"
    # English, not rendered yet: the provider's voice speaks it until `prompts render`.
    assert status_voice(env)["en"] == "provider"
    caller = VoiceCaller(app.test_client())
    caller.dial()
    khmer = caller.press(key_of(app, "km"))
    assert khmer.kind == "gather" and "Sorry" not in " ".join(khmer.says)
    assert any("/audio/rec" in u and "/km/" in u for u in khmer.plays)
    s.store.close()
