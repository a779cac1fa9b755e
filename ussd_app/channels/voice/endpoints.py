"""The voice webhooks: Twilio at ``/voice/twilio``, Africa's Talking at ``/voice/africastalking``.

Routes and the providers' XML only; their checks (Twilio's signature, the
webhook token) and fields are in their modules (``ussd_app.providers``); what
a call hears is ``voice_calls``. A failure inside never
reaches the caller as silence or an error page: they hear goodbye in their
language, or the provider's own error tone at worst, and the log says why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from io import BytesIO
from typing import Any

from flask import Blueprint, Response, current_app, request

from ussd_app.channels.voice.calls import Channel, VoiceRequest, channel_url
from ussd_app.channels.voice.reply import Hangup, Reply, at_says, at_xml, twilio_says, twiml
from ussd_app.forms import Form, parse_form
from ussd_app.parsing import bounded_float, bounded_int
from ussd_app.providers import africastalking as at
from ussd_app.providers import twilio as tw
from ussd_app.providers.inbound import VoiceHit

log = logging.getLogger(__name__)
bp = Blueprint("voice", __name__)

MAX_SEQ = 10**9  # inputs in one call: far more than any call makes
MAX_SECONDS = 86_400.0


Answer = tuple[int, str, str]  # status, body, content type
XML, AT_XML, TEXT = "text/xml", "application/xml", "text/plain"
FORM = "application/x-www-form-urlencoded"
MAX_BODY = 64 * 1024  # the app's MAX_CONTENT_LENGTH
PATHS = ("/voice/twilio", "/voice/twilio/status", "/voice/africastalking")
_STATUS = {code: f"{code} {HTTPStatus(code).phrase.upper()}" for code in (200, 400, 403, 500)}


def _seconds(value: str) -> int | None:
    """A provider's duration (whole seconds; a decimal is rounded down), up to a day."""
    seconds = bounded_float(value, 0, MAX_SECONDS)
    return None if seconds is None else int(seconds)


def _query(args: Mapping[str, str]) -> tuple[int | None, str, int, int, int]:
    """The step, event, wait and silence count and menu part our own action URLs carry;
    a value that is not a small ASCII number counts as absent (a retry of nothing, no
    wait, first silence, the menu's first options)."""
    seq = bounded_int(args.get("s", ""), 0, MAX_SEQ)
    wait = bounded_int(args.get("w", ""), 0, MAX_SEQ) or 0
    nth = bounded_int(args.get("n", ""), 0, MAX_SEQ) or 1
    part = bounded_int(args.get("p", ""), 0, MAX_SEQ) or 0
    return seq, args.get("ev", ""), min(wait, 10), max(1, min(nth, 5)), min(part, 100)


def _event(ev: str, digits: str, recording: str) -> str:
    if ev in ("silence", "wait"):
        return ev
    if ev == "record":
        return "record" if recording else "silence"
    return "input" if digits else "call"


class VoiceWebhooks:
    """The three webhooks, from a parsed form and query to the status and XML they get.

    Called by ``VoiceEndpoint`` (the common case, before Flask) and by the Flask views
    (anything it does not take: another content type, a chunked or oversized body), so
    both answer alike.
    """

    def __init__(self, services: Any, auth: Any):
        self.services, self.auth = services, auth  # a webhook_auth.WebhookAuth
        self._channels: dict[str, Channel] = {}

    def channel(self, name: str, path: str) -> Channel:
        """A provider's channel, made once: its base URL and token are fixed at start."""
        found = self._channels.get(name)
        if found is None:
            base = self.services.config.base_url
            # The call's next request must pass the same check: with the shared token, it
            # carries it.
            token = self.auth.url_token(f"voice_{name}")
            says = twilio_says if name == "twilio" else at_says
            found = self._channels[name] = Channel(name, says,
                                                   channel_url(base, path, token))
        return found

    def _answer(self, req: VoiceRequest, channel: Channel) -> Reply:
        voice = self.services.voice
        if voice is None:
            return (Hangup(),)
        try:
            return voice.answer(req, channel)
        except Exception:  # never an error page or dead air: goodbye, and the log says why
            log.exception("voice webhook failed (%s)", req.provider)
            return voice.failure(req, channel)

    def _twilio_call(self, environ: Mapping[str, Any], form: Mapping[str, str]
                     ) -> VoiceHit | Answer:
        """A Twilio voice request's call; or the 403/400 it gets."""
        # Checked before anything is read or applied: a forged callback changes nothing.
        reason = self.auth.check("voice_twilio", environ, form)
        if reason:
            return 403, reason, TEXT
        hit = tw.voice(form)
        if hit is None:
            return 400, "not a Twilio voice request: CallSid and From are required", TEXT
        return hit

    def twilio(self, environ: Mapping[str, Any], form: Mapping[str, str],
               args: Mapping[str, str]) -> Answer:
        hit = self._twilio_call(environ, form)
        if not isinstance(hit, VoiceHit):
            return hit
        seq, ev, wait, nth, part = _query(args)
        req = VoiceRequest("twilio", hit.call_id, hit.phone, hit.direction,
                           _event(ev, hit.digits, hit.recording_url), seq, hit.digits,
                           hit.recording_url, _seconds(hit.recording_seconds), wait=wait,
                           silence=nth, ended=hit.ended, part=part)
        return 200, twiml(self._answer(req, self.channel("twilio", "/voice/twilio"))), XML

    def twilio_status(self, environ: Mapping[str, Any], form: Mapping[str, str],
                      args: Mapping[str, str]) -> Answer:
        """The number's status callback: how a call ended (a missed call is called back)."""
        hit = self._twilio_call(environ, form)
        if not isinstance(hit, VoiceHit):
            return hit
        if hit.ended:
            self._answer(VoiceRequest("twilio", hit.call_id, hit.phone, hit.direction, "end",
                                      duration=_seconds(hit.duration) or 0,
                                      recording_url=hit.recording_url),
                         self.channel("twilio", "/voice/twilio"))
        return 200, "<Response/>", XML

    def africastalking(self, environ: Mapping[str, Any], form: Mapping[str, str],
                       args: Mapping[str, str]) -> Answer:
        reason = self.auth.check("voice_africastalking", environ, None)
        if reason:
            return 403, reason, TEXT
        hit = at.voice(form)
        if hit is None:
            return (400, "not an Africa's Talking voice callback: sessionId and callerNumber "
                    "are required", TEXT)
        seq, ev, wait, nth, part = _query(args)
        channel = self.channel("africastalking", "/voice/africastalking")
        if hit.ended:  # the last request: the call is over
            req = VoiceRequest("africastalking", hit.call_id, hit.phone, hit.direction, "end",
                               recording_url=hit.recording_url,
                               duration=_seconds(hit.duration) or 0)
        else:
            req = VoiceRequest("africastalking", hit.call_id, hit.phone, hit.direction,
                               _event(ev, hit.digits, hit.recording_url), seq, hit.digits,
                               hit.recording_url, wait=wait, silence=nth, part=part)
        return 200, at_xml(self._answer(req, channel)), AT_XML

    def by_path(self, path: str) -> Callable[..., Answer]:
        return {"/voice/twilio": self.twilio, "/voice/twilio/status": self.twilio_status,
                "/voice/africastalking": self.africastalking}[path]


class VoiceEndpoint:
    """WSGI middleware that answers the voice webhooks' common case before Flask.

    Why: a call's webhooks come every few seconds per caller and Flask's request
    context, session and form parser cost more than the answer (bench/README.md).
    Only a POST with a form body of a declared length within the app's limit, in
    UTF-8, is answered here, parsed exactly as Werkzeug parses it (``parse_qsl``;
    ``forms.Form`` answers as a ``MultiDict`` does, so the Twilio signature sees the
    same fields); anything else goes
    on to the Flask views, which answer it as before.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], webhooks: VoiceWebhooks):
        self.app, self.webhooks = app, webhooks

    def __call__(self, environ: dict[str, Any], start: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path not in PATHS or environ.get("REQUEST_METHOD") != "POST":
            return self.app(environ, start)
        ctype = str(environ.get("CONTENT_TYPE") or "")
        declared = str(environ.get("CONTENT_LENGTH") or "")
        if ctype.split(";", 1)[0].strip().lower() != FORM or not (
                declared.isascii() and declared.isdigit()) or int(declared) > MAX_BODY:
            return self.app(environ, start)
        raw = environ["wsgi.input"].read(int(declared))
        try:
            text = raw.decode()
        except UnicodeDecodeError:  # Werkzeug's answer (an empty form), from Flask itself
            environ["wsgi.input"] = BytesIO(raw)
            return self.app(environ, start)
        try:
            form = Form(parse_form(text, errors="werkzeug.url_quote"))
            query = str(environ.get("QUERY_STRING") or "").encode("latin-1").decode()
            args = Form(parse_form(query, errors="werkzeug.url_quote"))
            status, body, mimetype = self.webhooks.by_path(path)(environ, form, args)
        except Exception:  # what Flask's error page says (web.py), never a traceback
            log.exception("unhandled error")
            status, body, mimetype = 500, "internal error", TEXT
        data = body.encode("utf-8")
        start(_STATUS.get(status) or f"{status} {HTTPStatus(status).phrase.upper()}",
              [("Content-Type", f"{mimetype}; charset=utf-8"),
               ("Content-Length", str(len(data)))])
        return [data]


def _webhooks() -> VoiceWebhooks:
    return current_app.extensions["voice_webhooks"]  # type: ignore[no-any-return]


def _flask(answer: Answer) -> Response:
    status, body, mimetype = answer
    return Response(body, status=status, mimetype=mimetype)


@bp.post("/voice/twilio")
def twilio() -> Response:
    return _flask(_webhooks().twilio(request.environ, request.form, request.args))


@bp.post("/voice/twilio/status")
def twilio_status() -> Response:
    return _flask(_webhooks().twilio_status(request.environ, request.form, request.args))


@bp.post("/voice/africastalking")
def africastalking() -> Response:
    # Africa's Talking does not sign its fields: the check reads none of them.
    return _flask(_webhooks().africastalking(request.environ, request.form, request.args))
