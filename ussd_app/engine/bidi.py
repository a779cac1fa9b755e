"""Right-to-left text as a handset draws it: lines that read right to left, numbers that
read left to right.

Applied at the rendering edge (the USSD and SMS layouts, the SMS the outbox sends),
never to content or to what voice speaks. Only the marks a line needs are added: in a
UCS-2 screen each one costs a character.

Why LRM and not the isolates (LRI…PDI, Unicode 6.3): handsets with a bidi engine older
than 2013 (Android before 4.3, most feature phones and the SIM-toolkit USSD dialogs) do
not know the isolates and draw them as boxes or drop them without isolating anything;
LRM and RLM date from Unicode 2.0 and every bidi engine honours them. See
docs/developers.md, "Numbers in right-to-left text".

How it works, by the Unicode bidi algorithm (UAX #9). In a right-to-left line digits keep
their own order, but the spaces and the "+" between and around them take the line's
direction, so "+974 4000 0000" is drawn "0000 4000 974+"; after an Arabic letter digits
count as Arabic numbers (rule W2), which a "-" does not join (W4), so "10:00-17:00" is
drawn "17:00-10:00" and a date "2026-12-06" as "06-12-2026". One LRM in front makes the
digits after it European and left to right until the next right-to-left letter (W2,
W7), so the spaces and hyphens between them go left to right too (N1). A number with no
space, no "-" and no leading "+" ("2012", "10:00", "1.5") is drawn right already and
gets nothing. When more
digits follow the number before any letter ("+974 4000 0000 (24 …"), an RLM after it
stops the LRM's reach, so the next number keeps the line's own order.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from babel import Locale, UnknownLocaleError

LRM = "\u200e"
RLM = "\u200f"
MARKS = (LRM, RLM)

# A number as people write it: an optional "+", digit groups joined by one separator.
NUMBER = re.compile(r"(?<![0-9])\+?[0-9]+(?:[ \-./:][0-9]+)*")
_MARKED_OR_NOT = re.compile("(\u200e?)(" + NUMBER.pattern + ")")
_STRONG = ("L", "R", "AL")


@lru_cache(maxsize=64)
def is_rtl(lang: str) -> bool:
    try:
        return bool(Locale.parse(lang).text_direction == "rtl")
    except (ValueError, UnknownLocaleError):
        return False


def needs_mark(number: str) -> bool:
    """Whether a right-to-left line would draw this number out of order."""
    return number.startswith("+") or " " in number or "-" in number


def _first_strong(text: str, start: int = 0) -> str:
    for ch in text[start:]:
        kind = unicodedata.bidirectional(ch)
        if kind in _STRONG:
            return kind
    return ""


def _digit_before_letter(line: str, start: int) -> bool:
    """Whether another digit comes after ``start`` before any letter (on this line)."""
    for ch in line[start:]:
        if ch.isdigit():
            return True
        if unicodedata.bidirectional(ch) in _STRONG:
            return False
    return False


def ltr_numbers(line: str) -> str:
    """One line with its numbers marked to read left to right inside right-to-left text."""
    out: list[str] = []
    last = 0
    for found in _MARKED_OR_NOT.finditer(line):
        number = found.group(2)
        if found.group(1) or not needs_mark(number):  # marked already, or drawn right
            continue
        out.append(line[last:found.start()])
        out.append(LRM + number)
        if _digit_before_letter(line, found.end()):
            out.append(RLM)
        last = found.end()
    out.append(line[last:])
    return "".join(out)


def _rtl_line(line: str) -> str:
    """RLM in front of a line that would otherwise be laid out left to right.

    A handset lays out each line by its first strong character. An Arabic line that opens
    with a Latin word ("ILO", a brand) or with a marked number would be drawn left to
    right with its words out of order; one RLM in front fixes it. A line that holds
    nothing but a number needs none: it reads the same either way. Lines that start with
    an option number need nothing either: digits are weak, so the Arabic decides and the
    number stays at the right, where reading starts.
    """
    if _first_strong(line) != "L":
        return line
    if not _first_strong(line.replace(LRM, "")):
        return line
    return RLM + line


def rtl_lines(text: str) -> str:
    """Every line of a right-to-left text marked to be drawn in reading order."""
    return "\n".join(_rtl_line(ltr_numbers(line)) for line in text.split("\n"))


def for_display(text: str, lang: str) -> str:
    """``text`` as it is sent to a screen in ``lang``: marked when it reads right to left."""
    return rtl_lines(text) if is_rtl(lang) else text
