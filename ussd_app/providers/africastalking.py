"""Africa's Talking: its webhooks in (USSD, SMS, delivery reports, voice), its APIs out.

In: who may call (the shared token, optionally ``MIGRANTLINE_AT_ALLOWED_IPS``;
the policy is ``channels.webhook_auth``) and the form fields of each callback
(``../shared/protocols.md`` sections 1 to 3). Out: send an SMS
(``POST /version1/messaging``), place a call (``POST /call`` on the voice
host), fetch a recording (its ``recordingUrl``, as is). Requests go through a
``Transport``; they are the ones the africastalking SDK 2.0.3 builds (fields,
the ``apiKey`` header, its number check), written out so a 400 can be told
from a 500 and every answer seen at the HTTP boundary.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ussd_app.errors import ProviderError, TransportError
from ussd_app.parsing import bounded_int
from ussd_app.providers import transport as http
from ussd_app.providers.inbound import DeliveryReport, SmsIn, UssdHop, VoiceHit, field
from ussd_app.providers.transport import Request, Response, Transport

NAME = "africastalking"
CHANNELS = ("ussd_africastalking", "sms_africastalking", "voice_africastalking")
ALLOWED_IPS = "MIGRANTLINE_AT_ALLOWED_IPS"  # optional source-address allow-list
API_URL = "https://api.africastalking.com"
SANDBOX_API_URL = "https://api.sandbox.africastalking.com"
VOICE_URL = "https://voice.africastalking.com"
SANDBOX_VOICE_URL = "https://voice.sandbox.africastalking.com"
USER_AGENT = "africastalking-python/2.0.0"  # what the SDK says; AT's logs know it
_PHONE = re.compile(r"^\+\d{1,3}\d{3,}$")  # the SDK's check of a recipient

# ------------------------------------------------------------------ webhooks in

SMS_FIELDS = ("from", "text", "id")  # the sender, the text, AT's message id
DELIVERY_STATUS = {"Success": "delivered", "Failed": "failed", "Rejected": "failed",
                   "Sent": "sent", "Submitted": "sent", "Buffered": "sent"}
USSD_MAX_FIELD = 200


def sms(form: Mapping[str, str]) -> SmsIn:
    return SmsIn((form.get("id") or "").strip(), (form.get("from") or "").strip()[:64],
                 form.get("text") or "")


def delivery_report(form: Mapping[str, str]) -> DeliveryReport:
    return DeliveryReport(form.get("id", ""), DELIVERY_STATUS.get(form.get("status", "")),
                          form.get("failureReason"))


def ussd_hop(form: Mapping[str, str]) -> UssdHop | None:
    """The hop, or None when ``sessionId`` or ``phoneNumber`` is missing or too long."""
    session_id = form.get("sessionId", "").strip()
    phone = form.get("phoneNumber", "").strip()
    if not session_id or not phone or len(session_id) > USSD_MAX_FIELD \
            or len(phone) > USSD_MAX_FIELD:
        return None
    return UssdHop(session_id, phone, form.get("text", ""))


def voice(form: Mapping[str, str]) -> VoiceHit | None:
    """The voice callback, or None when ``sessionId`` or the caller's number is missing.
    ``isActive=0`` is the last request of a call: it carries the duration."""
    call_id, direction = field(form, "sessionId"), field(form, "direction") or "inbound"
    phone = field(form, "callerNumber" if direction == "inbound" else "destinationNumber")
    if not call_id or not phone:
        return None
    return VoiceHit(call_id, direction, phone, digits=field(form, "dtmfDigits")[:32],
                    recording_url=field(form, "recordingUrl"),
                    ended=field(form, "isActive") == "0",
                    duration=field(form, "durationInSeconds"))


# ------------------------------------------------------------------ APIs out


def _headers(api_key: str) -> dict[str, str]:
    return {"Accept": "application/json", "User-Agent": USER_AGENT, "apiKey": api_key,
            "Content-Type": "application/x-www-form-urlencoded"}


# Per-recipient SMS status codes: 100-102 taken; these will never go.
_SMS_PERMANENT = {401, 402, 403, 404, 406, 407, 409}


class AtSms:
    """Send one SMS; the id returned is the ``id`` of its delivery reports."""

    name = NAME

    def __init__(self, username: str, api_key: str, sender_id: str | None = None,
                 base_url: str | None = None, timeout: tuple[float, float] | None = None,
                 transport: Transport | None = None):
        base = base_url or (SANDBOX_API_URL if username == "sandbox" else API_URL)
        self.url = base.rstrip("/") + "/version1/messaging"
        self.username, self.api_key, self.sender_id = username, api_key, sender_id or None
        self.timeout = timeout or http.TIMEOUT
        self.transport = transport or http.default_transport()

    def send(self, message_id: int, to: str, body: str, encoding: str) -> str:
        to = "+" + to.lstrip("+")
        if not _PHONE.match(to):
            raise ProviderError("rejected number: ValueError", temporary=False)
        fields = {"username": self.username, "to": to, "message": body, "bulkSMSMode": 1,
                  "from": self.sender_id}
        try:
            answer = self.transport(Request("POST", self.url, _headers(self.api_key),
                                            http.form(fields), self.timeout))
        except TransportError as exc:
            raise ProviderError(f"Africa's Talking unreachable: {exc.reason}") from None
        if not 200 <= answer.status < 300:
            raise ProviderError(f"Africa's Talking error: {answer.text[:200]}")
        return _sms_id(_answer(answer, json_only=True))


def _answer(answer: Response, json_only: bool) -> Any:
    """The JSON of an answer, or its text: the SDK reads JSON only when the content type
    says exactly ``application/json`` (SMS), or whenever it parses (voice)."""
    if json_only and answer.header("Content-Type") != "application/json":
        return answer.text
    try:
        return answer.json()
    except ValueError:
        if json_only:
            raise ProviderError("Africa's Talking unreachable: JSONDecodeError") from None
        return answer.text


def _sms_id(answer: Any) -> str:
    if not isinstance(answer, dict):
        raise ProviderError(f"Africa's Talking answered: {str(answer)[:200]}")
    recipients = (answer.get("SMSMessageData") or {}).get("Recipients") or []
    if not recipients:
        message = (answer.get("SMSMessageData") or {}).get("Message", "")
        raise ProviderError(f"no recipient accepted: {str(message)[:200]}")
    first = recipients[0]
    code = bounded_int(str(first.get("statusCode") or 0), 0, 9999) or 0
    if code in (100, 101, 102):
        return str(first.get("messageId"))
    raise ProviderError(f"{code} {first.get('status')}", temporary=code not in _SMS_PERMANENT)


# Per-number call statuses that no retry will change.
_CALL_PERMANENT = ("invalid", "notsupported", "not supported", "unsupported")


class AtVoice:
    """Place outbound calls; AT then POSTs the answered call to the number's callback URL
    (set in AT's dashboard to /voice/africastalking)."""

    name = NAME

    def __init__(self, username: str, api_key: str, from_number: str,
                 base_url: str | None = None, timeout: tuple[float, float] | None = None,
                 transport: Transport | None = None):
        base = base_url or (SANDBOX_VOICE_URL if username == "sandbox" else VOICE_URL)
        self.url = base.rstrip("/") + "/call"
        self.username, self.api_key, self.from_number = username, api_key, from_number
        self.timeout = timeout
        self.transport = transport or http.default_transport()

    def call(self, phone: str) -> str:
        """Place one call to ``phone`` (+E.164); AT's session id of the call."""
        if not _PHONE.match(phone):
            raise ProviderError("rejected number", temporary=False)
        fields = {"username": self.username, "from": self.from_number, "to": phone}
        try:
            answer = self.transport(Request("POST", self.url, _headers(self.api_key),
                                            http.form(fields),
                                            self.timeout or http.TIMEOUT))
        except TransportError as exc:
            raise ProviderError(f"Africa's Talking unreachable: {exc.reason}") from None
        if not 200 <= answer.status < 300:
            temporary = answer.status >= 500 or answer.status == 429
            raise ProviderError(f"Africa's Talking {answer.status}", temporary=temporary)
        return _call_id(_answer(answer, json_only=False))


def _call_id(answer: Any) -> str:
    if not isinstance(answer, dict):
        raise ProviderError(f"Africa's Talking answered: {str(answer)[:100]!r}")
    entries = answer.get("entries") or []
    if not entries:
        message = str(answer.get("errorMessage") or "no entry")[:200]
        raise ProviderError(f"Africa's Talking: {message}", temporary=not _permanent(message))
    first = entries[0] if isinstance(entries[0], dict) else {}
    status = str(first.get("status") or "")
    if status.lower() == "queued" and first.get("sessionId"):
        return str(first["sessionId"])
    raise ProviderError(f"Africa's Talking: {status[:100] or 'no status'}",
                        temporary=not _permanent(status))


def _permanent(status: str) -> bool:
    squeezed = status.lower().replace(" ", "")
    return any(word.replace(" ", "") in squeezed for word in _CALL_PERMANENT)


def recording_request(url: str) -> tuple[str, dict[str, str]]:
    """What to GET for a ``recordingUrl``: the mp3 itself, no credentials."""
    return url, {}
