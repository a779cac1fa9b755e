"""SMS keywords in every language, matched forgivingly.

Each keyword is a gettext message whose translation lists the words that
mean it in that language, comma-separated: a new language gets its keywords
with its catalog. English words work in every language. Matching ignores
case, accents and Arabic vowel marks, and forgives one typo (two in long
words), so "Agnecy", "AIDE" and "ayuda"-style slips still land.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from rapidfuzz.distance import OSA

from ussd_app.engine.messages import N_
from ussd_app.engine.screens import Translate

HELP = N_("help, info, sos")
MENU = N_("menu, home, main")
RIGHTS = N_("rights, right, work")
AGENCY = N_("agency, agent, licence, license")
STATUS = N_("status, check")
REPORT = N_("report, complaint, complain")
RECORD = N_("record, offer")  # keep a record of my job offer
LANGUAGE = N_("language, lang")
STOP = N_("stop, stopall, unsubscribe, cancel, end, quit")
START = N_("start, unstop, subscribe, resume")

KEYWORDS = {"help": HELP, "menu": MENU, "rights": RIGHTS, "agency": AGENCY,
            "status": STATUS, "report": REPORT, "record": RECORD, "language": LANGUAGE,
            "stop": STOP,
            "start": START}

# What a caller reads when a word means nothing here, and the keyword answers.
UNKNOWN = N_("MigrantLine: reply MENU for the menu, HELP for help now, AGENCY and a name "
             "to check an agency, REPORT to report a problem, STOP to end messages.")
STOPPED = N_("You will get no more messages from MigrantLine. Send START to get them again.")
STARTED = N_("Messages from MigrantLine are on again. Reply MENU for the menu.")
STATUS_HOW = N_("To follow a case, send STATUS and its reference, for example STATUS "
                "1234 5678. From another phone, add your PIN.")
STATUS_NEED_PIN = N_("From another phone, add the case's PIN: STATUS reference PIN.")
STATUS_LOCKED = N_("Too many wrong PINs. Try again in 30 minutes.")

_ARABIC = str.maketrans({"ة": "ه", "ى": "ي", "ـ": ""})


def normalise(word: str) -> str:
    """Lower case, no accents or vowel marks, Arabic letter variants folded."""
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    kept = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return unicodedata.normalize("NFC", kept).translate(_ARABIC).strip(" .,!?;:'\"،؟")


@dataclass(frozen=True)
class Match:
    keyword: str  # a key of KEYWORDS
    langs: frozenset[str]  # languages the word belongs to (empty: English, shared)
    argument: str  # the rest of the message


class Keywords:
    """The keyword words of every language, built once per set of languages."""

    def __init__(self, t: Translate, languages: Iterable[str]):
        self.words: dict[str, dict[str, set[str]]] = {}  # word -> keyword -> languages
        for lang in languages:
            for keyword, msgid in KEYWORDS.items():
                for source in (msgid, t(lang, msgid)):
                    for word in source.split(","):
                        word = normalise(word)
                        if word:
                            langs = self.words.setdefault(word, {}).setdefault(keyword, set())
                            if source is not msgid and lang != "en":
                                langs.add(lang)

    def match(self, text: str, prefer: str | None = None) -> Match | None:
        parts = text.split(maxsplit=1)
        if not parts:
            return None
        word, argument = normalise(parts[0]), parts[1] if len(parts) > 1 else ""
        if not word or word.isdigit():
            return None
        found = self.words.get(word)
        if found is None:
            found = self._closest(word)
        if not found:
            return None
        keyword = min(found, key=lambda k: (prefer not in found[k], k))
        return Match(keyword, frozenset(found[keyword]), argument.strip())

    def _closest(self, word: str) -> dict[str, set[str]] | None:
        if len(word) < 4:
            return None
        allowed = 1 if len(word) < 7 else 2
        best, best_distance = None, allowed + 1
        for candidate, found in self.words.items():
            if len(candidate) < 4 or abs(len(candidate) - len(word)) > allowed:
                continue
            distance = OSA.distance(word, candidate, score_cutoff=allowed)
            if distance < best_distance:
                best, best_distance = found, distance
        return best
