"""One piece of what a caller hears: audio to play, or text for the provider to say."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Spoken:
    kind: str  # "play" (url) or "say" (provider text-to-speech)
    url: str = ""
    text: str = ""
    lang: str = ""  # the language actually spoken (may be the fallback language)
    source: str = ""  # "recording", "generated", "provider", "fallback"
    # Made for a text outside the manifest (a status, a date): a screen holding one is
    # not cached by ``Speech`` (its text may be the caller's own).
    dynamic: bool = field(default=False, compare=False)


__all__ = ["Spoken"]
