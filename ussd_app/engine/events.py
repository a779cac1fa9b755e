"""What one engine step asks the channel to do, besides showing the next screen.

``machine.step_events`` returns these with the new state. Each one comes from the
input that caused it, never from the state alone, so a channel that replays
inputs (USSD) applies only the events of the newest one, and a retried input
applies them again under the same idempotency key (``conversation_effects``).
Plain frozen data: the engine stays pure.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SmsRequested:
    """The caller confirmed they want this contact list by SMS."""

    list_node: str
    lang: str


@dataclass(frozen=True, slots=True)
class LanguageChosen:
    """The caller picked a language from the language list."""

    lang: str


Event = SmsRequested | LanguageChosen

__all__ = ["Event", "LanguageChosen", "SmsRequested"]
