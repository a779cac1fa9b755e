"""What one engine step asks the channel to do, besides showing the next screen.

``machine.step_events`` returns these with the new state. Each one comes from the
input that caused it, never from the state alone, so a channel that replays
inputs (USSD) applies only the events of the newest one, and a retried input
applies them again under the same idempotency key (``conversation.effects``).
Plain frozen data: the engine stays pure.

``ActionRequested`` is the one the engine cannot finish without: the flow reached
a node whose action (file a complaint, look up a status, erase) needs the world.
The engine stops there; the conversation core runs the action and steps the same
input again with its outcome (``Context.outcomes``). ``RecordingExpected`` is
the core's, not the engine's: a spoken answer belongs to a filed complaint.
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


@dataclass(frozen=True, slots=True)
class ActionRequested:
    """The flow asks for an action: a complaint ready to file (``file_complaint``,
    ``file_urgent``), a status to look up, a case to erase.

    ``key`` names the input (the same for a retried or replayed one), so doing it
    twice does it once; ``answers`` are what the flow collected so far.
    """

    key: str
    action: str
    lang: str
    answers: tuple[tuple[str, str], ...]
    node: str


@dataclass(frozen=True, slots=True)
class RecordingExpected:
    """A spoken answer of complaint ``reference``: fetch the recording at ``url``."""

    reference: str
    provider: str
    url: str
    seconds: int | None
    key: str


Event = SmsRequested | LanguageChosen | ActionRequested | RecordingExpected

__all__ = ["ActionRequested", "Event", "LanguageChosen", "RecordingExpected", "SmsRequested"]
