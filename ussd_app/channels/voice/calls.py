"""Voice calls over the shared menu engine: keys in, prompts out.

Each webhook becomes one ``VoiceRequest``; the answer is a ``Reply`` of
verbs (``channels.voice``) that the Twilio and Africa's Talking adapters turn
into their XML. The engine and the content are the USSD ones: a menu is read
out with "press N" after each option, the keys are the USSD keys (0 back, 00
main menu, 98 more, 99 help now), typed answers become keypad entries ending
with ``#`` (a PIN, a reference, a phone number) and free-text questions are
answered by speaking after the tone. What the caller hears comes from the
prompt library: a field recording, else generated speech, else the
provider's own voice, else the fallback language; never silence.

Why the state is stored and stepped with ``seq``: a voice provider does not
resend the path like USSD does, and retries a webhook that timed out. Every
action URL carries the ``seq`` of the screen it answers; a request for an
older ``seq`` is a retry and gets the current screen again, nothing applied
twice.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlencode

from ussd_app import store as db
from ussd_app.channels.voice.reply import (
    Gather,
    Hangup,
    Record,
    Redirect,
    Reject,
    Reply,
    Speak,
    VoiceLayout,
)
from ussd_app.complaints.service import Caller, Complaints, digits_of
from ussd_app.content.registry import ContentRegistry
from ussd_app.conversation import apply_events, into_store
from ussd_app.engine import messages as m
from ussd_app.engine.answers import Action, with_answers
from ussd_app.engine.events import Event
from ussd_app.engine.machine import (
    LANGUAGE_NODE,
    Context,
    Service,
    State,
    first_state,
    settled,
    step_events,
    view,
)
from ussd_app.engine.model import ASK, Tree
from ussd_app.engine.screens import Translate
from ussd_app.parsing import bounded_int
from ussd_app.privacy.protect import PhoneHasher, Sealer, open_text, seal_text
from ussd_app.store import voice as vdb

log = logging.getLogger(__name__)

RECORDING = "voice:"  # answers["voice:<field>"] = "<url> <seconds>": a spoken answer
KEYPAD_INPUTS = ("digits", "pin", "phone", "reference")
LONG_ANSWER = "description"  # the complaint itself: two minutes; other spoken answers less
LONG_SECONDS, SHORT_SECONDS = 120, 30
MAX_WAITS = 3  # "one moment" while a piece is rendered, then go on without it
MISSED_SECONDS = 20  # an inbound call this short with no key pressed: a missed call
# A reference or a phone number (6 digits or more): spoken digit by digit. Shorter
# numbers (a day, a year) are words of their sentence.
_DIGITS = re.compile(r"\+?\d(?:[ \-]?\d){5,}")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_WORDLESS = re.compile(r"^[\W_]*$")


@dataclass(frozen=True)
class VoiceRequest:
    provider: str  # twilio, africastalking
    call_id: str
    phone: str  # the migrant's number (the caller, or the callee of a call-back)
    direction: str = "inbound"
    event: str = "call"  # call, input, silence, record, wait, end
    seq: int | None = None
    digits: str = ""
    recording_url: str = ""
    recording_seconds: int | None = None
    duration: int | None = None  # of the whole call, on its end
    wait: int = 0
    silence: int = 0  # the how-manieth time in a row nothing was pressed
    ended: bool = False  # the provider says the call is over (a last request)


class Prompts:
    """What the call logic needs of ``voice_prompts.PromptLibrary`` (see there)."""

    def speak(self, tree: Tree, t: Translate, lang: str, text: str,
              says: Callable[[str], bool]) -> Any: ...
    def prompt(self, tree: Tree, t: Translate, lang: str, prompt_id: str,
               says: Callable[[str], bool]) -> Any: ...
    def digit(self, tree: Tree, t: Translate, lang: str, d: str,
              says: Callable[[str], bool]) -> Any: ...
    def render_dynamic(self, lang: str, text: str) -> None: ...


@dataclass
class Channel:
    """A provider's particulars: its speech, and the URL its next request goes to."""

    name: str
    says: Callable[[str], bool]
    url: Callable[[Mapping[str, str]], str]


class VoiceCalls:
    def __init__(self, store: db.Store, content: ContentRegistry, hasher: PhoneHasher,
                 sealer: Sealer, prompts: Prompts, t: Translate,
                 services: Mapping[str, Service] | None = None,
                 actions: Mapping[str, Action] | None = None,
                 complaints: Complaints | None = None, recordings: Any = None,
                 callbacks: Any = None, callback_mode: str = "missed",
                 background: Callable[[Callable[[], object], str], None] | None = None,
                 clock: Callable[[], float] = time.time):
        self.store, self.content, self.hasher, self.sealer = store, content, hasher, sealer
        self.prompts, self.t = prompts, t
        self.services, self.actions = services or {}, actions or {}
        self.complaints, self.recordings, self.callbacks = complaints, recordings, callbacks
        self.callback_mode, self.clock = callback_mode, clock
        self.layout = VoiceLayout()
        self._background = background
        self._rendering: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------ one webhook

    def answer(self, req: VoiceRequest, channel: Channel) -> Reply:
        now = self.clock()
        key = f"{req.provider}:{req.call_id}"
        # A withheld number is one caller per call: no language or draft remembered.
        phone_key = self.hasher.caller_key(req.phone, "voice", key)
        caller = Caller("voice", req.phone, phone_key)
        call = vdb.voice_call(self.store, key)
        if req.event == "end":
            return self._end(req, call, caller, now)
        tree = self.content.current
        if tree is None:
            return (Hangup(),)
        if call is None:
            if self.callback_mode == "always" and req.direction == "inbound" and \
                    getattr(self.callbacks, "enabled", False) and \
                    self._call_back(req, f"always:{key}"):
                vdb.start_voice_call(self.store, key, req.provider, phone_key, req.direction,
                                     tree.version, "{}", 0, now)
                vdb.end_voice_call(self.store, key, "rejected", now)
                return (Reject(),)
            state = first_state(tree, self.store.phone_language(phone_key))
            call = vdb.start_voice_call(self.store, key, req.provider, phone_key,
                                        req.direction, tree.version, self._keep(state),
                                        state.seq, now)
        tree = self.content.get(call.version) or tree
        state = self._state(call)
        if state is None:  # unreadable (the secret key changed): start again
            state = first_state(tree, self.store.phone_language(phone_key))
        ctx = self._ctx(tree, state, key, caller)
        first = req.event == "call" and call.inputs == 0
        if req.seq is not None and req.seq != state.seq:
            return self._screen(ctx, state, channel, key)  # a retry: the screen again
        if req.event == "silence":
            nth = vdb.count_silence(self.store, key, state.seq, max(1, req.silence), now)
            if nth >= 2:
                return self._goodbye(ctx, state, channel)
            return self._screen(ctx, replace(state, hint=NO_KEY), channel, key, silence=nth)
        if req.event == "input" and req.digits:
            after, events = self._step(ctx, state, req.digits)
        elif req.event == "record":
            recorded = self._recorded(ctx, state, req)
            if recorded is None:
                return self._screen(ctx, replace(state, hint=NO_RECORDING), channel, key)
            after, events = recorded
        else:
            return self._screen(ctx, state, channel, key, welcome=first, wait=req.wait)
        # Keyed by the step this request answers (``s`` in its URL): a retried webhook, or
        # a second delivery of it, queues nothing more. Before the step is saved, so a
        # crash in between is made good by the provider's retry.
        apply_events(events, tree, req.phone, phone_key, self.sealer,
                     f"voice-list:{key}:{state.seq}", into_store(self.store))
        if not vdb.save_voice_step(self.store, key, state.seq, self._keep(after), after.seq,
                                   now):
            fresh = vdb.voice_call(self.store, key)  # another delivery of this step won
            after = (self._state(fresh) if fresh else None) or after
        if after.lang and after.lang != state.lang and not caller.withheld:
            self.store.set_phone_language(phone_key, after.lang)
        self._expect_recordings(after, req.provider, key)
        if req.ended:  # a recording's last request after the caller hung up
            self._keep_what_was_said(ctx, after, req, key, now)
            return (Hangup(),)
        return self._screen(ctx, after, channel, key)

    def failure(self, req: VoiceRequest, channel: Channel) -> Reply:
        """Something broke inside: say so in the caller's language and end politely."""
        try:
            tree = self.content.current
            assert tree is not None
            lang = self.store.phone_language(self.hasher.caller_key(
                req.phone, "voice", f"{req.provider}:{req.call_id}")) or tree.default_language
            return (Speak(tuple(self._spoken(tree, lang, self.t(lang, m.UNAVAILABLE), channel,
                                             [], MAX_WAITS))), Hangup())
        except Exception:
            log.exception("could not even say goodbye")
            return (Hangup(),)

    def _step(self, ctx: Context, state: State, digits: str) -> tuple[State, list[Event]]:
        return step_events(ctx, state, digits.strip().rstrip("#"))

    def _recorded(self, ctx: Context, state: State,
                  req: VoiceRequest) -> tuple[State, list[Event]] | None:
        """A spoken answer: kept by its URL (fetched later), the question answered."""
        node = ctx.tree.nodes.get(state.node)
        if node is None or not state.pending or node.type != ASK or not req.recording_url:
            return None
        if req.recording_seconds is not None and req.recording_seconds <= 0:
            return None
        seconds = "" if req.recording_seconds is None else str(req.recording_seconds)
        kept = replace(state, answers=with_answers(
            state.answers, {RECORDING + node.answer_field: f"{req.recording_url} {seconds}"}))
        lang = ctx.lang(state)
        return self._step(ctx, kept, self.t(lang, VOICE_ANSWER))

    def _expect_recordings(self, state: State, provider: str, key: str) -> None:
        """Once the complaint has its reference, its spoken answers are fetched for it."""
        answers = state.answer_map
        reference = digits_of(answers.get("reference", ""))
        if not reference or self.recordings is None:
            return
        for name, value in answers.items():
            if name.startswith(RECORDING):
                url, _, seconds = value.rpartition(" ")  # a URL may hold a space
                field = name[len(RECORDING):]
                try:
                    self.recordings.expect(reference, provider, url,
                                           bounded_int(seconds, 0, 86_400),
                                           f"{key}:{field}")
                except Exception:  # the fetch is retried from the stored row; never lost
                    log.exception("could not record the voice answer to fetch")

    def _keep_what_was_said(self, ctx: Context, state: State, req: VoiceRequest, key: str,
                            now: float) -> None:
        """The caller hung up after speaking: file what they said, contact them never."""
        answers = state.answer_map
        spoken = [n for n in answers if n.startswith(RECORDING)]
        if not spoken or answers.get("reference") or self.complaints is None or \
                answers.get("consent") != "yes":
            return
        caller = ctx.caller
        filed = self.complaints.file(f"{key}:dropped", caller, ctx.lang(state),
                                     {"contact": "never", **answers},
                                     urgent=answers.get("urgent") == "yes")
        self._expect_recordings(replace(state, answers=with_answers(
            state.answers, {"reference": str(filed["reference"])})), req.provider, key)
        log.info("voice complaint kept after the caller hung up")

    # ------------------------------------------------------------ the end of a call

    def _end(self, req: VoiceRequest, call: vdb.VoiceCall | None, caller: Caller,
             now: float) -> Reply:
        key = f"{req.provider}:{req.call_id}"
        if call is None:
            # The end of a call this service never answered: a forged or stray status
            # callback. Nothing to end, and above all nobody to call back at our cost.
            log.info("voice: the end of a call this service did not answer (%s): ignored",
                     req.provider)
            return ()
        if call.phone_key != caller.phone_key:  # the call's number is the one its webhook saw
            log.warning("voice: a status callback with another number than its call: ignored")
            return ()
        if not vdb.end_voice_call(self.store, key, "ended", now):
            return ()
        state = self._state(call)
        tree = self.content.get(call.version) or self.content.current
        if req.recording_url and state is not None and tree is not None:
            ctx = self._ctx(tree, state, key, caller)
            recorded = self._recorded(ctx, state, req)
            if recorded is not None:  # a spoken answer asks for no SMS: no events here
                after = recorded[0]
                self._expect_recordings(after, req.provider, key)
                self._keep_what_was_said(ctx, after, req, key, now)
        missed = call.inputs == 0 and (req.duration is None or req.duration <= MISSED_SECONDS)
        # The direction the call's own webhook gave, not the status callback's.
        if self.callback_mode == "missed" and call.direction == "inbound" and missed:
            self._call_back(req, f"missed:{key}")
        return ()

    def _call_back(self, req: VoiceRequest, key: str) -> bool:
        if self.callbacks is None:
            return False
        try:
            return bool(self.callbacks.request(req.phone, req.provider, key))
        except Exception:
            log.exception("could not queue a call-back")
            return False

    # ------------------------------------------------------------ what the caller hears

    def _screen(self, ctx: Context, state: State, channel: Channel, key: str,
                welcome: bool = False, wait: int = 0, silence: int = 0) -> Reply:
        tree, lang = ctx.tree, ctx.lang(state)
        screen = view(ctx, state)
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

        if welcome:
            ui(WELCOME)
        for text in (screen.hint, screen.title, screen.body):
            if text:
                say(text)
        if state.node == LANGUAGE_NODE:
            for number, language in enumerate(tree.languages, start=1):
                piece = self.prompts.prompt(tree, self.t, language.code,
                                            f"language/{language.code}", channel.says)
                if piece is not None:
                    pieces.append(piece)
                keys(str(number), language.code)
        else:
            for option_key, label in (*screen.options, *screen.nav):
                say(label)
                ui(PRESS)
                keys(option_key)
        seq = {"s": str(state.seq)}
        if missing and wait < MAX_WAITS:
            for text in missing:
                self._render_later(lang, text)
            hold = list(self._spoken(tree, lang, self.t(lang, ONE_MOMENT), channel, [], 99))
            return (Speak(tuple(hold)),
                    Redirect(channel.url({**seq, "ev": "wait", "w": str(wait + 1)}), pause=1))
        if screen.end:
            ui(GOODBYE)
            return (Speak(tuple(pieces)), Hangup())
        quiet = channel.url({**seq, "ev": "silence", "n": str(silence + 1)})
        if node is not None and node.type == ASK and state.pending:
            if node.input in KEYPAD_INPUTS or node.service:
                ui(KEYPAD_THEN_HASH)
                return (Gather(tuple(pieces), channel.url(seq), quiet, timeout=8),)
            long = node.answer_field == LONG_ANSWER
            ui(RECORD_AFTER_TONE if long else SPEAK_AFTER_TONE)
            seconds = LONG_SECONDS if long else SHORT_SECONDS
            return (Record(tuple(pieces), channel.url({**seq, "ev": "record"}), quiet,
                           max_length=seconds),)
        return (Gather(tuple(pieces), channel.url(seq), quiet),)

    def _goodbye(self, ctx: Context, state: State, channel: Channel) -> Reply:
        lang = ctx.lang(state)
        pieces = self._spoken(ctx.tree, lang, self.t(lang, GOODBYE), channel, [], MAX_WAITS)
        return (Speak(tuple(pieces)), Hangup())

    def _spoken(self, tree: Tree, lang: str, text: str, channel: Channel, missing: list[str],
                wait: int) -> list[Any]:
        """A text as pieces: its prompt; else line by line, "label: answer" as its two
        prompts, and numbers digit by digit between the words."""
        lines = [" ".join(line.replace("\u200f", "").split()) for line in text.split("\n")]
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
        if len(bare) >= 3 and bare.isascii() and bare.isdigit():  # a PIN, a short number
            return [self.prompts.digit(tree, self.t, lang, d, channel.says) for d in bare]
        pieces: list[Any] = []
        at = 0
        for found in _DIGITS.finditer(text):
            if _DATE.fullmatch(found.group()):
                continue  # a date is said as a date, with its sentence
            pieces += self._words(tree, lang, text[at:found.start()], channel, missing, wait)
            pieces += [self.prompts.digit(tree, self.t, lang, d, channel.says)
                       for d in found.group() if d.isdigit()]
            at = found.end()
        pieces += self._words(tree, lang, text[at:], channel, missing, wait)
        return pieces

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
            from voice_prompts import Spoken

            return [Spoken(kind="say", text=text, lang=lang, source="provider")]
        return []

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

    # ------------------------------------------------------------ state

    def _ctx(self, tree: Tree, state: State, key: str, caller: Caller) -> Context:
        return Context(tree, self.layout, self.t, self.services, self.actions, key, caller)

    def _state(self, call: vdb.VoiceCall) -> State | None:
        stored = call.state
        try:
            data = json.loads(open_text(self.sealer, stored))
            return State.from_json(data) if data else None
        except Exception:
            return None

    def _keep(self, state: State) -> str:
        """The state to store: sealed once it holds answers; on an outcome only what
        that screen shows (a retried webhook hears it again), never the PIN."""
        tree = self.content.current
        if tree is not None and state.node in tree.nodes:
            state = settled(tree, state)
        data = json.dumps(state.to_json(), ensure_ascii=False)
        return seal_text(self.sealer, data) if state.answers else data


def channel_url(base: str, path: str, token: str | None) -> Callable[[Mapping[str, str]], str]:
    def url(params: Mapping[str, str]) -> str:
        query = dict(params)
        if token:
            query["token"] = token
        return f"{base.rstrip('/')}{path}?{urlencode(query)}"
    return url


# Phrases only the voice line speaks (the menus' own labels come from the content).
from voice_prompts.manifest import sentences  # noqa: E402
from voice_prompts.phrases import (  # noqa: E402
    GOODBYE,
    KEYPAD_THEN_HASH,
    NO_KEY,
    ONE_MOMENT,
    PRESS,
    RECORD_AFTER_TONE,
    SPEAK_AFTER_TONE,
    VOICE_ANSWER,
    WELCOME,
)
from voice_prompts.phrases import VOICE_MISSING as NO_RECORDING  # noqa: E402

__all__ = ["Channel", "VoiceCalls", "VoiceRequest", "channel_url"]
