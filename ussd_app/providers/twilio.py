"""Twilio: its webhooks in (SMS, message status, voice, call status), its REST API out.

In: ``X-Twilio-Signature`` (HMAC of the URL and every POST field with the
auth token, checked by Twilio's own validator) and the form fields of each
callback (``../shared/protocols.md`` section 4). Out: send an SMS (the
Messages resource), place a call (the Calls resource), fetch a recording
(its ``RecordingUrl`` plus ``.mp3``, with the account's credentials). The
requests are those the twilio SDK builds: a form body, HTTP basic auth with
the account SID and auth token, JSON back; an error answer's JSON carries
Twilio's error ``code``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ussd_app.errors import ProviderError, TransportError
from ussd_app.providers import transport as http
from ussd_app.providers.inbound import DeliveryReport, SmsIn, VoiceHit, field
from ussd_app.providers.transport import Request, Response, Transport

NAME = "twilio"
CHANNELS = ("sms_twilio", "voice_twilio")
API_URL = "https://api.twilio.com"
SIGNATURE = "HTTP_X_TWILIO_SIGNATURE"  # the WSGI name of X-Twilio-Signature

# ------------------------------------------------------------------ webhooks in

SMS_FIELDS = ("From", "Body", "MessageSid")
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
MESSAGE_STATUS = {"delivered": "delivered", "undelivered": "failed", "failed": "failed",
                  "sent": "sent", "queued": "sent", "sending": "sent", "accepted": "sent"}
CALL_ENDED = ("completed", "busy", "failed", "no-answer", "canceled")


def signed(auth_token: str, url: str, form: Mapping[str, str], signature: str) -> bool:
    """Whether ``signature`` is Twilio's for ``url`` (exactly as Twilio requested it)
    and every POST field, empty ones included."""
    from twilio.request_validator import RequestValidator  # lazy: the SDK costs ~15 ms

    return bool(RequestValidator(auth_token).validate(url, form, signature))


def sms(form: Mapping[str, str]) -> SmsIn:
    return SmsIn((form.get("MessageSid") or "").strip(), (form.get("From") or "").strip()[:64],
                 form.get("Body") or "")


def message_status(form: Mapping[str, str]) -> DeliveryReport:
    return DeliveryReport(form.get("MessageSid", ""),
                          MESSAGE_STATUS.get(form.get("MessageStatus", "")),
                          form.get("ErrorCode"))


def voice(form: Mapping[str, str]) -> VoiceHit | None:
    """A voice or call-status request, or None without ``CallSid`` and the caller's number.
    ``direction`` is inbound or outbound (Twilio's ``outbound-api``, ``outbound-dial``)."""
    call_id, direction = field(form, "CallSid"), field(form, "Direction") or "inbound"
    phone = field(form, "From" if direction == "inbound" else "To")
    if not call_id or not phone:
        return None
    return VoiceHit(call_id, direction.split("-")[0], phone, digits=field(form, "Digits")[:32],
                    recording_url=field(form, "RecordingUrl"),
                    recording_seconds=field(form, "RecordingDuration"),
                    ended=field(form, "CallStatus") in CALL_ENDED,
                    duration=field(form, "CallDuration"))


# ------------------------------------------------------------------ APIs out


class _Account:
    """One Twilio account's REST API: POST a form to a resource, JSON back."""

    def __init__(self, account_sid: str, auth_token: str, base_url: str | None,
                 timeout: tuple[float, float] | None, transport: Transport | None):
        self.account_sid, self.auth_token = account_sid, auth_token
        self.base = (base_url or API_URL).rstrip("/")
        self.timeout = timeout
        self.transport = transport or http.default_transport()

    def create(self, resource: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Create a record (``Messages``, ``Calls``); ``ProviderError`` unless 2xx JSON."""
        url = f"{self.base}/2010-04-01/Accounts/{self.account_sid}/{resource}.json"
        headers = {"Authorization": http.basic_auth(self.account_sid, self.auth_token),
                   "Content-Type": "application/x-www-form-urlencoded",
                   "Accept": "application/json", "Accept-Charset": "utf-8"}
        read = (self.timeout or http.TIMEOUT)[1]  # the SDK's one timeout, for both phases
        try:
            answer = self.transport(Request("POST", url, headers, http.form(fields),
                                            (read, read)))
        except TransportError as exc:
            raise ProviderError(f"Twilio unreachable: {exc.reason}") from None
        if not 200 <= answer.status < 300:
            temporary = answer.status >= 500 or answer.status == 429
            raise ProviderError(f"Twilio {answer.status} {_code(answer)}", temporary=temporary)
        try:
            record = answer.json() if answer.body else {}
        except ValueError:
            raise ProviderError("Twilio unreachable: JSONDecodeError") from None
        return record if isinstance(record, dict) else {}


def _code(answer: Response) -> Any:
    """Twilio's error code from an error answer; the HTTP status when it has none."""
    try:
        payload = answer.json()
    except ValueError:
        return answer.status
    return payload.get("code", answer.status) if isinstance(payload, dict) else answer.status


class TwilioSms:
    """Send one SMS; the id returned is the ``MessageSid`` of its status callbacks."""

    name = NAME

    def __init__(self, account_sid: str, auth_token: str, from_number: str,
                 status_callback: str | None = None, base_url: str | None = None,
                 timeout: tuple[float, float] | None = None,
                 transport: Transport | None = None):
        self.api = _Account(account_sid, auth_token, base_url, timeout or http.TIMEOUT,
                            transport)
        self.from_number, self.status_callback = from_number, status_callback

    def send(self, message_id: int, to: str, body: str, encoding: str) -> str:
        message = self.api.create("Messages", {"To": "+" + to.lstrip("+"),
                                               "From": self.from_number, "Body": body,
                                               "StatusCallback": self.status_callback})
        if not message.get("sid"):
            raise ProviderError("Twilio answered without a message sid")
        return str(message["sid"])


class TwilioVoice:
    """Place outbound calls; the answered call fetches our TwiML from ``answer_url``."""

    name = NAME

    def __init__(self, account_sid: str, auth_token: str, from_number: str, answer_url: str,
                 base_url: str | None = None, timeout: tuple[float, float] | None = None,
                 transport: Transport | None = None):
        self.api = _Account(account_sid, auth_token, base_url, timeout, transport)
        self.from_number, self.answer_url = from_number, answer_url

    def call(self, phone: str) -> str:
        """Place one call to ``phone`` (+E.164); Twilio's ``CallSid`` of the call."""
        call = self.api.create("Calls", {"To": phone, "From": self.from_number,
                                         "Url": self.answer_url, "Method": "POST"})
        if not call.get("sid"):
            raise ProviderError("Twilio answered without a call sid")
        return str(call["sid"])


def recording_request(url: str, account_sid: str | None,
                      auth_token: str | None) -> tuple[str, dict[str, str]]:
    """What to GET for a ``RecordingUrl``, and its credentials (for that host only).

    The URL has no extension and serves ``.mp3`` or ``.wav`` by suffix; the
    account's credentials are asked for when the account requires them.
    """
    parts = urlsplit(url)
    if not parts.path.lower().endswith((".mp3", ".wav")):
        url = urlunsplit(parts._replace(path=parts.path + ".mp3"))
    if not (account_sid and auth_token):
        return url, {}
    return url, {"Authorization": http.basic_auth(account_sid, auth_token)}
