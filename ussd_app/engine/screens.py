"""Screens as data: what the engine yields and every channel renders.

A ``Screen`` knows nothing about CON/END, TwiML or SMS; a channel's
``Layout`` turns it into text and says whether that text fits. The engine
asks the layout while it pages, so the same content pages differently on a
160-character USSD screen and a two-part SMS.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

# A translator for interface strings: (language, msgid) -> text.
Translate = Callable[[str, str], str]


@dataclass(frozen=True)
class Screen:
    lang: str
    title: str = ""
    body: str = ""
    options: tuple[tuple[str, str], ...] = ()
    nav: tuple[tuple[str, str], ...] = ()
    hint: str = ""
    end: bool = False
    node: str = ""
    page: int = 0
    pages: int = 1

    def with_hint(self, hint: str) -> Screen:
        return replace(self, hint=hint)


class Layout(Protocol):
    """How a channel turns screens into text, and how much text a screen holds."""

    @property
    def key(self) -> str:
        """Identifies the layout in page caches: equal keys page alike."""
        ...

    def render(self, screen: Screen, t: Translate) -> str: ...

    def fits(self, text: str) -> bool: ...
