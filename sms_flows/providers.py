"""Where the outbox hands a message to the phone network.

Each provider sends one SMS and returns the id its delivery reports will
carry, or raises ``SendError`` saying whether trying again later may work.
Africa's Talking and Twilio go through their own SDKs; Kannel (a local
gateway with a GSM modem) through its sendsms HTTP interface. The ``outbox``
provider sends nothing: messages stay stored (offline, development).
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import urlencode

import requests

from ussd_app import settings
from ussd_app.parsing import bounded_int

TIMEOUT = (3.05, 10.0)  # (connect, read) at most; shorter when the outbox lease is short


def send_timeout(lease: float) -> tuple[float, float]:
    """HTTP timeouts that leave a send well inside the outbox lease.

    Why: a send still waiting on the provider when its lease runs out is
    taken by another worker and sent again. Connect plus read stay under half
    the lease. (A read timeout bounds each read, not the whole answer: a
    provider that trickles its answer byte by byte could still outlast it.)
    """
    return (min(TIMEOUT[0], lease / 4), min(TIMEOUT[1], lease / 4))


class SendError(Exception):
    """The provider did not take the message; ``temporary`` if a retry may work."""

    def __init__(self, message: str, temporary: bool = True):
        super().__init__(message)
        self.temporary = temporary


class Provider(Protocol):
    name: str

    def send(self, message_id: int, to: str, body: str, encoding: str) -> str: ...


class StoreOnly:
    """MIGRANTLINE_SMS_PROVIDER=outbox: keep every message queued, send none."""

    name = "outbox"

    def send(self, message_id: int, to: str, body: str, encoding: str) -> str:
        raise SendError("the outbox provider only stores messages")


# Africa's Talking per-recipient status codes: 100-102 taken; these will never go.
_AT_PERMANENT = {401, 402, 403, 404, 406, 407, 409}


class AtProvider:
    name = "africastalking"

    def __init__(self, username: str, api_key: str, sender_id: str | None = None,
                 base_url: str | None = None, timeout: tuple[float, float] | None = None):
        from africastalking.SMS import SMSService

        self.timeout = timeout or TIMEOUT
        self.sms = SMSService(username, api_key)
        if base_url:  # a sandbox or stand-in: the SDK's own base URL, re-pointed
            self.sms._baseUrl = base_url.rstrip("/") + "/version1"
        self.sender_id = sender_id or None

    def send(self, message_id: int, to: str, body: str, encoding: str) -> str:
        from africastalking.Service import AfricasTalkingException

        to = "+" + to.lstrip("+")
        try:
            answer = self.sms.send(body, [to], sender_id=self.sender_id, timeout=self.timeout)
        except ValueError as exc:
            raise SendError(f"rejected number: {type(exc).__name__}", temporary=False) from None
        except AfricasTalkingException as exc:
            raise SendError(f"Africa's Talking error: {str(exc)[:200]}") from None
        except requests.RequestException as exc:
            raise SendError(f"Africa's Talking unreachable: {type(exc).__name__}") from None
        if not isinstance(answer, dict):
            raise SendError(f"Africa's Talking answered: {str(answer)[:200]}")
        recipients = (answer.get("SMSMessageData") or {}).get("Recipients") or []
        if not recipients:
            message = (answer.get("SMSMessageData") or {}).get("Message", "")
            raise SendError(f"no recipient accepted: {str(message)[:200]}")
        first = recipients[0]
        code = bounded_int(str(first.get("statusCode") or 0), 0, 9999) or 0
        if code in (100, 101, 102):
            return str(first.get("messageId"))
        raise SendError(f"{code} {first.get('status')}", temporary=code not in _AT_PERMANENT)


class TwilioProvider:
    name = "twilio"

    def __init__(self, account_sid: str, auth_token: str, from_number: str,
                 status_callback: str | None = None, base_url: str | None = None,
                 timeout: tuple[float, float] | None = None):
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self.timeout = timeout or TIMEOUT
        self.client = Client(account_sid, auth_token,
                             http_client=TwilioHttpClient(timeout=self.timeout[1]))
        if base_url:  # a stand-in for api.twilio.com
            self.client.api.base_url = base_url.rstrip("/")
        self.from_number, self.status_callback = from_number, status_callback

    def send(self, message_id: int, to: str, body: str, encoding: str) -> str:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        kwargs: dict[str, Any] = {"to": "+" + to.lstrip("+"), "from_": self.from_number,
                                  "body": body}
        if self.status_callback:
            kwargs["status_callback"] = self.status_callback
        try:
            message = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            temporary = exc.status >= 500 or exc.status == 429
            raise SendError(f"Twilio {exc.status} {exc.code}", temporary=temporary) from None
        except (TwilioException, requests.RequestException) as exc:
            raise SendError(f"Twilio unreachable: {type(exc).__name__}") from None
        return str(message.sid)


class KannelProvider:
    name = "kannel"

    def __init__(self, sendsms_url: str, username: str, password: str,
                 sender: str | None = None, dlr_url: str | None = None,
                 timeout: tuple[float, float] | None = None):
        self.url, self.username, self.password = sendsms_url, username, password
        self.timeout = timeout or TIMEOUT
        self.sender, self.dlr_url = sender, dlr_url
        self.http = requests.Session()

    def send(self, message_id: int, to: str, body: str, encoding: str) -> str:
        provider_id = f"kannel-{message_id}"
        params = {"username": self.username, "password": self.password,
                  "to": "+" + to.lstrip("+"), "text": body, "charset": "UTF-8"}
        if encoding == "UCS-2":
            params["coding"] = "2"
        if self.sender:
            params["from"] = self.sender
        if self.dlr_url:  # %d: Kannel's delivery type (1 delivered, 2 failed, 8 to the SMSC)
            params["dlr-mask"] = "11"
            params["dlr-url"] = self.dlr_url + ("&" if "?" in self.dlr_url else "?") + \
                urlencode({"id": provider_id}) + "&type=%d"
        try:
            answer = self.http.get(self.url, params=params, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SendError(f"Kannel unreachable: {type(exc).__name__}") from None
        if answer.status_code in (200, 202):
            return provider_id
        temporary = answer.status_code >= 500 or answer.status_code in (403, 429)
        raise SendError(f"Kannel {answer.status_code}: {answer.text[:200]}", temporary)


def make_provider(config: settings.Config,
                  timeout: tuple[float, float] | None = None) -> Provider:
    """The provider MIGRANTLINE_SMS_PROVIDER names, from its settings."""
    config = settings.of(config)
    name = config.sms_provider
    base = config.base_url.rstrip("/")
    token = config.webhook_token
    query = f"?{urlencode({'token': token})}" if token else ""

    def need(*names: str) -> list[str]:
        missing = [n for n in names if not config.named(n)]
        if missing:
            raise ValueError(f"MIGRANTLINE_SMS_PROVIDER={name} needs " + ", ".join(missing))
        return [str(config.named(n)) for n in names]

    if name == "outbox":
        return StoreOnly()
    if name == "africastalking":
        username, key = need("AT_USERNAME", "AT_API_KEY")
        return AtProvider(username, key, config.at_sender_id, config.at_api_url, timeout)
    if name == "twilio":
        sid, token_, number = need("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
                                   "TWILIO_FROM_NUMBER")
        return TwilioProvider(sid, token_, number, f"{base}/sms/twilio/status" if base else None,
                              config.twilio_api_url, timeout)
    if name == "kannel":
        url, user, password = need("KANNEL_SENDSMS_URL", "KANNEL_USERNAME", "KANNEL_PASSWORD")
        return KannelProvider(url, user, password, config.kannel_sender,
                              f"{base}/sms/kannel/delivery{query}" if base else None, timeout)
    raise ValueError(f"MIGRANTLINE_SMS_PROVIDER must be africastalking, twilio, kannel or "
                     f"outbox, not {name!r}")
