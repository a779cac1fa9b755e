"""What a voice caller hears: a screen read out, its keys, and the verb that listens.

A menu is read out with "press N" after each option; typed answers become
keypad entries ending with ``#`` (a PIN, a reference, a phone number) and
free-text questions are answered by speaking after the tone. What the caller
hears comes from the prompt library: a field recording, else generated
speech, else the provider's own voice, else the fallback language; never
silence. A text with no prompt yet is made in the background while the
caller hears "one moment" (at most ``MAX_WAITS`` times).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from ussd_app.channels.voice.reading import (
    MAX_WAITS,
    VOICE_OPTIONS,
    Channel,
    Prompts,
    TextReading,
    by_country,
    chunks,
    digit_groups,
    more_key,
)
from ussd_app.channels.voice.reply import (
    Gather,
    Hangup,
    Pieces,
    Record,
    Redirect,
    Reply,
    Speak,
)
from ussd_app.engine.machine import LANGUAGE_NODE, Context, State, view
from ussd_app.engine.model import ASK, CONTACTS, Tree
from ussd_app.engine.screens import Screen, Translate

# Phrases only the voice line speaks (the menus' own labels come from the content).
from voice_prompts.phrases import (
    FOR_MORE,
    GOODBYE,
    HELP_ANY_TIME,
    KEYPAD_THEN_HASH,
    ONE_MOMENT,
    PRESS,
    RECORD_AFTER_TONE,
    SPEAK_AFTER_TONE,
    WELCOME,
)

KEYPAD_INPUTS = ("digits", "pin", "phone", "reference")
# A question whose answer may be longer than one SMS (the complaint itself): two minutes
# to say it; other spoken answers less.
LONG_TEXT = 160
LONG_SECONDS, SHORT_SECONDS = 120, 30
MAX_PLANS = 4096  # screens kept as heard, per process (a few per menu node and language)
# Where a language with no voice of any kind sends its callers first: a language many of
# them understand (Lao and Thai are close); else the tree's default language.
NEAREST: dict[str, tuple[str, ...]] = {"lo": ("th",)}


def channel_url(base: str, path: str, token: str | None) -> Callable[[Mapping[str, str]], str]:
    """The URL of a call's next request: ``params``, then the token (quoted once here).

    Our own parameters are short ASCII words and numbers, which ``urlencode`` leaves
    as they are: they are joined directly (two webhooks' worth of quoting saved per
    answer); anything else is encoded as before.
    """
    prefix = f"{base.rstrip('/')}{path}?"
    tail = urlencode({"token": token}) if token else ""

    def url(params: Mapping[str, str]) -> str:
        if all(k.isascii() and k.isalnum() and v.isascii() and v.isalnum()
               for k, v in params.items()) and "token" not in params:
            query = "&".join(f"{k}={v}" for k, v in params.items())
            return prefix + (f"{query}&{tail}" if query and tail else query or tail)
        encoded = dict(params)
        if token:
            encoded["token"] = token
        return prefix + urlencode(encoded)
    return url


# What a caller hears last, by how the screen listens for the answer.
_CLOSING = {"end": GOODBYE, "keypad": KEYPAD_THEN_HASH, "record-long": RECORD_AFTER_TONE,
            "record": SPEAK_AFTER_TONE}


def _listening(screen: Screen, node: Any, state: State) -> str:
    """How a screen waits for the caller: end, keypad, record(-long) or gather (keys)."""
    if screen.end:
        return "end"
    if node is not None and node.type == ASK and state.pending:
        if node.input in KEYPAD_INPUTS or node.service:
            return "keypad"
        return "record-long" if node.max_length > LONG_TEXT else "record"
    return "gather"


@dataclass(frozen=True)
class _Plan:
    """A screen as heard, less the call's step: its pieces and the verb after them."""

    kind: str  # gather, keypad, record, record-long, end, hold
    pieces: Pieces
    missing: tuple[str, ...]  # texts with no audio yet (hold: made in the background)
    cacheable: bool


class Speech(TextReading):
    def __init__(self, prompts: Prompts, t: Translate,
                 background: Callable[[Callable[[], object], str], None] | None = None):
        self.prompts, self.t = prompts, t
        self._background = background
        self._rendering: set[tuple[str, str]] = set()
        self._plans: dict[tuple[Any, ...], _Plan] = {}
        self._lock = threading.Lock()

    def sorry(self, tree: Tree, lang: str, text: str, channel: Channel) -> Reply:
        """Say ``text`` and end the call (something broke: never silence)."""
        return (Speak(tuple(self._spoken(tree, lang, text, channel, [], MAX_WAITS))), Hangup())

    def screen(self, ctx: Context, state: State, channel: Channel, welcome: bool = False,
               wait: int = 0, silence: int = 0, part: int = 0, announce_help: bool = False,
               country: str = "") -> Reply:
        """What the caller hears of a state, and the verb that waits for their answer.

        ``part``: which few of a long menu's options (``VOICE_OPTIONS``) are read;
        ``announce_help``: the call's first menu in its language says "for help now,
        press 99" (once a call); ``country``: the caller's number's country, whose help
        numbers are read first on the help menu."""
        tree, lang = ctx.tree, ctx.lang(state)
        if state.node != LANGUAGE_NODE and not self.voiced(tree, lang, channel):
            return self.no_voice(ctx, state, channel)
        screen = view(ctx, state)
        node = tree.nodes.get(state.node)
        part = max(0, min(part, chunks(screen, node) - 1))
        listed = state.node == tree.help or (node is not None and node.type == CONTACTS)
        country = country.lower()
        if state.node == LANGUAGE_NODE:
            # Only a country some language is spoken in changes the order: every other
            # caller shares one cached plan, not one per calling code.
            if not any(country in language.spoken_in for language in tree.languages):
                country = ""
        elif not listed:
            country = ""
        version = self._audio_version()
        key: tuple[Any, ...] | None = None
        plan: _Plan | None = None
        if version is not None:
            key = (tree.version, version, lang, screen, state.node, bool(state.pending),
                   welcome, min(wait, MAX_WAITS), channel.name, channel.says, part,
                   announce_help, country)
            plan = self._plans.get(key)
        if plan is None:
            plan = self._plan(ctx, state, screen, lang, channel, welcome, wait, part,
                              announce_help, country)
            if key is not None and plan.cacheable:
                if len(self._plans) >= MAX_PLANS:
                    self._plans.clear()
                self._plans[key] = plan
        return self._reply(plan, state, channel, lang, wait, silence, part)

    def voiced(self, tree: Tree, lang: str, channel: Channel) -> bool:
        has_voice = getattr(self.prompts, "has_voice", None)
        return has_voice is None or bool(has_voice(tree, self.t, lang, channel.says))

    def nearest_voiced(self, tree: Tree, lang: str, channel: Channel) -> str:
        """The language a caller of a voiceless ``lang`` is offered: the nearest one that
        has a voice (``NEAREST``), else the tree's default language."""
        for code in (*NEAREST.get(lang, ()), tree.default_language):
            if code in tree.language_codes and self.voiced(tree, code, channel):
                return code
        return tree.default_language

    def no_voice(self, ctx: Context, state: State, channel: Channel) -> Reply:
        """A language with no voice of any kind: said so honestly, in the nearest language
        that has one, with that language's key (the language menu's keys work here)."""
        tree, lang = ctx.tree, ctx.lang(state)
        near = self.nearest_voiced(tree, lang, channel)
        pieces: list[Any] = []
        for prompt_id in (f"no-voice/{lang}", f"language/{near}"):
            piece = self.prompts.prompt(tree, self.t, near, prompt_id, channel.says)
            if piece is not None:
                pieces.append(piece)
        number = str(tree.language_codes.index(near) + 1)
        for d in number:
            piece = self.prompts.digit(tree, self.t, near, d, channel.says)
            if piece is not None:
                pieces.append(piece)
        seq = {"s": str(state.seq)}
        quiet = channel.url({**seq, "ev": "silence", "n": "1"})
        return (Gather(Pieces(pieces), channel.url(seq), quiet),)

    def _audio_version(self) -> Any:
        """The prompts' audio version (``PromptLibrary.version``); None: do not cache."""
        version = getattr(self.prompts, "version", None)
        return version() if version is not None else None

    def _plan(self, ctx: Context, state: State, screen: Screen, lang: str, channel: Channel,
              welcome: bool, wait: int, part: int = 0, announce_help: bool = False,
              country: str = "") -> _Plan:
        """The pieces of a screen and the verb that follows them, without the call's step.

        Cached per (content version, audio version, screen, language, provider): the
        ~30 prompt lookups of a menu are made once, not on every webhook. Not cached
        when the caller has typed answers, when a piece is made for a text outside the
        manifest (a status, a date) or is still missing ("one moment").
        """
        tree = ctx.tree
        node = tree.nodes.get(state.node)
        missing: list[str] = []
        pieces: list[Any] = []

        def say(text: str, as_lang: str = lang) -> None:
            pieces.extend(self._spoken(tree, as_lang, text, channel, missing, wait))

        def ui(msgid: str, as_lang: str = lang) -> None:
            say(self.t(as_lang, msgid), as_lang)

        def keys(key_text: str, as_lang: str = lang) -> None:
            for d in key_text:
                piece = self.prompts.digit(tree, self.t, as_lang, d, channel.says)
                if piece is not None:
                    pieces.append(piece)

        # The language menu is each language in its own voice: no English welcome first.
        if welcome and state.node != LANGUAGE_NODE:
            ui(WELCOME)
        if announce_help:
            ui(HELP_ANY_TIME)
            keys("99")
        # The main menu's and the language menu's titles say what the welcome says.
        quiet_title = state.node in (tree.main, LANGUAGE_NODE)
        contacts = node is not None and node.type == CONTACTS
        body = tree.text(node.intro, lang) if contacts and node is not None else screen.body
        for text in (screen.hint, "" if quiet_title else screen.title, body):
            if text:
                say(text)
        n = chunks(screen, node)
        if contacts and node is not None:
            # A few entries at a time, the caller's country's first: a name, its number in
            # groups (hours and places are in the SMS of the list, key 1).
            entries = by_country(node.entries, country)
            for entry in entries[part * VOICE_OPTIONS:(part + 1) * VOICE_OPTIONS] \
                    if n > 1 else entries:
                say(tree.text(entry.name, lang))
                pieces.extend(self._grouped(tree, lang, entry.phone, channel))
        elif country and state.node != LANGUAGE_NODE:  # there: whose language comes first
            self._country_help(tree, lang, country, channel, pieces, missing, wait)
        if state.node == LANGUAGE_NODE:
            pieces.extend(self._language_names(tree, channel, country))
        else:
            self._read_options(screen, n, part, contacts, announce_help, say, ui, keys)
        return self._verb(tree, lang, channel, screen, node, state, pieces, missing, wait, ui)

    def _verb(self, tree: Tree, lang: str, channel: Channel, screen: Screen, node: Any,
              state: State, pieces: list[Any], missing: list[str], wait: int,
              ui: Callable[[str], None]) -> _Plan:
        """What follows the pieces: "one moment" while one is made, else the verb that
        listens (and its closing words)."""
        if missing and wait < MAX_WAITS:
            hold = self._spoken(tree, lang, self.t(lang, ONE_MOMENT), channel, [], 99)
            return _Plan("hold", Pieces(hold), tuple(missing), False)
        kind = _listening(screen, node, state)
        if kind in _CLOSING:
            ui(_CLOSING[kind])
        # Nothing the caller typed is kept beyond the webhook: a screen reading back their
        # answers (a reference digit by digit, a service's reply) is made each time.
        cacheable = not missing and not state.answers and state.resume is None and \
            not any(getattr(p, "dynamic", False) for p in pieces)
        return _Plan(kind, Pieces(pieces), (), cacheable)

    def _language_names(self, tree: Tree, channel: Channel, country: str = "") -> list[Any]:
        """Each language in its own voice, its key too; a language with no voice of its
        own is not announced in another's (its key still works). The languages of the
        caller's number's country (``spoken_in``) are named first: with twelve languages
        the menu lasts 27 s, and a caller from Viet Nam hears Vietnamese first."""
        pieces: list[Any] = []
        numbered = sorted(enumerate(tree.languages, start=1),
                          key=lambda item: country not in item[1].spoken_in)
        for number, language in numbered:
            name = self.prompts.prompt(tree, self.t, language.code,
                                       f"language/{language.code}", channel.says)
            digits = [self.prompts.digit(tree, self.t, language.code, d, channel.says)
                      for d in str(number)]
            heard = [name, *digits]
            if all(p is not None and p.lang == language.code
                   and getattr(p, "source", "") != "fallback" for p in heard):
                pieces.extend(heard)
        return pieces

    @staticmethod
    def _read_options(screen: Screen, n: int, part: int, contacts: bool, announce_help: bool,
                      say: Callable[[str], None], ui: Callable[[str], None],
                      keys: Callable[[str], None]) -> None:
        """A few options, "for more, press 9" while there are more, the keys to go back."""
        options = screen.options if n == 1 or contacts else \
            screen.options[part * VOICE_OPTIONS:(part + 1) * VOICE_OPTIONS]
        for i, (option_key, label) in enumerate(options):
            if i == 0 and not announce_help:
                # "press 1 Before you go, 2 Rights at work ...": "press" once (said just
                # before in "for help now, press 9 9")
                ui(PRESS)
            keys(option_key)
            say(label)
        if part + 1 < n:
            ui(FOR_MORE)
            keys(more_key(screen))
        if part + 1 >= n:
            for option_key, label in screen.nav:
                say(label)
                keys(option_key)

    def _reply(self, plan: _Plan, state: State, channel: Channel, lang: str, wait: int,
               silence: int, part: int = 0) -> Reply:
        """A plan's verbs, with the URLs of this call's step."""
        seq = {"s": str(state.seq), "p": str(part)} if part else {"s": str(state.seq)}
        if plan.kind == "hold":
            for text in plan.missing:
                self._render_later(lang, text)
            return (Speak(plan.pieces),
                    Redirect(channel.url({**seq, "ev": "wait", "w": str(wait + 1)}), pause=1))
        if plan.kind == "end":
            return (Speak(plan.pieces), Hangup())
        quiet = channel.url({**seq, "ev": "silence", "n": str(silence + 1)})
        if plan.kind == "keypad":
            return (Gather(plan.pieces, channel.url(seq), quiet, timeout=8),)
        if plan.kind in ("record", "record-long"):
            seconds = LONG_SECONDS if plan.kind == "record-long" else SHORT_SECONDS
            return (Record(plan.pieces, channel.url({**seq, "ev": "record"}), quiet,
                           max_length=seconds),)
        return (Gather(plan.pieces, channel.url(seq), quiet),)

    def goodbye(self, ctx: Context, state: State, channel: Channel) -> Reply:
        lang = ctx.lang(state)
        pieces = self._spoken(ctx.tree, lang, self.t(lang, GOODBYE), channel, [], MAX_WAITS)
        return (Speak(tuple(pieces)), Hangup())

    def _render_later(self, lang: str, text: str) -> None:
        """Speech for a text not in the manifest (a status, a date), made off the webhook."""
        with self._lock:
            if (lang, text) in self._rendering:
                return
            self._rendering.add((lang, text))

        def render() -> None:
            try:
                self.prompts.render_dynamic(lang, text)
            finally:
                with self._lock:
                    self._rendering.discard((lang, text))

        if self._background is not None:
            self._background(render, "voice-render")




__all__ = ["Channel", "KEYPAD_INPUTS", "MAX_WAITS", "Prompts", "Speech", "by_country",
           "channel_url", "chunks", "digit_groups", "more_key"]
