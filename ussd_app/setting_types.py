"""How a setting's text becomes its value: the parsers ``settings`` names, one per kind.

Each takes the setting's name (for the message) and its non-empty text, and gives
the typed value or raises ``SettingError`` naming the setting and what it takes.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ussd_app.errors import ConfigError
from ussd_app.parsing import bounded_float, bounded_int

Parse = Callable[[str, str], Any]  # (setting name, non-empty text) -> value, or SettingError
ON_WORDS = ("on", "1", "true", "yes")
OFF_WORDS = ("off", "0", "false", "no")
MINUTES_A_YEAR = 366 * 24 * 60
SIX_HOURS = 6 * 3600


class SettingError(ConfigError):
    """A setting has a value the service cannot use; the message names it and what it takes."""


def _refuse(name: str, accepts: str, text: str) -> SettingError:
    return SettingError(f"{name} must be {accepts}, not {text!r}")


def text(name: str, value: str) -> str:
    return value


def path(name: str, value: str) -> Path:
    return Path(value)


def resolved_path(name: str, value: str) -> Path:
    return Path(value).resolve()


def switch(name: str, value: str) -> bool:
    """Every on/off setting: on, 1, true, yes or off, 0, false, no (any case)."""
    word = value.lower()
    if word in ON_WORDS or word in OFF_WORDS:
        return word in ON_WORDS
    raise _refuse(name, f"on or off ({', '.join(ON_WORDS)} / {', '.join(OFF_WORDS)})", value)


def whole(lo: int, hi: int) -> Parse:
    def parse(name: str, value: str) -> int:
        number = bounded_int(value, lo, hi)
        if number is None:
            raise _refuse(name, f"a whole number from {lo} to {hi}", value)
        return number
    return parse


def decimal(lo: float, hi: float) -> Parse:
    def parse(name: str, value: str) -> float:
        number = bounded_float(value, lo, hi)
        if number is None:
            raise _refuse(name, f"a number from {lo:g} to {hi:g} (decimals allowed, e.g. 0.5)",
                          value)
        return number
    return parse


_NUMBER = re.compile(r"^\+[1-9][0-9]{6,14}$")


def phone_list(name: str, value: str) -> tuple[str, ...]:
    """Phone numbers in international format (+ and 7 to 15 digits), comma-separated, at
    most 20: the on-call phones an urgent case alerts."""
    numbers = tuple(n.strip().replace(" ", "") for n in value.split(",") if n.strip())
    if len(numbers) > 20 or not all(_NUMBER.match(n) for n in numbers):
        raise _refuse(name, "up to 20 numbers like +9779800000001, comma-separated", value)
    return numbers


_EMAIL = re.compile(r"^[^@\s,<>]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$")


def email_list(name: str, value: str) -> tuple[str, ...]:
    """E-mail addresses, comma-separated, at most 20."""
    found = tuple(a.strip() for a in value.split(",") if a.strip())
    if len(found) > 20 or not all(_EMAIL.match(a) for a in found):
        raise _refuse(name, "up to 20 addresses like duty@example.org, comma-separated", value)
    return found


def choice(*words: str, on: str | None = None, off: str | None = None) -> Parse:
    """One of ``words``, in any case (kept in the case ``words`` are written in); with
    ``on``/``off``, the switch's words too (``no`` is ``off``), as every switch takes them."""
    def parse(name: str, value: str) -> str:
        for word in words:
            if value.lower() == word.lower():
                return word
        if on is not None and value.lower() in ON_WORDS:
            return on
        if off is not None and value.lower() in OFF_WORDS:
            return off
        also = [f"{', '.join(w)} for {v}" for v, w in ((on, ON_WORDS), (off, OFF_WORDS)) if v]
        raise _refuse(name, "one of " + ", ".join(words)
                      + (f" ({'; '.join(also)})" if also else ""), value)
    return parse


@dataclass(frozen=True)
class Setting:
    name: str
    default: str | None
    help: str
    parse: Parse = text

    def read(self, value: Any) -> Any:
        """The typed value of ``value`` (the default when it is None or blank).

        Text and paths are kept as written (a password may end in a space); numbers,
        switches and choices are read without the spaces around them.
        """
        raw = "" if value is None else str(value)
        if not raw.strip():
            raw = self.default or ""
        if not raw:
            return None
        return self.parse(self.name, raw if self.parse in (text, path, resolved_path)
                          else raw.strip())


def setting(name: str, default: str | None, parse: Parse, help: str) -> Any:
    return field(metadata={"setting": Setting(name, default, help, parse)})
