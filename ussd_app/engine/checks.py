"""Checks beyond the schema and the links: phone numbers, translation coverage, SMS size.

``node_problems`` runs inside ``parse_tree`` before a tree is built, so a
number that cannot be dialled stops the tree like any other error. The rest
describe a built tree for ``migrantline content check``: a coverage line per
language, and (with ``--verbose``) how many SMS each article would take.

The content schema has no date fields yet, so there is no date check here;
one belongs here when a date field is added.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import phonenumbers
from babel import Locale

from ussd_app.engine.encoding import measure, sms_segments
from ussd_app.engine.keys import key_problems
from ussd_app.engine.model import ARTICLE, Node, Tree
from ussd_app.engine.problems import ERROR, INFO, WARNING, Problem
from ussd_app.engine.texts import texts_of
from ussd_app.engine.yamlfile import locate

PHONE_HINT = ("write the number in international form: +, the country code, then the number "
              "(for example +977 1 4000000)")

_PARSE_REASONS = {
    phonenumbers.NumberParseException.NOT_A_NUMBER: "it is not a phone number",
    phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "it is too short",
    phonenumbers.NumberParseException.TOO_SHORT_NSN: "it is too short",
    phonenumbers.NumberParseException.TOO_LONG: "it is too long",
}
_IMPOSSIBLE_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "the country code is unknown",
    phonenumbers.ValidationResult.TOO_SHORT: "it has too few digits",
    phonenumbers.ValidationResult.TOO_LONG: "it has too many digits",
    phonenumbers.ValidationResult.INVALID_LENGTH: "it has the wrong number of digits",
}


def node_problems(nodes: Mapping[str, Node], texts: Mapping[str, str]) -> list[Problem]:
    """Errors and warnings found in single nodes: their phone numbers, and any key that
    would mean two things on their screens."""
    found: list[Problem] = key_problems(nodes)
    for node in nodes.values():
        for i, entry in enumerate(node.entries):
            if entry.contact:  # checked once, in contacts.yaml
                continue
            problem = phone_problem(entry.phone, placeholder=entry.placeholder)
            if problem is not None:
                severity, message, hint = problem
                line = locate(texts[node.source], ["entries", i, "phone"])
                found.append(Problem(node.source, line, f"entries.{i}.phone: {message}", hint,
                                     severity))
    return found


def phone_problem(phone: str, placeholder: bool = False) -> tuple[str, str, str] | None:
    """(severity, message, hint) for a number that cannot be dialled as written, else None.

    An error when the number cannot be read or cannot exist (wrong length,
    unknown country code); a warning when it has a possible length but is not
    a number in use in that country. Placeholders are known not to be real,
    so only the error applies to them.
    """
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            reason = ("the country code is unknown" if phone.strip().startswith("+")
                      else "it has no country code")
        else:
            reason = _PARSE_REASONS.get(exc.error_type, "it cannot be read")
        return ERROR, f"'{phone}' is not a phone number that can be dialled: {reason}", PHONE_HINT
    if not phonenumbers.is_possible_number(number):
        why = phonenumbers.is_possible_number_with_reason(number)
        reason = _IMPOSSIBLE_REASONS.get(why, "it cannot exist")
        return (ERROR, f"'{phone}' cannot be a real phone number: {reason}",
                "check the digits against the organisation's own listing")
    if not placeholder and not phonenumbers.is_valid_number(number):
        code = number.country_code or 0  # always set on a number that parsed
        region = phonenumbers.region_code_for_country_code(code)
        country = Locale("en").territories.get(region, region)
        return (WARNING, f"'{phone}' is not a valid number in {country} (+{code})",
                "check the number with the organisation; if it is not real yet, write "
                "placeholder: true on the entry")
    return None


# ---------------------------------------------------------------- coverage


@dataclass(frozen=True)
class Coverage:
    lang: str
    translated: int
    total: int
    translated_by: str = ""
    reviewed_by: str = ""
    source: bool = False  # the default language: the text others are translated from

    @property
    def percent(self) -> int:
        """Rounded down, so 100% means every text is there."""
        return 100 if not self.total else (100 * self.translated) // self.total

    @property
    def review(self) -> str:
        """Whether a native speaker has read it: a machine-assisted draft can mislead."""
        if self.reviewed_by:
            return f"reviewed by {self.reviewed_by}"
        if self.source:
            return "source language"
        return "NOT REVIEWED by a native speaker"

    def __str__(self) -> str:
        by = f", translated by {self.translated_by}" if self.translated_by and not self.source \
            else ""
        return (f"coverage: {self.lang} {self.percent}% ({self.translated}/{self.total} texts)"
                f"; {self.review}{by}")


def coverage(tree: Tree) -> list[Coverage]:
    """For each language, how many of the tree's texts are written in it."""
    counts = dict.fromkeys(tree.language_codes, 0)
    total = 0
    for node in tree.nodes.values():
        for _, value in texts_of(node):
            total += 1
            for lang in counts:
                if value.get(lang):
                    counts[lang] += 1
    return [Coverage(lang.code, counts[lang.code], total, lang.translated_by, lang.reviewed_by,
                     lang.code == tree.default_language) for lang in tree.languages]


# ---------------------------------------------------------------- SMS size


def article_sms_text(tree: Tree, node: Node, lang: str) -> str:
    """An article as one SMS would carry it: the title, then the body."""
    return "\n".join(t for t in (tree.text(node.title, lang), tree.text(node.body, lang)) if t)


def sms_info(tree: Tree, texts: Mapping[str, str]) -> list[Problem]:
    """Info lines: the SMS segments and encoding of every article in every language."""
    found: list[Problem] = []
    for node in sorted(tree.nodes.values(), key=lambda n: n.source):
        if node.type != ARTICLE:
            continue
        text = texts.get(node.source, "")
        for lang in tree.language_codes:
            message = article_sms_text(tree, node, lang)
            encoding, parts = sms_segments(message)
            line = locate(text, ["body", lang]) if text else 0
            found.append(Problem(node.source, line,
                                 f"{lang}: {parts} SMS segment(s) in {encoding.value} "
                                 f"(title and body, {measure(message)[1]} characters)",
                                 severity=INFO))
    return found
