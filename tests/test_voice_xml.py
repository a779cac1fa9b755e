"""The voice XML written directly is the XML the Twilio SDK and ElementTree write.

Why: ``channels.voice.reply`` writes TwiML and Africa's Talking XML as strings (the
SDK's ``VoiceResponse`` cost more than the rest of a webhook, bench/README.md). The
renderings it replaced are kept here as the reference; every verb, empty and full,
with text that needs escaping, must come out byte for byte the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlencode
from xml.etree import ElementTree as ET

import pytest
from twilio.twiml.voice_response import VoiceResponse

from tests.conftest import make_app
from ussd_app.channels.voice.reply import (
    AT_VOICES,
    TWILIO_VOICES,
    Gather,
    Hangup,
    Piece,
    Pieces,
    Record,
    Redirect,
    Reject,
    Reply,
    Speak,
    at_xml,
    twiml,
)
from ussd_app.channels.voice.speech import channel_url
from voice_prompts import Spoken


def reference_twiml(reply: Reply) -> str:
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


def reference_at_xml(reply: Reply) -> str:
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


ODD = 'a & b < c > d "e" \'f\'\r\n\tg ü नेपाली العربية'
PIECES: list[tuple[Spoken, ...]] = [
    (),
    (Spoken("play", url="http://h/audio/tts/en/x.mp3?v=0123abcd"),),
    (Spoken("play", url="http://h/a.mp3?v=1&w=" + ODD), Spoken("say", text=ODD, lang="ar"),
     Spoken("say", text="", lang="en"), Spoken("say", text="Bonjour", lang="fr"),
     Spoken("say", text="नमस्ते", lang="ne"), Spoken("play", url="")),
]
URL = "http://h/voice/twilio?s=3&ev=silence&n=2&token=" + ODD


def replies() -> list[Reply]:
    found: list[Reply] = [(), (Hangup(),), (Reject(),), (Redirect(URL),),
                          (Redirect(URL, pause=1),)]
    for raw in PIECES:
        for pieces in (raw, Pieces(raw)):
            found += [
                (Gather(pieces, URL, URL + "&x"),),
                (Gather(pieces, URL, URL, timeout=8, finish_on_key="*"),),
                (Record(pieces, URL, URL, max_length=30),),
                (Speak(pieces), Hangup()),
                (Speak(pieces), Redirect(URL, pause=1)),
            ]
    return found


@pytest.mark.parametrize("reply", replies())
def test_twiml_is_the_sdks(reply: Reply) -> None:
    assert twiml(reply) == reference_twiml(reply)


@pytest.mark.parametrize("reply", replies())
def test_africastalking_xml_is_elementtrees(reply: Reply) -> None:
    assert at_xml(reply) == reference_at_xml(reply)


def test_pieces_are_rendered_once_and_compare_as_tuples() -> None:
    pieces = Pieces(PIECES[2])
    assert pieces == PIECES[2] and hash(pieces) == hash(PIECES[2])
    first = pieces.xml("twilio")
    assert pieces.xml("twilio") is first and pieces.xml("at") != first


def reference_url(base: str, path: str, token: str | None, params: dict[str, str]) -> str:
    query = dict(params)
    if token:
        query["token"] = token
    return f"{base.rstrip('/')}{path}?{urlencode(query)}"


@pytest.mark.parametrize("token", [None, "", "tok", "a b&c=d/é"])
@pytest.mark.parametrize("params", [{}, {"s": "1"}, {"s": "12", "ev": "silence", "n": "2"},
                                    {"s": "x y"}, {"é": "1"}, {"token": "other"}])
def test_action_urls_are_urlencodes(token: str | None, params: dict[str, str]) -> None:
    url = channel_url("http://h:5000/", "/voice/twilio", token)
    assert url(params) == reference_url("http://h:5000/", "/voice/twilio", token, params)


def test_a_call_answered_before_flask_hears_what_flask_answers(tmp_path: Path) -> None:
    """The same steps of two calls, one as Twilio posts them (answered by
    ``VoiceEndpoint``), one as a multipart form (left to the Flask views): the same
    XML, and the same refusals."""
    client = make_app(tmp_path).test_client()
    fast, slow = [], []
    for out, call, phone, multipart in ((fast, "CAfast", "+9779800000001", False),
                                        (slow, "CAslow", "+9779800000002", True)):
        for query, digits in (("", ""), ("?s=0", "1"), ("?s=1", "1"), ("?s=0", "1")):
            form = {"CallSid": call, "From": phone, "Direction": "inbound",
                    "CallStatus": "in-progress", "Digits": digits}
            answer = client.post("/voice/twilio" + query, data=form,
                                 content_type="multipart/form-data" if multipart else None)
            assert answer.status_code == 200
            assert answer.headers["Content-Type"] == "text/xml; charset=utf-8"
            out.append(answer.get_data(as_text=True))
        refused = client.post("/voice/africastalking", data={"sessionId": call},
                              content_type="multipart/form-data" if multipart else None)
        out.append(f"{refused.status} {refused.headers['Content-Type']} "
                   f"{refused.get_data(as_text=True)}")
    assert fast == slow
