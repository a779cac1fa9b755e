"""What a caller hears, as data, and its two renderings: TwiML and Africa's Talking XML.

The call logic (``voice_calls``) answers every webhook with a ``Reply``: a few
verbs holding ``Spoken`` pieces (a recording or generated audio to play, or
text for the provider's own speech). Only this module knows the providers'
XML, so both stay thin and the logic is tested once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol
from xml.etree import ElementTree as ET

from twilio.twiml.voice_response import VoiceResponse

from ussd_app.engine.screens import Screen, Translate


class Piece(Protocol):
    """A ``voice_prompts.Spoken``: audio to play, or text for the provider to say."""

    kind: str
    url: str
    text: str
    lang: str


@dataclass(frozen=True)
class Gather:
    """Play the pieces while listening for keys; nothing pressed: ``silence``."""

    pieces: tuple[Piece, ...]
    action: str
    silence: str
    timeout: int = 4
    finish_on_key: str = "#"


@dataclass(frozen=True)
class Record:
    """Play the pieces, then record the caller until ``#``, silence or ``max_length``."""

    pieces: tuple[Piece, ...]
    action: str
    silence: str
    max_length: int = 120


@dataclass(frozen=True)
class Speak:
    pieces: tuple[Piece, ...]


@dataclass(frozen=True)
class Redirect:
    url: str
    pause: int = 0  # seconds of quiet first (Twilio only; Africa's Talking has no pause)


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Reject:
    """Refuse the call unanswered: it costs the caller nothing (a call-back follows)."""


Verb = Gather | Record | Speak | Redirect | Hangup | Reject
Reply = tuple[Verb, ...]

# The provider's own speech, where it has a voice for the language (protocols.md §3-4):
# Twilio's basic voices speak English and French, Amazon Polly's Zeina Arabic; Africa's
# Talking's <Say> speaks English only. Nepali has none: recordings or generated audio.
TWILIO_VOICES = {"en": ("woman", "en-US"), "fr": ("woman", "fr-FR"), "ar": ("Polly.Zeina", "arb")}
AT_VOICES = {"en": "woman"}


def twilio_says(lang: str) -> bool:
    return lang in TWILIO_VOICES


def at_says(lang: str) -> bool:
    return lang in AT_VOICES


def twiml(reply: Reply) -> str:
    response = VoiceResponse()

    def add(target: object, pieces: Sequence[Piece]) -> None:
        for piece in pieces:
            if piece.kind == "play":
                target.play(piece.url)  # type: ignore[attr-defined]
            elif piece.text:
                voice, language = TWILIO_VOICES.get(piece.lang, TWILIO_VOICES["en"])
                target.say(piece.text, voice=voice, language=language)  # type: ignore[attr-defined]

    for verb in reply:
        if isinstance(verb, Gather):
            gather = response.gather(input="dtmf", action=verb.action, method="POST",
                                     timeout=verb.timeout, finish_on_key=verb.finish_on_key,
                                     action_on_empty_result=False)
            add(gather, verb.pieces)
            response.redirect(verb.silence, method="POST")
        elif isinstance(verb, Record):
            add(response, verb.pieces)
            response.record(action=verb.action, method="POST", max_length=verb.max_length,
                            finish_on_key="#", play_beep=True, timeout=8, trim="trim-silence")
            response.redirect(verb.silence, method="POST")
        elif isinstance(verb, Speak):
            add(response, verb.pieces)
        elif isinstance(verb, Redirect):
            if verb.pause:
                response.pause(length=verb.pause)
            response.redirect(verb.url, method="POST")
        elif isinstance(verb, Hangup):
            response.hangup()
        elif isinstance(verb, Reject):
            response.reject(reason="busy")
    return str(response)


def at_xml(reply: Reply) -> str:
    """Africa's Talking voice XML. A call ends when its actions run out (no Hangup verb)."""
    root = ET.Element("Response")

    def add(parent: ET.Element, pieces: Sequence[Piece]) -> None:
        for piece in pieces:
            if piece.kind == "play":
                ET.SubElement(parent, "Play", url=piece.url)
            elif piece.text:
                say = ET.SubElement(parent, "Say", voice=AT_VOICES.get(piece.lang, "woman"))
                say.text = piece.text

    for verb in reply:
        if isinstance(verb, Gather):
            gather = ET.SubElement(root, "GetDigits", timeout=str(verb.timeout),
                                   finishOnKey=verb.finish_on_key, callbackUrl=verb.action)
            add(gather, verb.pieces)
            ET.SubElement(root, "Redirect").text = verb.silence
        elif isinstance(verb, Record):
            record = ET.SubElement(root, "Record", finishOnKey="#",
                                   maxLength=str(verb.max_length), trimSilence="true",
                                   playBeep="true", callbackUrl=verb.action)
            add(record, verb.pieces)
            ET.SubElement(root, "Redirect").text = verb.silence
        elif isinstance(verb, Speak):
            add(root, verb.pieces)
        elif isinstance(verb, Redirect):
            ET.SubElement(root, "Redirect").text = verb.url
        elif isinstance(verb, Reject):
            ET.SubElement(root, "Reject")
    return '<?xml version="1.0" encoding="UTF-8"?>' + ET.tostring(root, encoding="unicode")


@dataclass(frozen=True)
class VoiceLayout:
    """A spoken screen has no length limit worth paging for: an article is heard whole.

    The engine still pages through a layout; this one holds any screen a content
    file can make (the loader caps an article far below this), so voice never
    hears "98 for more" in the middle of a sentence.
    """

    @property
    def key(self) -> str:
        return "voice"

    def render(self, screen: Screen, t: Translate) -> str:
        lines = [line for line in (screen.hint, screen.title, screen.body) if line]
        lines += [f"{key}: {label}" for key, label in (*screen.options, *screen.nav)]
        return "\n".join(lines)

    def fits(self, text: str) -> bool:
        return len(text) <= 20_000

    def limit_for(self, text: str) -> int:
        return 20_000
