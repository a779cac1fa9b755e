"""Burmese typed in the Zawgyi font encoding, turned into Unicode where caller text enters.

Why: many phones in Myanmar still type Zawgyi, which reuses the Burmese code points in
another order and with other meanings (a Zawgyi "ျမန္မာ" is the Unicode "မြန်မာ"). Left
as typed, a keyword or an agency name never matches, and a complaint stored in Zawgyi
reads as garbage on the dashboard. So SMS bodies and USSD answers are converted once, at
the edge, before anything matches or stores them.

Two libraries, each for what it does best: Google's ``myanmartools`` detector (a Markov
model trained on both encodings) says how likely the text is Zawgyi; ``paraencoder``'s
ordered rules convert it (pure Python, no dependencies, maintained; in our tests it also
got the stacked consonants and the dot-below/asat order right where ``python-myanmar``
did not).

A short text can look like either encoding: most Burmese words are spelled with the
same code points in both. Converting such a word would break valid Unicode (U+1039 is
a stacking mark in Unicode and an asat in Zawgyi), so a text is converted only when the
detector is sure (above ``THRESHOLD``) *and* it holds a sign that valid Unicode Burmese
cannot hold: a vowel sign E or a medial before its consonant, a U+1039 that stacks no
consonant on another (Zawgyi's asat), or one of Zawgyi's presentation forms
(U+1060-U+1097). Anything else, Unicode Burmese,
other scripts, digits, is returned unchanged.
"""

from __future__ import annotations

import re
import warnings
from functools import lru_cache
from typing import Any

THRESHOLD = 0.95

_MYANMAR = re.compile("[\u1000-\u109f]")
_CONSONANT = "\u1000-\u1021"
# Signs valid Unicode Burmese never has (see the module docstring).
_ZAWGYI_ONLY = re.compile(
    f"(?:^|[^{_CONSONANT}\u103b-\u103e\u105a-\u109f])\u1031"  # E before its consonant
    f"|(?:^|[^{_CONSONANT}])\u103b"  # medial RA (Zawgyi's code) before its consonant
    f"|\u1039(?![{_CONSONANT}])|(?<![{_CONSONANT}])\u1039"  # U+1039 stacking nothing
    "|\u1004\u1039"  # NGA + U+1039: Zawgyi's asat (Unicode writes kinzi with U+103A)
    "|[\u1060-\u1097]"  # Zawgyi presentation forms (stacked letters, medial variants)
)


@lru_cache(maxsize=1)
def _detector() -> Any:
    from myanmartools import ZawgyiDetector  # lazy: reads its model on the first Burmese text

    with warnings.catch_warnings():  # it reads its model with importlib's open_binary,
        warnings.simplefilter("ignore", DeprecationWarning)  # deprecated in 3.11, not gone
        return ZawgyiDetector()


def zawgyi_probability(text: str) -> float:
    """The detector's probability that ``text`` is Zawgyi (0.0 for text with no Burmese)."""
    if not _MYANMAR.search(text):
        return 0.0
    return max(0.0, float(_detector().get_zawgyi_probability(text)))


def is_zawgyi(text: str) -> bool:
    return bool(_ZAWGYI_ONLY.search(text)) and zawgyi_probability(text) > THRESHOLD


def to_unicode(text: str) -> str:
    """``text`` in Unicode: converted when it is Zawgyi, else exactly as it came."""
    if not text or not _MYANMAR.search(text) or not is_zawgyi(text):
        return text
    from para.convert import zg_to_unicode  # lazy: only Zawgyi text needs its rules

    return str(zg_to_unicode(text, force=True))


def ussd_to_unicode(text: str) -> str:
    """A USSD hop's text (every answer so far, joined by ``*``), each answer on its own:
    one answer's encoding says nothing about another's."""
    if not _MYANMAR.search(text):
        return text
    return "*".join(to_unicode(part) for part in text.split("*"))
