"""What every provider's webhook parser hands the channels: one shape per kind of callback.

The field names differ per provider (``from`` or ``From``, ``sessionId`` or
``CallSid``); these shapes do not, so a channel never reads a provider's form.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MAX_FIELD = 256


def field(form: Mapping[str, str], name: str, limit: int = MAX_FIELD) -> str:
    """A form field, stripped and cut to ``limit`` characters ("" if absent)."""
    return str(form.get(name, "")).strip()[:limit]


@dataclass(frozen=True)
class SmsIn:
    """An inbound SMS: the provider's message id, the sender, the text (as sent)."""

    message_id: str
    phone: str
    text: str


@dataclass(frozen=True)
class DeliveryReport:
    """A delivery report: the id the send returned, our status (None: not tracked), why."""

    provider_id: str
    status: str | None
    error: str | None = None


@dataclass(frozen=True)
class VoiceHit:
    """One voice webhook request. Durations stay the provider's text (the channel bounds
    them); ``ended`` when the provider says the call is over."""

    call_id: str
    direction: str  # inbound / outbound
    phone: str  # the migrant's number, whichever way the call goes
    digits: str = ""
    recording_url: str = ""
    recording_seconds: str = ""
    ended: bool = False
    duration: str = ""


@dataclass(frozen=True)
class UssdHop:
    """One USSD request: the session, the caller, every input so far joined by ``*``."""

    session_id: str
    phone: str
    text: str
