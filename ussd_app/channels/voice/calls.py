"""Voice calls over the shared menu engine: keys in, prompts out.

Each webhook becomes one ``Inbound`` (its voice particulars in a
``VoiceRequest``); the answer is a ``Reply`` of verbs (``channels.voice.reply``)
that the Twilio and Africa's Talking adapters turn into their XML. The engine
and the content are the USSD ones; the keys are the USSD keys (0 back, 00 main
menu, 98 more, 99 help now). A webhook reads as parse (the endpoint) -> step
(the conversation core, which files a complaint when the flow asks) -> apply
(its events: the contact-list SMS, the recordings to fetch) -> render
(``speech.Speech``).

Why the state is stored and stepped with ``seq``: a voice provider does not
resend the path like USSD does, and retries a webhook that timed out. Every
action URL carries the ``seq`` of the screen it answers; a request for an
older ``seq`` is a retry and gets the current screen again, nothing applied
twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ussd_app import store as db
from ussd_app.channels.voice.reply import Hangup, Reject, Reply, VoiceLayout
from ussd_app.channels.voice.speech import (
    Channel,
    Prompts,
    Speech,
    channel_url,
    chunks,
    more_key,
)
from ussd_app.content.registry import ContentRegistry
from ussd_app.conversation import (
    CLOSE,
    NEW,
    RESUME,
    Caller,
    Conversation,
    Inbound,
    apply_events,
    dump_state,
    identify,
    into_store,
    load_state,
    recordings_expected,
    with_spoken,
)
from ussd_app.engine import messages as m
from ussd_app.engine.answers import Action
from ussd_app.engine.events import Event
from ussd_app.engine.machine import (
    LANGUAGE_NODE,
    Context,
    Service,
    State,
    first_state,
    settled,
    view,
)
from ussd_app.engine.model import ASK, Tree
from ussd_app.engine.screens import Translate
from ussd_app.privacy.protect import PhoneHasher, Sealer
from ussd_app.store import voice as vdb
from voice_prompts.phrases import NO_KEY, VOICE_ANSWER
from voice_prompts.phrases import VOICE_MISSING as NO_RECORDING

log = logging.getLogger(__name__)

MISSED_SECONDS = 20  # an inbound call this short with no key pressed: a missed call


@dataclass(frozen=True)
class VoiceRequest:
    """What one voice webhook says: the ``transport`` of its ``Inbound``."""

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
    part: int = 0  # which few options of a long menu were being read ("9 for more")
    ended: bool = False  # the provider says the call is over (a last request)

    def inbound(self) -> Inbound:
        event = CLOSE if self.event == "end" else NEW if self.event == "call" else RESUME
        return Inbound("voice", self.provider, self.call_id, self.phone, self.digits, event,
                       self)


class VoiceCalls:
    def __init__(self, store: db.Store, content: ContentRegistry, hasher: PhoneHasher,
                 sealer: Sealer, prompts: Prompts, t: Translate,
                 services: Mapping[str, Service] | None = None,
                 actions: Mapping[str, Action] | None = None,
                 recordings: Any = None,
                 callbacks: Any = None, callback_mode: str = "missed",
                 background: Callable[[Callable[[], object], str], None] | None = None,
                 clock: Callable[[], float] = time.time):
        self.store, self.content, self.hasher, self.sealer = store, content, hasher, sealer
        self.prompts, self.t = prompts, t
        self.conversation = Conversation(t, services, actions)
        self.speech = Speech(prompts, t, background)
        self.recordings, self.callbacks = recordings, callbacks
        self.callback_mode, self.clock = callback_mode, clock
        self.layout = VoiceLayout()

    # ------------------------------------------------------------ one webhook

    def answer(self, req: VoiceRequest, channel: Channel) -> Reply:
        now = self.clock()
        msg = req.inbound()
        key = msg.session
        # A withheld number is one caller per call: no language or draft remembered.
        caller = identify(self.hasher, msg)
        call = vdb.voice_call(self.store, key)
        if msg.session_event == CLOSE:
            return self._end(req, key, call, caller, now)
        tree = self.content.current
        if tree is None:
            return (Hangup(),)
        if call is None:
            call = self._start(req, key, caller, tree, now)
            if call is None:
                return (Reject(),)
        tree = self.content.get(call.version) or tree
        # Unreadable (the secret key changed): start again.
        state = self._state(call) or first_state(tree, self.store.phone_language(
            caller.phone_key))
        ctx = self.conversation.context(tree, self.layout, key, caller)
        near = caller.country
        if req.seq is not None and req.seq != state.seq:
            # a retry: the screen again
            return self.speech.screen(ctx, state, channel, part=req.part, country=near)
        if req.event == "silence":
            return self._silence(ctx, state, req, channel, key, now, near)
        if req.event == "input" and req.digits:
            digits = req.digits.strip().rstrip("#")
            if state.lang and state.node != LANGUAGE_NODE and \
                    not self.speech.voiced(tree, state.lang, channel):
                # A language with no voice heard "sorry" and the language menu's keys.
                state = State(lang=None, node=LANGUAGE_NODE, answers=state.answers,
                              seq=state.seq)
            elif not state.pending and state.node != LANGUAGE_NODE:
                screen = view(ctx, state)
                if digits == more_key(screen) and \
                        req.part + 1 < chunks(screen, tree.nodes.get(state.node)):
                    # "9 for more": the next few options of this menu, nothing stepped
                    return self.speech.screen(ctx, state, channel, part=req.part + 1,
                                              country=near)
            after, events = self.conversation.step(ctx, state, digits, caller)
        elif req.event == "record":
            recorded = self._recorded(ctx, state, req, caller)
            if recorded is None:
                return self.speech.screen(ctx, replace(state, hint=NO_RECORDING), channel)
            after, events = recorded
        else:
            first = msg.session_event == NEW and call.inputs == 0
            # "99 for help now" is said once a call: on its first menu in a known language.
            return self.speech.screen(ctx, state, channel, welcome=first, wait=req.wait,
                                      announce_help=first and state.lang is not None,
                                      part=req.part, country=near)
        after = self._stepped(ctx, state, after, events, caller, req, now)
        if req.ended:  # a recording's last request after the caller hung up
            self._hung_up(ctx, after, caller, req)
            return (Hangup(),)
        return self.speech.screen(ctx, after, channel, country=near,
                                  announce_help=state.lang is None and after.lang is not None)

    def _silence(self, ctx: Any, state: State, req: VoiceRequest, channel: Channel, key: str,
                 now: float, near: str) -> Reply:
        """No key: the screen again with "we did not hear a key", then goodbye."""
        nth = vdb.count_silence(self.store, key, state.seq, max(1, req.silence), now)
        if nth >= 2:
            return self.speech.goodbye(ctx, state, channel)
        return self.speech.screen(ctx, replace(state, hint=NO_KEY), channel, silence=nth,
                                  part=req.part, country=near)

    def _start(self, req: VoiceRequest, key: str, caller: Caller, tree: Tree,
               now: float) -> vdb.VoiceCall | None:
        """The call's row; None when it is rejected to be called back at once."""
        if self.callback_mode == "always" and req.direction == "inbound" and \
                getattr(self.callbacks, "enabled", False) and \
                self._call_back(req, f"always:{key}"):
            vdb.start_voice_call(self.store, key, req.provider, caller.phone_key,
                                 req.direction, tree.version, "{}", 0, now)
            vdb.end_voice_call(self.store, key, "rejected", now)
            return None
        state = first_state(tree, self.store.phone_language(caller.phone_key))
        return vdb.start_voice_call(self.store, key, req.provider, caller.phone_key,
                                    req.direction, tree.version, self._keep(state),
                                    state.seq, now)

    def _stepped(self, ctx: Context, state: State, after: State, events: list[Event],
                 caller: Caller, req: VoiceRequest, now: float) -> State:
        """Apply a step's events and store it; the state the call is in now."""
        key = ctx.session
        # Keyed by the step this request answers (``s`` in its URL): a retried webhook, or
        # a second delivery of it, queues nothing more. Before the step is saved, so a
        # crash in between is made good by the provider's retry.
        self._apply(ctx.tree, caller, f"voice-list:{key}:{state.seq}", events)
        if not vdb.save_voice_step(self.store, key, state.seq, self._keep(after), after.seq,
                                   now):
            fresh = vdb.voice_call(self.store, key)  # another delivery of this step won
            after = (self._state(fresh) if fresh else None) or after
        if after.lang and after.lang != state.lang and not caller.withheld:
            self.store.set_phone_language(caller.phone_key, after.lang)
        self._apply(ctx.tree, caller, key, recordings_expected(after, req.provider, key))
        return after

    def _apply(self, tree: Tree, caller: Caller, key: str, events: Iterable[Event]) -> None:
        expect = self.recordings.expect if self.recordings is not None else None
        apply_events(events, tree, caller, self.sealer, key, into_store(self.store), expect)

    def failure(self, req: VoiceRequest, channel: Channel) -> Reply:
        """Something broke inside: say so in the caller's language and end politely."""
        try:
            tree = self.content.current
            assert tree is not None
            lang = self._language_if_known(req) or tree.default_language
            return self.speech.sorry(tree, lang, self.t(lang, m.UNAVAILABLE), channel)
        except Exception:
            log.exception("could not even say goodbye")
            return (Hangup(),)

    def _language_if_known(self, req: VoiceRequest) -> str | None:
        """The caller's language, when the database answers (it may be what broke)."""
        try:
            return self.store.phone_language(identify(self.hasher, req.inbound()).phone_key)
        except Exception:  # noqa: BLE001 - the goodbye is said in the default language
            log.warning("caller's language unknown: the database did not answer")
            return None

    def _recorded(self, ctx: Context, state: State, req: VoiceRequest,
                  caller: Caller) -> tuple[State, list[Event]] | None:
        """A spoken answer: kept by its URL (fetched later), the question answered."""
        node = ctx.tree.nodes.get(state.node)
        if node is None or not state.pending or node.type != ASK or not req.recording_url:
            return None
        if req.recording_seconds is not None and req.recording_seconds <= 0:
            return None
        kept = with_spoken(state, node.answer_field, req.recording_url, req.recording_seconds)
        return self.conversation.step(ctx, kept, self.t(ctx.lang(state), VOICE_ANSWER), caller)

    def _hung_up(self, ctx: Context, state: State, caller: Caller, req: VoiceRequest) -> None:
        """The caller hung up after speaking: what they said is kept (the core files it),
        and its recordings fetched."""
        kept = self.conversation.hung_up(ctx, state, caller)
        if kept is not state:
            self._apply(ctx.tree, caller, ctx.session,
                        recordings_expected(kept, req.provider, ctx.session))

    # ------------------------------------------------------------ the end of a call

    def _end(self, req: VoiceRequest, key: str, call: vdb.VoiceCall | None, caller: Caller,
             now: float) -> Reply:
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
            ctx = self.conversation.context(tree, self.layout, key, caller)
            recorded = self._recorded(ctx, state, req, caller)
            if recorded is not None:  # a spoken answer asks for no SMS: no events here
                after = recorded[0]
                self._apply(tree, caller, key, recordings_expected(after, req.provider, key))
                self._hung_up(ctx, after, caller, req)
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

    # ------------------------------------------------------------ state

    def _state(self, call: vdb.VoiceCall) -> State | None:
        return load_state(self.sealer, call.state)

    def _keep(self, state: State) -> str:
        """The state to store: sealed once it holds answers; on an outcome only what
        that screen shows (a retried webhook hears it again), never the PIN."""
        tree = self.content.current
        if tree is not None and state.node in tree.nodes:
            state = settled(tree, state)
        return dump_state(self.sealer, state)


__all__ = ["Channel", "VoiceCalls", "VoiceRequest", "channel_url"]
