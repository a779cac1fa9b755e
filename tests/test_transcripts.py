"""Golden transcripts: a few whole conversations on USSD, SMS and voice, kept as text files.

Each flow is walked on each channel through the app's HTTP endpoints, as the
providers post them (Africa's Talking USSD with its cumulative ``text``, its SMS
webhook, Twilio's voice webhooks with ``Digits``), on a fresh database with the
demo content. What the caller sends and receives, and what each input changed in
the database (an SMS queued, a complaint filed, a language remembered, a
recording expected), is written as ``tests/transcripts/<flow>.<channel>.txt``
and compared with the file. Reference numbers and dates are normalised
(``<REF>``, ``<DATE>``).

When content or wording changes on purpose: ``make transcripts`` (which runs
``pytest tests/test_transcripts.py --refresh-transcripts``) rewrites the files;
review the diff like any other change.
"""

from __future__ import annotations

import difflib
import io
import re
import textwrap
import time
import wave
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree as ET

import pytest
from flask import Flask

from ussd_app.privacy.protect import open_text
from ussd_app.store.base import dicts

from .conftest import Phone, make_app
from .recording_server import Reply, serving
from .voice_phone import VoiceCaller

HERE = Path(__file__).resolve().parent / "transcripts"
REFRESH = "make transcripts"
CALLER = {"ussd": "+9779812300101", "sms": "+9779812300202", "voice": "+9779812300303"}
DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
WIDTH = 96
COMPLAINT_FIELDS = ("channel", "lang", "filed_by", "category", "against_kind", "country",
                    "contact", "status", "urgent")

# ------------------------------------------------------------------ the flows


@dataclass(frozen=True)
class Speak:
    """Voice: answer a recording prompt with a message this many seconds long."""

    seconds: int


DIAL = "(dial again)"  # a new USSD session, or a new call, from the same phone
REF = "<REF>"  # type the reference the flow filed
Step = str | Speak


@dataclass(frozen=True)
class Flow:
    title: str
    ussd: tuple[Step, ...]
    sms: tuple[Step, ...]
    voice: tuple[Step, ...]
    must_show: tuple[str, ...] = ()  # in every channel's transcript, refreshed or not

    def steps(self, channel: str) -> tuple[Step, ...]:
        return getattr(self, channel)


# A complaint on the demo content: consent yes, not in danger, for me, wages not paid,
# against my employer (named), in Qatar (city named), what happened, contact any time, no PIN,
# not shared with a centre abroad.
_REPORT_START = ("1", "7", "1", "1", "2", "1", "1", "2")
_REPORT_TYPED = ("Golden Sands Contracting", "3", "Doha",
                 "They kept my passport and did not pay me", "1", "2", "2", "1")

FLOWS = {
    "article": Flow(
        "The main menu, then Before you go > Licensed agencies (an article), then 00 (menu).",
        ussd=("1", "1", "1", "98", "00"),
        sms=("", "1", "1", "1", "00"),
        voice=("1", "1", "1", "00")),
    "contacts": Flow(
        "Help now (99) > Hotlines > send this list by SMS > yes: one SMS with the list.",
        ussd=("1", "99", "2", "1", "1"),
        sms=("", "1", "99", "2", "1", "1"),
        voice=("1", "99", "2", "1", "1"),
        must_show=("outbox: SMS to the caller [message, en",)),
    "complaint": Flow(
        "Report a problem (wages not paid, by the employer, in Qatar), then follow it "
        "by its reference.",
        ussd=(*_REPORT_START, *_REPORT_TYPED, DIAL, "7", "2", REF),
        sms=("", *_REPORT_START, *_REPORT_TYPED, f"status {REF}"),
        voice=(*_REPORT_START, Speak(6), "3", Speak(3), Speak(40), "1", "2", "2", "1",
               DIAL, "7", "2", REF + "#"),
        must_show=("events: complaint <REF> filed",)),
    "language": Flow(
        "English first, then Language > Français from the main menu; the phone keeps it.",
        ussd=("1", "8", "3", DIAL),
        sms=("", "1", "8", "3", "menu"),
        voice=("1", "8", "3", DIAL),
        must_show=("events: language remembered: fr",)),
}

CHANNELS = {
    "ussd": "USSD, as Africa's Talking posts it (*384*1234#, the cumulative text)",
    "sms": "SMS, as Africa's Talking posts an inbound message; each reply read from the outbox",
    "voice": "voice, as Twilio posts its webhooks (keys as Digits); what the TwiML says",
}

# ------------------------------------------------------------------ what changed


class Changes:
    """What one input changed in the database, read with SQL (the tables, not the code)."""

    def __init__(self, app: Flask, caller: str):
        self.app, self.caller = app, caller
        self.db = Path(app.config["MIGRANTLINE_DATA_DIR"]) / "migrantline.db"
        self.references: list[str] = []
        self.outbox_id = self.recording_id = 0
        self.complaints: dict[int, dict[str, Any]] = {}
        self.languages: dict[str, str] = {}

    def query(self, sql: str) -> list[dict[str, Any]]:
        return dicts(self.app.extensions["migrantline"].store.db().execute(sql))

    def read(self) -> tuple[list[dict[str, Any]], list[str]]:
        """The outbox rows added since the last read (opened), and event lines."""
        self.app.extensions["migrantline"].store.flush()  # languages are written behind
        events = [*self._complaints(), *self._languages(), *self._recordings()]
        return self._outbox(), events

    def _complaints(self) -> Iterator[str]:
        for row in self.query("select * from complaints order by id"):
            old = self.complaints.get(row["id"])
            self.complaints[row["id"]] = row
            if row["reference"] not in self.references:
                self.references.append(row["reference"])
            if old is None:
                yield f"complaint {row['reference']} filed: " + ", ".join(
                    f"{k} {row[k]}" for k in COMPLAINT_FIELDS if row[k] not in (None, "", 0))
            elif old["status"] != row["status"]:
                yield f"complaint {row['reference']} status {old['status']} -> {row['status']}"

    def _languages(self) -> Iterator[str]:
        for row in self.query("select key, lang from phones order by key"):
            if self.languages.get(row["key"]) != row["lang"]:
                yield f"language remembered: {row['lang']}"
            self.languages[row["key"]] = row["lang"]

    def _recordings(self) -> Iterator[str]:
        for row in self.query(f"select id, reference, duration from voice_recordings "
                              f"where id > {self.recording_id} order by id"):
            self.recording_id = row["id"]
            yield f"recording expected for {row['reference']} ({row['duration']} s)"

    def _outbox(self) -> list[dict[str, Any]]:
        sealer = self.app.extensions["migrantline"].ussd.sealer  # bodies are sealed at rest
        rows = []
        for row in self.query(f"select * from outbox where id > {self.outbox_id} order by id"):
            self.outbox_id = row["id"]
            to = sealer.open(row["to_sealed"]) if row["to_sealed"] else "(no number)"
            rows.append({**row, "to": "the caller" if to == self.caller else to,
                         "body": open_text(sealer, row["body"])})
        return rows

    def settle(self) -> None:
        """Let the background fetch of recordings finish before the app closes."""
        deadline = time.monotonic() + 10
        while self.query("select id from voice_recordings where status in "
                         "('pending', 'fetching')") and time.monotonic() < deadline:
            time.sleep(0.05)


def outbox_lines(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for row in rows:
        lines.append(f"outbox: SMS to {row['to']} [{row['kind']}, {row['lang']}, "
                     f"{row['encoding']}, {row['segments']} segment(s)]")
        lines += [f"  | {line}" for line in row["body"].splitlines()]
    return lines


# ------------------------------------------------------------------ the channels


def ussd_walk(app: Flask, flow: Flow, changes: Changes) -> Iterator[list[str]]:
    phone = Phone(app.test_client(), number=CALLER["ussd"])
    yield ["(dial *384*1234#)", *screen(phone.dial()), *after(changes)]
    for step in flow.ussd:
        if step == DIAL:
            yield [f"{DIAL} *384*1234#", *screen(phone.dial()), *after(changes)]
            continue
        body = phone.press(typed(step, changes))
        yield [f"> {step}", *screen(body), *after(changes)]


def typed(step: Step, changes: Changes) -> str:
    """What the caller types for ``step``: the filed reference for ``<REF>``."""
    assert isinstance(step, str), step
    return step.replace(REF, changes.references[-1]) if REF in step else step


def screen(body: str) -> list[str]:
    return [f"< {line}" for line in body.splitlines()]


def after(changes: Changes) -> list[str]:
    outbox, events = changes.read()
    return [*(f"events: {e}" for e in events), *outbox_lines(outbox)]


def sms_walk(app: Flask, flow: Flow, changes: Changes) -> Iterator[list[str]]:
    client = app.test_client()
    for n, step in enumerate(flow.sms, 1):
        response = client.post("/sms/africastalking", data={
            "from": CALLER["sms"], "to": "5555", "text": typed(step, changes), "id": f"ATXid_{n}",
            "date": "2026-01-01"})
        assert response.status_code == 200, response.get_data(as_text=True)
        outbox, events = changes.read()
        replies = [r for r in outbox if r["kind"] == "reply" and r["to"] == "the caller"]
        lines = [f"> {step}" if step else "> (an empty SMS)"]
        for reply in replies:
            lines += [f"< {line}" for line in reply["body"].splitlines()]
        lines += [] if replies else ["< (no reply)"]
        others = [r for r in outbox if r not in replies]
        yield [*lines, *(f"events: {e}" for e in events), *outbox_lines(others)]


def voice_walk(app: Flask, flow: Flow, changes: Changes) -> Iterator[list[str]]:
    with ExitStack() as stack:
        url = ""
        if any(isinstance(step, Speak) for step in flow.voice):
            server = stack.enter_context(serving())
            url = server.route("/recordings/answer.wav", Reply(200, silence(), "audio/wav"))
        caller = VoiceCaller(app.test_client(), number=CALLER["voice"])
        voice = Voice(changes)
        yield ["(call)", *voice.heard(caller, caller.dial())]
        for step in flow.voice:
            if step == DIAL:
                caller = VoiceCaller(app.test_client(), number=CALLER["voice"])
                yield ["(calls again)", *voice.heard(caller, caller.dial())]
            elif isinstance(step, Speak):
                heard = caller.speak(url, seconds=step.seconds)
                yield [f"> (speaks for {step.seconds} s, then #)", *voice.heard(caller, heard)]
            else:
                heard = caller.press(typed(step, changes))
                yield [f"> {step}", *voice.heard(caller, heard)]
        changes.settle()


def silence() -> bytes:
    """A tenth of a second of silence as WAV: the provider's recording, as far as we care."""
    data = io.BytesIO()
    with wave.open(data, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * 800)
    return data.getvalue()


class Voice:
    """TwiML read back as what the caller hears: the words said (``/`` between two
    ``<Say>``), the voice when it changes, then what Twilio waits for."""

    def __init__(self, changes: Changes):
        self.changes = changes
        self.voice = ""

    def heard(self, caller: VoiceCaller, heard: Any) -> list[str]:
        answers = [heard.xml]
        while heard.kind == "redirect":  # "one moment": Twilio follows, and so do we
            heard = caller.post(heard.redirect, caller.fields())
            answers.append(heard.xml)
        outbox, events = self.changes.read()  # first: the references said in the answer
        lines: list[str] = []
        shown: list[str] = []
        repeats = 1
        for xml in answers:
            now = self.render(xml)
            if now == shown:
                repeats += 1
                continue
            lines += self._times(shown, repeats) + now
            shown, repeats = now, 1
        lines += self._times([], repeats)
        return [*lines, *(f"events: {e}" for e in events), *outbox_lines(outbox)]

    @staticmethod
    def _times(shown: list[str], repeats: int) -> list[str]:
        return [f"< (the same {repeats} times in all)"] if repeats > 1 else []

    def render(self, xml: str) -> list[str]:
        root = ET.fromstring(xml)
        waits = any(verb.tag in ("Gather", "Record") for verb in root)
        lines: list[str] = []
        pieces: list[ET.Element] = []
        for verb in root:
            if verb.tag in ("Say", "Play"):
                pieces.append(verb)
                continue
            lines += self.spoken(pieces + list(verb))
            pieces = []
            if verb.tag == "Gather":
                lines.append(f"< [keys, # ends; timeout {verb.get('timeout')} s]")
            elif verb.tag == "Record":
                lines.append(f"< [recording, # ends; up to {verb.get('maxLength')} s]")
            elif verb.tag == "Hangup":
                lines.append("< [hangs up]")
            elif verb.tag == "Pause":
                lines.append(f"< [pause {verb.get('length')} s]")
            elif verb.tag == "Redirect" and not waits:  # after a wait: only on silence
                lines.append("< [redirect: Twilio asks again]")
        return lines + self.spoken(pieces)

    def spoken(self, pieces: list[ET.Element]) -> list[str]:
        said: list[str] = []
        for piece in pieces:
            if piece.tag == "Say":
                voice = f"{piece.get('language')} {piece.get('voice')}"
                text = (piece.text or "").strip()
                said.append(text if voice == self.voice else f"[{voice}] {text}")
                self.voice = voice
            elif piece.tag == "Play":
                path = urlsplit((piece.text or piece.get("url") or "").strip()).path
                said.append(f"[play {path.removeprefix('/audio/')}]")  # the prompt's file
        said = self.references_as_words(said)
        if not said:
            return []
        wrapped = textwrap.wrap(" / ".join(said), WIDTH, break_on_hyphens=False,
                                break_long_words=False)
        return ["< " + wrapped[0], *("<   " + line for line in wrapped[1:])]

    def references_as_words(self, said: list[str]) -> list[str]:
        """A reference read digit by digit becomes one ``<REF>``."""
        for reference in self.changes.references:
            words = [DIGIT_WORDS[int(d)] for d in reference]
            for i in range(len(said) - len(words) + 1):
                if said[i:i + len(words)] == words:
                    said = [*said[:i], reference, *said[i + len(words):]]
                    break
        return said


WALKS = {"ussd": ussd_walk, "sms": sms_walk, "voice": voice_walk}

# ------------------------------------------------------------------ the transcript


def normalise(text: str, references: list[str]) -> str:
    for reference in references:
        text = text.replace(f"{reference[:4]} {reference[4:]}", REF).replace(reference, REF)
    text = re.sub(r"\b\d{4}-\d{2}-\d{2}\b", "<DATE>", text)
    # Trailing spaces would be lost to editors: shown, one mark each.
    return re.sub(r" +$", lambda m: "\u2420" * len(m[0]), text, flags=re.M)


def transcript(tmp_path: Path, name: str, channel: str) -> str:
    flow = FLOWS[name]
    app = make_app(tmp_path, MIGRANTLINE_RECORDING_HOSTS="http://127.0.0.1")
    try:
        changes = Changes(app, CALLER[channel])
        blocks = ["\n".join(lines) for lines in WALKS[channel](app, flow, changes)]
    finally:
        app.extensions["migrantline"].store.close()
    header = (f"# {name} on {CHANNELS[channel]}.\n# {flow.title}\n"
              f"# '>' the caller sends, '<' the caller gets; 'events:' and 'outbox:' are what\n"
              f"# that input changed in the database. Made by tests/test_transcripts.py: "
              f"`{REFRESH}`.\n")
    return normalise(header + "\n" + "\n\n".join(blocks) + "\n", changes.references)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        cases = [(name, channel) for name in FLOWS for channel in CHANNELS]
        metafunc.parametrize("case", cases, ids=[f"{n}.{c}" for n, c in cases])


def test_transcript(case: tuple[str, str], tmp_path: Path, request: pytest.FixtureRequest) -> None:
    name, channel = case
    path = HERE / f"{name}.{channel}.txt"
    got = transcript(tmp_path, name, channel)
    missing = [s for s in FLOWS[name].must_show if s not in got]
    assert not missing, f"{path.name} lacks {missing}:\n{got}"
    if request.config.getoption("--refresh-transcripts"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(got, encoding="utf-8")
        return
    want = path.read_text(encoding="utf-8") if path.exists() else ""
    if got != want:
        diff = "".join(difflib.unified_diff(want.splitlines(True), got.splitlines(True),
                                            f"{path.name} (kept)", f"{path.name} (now)"))
        pytest.fail(f"the {name} flow on {channel} no longer matches tests/transcripts/"
                    f"{path.name}:\n{diff}\nIf the change is on purpose, run `{REFRESH}` "
                    "and commit the files.", pytrace=False)


def test_every_transcript_file_has_its_flow() -> None:
    kept = {p.name for p in HERE.glob("*.txt")}
    expected = {f"{name}.{channel}.txt" for name in FLOWS for channel in CHANNELS}
    assert kept <= expected, f"no flow writes {sorted(kept - expected)}: delete them"


def test_the_voice_reader() -> None:
    """Plays, records, a reference read digit by digit, repeated "one moment"s."""
    changes = SimpleNamespace(references=["12345670"])  # what the reader uses of Changes
    voice = Voice(changes)  # type: ignore[arg-type]
    digits = "".join(f'<Say voice="woman" language="en-US">{DIGIT_WORDS[int(d)]}</Say>'
                     for d in "12345670")
    assert voice.render(
        '<Response><Say voice="woman" language="en-US">Your reference</Say>' + digits +
        '<Play>http://127.0.0.1:5000/audio/recordings/en/bye.mp3?v=0a1b2c3d</Play>'
        '<Record action="x" maxLength="30" finishOnKey="#"/><Redirect>y</Redirect>'
        '</Response>') == [
        "< [en-US woman] Your reference / 12345670 / [play recordings/en/bye.mp3]",
        "< [recording, # ends; up to 30 s]"]
    assert normalise("Case 1234 5670, 12345670 on 2026-12-04  \n", changes.references) == \
        "Case <REF>, <REF> on <DATE>\u2420\u2420\n"
