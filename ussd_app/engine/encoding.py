"""Which SMS/USSD encoding a text forces, and how much of a screen it uses.

Python's ``len`` counts code points, which is wrong for both encodings a
handset uses: GSM-7 extension characters take two septets, and UCS-2 counts
UTF-16 code units (an emoji outside the BMP takes two). One character outside
the GSM-7 alphabet turns the whole screen into UCS-2, which cuts a USSD screen
from 160 to 70 characters, so every limit here is per whole screen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

# GSM 03.38 basic character set (3GPP TS 23.038 6.2.1), one septet each.
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table, reached through ESC: two septets each.
GSM7_EXTENDED = frozenset("^{}\\[~]|€\f")


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True)
class Limits:
    """Characters one screen may hold in each encoding."""

    gsm7: int = 160
    ucs2: int = 70

    def for_encoding(self, encoding: Encoding) -> int:
        return self.gsm7 if encoding is Encoding.GSM7 else self.ucs2


# One regex search (in C) instead of a Python loop: paging measures thousands of screens.
_NOT_GSM7 = re.compile("[^" + re.escape("".join(sorted(GSM7_BASIC | GSM7_EXTENDED))) + "]")


def detect(text: str) -> Encoding:
    """GSM-7 when every character is in the basic or extension table."""
    return Encoding.UCS2 if _NOT_GSM7.search(text) else Encoding.GSM7


_ASTRAL = re.compile("[\U00010000-\U0010ffff]")
_EXTENDED = re.compile("[" + re.escape("".join(sorted(GSM7_EXTENDED))) + "]")


def gsm7_length(text: str) -> int:
    """Septets, with extension characters counted twice."""
    return len(text) + len(_EXTENDED.findall(text))


def ucs2_length(text: str) -> int:
    """UTF-16 code units: what a UCS-2 handset and the SMS PDU count."""
    return len(text.encode("utf-16-le")) // 2


def measure(text: str) -> tuple[Encoding, int]:
    """The encoding the text forces and its length in that encoding's units."""
    encoding = detect(text)
    if encoding is Encoding.GSM7:
        return encoding, gsm7_length(text)
    return encoding, ucs2_length(text)


def fits(text: str, limits: Limits) -> bool:
    encoding, length = measure(text)
    return length <= limits.for_encoding(encoding)


# Concatenated SMS carry a 6-byte header, which leaves less room per part.
_SMS_SINGLE = {Encoding.GSM7: 160, Encoding.UCS2: 70}
_SMS_PART = {Encoding.GSM7: 153, Encoding.UCS2: 67}


def sms_segments(text: str) -> tuple[Encoding, int]:
    """How many SMS parts the text needs, and in which encoding.

    Parts never split a GSM-7 escape pair or a UTF-16 surrogate pair, so a
    part may hold one unit less than the nominal maximum: count it that way.
    """
    encoding, length = measure(text)
    if length <= _SMS_SINGLE[encoding]:
        return encoding, 1 if text else 0
    per_part = _SMS_PART[encoding]
    double = _EXTENDED if encoding is Encoding.GSM7 else _ASTRAL
    if not double.search(text):  # every character one unit: no pair to keep together
        return encoding, -(-length // per_part)
    parts, used = 1, 0
    for ch in text:
        if encoding is Encoding.GSM7:
            cost = 2 if ch in GSM7_EXTENDED else 1
        else:
            cost = 2 if ord(ch) > 0xFFFF else 1
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return encoding, parts
