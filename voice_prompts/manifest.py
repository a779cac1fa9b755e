"""The prompt manifest: every piece the voice line can say, per language, with a stable id.

Field staff record against ids and texts; the voice line only knows texts.
So the manifest maps both ways: ``lang -> id -> Prompt`` to list and record,
and ``(lang, normalised text) -> id`` to find the audio for a text the
channel is about to speak. A prompt's ``sha256`` is of its normalised text:
a recording made for an older text is *stale* and never played.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from ussd_app.engine.model import Node, Text, Tree
from ussd_app.engine.screens import Translate
from voice_prompts.phrases import DIGITS, FOR_LANGUAGE, NO_VOICE
from voice_prompts.tts import NO_ESPEAK_VOICE

_SLUG = re.compile(r"[^a-z0-9]+")


def normalise(text: str) -> str:
    """One form per text: NFC, whitespace collapsed (YAML line breaks change nothing spoken)."""
    return " ".join(unicodedata.normalize("NFC", text).split())


_EDGES = " .,:;!?-\u2013\u2014\u0964\u061f\u060c\u06d4"  # and the danda, Arabic ? , .
_FIELD = re.compile(r"\{[a-z][a-z0-9_]*\}")
_SENTENCE = re.compile(r"(?<=[.!?\u0964\u061f\u06d4])\s+")


def key(text: str) -> str:
    """How a text is looked up: its punctuation at either end does not change the words."""
    return normalise(text).strip(_EDGES)


def sentences(text: str) -> list[str]:
    """A text cut after each full stop (the danda, the Arabic question mark too)."""
    return [part for part in (p.strip(_EDGES) for p in _SENTENCE.split(text)) if part]


def fragments(template: str) -> list[str]:
    """The fixed words of a text with ``{fields}``, sentence by sentence: what can be
    recorded once and played around a value (a reference is spoken digit by digit)."""
    return [s for part in _FIELD.split(template) for s in sentences(part)]


def text_sha256(text: str) -> str:
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()


def slug(message: str) -> str:
    return _SLUG.sub("-", message.lower()).strip("-")[:60] or "x"


@dataclass(frozen=True)
class Prompt:
    id: str
    lang: str
    text: str
    sha256: str


@dataclass
class Manifest:
    version: str
    prompts: dict[str, dict[str, Prompt]] = field(default_factory=dict)  # lang -> id -> Prompt
    index: dict[tuple[str, str], str] = field(default_factory=dict)  # (lang, normalised) -> id

    @property
    def languages(self) -> tuple[str, ...]:
        return tuple(self.prompts)

    def get(self, lang: str, prompt_id: str) -> Prompt | None:
        return self.prompts.get(lang, {}).get(prompt_id)

    def find(self, lang: str, text: str) -> Prompt | None:
        """The prompt whose text this is, in ``lang``."""
        found = self.index.get((lang, key(text)))
        return self.get(lang, found) if found else None

    def find_any(self, text: str) -> Prompt | None:
        """The prompt of this text in any language (a text the content left untranslated)."""
        wanted = key(text)
        for lang in self.prompts:
            found = self.index.get((lang, wanted))
            if found:
                return self.get(lang, found)
        return None

    def all(self, lang: str | None = None) -> Iterator[Prompt]:
        for code, prompts in self.prompts.items():
            if lang is None or code == lang:
                yield from prompts.values()

    def add(self, lang: str, prompt_id: str, text: str) -> None:
        text = normalise(text)
        if not text or prompt_id in self.prompts.setdefault(lang, {}):
            return
        self.prompts[lang][prompt_id] = Prompt(prompt_id, lang, text, text_sha256(text))
        self.index.setdefault((lang, key(text)), prompt_id)  # a repeated text: the first id


def _node_texts(node: Node) -> Iterator[tuple[str, Text | None]]:
    base = f"node/{node.id}"
    yield f"{base}/title", node.title
    yield f"{base}/label", node.label
    yield f"{base}/intro", node.intro
    yield f"{base}/body", node.body
    yield f"{base}/short", node.short  # an article's short version, heard first
    yield f"{base}/prompt", node.prompt
    for n, option in enumerate(node.options, start=1):
        yield f"{base}/option/{n}", option.label
    for n, entry in enumerate(node.entries, start=1):
        yield f"{base}/entry/{n}/name", entry.name
        yield f"{base}/entry/{n}/hours", entry.hours
        yield f"{base}/entry/{n}/where", entry.where


def build_manifest(tree: Tree, t: Translate, ui_messages: Iterable[str] = ()) -> Manifest:
    """Every spoken piece of ``tree`` in each of its languages.

    A node text missing in a language is not a prompt of that language: the
    caller hears it as the text the engine shows (the default language's), so
    ``find_any`` finds it there and it is spoken in the language it is written in.
    """
    manifest = Manifest(tree.version)
    messages = tuple(dict.fromkeys(ui_messages))
    slugs: dict[str, str] = {}
    for message in messages:
        base = candidate = slug(message)
        n = 2
        while candidate in slugs.values():
            candidate, n = f"{base}-{n}", n + 1
        slugs[message] = candidate
    for lang in tree.language_codes:
        for node in tree.nodes.values():
            for prompt_id, value in _node_texts(node):
                if not value or not value.get(lang):
                    continue
                if _FIELD.search(value[lang]):  # filled in when shown: its fixed words only
                    for n, part in enumerate(fragments(value[lang]), start=1):
                        manifest.add(lang, f"{prompt_id}/part/{n}", part)
                else:
                    manifest.add(lang, prompt_id, value[lang])
        for message in messages:
            text = t(lang, message)
            if _FIELD.search(text):  # "Case {reference}": its fixed words, around the value
                for n, part in enumerate(fragments(text), start=1):
                    manifest.add(lang, f"ui/{slugs[message]}/part/{n}", part)
            else:
                manifest.add(lang, f"ui/{slugs[message]}", text)
        for d, word in enumerate(DIGITS):
            # Untranslated ("five" in a Thai voice): the numeral, which the language's own
            # voice reads in the language.
            manifest.add(lang, f"digit/{d}", t(lang, word) if translated(t, lang, word)
                         else str(d))
        for language in tree.languages:
            if language.code == lang:
                manifest.add(lang, f"language/{lang}", language_prompt(t, lang, language.name))
            elif language.code in NO_ESPEAK_VOICE and translated(t, lang, NO_VOICE):
                # What a caller who chose a language with no voice hears in this one.
                manifest.add(lang, f"no-voice/{language.code}", t(lang, NO_VOICE).format(
                    language=language_name(language.code, lang, language.name)))
    return manifest


def translated(t: Translate, lang: str, message: str) -> bool:
    """Whether ``lang``'s catalog has ``message`` (English is the source language)."""
    return lang == "en" or t(lang, message) != message


def language_prompt(t: Translate, lang: str, name: str) -> str:
    """A language's line on the language menu, all in that language: "For नेपाली, press"
    when its catalog translates the phrase, else its own name alone (never its name
    inside an English sentence)."""
    if translated(t, lang, FOR_LANGUAGE):
        return t(lang, FOR_LANGUAGE).format(language=name)
    return name


def language_name(code: str, lang: str, own: str) -> str:
    """The name of language ``code`` in ``lang`` (CLDR, through Babel), else its own."""
    from babel import Locale, UnknownLocaleError  # lazy: only for languages with no voice

    try:
        return str(Locale.parse(code).get_display_name(Locale.parse(lang)) or own)
    except (UnknownLocaleError, ValueError):
        return own
