"""Who is on the line and what they sent: the one shape every channel parses into.

Modelled on vumi's ``TransportUserMessage``: the channel and provider it came
by, the session it belongs to, the caller, the content, and the session
event (``new``, ``resume``, ``close``; none for SMS, which has no session).
What only one channel knows (a voice call's step and recording) travels in
``transport``, typed by that channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import phonenumbers

from ussd_app.privacy.protect import PhoneHasher, is_withheld

NEW, RESUME, CLOSE = "new", "resume", "close"  # vumi's session events


@lru_cache(maxsize=1024)
def _country(phone: str) -> str:
    """Memoised: parsing a number costs a hop more than its engine step, and a caller
    sends a few hops (a call a few webhooks) from one number."""
    try:
        parsed = phonenumbers.parse(phone if phone.startswith("+") else "+" + phone, None)
    except phonenumbers.NumberParseException:
        return ""
    region = phonenumbers.region_code_for_number(parsed) or ""
    return region if len(region) == 2 and region != "ZZ" else ""


@dataclass(frozen=True)
class Caller:
    """Who is on the line: the channel, the number, and its keyed hash."""

    channel: str
    phone: str
    phone_key: str

    @property
    def withheld(self) -> bool:
        """No usable number: ``phone_key`` names this one session, and nothing is
        shown for "the filing phone" (only a reference and its PIN open a case)."""
        return is_withheld(self.phone)

    @property
    def country(self) -> str:
        """The country (ISO code, upper case) of the number by its calling code; ""
        when withheld or not a number. A roaming migrant's home code says where the SIM
        is from, not where they are."""
        if self.withheld:
            return ""
        return _country(self.phone)


@dataclass(frozen=True)
class Inbound:
    """One message from a caller, as every channel parses it.

    ``session_id`` is the provider's: a USSD session, an SMS message id, a call.
    """

    channel: str  # ussd, sms, voice
    provider: str
    session_id: str
    phone: str
    content: str = ""
    session_event: str | None = None  # NEW, RESUME, CLOSE; None: no session (SMS)
    transport: Any = None  # what only this channel knows (voice: ``VoiceTurn``)

    @property
    def session(self) -> str:
        """The conversation's key in storage and in idempotency keys, per channel.

        The shapes stored since each channel began: a USSD session's id, a call's
        ``provider:call`` (call ids are only unique per provider), an SMS message's id.
        """
        if self.channel == "voice":
            return f"{self.provider}:{self.session_id}"
        return self.session_id

    @property
    def scope(self) -> str:
        """What a withheld caller's per-session key is scoped by."""
        return f"sms:{self.provider}" if self.channel == "sms" else self.channel


def identify(hasher: PhoneHasher, msg: Inbound) -> Caller:
    """The caller: their phone's keyed hash, or for a withheld number a key valid for
    this one session (every withheld caller would otherwise share one identity)."""
    return Caller(msg.channel, msg.phone, hasher.caller_key(msg.phone, msg.scope, msg.session))


__all__ = ["CLOSE", "Caller", "Inbound", "NEW", "RESUME", "identify"]
