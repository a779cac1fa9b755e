"""Complaint references: 7 random digits and a Damm check digit, and how they are shown.

Digits because letters are hard on a keypad, random so that one reference
says nothing about another, and checked so that a mistyped digit is caught
before any look-up.
"""

from __future__ import annotations

import secrets

from ussd_app.engine.answers import ascii_digits

_DAMM = (
    (0, 3, 1, 7, 5, 9, 8, 6, 4, 2), (7, 0, 9, 2, 1, 5, 4, 8, 6, 3),
    (4, 2, 0, 6, 8, 7, 1, 3, 5, 9), (1, 7, 5, 0, 9, 8, 3, 4, 2, 6),
    (6, 1, 2, 3, 0, 4, 5, 9, 7, 8), (3, 6, 7, 4, 2, 0, 9, 5, 8, 1),
    (5, 8, 6, 9, 7, 2, 0, 1, 3, 4), (8, 9, 4, 5, 3, 6, 2, 0, 1, 7),
    (9, 4, 3, 8, 6, 1, 7, 2, 0, 5), (2, 5, 8, 1, 4, 3, 6, 7, 9, 0),
)


def damm(digits: str) -> int:
    """The Damm check digit of ``digits``: catches every single-digit error and swap."""
    interim = 0
    for ch in digits:
        interim = _DAMM[interim][int(ch)]
    return interim


def misreadings(digits: str) -> tuple[str, ...]:
    """How a reference shown in right-to-left text may be copied down backwards.

    Damm catches a swap of neighbours, not of the two groups of four: "9698 5189" drawn
    "5189 9698" by a handset that lays it out right to left passes one time in ten.
    """
    return tuple(dict.fromkeys(r for r in (digits[4:] + digits[:4], digits[::-1])
                               if r != digits))


def reads_backwards(digits: str) -> bool:
    """Whether a misreading of this reference passes the check digit too.

    Such references are never issued, so a number that passes its check but could be
    another's misreading is "not found" rather than a case to ask a PIN for.
    """
    return any(damm(r) == 0 for r in misreadings(digits))


def new_reference() -> str:
    """A reference whose misreadings all fail the check digit."""
    while True:
        body = str(secrets.randbelow(9_000_000) + 1_000_000)  # never a leading zero
        reference = body + str(damm(body))
        if not reads_backwards(reference):
            return reference


def digits_of(text: str) -> str:
    """ASCII digits of what was typed: Arabic-Indic or Devanagari digits count too."""
    return ascii_digits(text) or ""


def parse_reference(text: str) -> str | None:
    """The reference in what a caller typed (spaces, dashes allowed), if its check holds."""
    digits = digits_of(text)
    if len(digits) != 8 or damm(digits) != 0:
        return None
    return digits


def show_reference(reference: str) -> str:
    """Grouped by four: easier to read out and to copy down."""
    return f"{reference[:4]} {reference[4:]}"


def mask_phone(phone: str) -> str:
    """Enough to tell two numbers apart in a list, not enough to call one."""
    digits = "".join(ch for ch in phone if ch.isdigit())
    if len(digits) < 6:
        return "•" * len(digits)
    return "+" + digits[:3] + "•" * (len(digits) - 5) + digits[-2:]
