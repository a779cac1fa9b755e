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


XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'


def _text(value: str) -> str:
    """Character data escaped as ElementTree escapes it (the output stays byte-identical
    to the SDK's and ElementTree's renderings, tests/test_voice_xml.py)."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _attr(value: str) -> str:
    return (_text(value).replace('"', "&quot;").replace("\r", "&#13;")
            .replace("\n", "&#10;").replace("\t", "&#09;"))


class Pieces(tuple):  # type: ignore[type-arg]
    """A screen's pieces, rendered to each provider's XML once.

    Why: a cached screen (``speech.Speech``) is heard by every call that reaches it;
    its pieces are the bulk of each answer, so their XML is kept with them and only
    the verbs around them (whose URLs carry the call's step) are written per webhook.
    """

    def xml(self, provider: str) -> str:
        memo: dict[str, str] = self.__dict__
        found = memo.get(provider)
        if found is None:
            found = memo[provider] = (_twilio_pieces if provider == "twilio"
                                      else _at_pieces)(self)
        return found


def _pieces_xml(pieces: Sequence[Piece], provider: str) -> str:
    if isinstance(pieces, Pieces):
        return pieces.xml(provider)
    return _twilio_pieces(pieces) if provider == "twilio" else _at_pieces(pieces)


def _twilio_pieces(pieces: Sequence[Piece]) -> str:
    out = []
    for piece in pieces:
        if piece.kind == "play":
            out.append(f"<Play>{_text(piece.url)}</Play>" if piece.url else "<Play />")
        elif piece.text:
            voice, language = TWILIO_VOICES.get(piece.lang, TWILIO_VOICES["en"])
            out.append(f'<Say language="{_attr(language)}" voice="{_attr(voice)}">'
                       f"{_text(piece.text)}</Say>")
    return "".join(out)


def _at_pieces(pieces: Sequence[Piece]) -> str:
    out = []
    for piece in pieces:
        if piece.kind == "play":
            out.append(f'<Play url="{_attr(piece.url)}" />')
        elif piece.text:
            out.append(f'<Say voice="{_attr(AT_VOICES.get(piece.lang, "woman"))}">'
                       f"{_text(piece.text)}</Say>")
    return "".join(out)


def _element(open_tag: str, inner: str, name: str) -> str:
    """``<open_tag>inner</name>``, or ``<open_tag />`` when empty (as ElementTree writes)."""
    return f"<{open_tag}>{inner}</{name}>" if inner else f"<{open_tag} />"


def twiml(reply: Reply) -> str:
    """TwiML, written directly: the same bytes the Twilio SDK's ``VoiceResponse`` gives
    (its attributes in alphabetical order), at a fraction of its cost per webhook."""
    out = []
    for verb in reply:
        if isinstance(verb, Gather):
            out.append(_element(
                f'Gather action="{_attr(verb.action)}" actionOnEmptyResult="false" '
                f'finishOnKey="{_attr(verb.finish_on_key)}" input="dtmf" method="POST" '
                f'timeout="{verb.timeout}"', _pieces_xml(verb.pieces, "twilio"), "Gather"))
            out.append(f'<Redirect method="POST">{_text(verb.silence)}</Redirect>')
        elif isinstance(verb, Record):
            out.append(_pieces_xml(verb.pieces, "twilio"))
            out.append(f'<Record action="{_attr(verb.action)}" finishOnKey="#" '
                       f'maxLength="{verb.max_length}" method="POST" playBeep="true" '
                       'timeout="8" trim="trim-silence" />')
            out.append(f'<Redirect method="POST">{_text(verb.silence)}</Redirect>')
        elif isinstance(verb, Speak):
            out.append(_pieces_xml(verb.pieces, "twilio"))
        elif isinstance(verb, Redirect):
            if verb.pause:
                out.append(f'<Pause length="{verb.pause}" />')
            out.append(f'<Redirect method="POST">{_text(verb.url)}</Redirect>')
        elif isinstance(verb, Hangup):
            out.append("<Hangup />")
        elif isinstance(verb, Reject):
            out.append('<Reject reason="busy" />')
    return XML_HEAD + _element("Response", "".join(out), "Response")


def at_xml(reply: Reply) -> str:
    """Africa's Talking voice XML. A call ends when its actions run out (no Hangup verb)."""
    out = []
    for verb in reply:
        if isinstance(verb, Gather):
            out.append(_element(
                f'GetDigits timeout="{verb.timeout}" finishOnKey="{_attr(verb.finish_on_key)}"'
                f' callbackUrl="{_attr(verb.action)}"', _pieces_xml(verb.pieces, "at"),
                "GetDigits"))
            out.append(f"<Redirect>{_text(verb.silence)}</Redirect>")
        elif isinstance(verb, Record):
            out.append(_element(
                f'Record finishOnKey="#" maxLength="{verb.max_length}" trimSilence="true" '
                f'playBeep="true" callbackUrl="{_attr(verb.action)}"',
                _pieces_xml(verb.pieces, "at"), "Record"))
            out.append(f"<Redirect>{_text(verb.silence)}</Redirect>")
        elif isinstance(verb, Speak):
            out.append(_pieces_xml(verb.pieces, "at"))
        elif isinstance(verb, Redirect):
            out.append(f"<Redirect>{_text(verb.url)}</Redirect>")
        elif isinstance(verb, Reject):
            out.append("<Reject />")
    return XML_HEAD + _element("Response", "".join(out), "Response")


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
