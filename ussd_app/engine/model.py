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
NODE_TYPES = (MENU, ARTICLE, CONTACTS, ASK, LANGUAGE)


@dataclass(frozen=True)
class Option:
    target: str
    label: Text | None = None


@dataclass(frozen=True)
class Entry:
    name: Text
    phone: str
    hours: Text | None = None
    where: Text | None = None
    placeholder: bool = False


@dataclass(frozen=True)
class Node:
    id: str
    type: str
    title: Text
    source: str = ""
    label: Text | None = None
    body: Text | None = None
    intro: Text | None = None
    options: tuple[Option, ...] = ()
    entries: tuple[Entry, ...] = ()
    prompt: Text | None = None
    service: str | None = None
    next: str | None = None
    sample: bool = False


@dataclass(frozen=True)
class Language:
    code: str
    name: str


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
        node = self.nodes[option.target]
        return self.text(node.label or node.title, lang)
