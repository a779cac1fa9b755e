"""How a text is read aloud: numbers digit by digit in their groups, long menus a few
options at a time, the caller's country's help first.

Pure helpers and the reading half of ``Speech`` (a mixin: it needs ``prompts`` and ``t``),
kept apart from the call logic so each stays small enough to read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ussd_app.engine.model import CONTACTS, Tree
from ussd_app.engine.screens import Screen, Translate
from voice_prompts import Spoken
from voice_prompts.manifest import sentences

MAX_WAITS = 3  # "one moment" while a piece is rendered, then go on without it
# A reference or a phone number (6 digits or more): spoken digit by digit. Shorter
# numbers (a day, a year) are words of their sentence.
_DIGITS = re.compile(r"\+?\d(?:[ \-]?\d){5,}")
_GROUP = re.compile(r"[ \-]+")
# A menu read out whole takes 20-30 s: options are read a few at a time, and "9" (or
# "98" where 9 is an option) reads the next few. Any option's key works at any time.
VOICE_OPTIONS = 3  # with "for help now, press 99" the first prompt stays under 12 s
MAX_HELP_CONTACTS = 2  # the caller's country's numbers read before the help menu
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_WORDLESS = re.compile(r"^[\W_]*$")
_MARKS = {ord("\u200e"): None, ord("\u200f"): None}  # bidi marks are for screens, not ears


class Prompts:
    """What the call logic needs of ``voice_prompts.PromptLibrary`` (see there)."""

    def speak(self, tree: Tree, t: Translate, lang: str, text: str,
              says: Callable[[str], bool]) -> Any: ...
    def prompt(self, tree: Tree, t: Translate, lang: str, prompt_id: str,
               says: Callable[[str], bool]) -> Any: ...
    def digit(self, tree: Tree, t: Translate, lang: str, d: str,
              says: Callable[[str], bool]) -> Any: ...
    def render_dynamic(self, lang: str, text: str) -> None: ...
    def gap(self) -> Any: ...
    def has_voice(self, tree: Tree, t: Translate, lang: str,
                  says: Callable[[str], bool]) -> bool: ...


@dataclass
class Channel:
    """A provider's particulars: its speech, and the URL its next request goes to."""

    name: str
    says: Callable[[str], bool]
    url: Callable[[Mapping[str, str]], str]


def more_key(screen: Screen) -> str:
    """The key that reads a long menu's next options: 9, or 98 where 9 is an option."""
    return "98" if any(key == "9" for key, _ in screen.options) else "9"


def chunks(screen: Screen, node: Any = None) -> int:
    """How many prompts a screen's options (a contact list's entries) are read in (one
    more than fits in a prompt is read with it, rather than "for more" for one)."""
    n = len(node.entries) if node is not None and node.type == CONTACTS else \
        len(screen.options)
    return 1 if n <= VOICE_OPTIONS + 1 else -(-n // VOICE_OPTIONS)


def by_country(entries: Any, country: str) -> list[Any]:
    """A contact list with the caller's country's entries first (as ``numbers_text``)."""
    return sorted(entries, key=lambda e: not country or e.country != country)


def digit_groups(number: str) -> list[str]:
    """A phone number or reference as the groups a person reads it in: as written
    ("+974 4000 0000": 974, 4000, 0000), else by the number's country's plan, else in
    fours (the last group never a lone digit)."""
    groups = [g for g in (re.sub(r"\D", "", part) for part in _GROUP.split(number)) if g]
    if len(groups) > 1:
        return groups
    bare = groups[0] if groups else ""
    if number.lstrip().startswith("+"):
        import phonenumbers  # lazy: only for a number written without its spaces

        try:
            parsed = phonenumbers.parse("+" + bare, None)
            shown = phonenumbers.format_number(
                parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
            found = [re.sub(r"\D", "", g) for g in _GROUP.split(shown)]
            if "".join(found) == bare:
                return [g for g in found if g]
        except phonenumbers.NumberParseException:
            pass
    fours = [bare[i:i + 4] for i in range(0, len(bare), 4)]
    if len(fours) > 1 and len(fours[-1]) == 1:
        fours[-2:] = [fours[-2] + fours[-1]]
    return fours


class TextReading:
    """Texts as prompt pieces; mixed into ``Speech``."""

    prompts: Prompts
    t: Translate

    def _spoken(self, tree: Tree, lang: str, text: str, channel: Channel, missing: list[str],
                wait: int) -> list[Any]:
        """A text as pieces: its prompt; else line by line, "label: answer" as its two
        prompts, and numbers digit by digit between the words."""
        lines = [" ".join(line.translate(_MARKS).split()) for line in text.split("\n")]
        lines = [line for line in lines if line and not _WORDLESS.match(line)]
        if not lines:
            return []
        whole = self.prompts.speak(tree, self.t, lang, " ".join(lines), channel.says)
        if whole is not None:
            return [whole]
        pieces: list[Any] = []
        for line in lines:
            found = self.prompts.speak(tree, self.t, lang, line, channel.says) \
                if len(lines) > 1 else None
            if found is not None:
                pieces.append(found)
                continue
            label, colon, value = line.partition(": ")
            parts = [label, value] if colon and not _DIGITS.search(label) else [line]
            for part in parts:
                pieces += self._numbers(tree, lang, part, channel, missing, wait)
        return [p for p in pieces if p is not None]

    def _numbers(self, tree: Tree, lang: str, text: str, channel: Channel,
                 missing: list[str], wait: int) -> list[Any]:
        bare = "".join(text.split())
        if len(bare) >= 3 and bare.isascii() and bare.isdigit():  # a PIN, a reference
            return self._grouped(tree, lang, text, channel) if len(bare) > 4 else \
                [self.prompts.digit(tree, self.t, lang, d, channel.says) for d in bare]
        pieces: list[Any] = []
        at = 0
        for found in _DIGITS.finditer(text):
            if _DATE.fullmatch(found.group()):
                continue  # a date is said as a date, with its sentence
            pieces += self._words(tree, lang, text[at:found.start()], channel, missing, wait)
            pieces += self._grouped(tree, lang, found.group(), channel)
            at = found.end()
        pieces += self._words(tree, lang, text[at:], channel, missing, wait)
        return pieces

    def _grouped(self, tree: Tree, lang: str, number: str, channel: Channel) -> list[Any]:
        """A number digit by digit, its groups apart ("974 - 4000 - 0000"), never as an
        amount ("four thousand")."""
        gap = getattr(self.prompts, "gap", None)
        pause = gap() if gap is not None else None
        pieces: list[Any] = []
        for n, group in enumerate(digit_groups(number)):
            if n and pause is not None:
                pieces.append(pause)
            pieces += [self.prompts.digit(tree, self.t, lang, d, channel.says) for d in group]
        return pieces

    def _country_help(self, tree: Tree, lang: str, country: str, channel: Channel,
                      pieces: list[Any], missing: list[str], wait: int) -> None:
        """The help numbers of the caller's country first (by their number's country
        code, as the urgent path ranks them): each one's name, then its number."""
        seen: set[str] = set()
        for node in tree.nodes.values():
            for entry in node.entries:
                if entry.country != country or entry.phone in seen:
                    continue
                if len(seen) >= MAX_HELP_CONTACTS:
                    return
                seen.add(entry.phone)
                pieces.extend(self._spoken(tree, lang, tree.text(entry.name, lang), channel,
                                           missing, wait))
                pieces.extend(self._grouped(tree, lang, entry.phone, channel))

    def _words(self, tree: Tree, lang: str, text: str, channel: Channel, missing: list[str],
               wait: int) -> list[Any]:
        """Words between numbers: the whole, else sentence by sentence (a template's fixed
        words and a filled-in status are prompts of their own); else made on the side."""
        text = text.strip(" :.,;-")
        if not text or _WORDLESS.match(text):
            return []
        found = self.prompts.speak(tree, self.t, lang, text, channel.says)
        if found is not None:
            return [found]
        parts = sentences(text)
        if len(parts) > 1:
            return [p for part in parts
                    for p in self._words(tree, lang, part, channel, missing, wait)]
        if wait < MAX_WAITS:
            missing.append(text)
        elif channel.says(lang):
            return [Spoken(kind="say", text=text, lang=lang, source="provider", dynamic=True)]
        return []
