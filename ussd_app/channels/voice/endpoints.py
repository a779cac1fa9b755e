"""The voice webhooks: Twilio at ``/voice/twilio``, Africa's Talking at ``/voice/africastalking``.

Parsing, the providers' checks (Twilio's signature, the webhook token) and
their XML only; what a call hears is ``voice_calls``. A failure inside never
reaches the caller as silence or an error page: they hear goodbye in their
language, or the provider's own error tone at worst, and the log says why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, current_app, request

from sms_flows.endpoints import refused
from ussd_app.channels.voice.calls import Channel, VoiceRequest, channel_url
from ussd_app.channels.voice.reply import Hangup, Reply, at_says, at_xml, twilio_says, twiml
from ussd_app.parsing import bounded_float, bounded_int

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__)

MAX_FIELD = 256
MAX_SEQ = 10**9  # inputs in one call: far more than any call makes
MAX_SECONDS = 86_400.0
ENDED = ("completed", "busy", "failed", "no-answer", "canceled")


def _services() -> Any:
    return current_app.extensions["migrantline"]


def _field(form: Mapping[str, str], name: str) -> str:
    return str(form.get(name, "")).strip()[:MAX_FIELD]


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


def _twilio_call() -> tuple[Mapping[str, str], str, str, str] | Response:
    """A Twilio voice request's form, call, direction and the migrant's number; or the
    403/400 it gets."""
    if (refusal := refused("voice_twilio")) is not None:
        return refusal
    form = request.form
    call_id, direction = _field(form, "CallSid"), _field(form, "Direction") or "inbound"
    phone = _field(form, "From" if direction == "inbound" else "To")
    if not call_id or not phone:
        return Response("not a Twilio voice request: CallSid and From are required",
                        status=400, mimetype="text/plain")
    return form, call_id, direction.split("-")[0], phone


@bp.post("/voice/twilio")
def twilio() -> Response:
    call = _twilio_call()
    if isinstance(call, Response):
        return call
    form, call_id, direction, phone = call
    seq, ev, wait, nth = _query()
    digits, recording = _field(form, "Digits")[:32], _field(form, "RecordingUrl")
    req = VoiceRequest("twilio", call_id, phone, direction, _event(ev, digits, recording), seq,
                       digits, recording, _seconds(_field(form, "RecordingDuration")), wait=wait,
                       silence=nth, ended=_field(form, "CallStatus") in ENDED)
    return Response(twiml(_answer(req, _channel("twilio", "/voice/twilio"))),
                    mimetype="text/xml")


@bp.post("/voice/twilio/status")
def twilio_status() -> Response:
    """The number's status callback: how a call ended (a missed call is called back)."""
    call = _twilio_call()
    if isinstance(call, Response):
        return call
    form, call_id, direction, phone = call
    if _field(form, "CallStatus") in ENDED:
        _answer(VoiceRequest("twilio", call_id, phone, direction, "end",
                             duration=_seconds(_field(form, "CallDuration")) or 0,
                             recording_url=_field(form, "RecordingUrl")),
                _channel("twilio", "/voice/twilio"))
    return Response("<Response/>", mimetype="text/xml")


@bp.post("/voice/africastalking")
def africastalking() -> Response:
    if (refusal := refused("voice_africastalking")) is not None:
        return refusal
    form = request.form
    call_id, direction = _field(form, "sessionId"), _field(form, "direction") or "inbound"
    phone = _field(form, "callerNumber" if direction == "inbound" else "destinationNumber")
    if not call_id or not phone:
        return Response("not an Africa's Talking voice callback: sessionId and callerNumber "
                        "are required", status=400, mimetype="text/plain")
    seq, ev, wait, nth = _query()
    digits, recording = _field(form, "dtmfDigits")[:32], _field(form, "recordingUrl")
    channel = _channel("africastalking", "/voice/africastalking")
    if _field(form, "isActive") == "0":  # the last request: the call is over
        req = VoiceRequest("africastalking", call_id, phone, direction, "end",
                           recording_url=recording,
                           duration=_seconds(_field(form, "durationInSeconds")) or 0)
    else:
        req = VoiceRequest("africastalking", call_id, phone, direction,
                           _event(ev, digits, recording), seq, digits, recording, wait=wait,
                           silence=nth)
    return Response(at_xml(_answer(req, channel)), mimetype="application/xml")
