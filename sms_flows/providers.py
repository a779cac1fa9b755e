"""Where the outbox hands a message to the phone network.

Each provider sends one SMS and returns the id its delivery reports will
carry, or raises ``ProviderError`` saying whether trying again later may
work. The providers themselves (Africa's Talking, Twilio, Kannel: a local
gateway with a GSM modem) are in ``ussd_app.providers``; this module picks
the one the settings name. The ``outbox`` provider sends nothing: messages
stay stored (offline, development).
"""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlencode

from ussd_app import settings
from ussd_app.errors import ProviderError
from ussd_app.providers.africastalking import AtSms
from ussd_app.providers.kannel import KannelSms
from ussd_app.providers.transport import TIMEOUT, Transport
from ussd_app.providers.twilio import TwilioSms


def send_timeout(lease: float) -> tuple[float, float]:
    """HTTP timeouts that leave a send well inside the outbox lease.

    Why: a send still waiting on the provider when its lease runs out is
    taken by another worker and sent again. Connect plus read stay under half
    the lease. (A read timeout bounds each read, not the whole answer: a
    provider that trickles its answer byte by byte could still outlast it.)
    """
    return (min(TIMEOUT[0], lease / 4), min(TIMEOUT[1], lease / 4))


class Provider(Protocol):
    name: str

    def send(self, message_id: int, to: str, body: str, encoding: str) -> str: ...


class StoreOnly:
    """MIGRANTLINE_SMS_PROVIDER=outbox: keep every message queued, send none."""

    name = "outbox"

    def send(self, message_id: int, to: str, body: str, encoding: str) -> str:
        raise ProviderError("the outbox provider only stores messages")


def make_provider(config: settings.Config, timeout: tuple[float, float] | None = None,
                  transport: Transport | None = None) -> Provider:
    """The provider MIGRANTLINE_SMS_PROVIDER names, from its settings."""
    config = settings.of(config)
    name = config.sms_provider
    base = config.base_url.rstrip("/")
    token = config.webhook_token
    query = f"?{urlencode({'token': token})}" if token else ""

    def need(*names: str) -> list[str]:
        return config.required(f"MIGRANTLINE_SMS_PROVIDER={name}", *names)

    if name == "outbox":
        return StoreOnly()
    if name == "africastalking":
        username, key = need("AT_USERNAME", "AT_API_KEY")
        return AtSms(username, key, config.at_sender_id, config.at_api_url, timeout, transport)
    if name == "twilio":
        sid, token_, number = need("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
                                   "TWILIO_FROM_NUMBER")
        return TwilioSms(sid, token_, number, f"{base}/sms/twilio/status" if base else None,
                         config.twilio_api_url, timeout, transport)
    if name == "kannel":
        url, user, password = need("KANNEL_SENDSMS_URL", "KANNEL_USERNAME", "KANNEL_PASSWORD")
        return KannelSms(url, user, password, config.kannel_sender,
                         f"{base}/sms/kannel/delivery{query}" if base else None, timeout,
                         transport)
    raise ValueError(f"MIGRANTLINE_SMS_PROVIDER must be africastalking, twilio, kannel or "
                     f"outbox, not {name!r}")
