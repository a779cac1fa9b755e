"""USSD sessions: from a provider hop (session id, phone, cumulative text) to a screen.

The provider resends every input of the session joined by ``*`` on each hop,
so a hop's screen is a pure function of how the session started and that
text. Only the start (language, content version, resume offer) is decided
from the database, once, and committed before hop 1 is answered; when two
workers (or nodes) race on hop 1 the first insert wins and both replay its
start (``store.sessions``). After that each hop replays inputs through the
engine, usually just the newest one thanks to a per-process cache, and writes
its progress (ordered by its number of inputs) and any language change before
answering. Retried callbacks therefore get the same answer, and any worker of
any node can serve any hop.

A hop reads as parse (the endpoint's ``Inbound``) -> step (the conversation
core, which runs the actions a replayed input asks for again under the same
key: the same reference) -> apply (the newest input's events) -> render.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from ussd_app.content.registry import ContentRegistry
from ussd_app.conversation import (
    ARTICLE_SEGMENTS,
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
    is_resumable,
    resume_offer,
    view,
)
from ussd_app.engine.model import Tree
from ussd_app.engine.screens import Layout, Screen, Translate
from ussd_app.privacy.protect import SEALED, PhoneHasher, Sealer, open_text, seal_text
from ussd_app.store import FreshStarts, SessionRow, Store
from ussd_app.zawgyi import ussd_to_unicode

CACHE_SIZE = 20_000
SCREENS_KEPT = 4096  # rendered content screens (a few per node, language and page)
# A real session is tens of hops; each hop of a text may be replayed through the engine,
# so a hostile 30,000-hop text cost as much CPU as 700 callers' hops. Past either limit
# the hop gets one translated END screen, decided by counting, before any replay.
MAX_HOPS = 200  # inputs in one cumulative text
MAX_TEXT = 200 * 183  # characters: 200 inputs of a handset's longest USSD string (182) + '*'
MAX_TEXT_KEPT = 4000  # enough inputs to resume; a 10 kB text is noise, not a session
MAX_PATH = 64  # nodes kept per session for the menu counts: a walk reaches tens
_Cached = tuple[SessionRow, str, str, State, list[Event], str]
# What a replay gives: the language before the newest input, whether the state before it
# was resumable (None: not known), the state, the newest input's events, the nodes the
# session reached (``path``) and whether this input moved it (a new node, or another one).
_Replayed = tuple[str | None, bool | None, State, list[Event], str, bool]


@dataclass(frozen=True)
class Answer:
    screen: Screen
    text: str

    @property
    def end(self) -> bool:
        return self.screen.end


class UssdSessions:
    def __init__(self, store: Store, content: ContentRegistry, hasher: PhoneHasher,
                 sealer: Sealer, layout: Layout, t: Translate, resume_seconds: float,
                 services: Mapping[str, Service] | None = None,
                 actions: Mapping[str, Action] | None = None, draft_seconds: float = 3600,
                 article_segments: int = ARTICLE_SEGMENTS):
        self.store, self.content, self.hasher, self.sealer = store, content, hasher, sealer
        self.layout, self.t = layout, t
        self.article_segments = article_segments  # an article's full text, per SMS
        self.resume_seconds, self.draft_seconds = resume_seconds, draft_seconds
        self.conversation = Conversation(t, services, actions)
        self._cache: dict[str, _Cached] = {}
        self._screens: dict[Screen, str] = {}  # see _render
        self._fresh: dict[str, FreshStarts] = {}  # see _fresh_starts

    @property
    def services(self) -> Mapping[str, Service]:
        """The services the content may name (the agency search): health reads them."""
        return self.conversation.services

    def answer(self, session_id: str, phone: str, text: str,
               now: float | None = None) -> Answer | None:
        """The screen for one Africa's Talking hop (``receive`` of its ``Inbound``). Answers
        typed in Zawgyi become Unicode here, each on its own (``ussd_app.zawgyi``)."""
        return self.receive(Inbound("ussd", "africastalking", session_id, phone,
                                    ussd_to_unicode(text), RESUME if text else NEW), now)

    def receive(self, msg: Inbound, now: float | None = None) -> Answer | None:
        """The screen for one hop, or None when no content can be served."""
        now = time.time() if now is None else now
        session_id, text = msg.session_id, msg.content
        # A withheld number is one caller per session: nothing resumed or remembered.
        caller = identify(self.hasher, msg)
        cached = self._cache.get(session_id)
        if len(text) > MAX_TEXT or text.count("*") >= MAX_HOPS:
            return self._too_long(caller.phone_key, cached)
        # A session's start never changes, so a row this process has seen can be reused. An
        # empty text is hop 1: its start is inserted at once (a retried hop 1 finds the
        # winner's there), without a read first.
        row = cached[0] if cached else None if not text else self.store.session(session_id)
        if row is None or row.phone_key != caller.phone_key:
            # Committed before hop 1 is answered; another worker's start, if it was first.
            row = self._start(session_id, caller, now)
            if row is None:
                return None
        tree = self.content.get(row.version)
        if tree is None:
            return None
        ctx = self._ctx(tree, session_id, caller)
        lang_before, was_resumable, state, events, path, moved = self._replay(
            ctx, row, text, cached, caller)
        self._remember(session_id, row, ctx.tree.version, text, state, events, path)
        screen = view(ctx, state)
        resumable = is_resumable(tree, state) and not caller.withheld
        # A language chosen is written in its hop: the next session, on any node, has it.
        lang = (state.lang if state.lang and state.lang != lang_before and not caller.withheld
                else None)
        if resumable or screen.end or was_resumable is not False or moved:
            self.store.save_session(replace(
                row, updated_at=now, last_text=self._keep(text[:MAX_TEXT_KEPT], state,
                                                          resumable),
                resumable=resumable, ended=screen.end, inputs=len(split_inputs(text)),
                path=path, node=state.node), lang)
        # else: from one screen nobody resumes to the same one (a key that fits nothing on
        # the main menu), the stored progress (written by the previous hop, answered
        # before this one was sent) already says all a redial and the menu counts need.
        elif lang:
            self.store.set_phone_language(caller.phone_key, lang, now)
        if events:
            # The key names the hop without the path typed (it may hold a PIN): keyed, as an
            # unkeyed hash of a short path is found by trying them all.
            digest = self.hasher.text_digest(text)
            apply_events(events, tree, caller, self.sealer, f"ussd:{session_id}:{digest}",
                         into_store(self.store), article_segments=self.article_segments)
        return Answer(screen, self._render(screen, state))

    def _render(self, screen: Screen, state: State) -> str:
        """A screen's text, rendered once per screen (node, language, page, hint) while
        the caller has typed nothing: those screens are the content's, the same for every
        caller. A screen showing answers, a service's reply or a draft to resume is
        rendered each time, and kept nowhere."""
        if state.answers or state.resume is not None:
            return self.layout.render(screen, self.t)
        text = self._screens.get(screen)
        if text is None:
            if len(self._screens) >= SCREENS_KEPT:
                self._screens.clear()
            text = self._screens[screen] = self.layout.render(screen, self.t)
        return text

    def _too_long(self, phone_key: str, cached: _Cached | None) -> Answer | None:
        """The END screen for a text past the limits, in the caller's language if known."""
        tree = self.content.current
        if tree is None:
            return None
        lang = (cached[3].lang if cached else None) or self.store.phone_language(phone_key)
        if lang not in tree.language_codes:
            lang = tree.default_language
        screen = Screen(lang=lang, body=self.t(lang, m.SESSION_TOO_LONG), end=True)
        return Answer(screen, self.layout.render(screen, self.t))

    def _ctx(self, tree: Tree, session_id: str, caller: Caller | None = None) -> Context:
        return self.conversation.context(tree, self.layout, f"ussd:{session_id}", caller)

    def _keep(self, text: str, state: State, resumable: bool) -> str:
        """The inputs to store for a resume: sealed once the caller has typed answers.

        Only a resume reads them back, so a session that cannot be resumed (a case
        filed, a status shown, data erased) keeps none: its PIN is in no stored path.
        A provider's retry of the last hop replays its own ``text``, not this.
        """
        if not resumable:
            return ""
        if state.answers or text.startswith(SEALED):
            return seal_text(self.sealer, text)
        return text

    def _start_state(self, stored: str) -> State:
        """How a session started; sealed when it offers a draft (what was typed) again.
        Unreadable (the secret key changed): at the first screen."""
        return load_state(self.sealer, stored) or State(lang=None, node=LANGUAGE_NODE)

    def _kept(self, stored: str) -> str:
        try:
            return open_text(self.sealer, stored)
        except Exception:  # the secret key changed: nothing to resume
            return ""

    def _start(self, session_id: str, caller: Caller, now: float) -> SessionRow | None:
        """The session's start, committed (or the winner's, when another worker's hop 1
        was first). Replayed here only when the phone's latest session may be resumed;
        any other start is the content's first screen in the phone's language, which the
        store picks and inserts in the round trip that reads the phone."""
        tree = self.content.current
        if tree is None:
            return None
        phone_key = caller.phone_key
        since = now - max(self.resume_seconds, self.draft_seconds)
        started, lang, previous = self.store.begin_session(
            self._fresh_starts(tree), session_id, phone_key, now, tree.version, since)
        if started is not None:
            return started
        assert previous is not None  # begin_session leaves only a resumable one to us
        start, version = first_state(tree, lang), tree.version
        old_tree = self.content.get(previous.version) or tree
        # The dropped session's own id: its actions see their own keys again.
        where = self.conversation.replay(self._ctx(old_tree, previous.id, caller),
                                         self._start_state(previous.start),
                                         split_inputs(self._kept(previous.last_text)), caller)
        # A complaint half written may be picked up for longer than a menu walk.
        window = self.draft_seconds if where.answers else self.resume_seconds
        if previous.updated_at >= now - window and is_resumable(old_tree, where):
            start, version = resume_offer(where), old_tree.version
        # Sealed when it offers a draft (what was typed) again.
        data = dump_state(self.sealer, start, start.resume is not None
                          and bool(start.resume.answers))
        return self.store.start_session(SessionRow(
            id=session_id, phone_key=phone_key, started_at=now, updated_at=now,
            version=version, start=data, path=add_to_path("", start.node), node=start.node))

    def _fresh_starts(self, tree: Tree) -> FreshStarts:
        """The first screen of ``tree`` per language a phone may have (and for none), as
        stored: computed once per content version."""
        found = self._fresh.get(tree.version)
        if found is None:
            def stored(state: State) -> tuple[str, str, str]:
                return (dump_state(self.sealer, state, False), add_to_path("", state.node),
                        state.node)
            found = FreshStarts({lang: stored(first_state(tree, lang))
                                 for lang in tree.language_codes},
                                stored(first_state(tree, None)))
            if len(self._fresh) >= 16:  # versions come and go with the content
                self._fresh.clear()
            self._fresh[tree.version] = found
        return found

    def _replay(self, ctx: Context, row: SessionRow, text: str, cached: _Cached | None,
                caller: Caller) -> _Replayed:
        """Step only the new inputs when this process saw the session's previous hop.

        Returns the language before the newest input (a change is written in its hop),
        whether the previous hop left the session resumable (None: not known, a retried
        hop), the state and the newest input's events only: the earlier ones were applied
        on their own hops, and a retried hop gives the same events again (applied once by
        key)."""
        if cached and cached[0] is row and cached[1] == ctx.tree.version:
            _, _, seen, state, events, path = cached
            if text == seen:
                return state.lang, None, state, events, path, False
            if not seen or text.startswith(seen + "*"):
                return self._last_events(ctx, state, split_inputs(
                    text[len(seen) + 1:] if seen else text), caller, path)
        start = self._start_state(row.start)
        return self._last_events(ctx, start, split_inputs(text), caller,
                                 add_to_path("", start.node))

    def _last_events(self, ctx: Context, state: State, inputs: list[str],
                     caller: Caller, path: str) -> _Replayed:
        """Replay the inputs; the language and resumability before the last one, its
        events only, and the nodes reached. With no input, what came before is the start
        as stored: not resumable (``start_session`` inserts it so)."""
        if not inputs:
            return state.lang, False, state, [], path, False
        before = state
        for raw in inputs[:-1]:
            before = self.conversation.step(ctx, before, raw, caller)[0]
            path = add_to_path(path, before.node)
        after, events = self.conversation.step(ctx, before, inputs[-1], caller)
        reached = add_to_path(path, after.node)
        resumable = is_resumable(ctx.tree, before) and not caller.withheld
        moved = reached != path or after.node != before.node
        return before.lang, resumable, after, events, reached, moved

    def _remember(self, session_id: str, row: SessionRow, version: str, text: str,
                  state: State, events: list[Event], path: str) -> None:
        if len(self._cache) >= CACHE_SIZE:
            self._cache.pop(next(iter(self._cache)), None)
        self._cache[session_id] = (row, version, text, state, events, path)


def add_to_path(path: str, node: str) -> str:
    """The nodes a session reached (space-separated, first reach first) with ``node``."""
    names = path.split()
    if node in names or len(names) >= MAX_PATH or not node or " " in node:
        return path
    return f"{path} {node}" if path else node


def split_inputs(text: str) -> list[str]:
    """The inputs in a provider's cumulative ``text``: '' is none, '1*2' is two."""
    return text.split("*") if text else []
