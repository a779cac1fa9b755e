"""The voice webhooks: Twilio at ``/voice/twilio``, Africa's Talking at ``/voice/africastalking``.

Routes and the providers' XML only; their checks (Twilio's signature, the
webhook token) and fields are in their modules (``ussd_app.providers``); what
a call hears is ``voice_calls``. A failure inside never
reaches the caller as silence or an error page: they hear goodbye in their
language, or the provider's own error tone at worst, and the log says why.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, current_app, request

from ussd_app.channels.voice.calls import Channel, VoiceRequest, channel_url
from ussd_app.channels.voice.reply import Hangup, Reply, at_says, at_xml, twilio_says, twiml
from ussd_app.channels.webhook_auth import refused
from ussd_app.parsing import bounded_float, bounded_int
from ussd_app.providers import africastalking as at
from ussd_app.providers import twilio as tw
from ussd_app.providers.inbound import VoiceHit

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__)

MAX_SEQ = 10**9  # inputs in one call: far more than any call makes
MAX_SECONDS = 86_400.0


def _services() -> Any:
    return current_app.extensions["migrantline"]


def _seconds(value: str) -> int | None:
    """A provider's duration (whole seconds; a decimal is rounded down), up to a day."""
    seconds = bounded_float(value, 0, MAX_SECONDS)
    return None if seconds is None else int(seconds)


def _query() -> tuple[int | None, str, int, int]:
    """The step, event, wait and silence count our own action URLs carry; a value that is
    not a small ASCII number counts as absent (a retry of nothing, no wait, first silence)."""
    seq = bounded_int(request.args.get("s", ""), 0, MAX_SEQ)
    wait = bounded_int(request.args.get("w", ""), 0, MAX_SEQ) or 0
    nth = bounded_int(request.args.get("n", ""), 0, MAX_SEQ) or 1
    return seq, request.args.get("ev", ""), min(wait, 10), max(1, min(nth, 5))


def _event(ev: str, digits: str, recording: str) -> str:
    if ev in ("silence", "wait"):
        return ev
    if ev == "record":
        return "record" if recording else "silence"
    return "input" if digits else "call"


def _channel(name: str, path: str) -> Channel:
    base = current_app.extensions["migrantline"].config.base_url
    # The call's next request must pass the same check: with the shared token, it carries it.
    token = current_app.extensions["webhook_auth"].url_token(f"voice_{name}")
    says = twilio_says if name == "twilio" else at_says
    return Channel(name, says, channel_url(base, path, token))


def _answer(req: VoiceRequest, channel: Channel) -> Reply:
    voice = _services().voice
    if voice is None:
        return (Hangup(),)
    try:
        return voice.answer(req, channel)
    except Exception:  # never an error page or dead air: goodbye, and the log says why
        log.exception("voice webhook failed (%s)", req.provider)
        return voice.failure(req, channel)


def _twilio_call() -> VoiceHit | Response:
    """A Twilio voice request's call; or the 403/400 it gets."""
    if (refusal := refused("voice_twilio")) is not None:
        return refusal
    hit = tw.voice(request.form)
    if hit is None:
        return Response("not a Twilio voice request: CallSid and From are required",
                        status=400, mimetype="text/plain")
    return hit


@bp.post("/voice/twilio")
def twilio() -> Response:
    hit = _twilio_call()
    if isinstance(hit, Response):
        return hit
    seq, ev, wait, nth = _query()
    req = VoiceRequest("twilio", hit.call_id, hit.phone, hit.direction,
                       _event(ev, hit.digits, hit.recording_url), seq, hit.digits,
                       hit.recording_url, _seconds(hit.recording_seconds), wait=wait,
                       silence=nth, ended=hit.ended)
    return Response(twiml(_answer(req, _channel("twilio", "/voice/twilio"))),
                    mimetype="text/xml")


@bp.post("/voice/twilio/status")
def twilio_status() -> Response:
    """The number's status callback: how a call ended (a missed call is called back)."""
    hit = _twilio_call()
    if isinstance(hit, Response):
        return hit
    if hit.ended:
        _answer(VoiceRequest("twilio", hit.call_id, hit.phone, hit.direction, "end",
                             duration=_seconds(hit.duration) or 0,
                             recording_url=hit.recording_url),
                _channel("twilio", "/voice/twilio"))
    return Response("<Response/>", mimetype="text/xml")


@bp.post("/voice/africastalking")
def africastalking() -> Response:
    if (refusal := refused("voice_africastalking")) is not None:
        return refusal
    hit = at.voice(request.form)
    if hit is None:
        return Response("not an Africa's Talking voice callback: sessionId and callerNumber "
                        "are required", status=400, mimetype="text/plain")
    seq, ev, wait, nth = _query()
    channel = _channel("africastalking", "/voice/africastalking")
    if hit.ended:  # the last request: the call is over
        req = VoiceRequest("africastalking", hit.call_id, hit.phone, hit.direction, "end",
                           recording_url=hit.recording_url,
                           duration=_seconds(hit.duration) or 0)
    else:
        req = VoiceRequest("africastalking", hit.call_id, hit.phone, hit.direction,
                           _event(ev, hit.digits, hit.recording_url), seq, hit.digits,
                           hit.recording_url, wait=wait, silence=nth)
    return Response(at_xml(_answer(req, channel)), mimetype="application/xml")
