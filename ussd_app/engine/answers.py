"""Answers a flow collects, what an action gets and gives back, and the screens they fill.

A complaint is a flow of ordinary nodes: choices keep a value under their
``field``, asks keep checked text, a confirm node lists the answers, and an
action (named in the content, provided by the channel) does the one thing
the engine cannot: store them. Everything here is still pure; the action's
I/O happens behind the callable the channel passes in.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError

from ussd_app.engine import messages as m
from ussd_app.engine.fitting import longest_hint, menu_pages, text_pages
from ussd_app.engine.model import CHOICE, Node, Tree
from ussd_app.engine.screens import Layout, Screen, Translate
from ussd_app.errors import FitError
from ussd_app.parsing import ascii_digits_of

CUT_FIELD = "_cut"  # answers: the fields whose text was too long and was shortened
PIN_MASK = "****"


@dataclass(frozen=True)
class Query:
    """What an action is asked: ``key`` is the same for a retried or replayed hop."""

    key: str
    action: str
    lang: str
    answers: Mapping[str, str]
    caller: Any
    node: str


@dataclass(frozen=True)
class ActionResult:
    """``outcome`` picks the node's ``outcomes`` entry (else next); ``hint`` stays put."""

    outcome: str = "next"
    answers: Mapping[str, str] = field(default_factory=dict)
    hint: str = ""


Action = Callable[[Query], ActionResult]


def with_answers(answers: tuple[tuple[str, str], ...],
                 updates: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    if not updates:
        return answers
    kept = tuple((k, v) for k, v in answers if k not in updates)
    return kept + tuple((k, str(v)) for k, v in updates.items())


def ascii_digits(text: str) -> str | None:
    """Digits typed in any script as ASCII; None if anything else but spaces was typed."""
    out = []
    for ch in ascii_digits_of(text):  # decimal digits only: not '²' or '①'
        if "0" <= ch <= "9":
            out.append(ch)
        elif not (ch.isspace() or ch in "-./"):
            return None
    return "".join(out)


_PHONE = re.compile(r"^\+?[0-9][0-9 ()./-]{5,24}$")


def check_input(raw: str, kind: str, max_length: int) -> tuple[str, str, bool]:
    """(the answer to keep, a hint if it cannot be used, whether it was shortened)."""
    text = " ".join(raw.split())
    if not text:
        return "", m.EMPTY_ANSWER, False
    if kind in ("digits", "pin", "reference"):
        digits = ascii_digits(text)
        if not digits:
            return "", m.DIGITS_ONLY, False
        if kind == "pin" and len(digits) != 4:
            return "", m.FOUR_DIGITS, False
        if kind == "reference" and len(digits) != 8:
            return "", m.BAD_REFERENCE, False
        return digits, "", False
    if kind == "phone":
        number = text[2:] if text.startswith("00") else text.lstrip("+")
        digits = ascii_digits(number)
        if not _PHONE.match(text) or not digits or not 7 <= len(digits) <= 15:
            return "", m.BAD_PHONE, False
        return "+" + digits, "", False
    if len(text) > max_length:
        return text[:max_length], "", True
    return text, "", False


# ---------------------------------------------------------------- screens


def _asked_by(tree: Tree) -> dict[str, Node]:
    """The node that asks each field (the first one, in file order), cached per tree."""
    found: dict[str, Node] | None = tree.cache.get("asked_by")
    if found is None:
        found = {}
        for node in tree.nodes.values():
            if node.type in (CHOICE, "ask"):
                found.setdefault(node.answer_field, node)
        tree.cache["asked_by"] = found
    return found


def shown_answer(tree: Tree, name: str, value: str, lang: str) -> str:
    """An answer as the caller reads it back: a choice's label, a PIN hidden."""
    node = _asked_by(tree).get(name)
    if node is None:
        return value
    if node.type == CHOICE:
        for option in node.options:
            if option.value == value:
                return tree.text(option.label, lang)
    if node.input == "pin":
        return PIN_MASK
    return value


def summary_text(tree: Tree, node: Node, lang: str, answers: Mapping[str, str],
                 t: Translate) -> str:
    lines = [tree.text(node.intro, lang)] if node.intro else []
    cut = set(answers.get(CUT_FIELD, "").split(","))
    for name in node.summary:
        value = answers.get(name)
        if not value:
            continue
        asking = _asked_by(tree).get(name)
        label = tree.text(asking.label or asking.title, lang) if asking else name
        shown = shown_answer(tree, name, value, lang)
        if name in cut:
            shown += " " + t(lang, m.SHORTENED)
        lines.append(f"{label}: {shown}")
    return "\n".join(lines)


def confirm_pages(tree: Tree, node: Node, lang: str, answers: Mapping[str, str],
                  layout: Layout, t: Translate, reserve: str) -> list[Screen]:
    """The answers to check, paged, with "1 Send 2 Cancel" on every page."""
    keys = (("1", m.SEND), ("2", m.CANCEL), ("0", m.BACK))
    return text_pages(lang, tree.text(node.title, lang),
                      summary_text(tree, node, lang, answers, t), layout, t, keys, node.id,
                      by_line=True, reserve=reserve)


LOCATED = "located_country"  # answers: where the caller is (ISO code), when known


def numbers_text(tree: Tree, node: Node, lang: str, country: str = "") -> str:
    """A contact list at its shortest, the place then its number: the numbers come first
    when someone is in danger (the full list, with hours, is one key away). The number
    has a line of its own, so no page ever cuts it in two. The contacts of ``country``
    (where the caller is) come first: the hotline they can reach now."""
    lines = []
    entries = sorted(node.entries, key=lambda e: not country or e.country != country)
    for entry in entries:
        lines += [tree.text(entry.where or entry.name, lang), entry.phone]
    return "\n".join(lines)


_FIELD = re.compile(r"\{([a-z][a-z0-9_]*)\}")


def fill(template: str, answers: Mapping[str, str]) -> str:
    """``{reference}`` and the like replaced by answers; an unknown name by nothing."""
    return _FIELD.sub(lambda found: answers.get(found.group(1), ""), template)


MAX_COUNTRY = 30  # characters of a country's name in a label, at most


@lru_cache(maxsize=32)
def _territories(lang: str) -> Mapping[str, str]:
    try:
        return dict(Locale.parse(lang).territories)
    except (UnknownLocaleError, ValueError):
        return dict(Locale.parse("en").territories)


def country_name(code: str, lang: str, most: int = MAX_COUNTRY) -> str:
    """A country's name in ``lang`` (Babel's CLDR data), cut to ``most`` characters."""
    name = str(_territories(lang).get(code.upper(), ""))
    return name if len(name) <= most else name[:most - 1].rstrip() + "."


def _label_forms(template: str, answers: Mapping[str, str], lang: str,
                 t: Translate) -> list[str]:
    """An option's label with ``{…_country}`` as that country's name in ``lang`` (the
    answer is an ISO code), longest form first: the whole name, a short cut, the code.
    Other fields are filled as ``fill`` fills them."""
    forms = []
    for most in (MAX_COUNTRY, 14, 0):
        def one(found: re.Match[str], most: int = most) -> str:
            name, value = found.group(1), answers.get(found.group(1), "")
            if not name.endswith("_country"):
                return value
            if not value:
                return t(lang, m.THIS_COUNTRY) if most else "?"
            return country_name(value, lang, most) if most else value.upper()
        forms.append(_FIELD.sub(one, template))
    return forms


def is_templated(node: Node) -> bool:
    """A choice whose labels name answers (``{caller_country}``): paged per caller."""
    return any("{" in text for o in node.options for text in (o.label or {}).values())


def sample_label_answers(tree: Tree, node: Node, lang: str) -> dict[str, str]:
    """What the content checks fill a templated choice's labels with: a code (``XX``) for
    a country, the shortest form every caller may see."""
    names = {f for o in node.options for f in _FIELD.findall(tree.label(o, lang))}
    return {name: "XX" if name.endswith("_country") else "x" for name in names}


def choice_pages(tree: Tree, node: Node, lang: str, answers: Mapping[str, str],
                 layout: Layout, t: Translate, sample: bool = False) -> list[Screen]:
    """A templated choice's screens with this caller's answers: the longest form of the
    labels that fits (a country's whole name, else cut, else its code). The content
    checks (``sample``) page it with the shortest form, a two-letter code: what is
    always shown when nothing longer fits."""
    if sample:
        answers = sample_label_answers(tree, node, lang)
    forms = [_label_forms(tree.label(o, lang), answers, lang, t) for o in node.options]
    tries = range(len(forms[0]) - 1, len(forms[0])) if sample else range(len(forms[0]))
    for k in tries:
        options = [(str(i + 1), f[k]) for i, f in enumerate(forms)]
        try:
            return menu_pages(lang, tree.text(node.title, lang), tree.text(node.intro, lang),
                              options, layout, t, (("0", m.BACK),), node.id,
                              longest_hint(lang, t), together=True)
        except FitError:
            if k == tries[-1]:
                raise
    raise AssertionError("unreachable")


def result_pages(tree: Tree, node: Node, lang: str, answers: Mapping[str, str],
                 layout: Layout, t: Translate, reserve: str) -> list[Screen]:
    """A result's text from the answers (and a contact list), its last page ending it."""
    body = fill(tree.text(node.body, lang), answers)
    if node.entries_from and node.entries_from in tree.nodes:
        body += "\n" + numbers_text(tree, tree.nodes[node.entries_from], lang,
                                    answers.get(LOCATED, "").lower())
    keys = tuple((str(i + 1), tree.label(o, lang)) for i, o in enumerate(node.options))
    # A result leads on (its options) or ends; "back" into a filed form means nothing.
    back = () if node.end or keys else (("0", m.BACK),)
    pages = text_pages(lang, fill(tree.text(node.title, lang), answers), body.strip("\n"),
                       layout, t, (*keys, *back), node.id, by_line=True, reserve=reserve)
    if node.end and not node.options:
        last = pages[-1]
        pages[-1] = Screen(last.lang, last.title, last.body, last.options, (), last.hint,
                           True, last.node, last.page, last.pages)
    return pages


# What a confirm or result screen is checked with before a tree is served: the longest
# values the actions give (a status is several lines), so a tree that passes always fits.
SAMPLE_ANSWERS = {"reference": "1234 5678", "receipt": "x " * 40,
                  "status": "\n".join(["x " * 20] * 4),
                  # a licence's state and the newest flag with its source (80 characters)
                  "agency_warning": "\n".join(["x " * 20, "x " * 80])}


def filled_pages(tree: Tree, node: Node, lang: str, layout: Layout,
                 t: Translate) -> list[Screen]:
    """Page a confirm or result node with sample answers (raises ``FitError``)."""
    reserve = longest_hint(lang, t)
    if node.type == "confirm":
        sample = {name: "x " * 20 for name in node.summary}
        return confirm_pages(tree, node, lang, sample, layout, t, reserve)
    return result_pages(tree, node, lang, SAMPLE_ANSWERS, layout, t, reserve)
