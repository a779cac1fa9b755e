"""The content tree as immutable data: what the loader builds and the engine walks.

Field staff think in menus, articles and contact lists; so does this model.
Every text a person reads is a ``Text``: a mapping from language code to
text. A ``Tree`` is one checked, versioned snapshot of ``content/``; sessions
hold on to the snapshot they started with, so it is never mutated after load
(its page cache aside, which only memoises pure results).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

Text = Mapping[str, str]

MENU = "menu"
ARTICLE = "article"
CONTACTS = "contacts"
ASK = "ask"
LANGUAGE = "language"
CHOICE = "choice"  # pick one of several values, kept under the node's field
CONFIRM = "confirm"  # the answers so far, to send (the node's action) or cancel
RESULT = "result"  # text filled in from the answers (a reference, a status)
NODE_TYPES = (MENU, ARTICLE, CONTACTS, ASK, LANGUAGE, CHOICE, CONFIRM, RESULT)


@dataclass(frozen=True)
class Option:
    """A menu's link to a node, or a choice's value (with where it leads)."""

    target: str = ""
    label: Text | None = None
    value: str = ""
    next: str | None = None
    action: str | None = None
    keep_as: str | None = None  # on an ask's results: keep the answer under this field


@dataclass(frozen=True)
class Entry:
    name: Text
    phone: str
    hours: Text | None = None
    where: Text | None = None
    placeholder: bool = False
    country: str = ""  # ISO code, lower case: whom a caller in danger there sees first
    contact: str = ""  # its id in contacts.yaml, when the node lists it from there


@dataclass(frozen=True)
class Node:
    id: str
    type: str
    title: Text
    source: str = ""
    label: Text | None = None
    body: Text | None = None
    short: Text | None = None  # an article's USSD version; the body goes by SMS
    intro: Text | None = None
    options: tuple[Option, ...] = ()
    entries: tuple[Entry, ...] = ()
    prompt: Text | None = None
    service: str | None = None
    next: str | None = None
    sample: bool = False
    field_name: str = ""  # `field:` in YAML: where a choice or ask keeps its answer
    input: str = "text"  # what an ask accepts: text, digits, pin, phone, reference
    max_length: int = 160
    action: str | None = None  # what the channel does with the answers (file a complaint)
    outcomes: Mapping[str, str] = field(default_factory=dict)  # action outcome -> node
    summary: tuple[str, ...] = ()  # the fields a confirm node lists
    skip_if: tuple[str, ...] = ()  # go straight on to next when one of these is answered
    # fields holding countries (ISO codes) whose results a service ranks first: where the
    # caller is going, as the flow knows it (the number's own country always counts)
    prefer_from: tuple[str, ...] = ()
    entries_from: str | None = None  # a result node lists this contacts node's entries
    end: bool = False  # a result node that ends the session

    @property
    def answer_field(self) -> str:
        return self.field_name or self.id


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    translated_by: str = ""
    reviewed_by: str = ""  # empty: no native speaker has reviewed it yet
    spoken_in: tuple[str, ...] = ()  # countries whose voice callers hear it named first


@dataclass
class Tree:
    version: str
    languages: tuple[Language, ...]
    default_language: str
    main: str
    help: str
    nodes: Mapping[str, Node]
    root: str = ""
    sample: bool = False
    name: str = ""
    cache: dict[Any, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def language_codes(self) -> tuple[str, ...]:
        return tuple(lang.code for lang in self.languages)

    def text(self, value: Text | None, lang: str) -> str:
        """The text in ``lang``, else the default language, else any."""
        if not value:
            return ""
        found = value.get(lang) or value.get(self.default_language)
        if found:
            return found
        return next(iter(value.values()))

    def label(self, option: Option, lang: str) -> str:
        """What a menu shows for an option: its own label, else the target's."""
        if option.label:
            return self.text(option.label, lang)
        node = self.nodes[option.target or option.next or ""]
        return self.text(node.label or node.title, lang)
