"""Numbers from requests, URLs, forms and headers, parsed with bounds.

Why not ``int()``/``float()`` and ``str.isdigit()``: ``int`` takes Unicode
digits, spaces, ``_`` and thousands of digits (past 4,300 it raises);
``float`` takes ``1e400``, ``inf`` and ``nan``, which overflow ``int()`` or
compare false with every bound; ``isdigit()`` is true for ``²`` and ``١``,
which ``int()`` then refuses or reads. Each of those was a 500 or a crashed
session. Here only ASCII digits count, the text has a maximum length, and a
value outside ``[lo, hi]`` is None: the caller of these functions decides
what a missing number means (a default, a 400, a 404).

Deliberate exception: what a caller *types* on a handset (a menu key, a PIN,
a reference) may come in the digits of their keypad's script (Arabic-Indic
``١``, Devanagari ``१``...). ``ascii_digits_of`` maps Unicode *decimal* digits
(category Nd) to ASCII in one place, for that input only; superscripts and
circled numbers (``²``, ``①``) are not decimal digits and stay as they are.
"""

from __future__ import annotations

import re
import unicodedata

MAX_DIGITS = 18  # below 2**63: every accepted value fits an SQLite INTEGER
MAX_ID = 2**63 - 1  # the largest SQLite rowid

_INT = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def bounded_int(text: str | None, lo: int, hi: int, max_len: int = MAX_DIGITS) -> int | None:
    """``text`` as an int in ``[lo, hi]``: ASCII digits with an optional leading ``-``
    (only when ``lo`` is negative), at most ``max_len`` digits, nothing around them;
    None otherwise."""
    if text is None or not isinstance(text, str) or not 0 < len(text) <= max_len + 1:
        return None
    if not text.isascii() or not _INT.fullmatch(text) or (text[0] == "-" and lo >= 0):
        return None
    if len(text.lstrip("-")) > max_len:
        return None
    value = int(text)
    return value if lo <= value <= hi else None


def bounded_float(text: str | None, lo: float, hi: float,
                  max_len: int = 24) -> float | None:
    """A non-negative decimal (``12`` or ``12.5``, ASCII, no sign, exponent, ``inf`` or
    ``nan``) in ``[lo, hi]``, for the few fields a provider may send with decimals
    (durations); None otherwise."""
    if text is None or not isinstance(text, str) or not 0 < len(text) <= max_len:
        return None
    if not text.isascii() or not _DECIMAL.fullmatch(text):
        return None
    value = float(text)
    return value if lo <= value <= hi else None


def ascii_digits_of(text: str) -> str:
    """``text`` with every Unicode decimal digit written as its ASCII digit ('١٢' ->
    '12'); every other character unchanged. For keys typed on a handset only."""
    if text.isascii():
        return text
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in text)
