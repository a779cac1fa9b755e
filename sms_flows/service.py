"""SMS conversations: one inbound message in, one reply into the outbox.

SMS has no session to replay: the engine ``State`` is kept per phone (under
its keyed hash, never the number) as JSON with the content version, and
forgotten after ``conversation_seconds``. Keywords (``keywords``) jump to
a place in the tree or act (stop, start); numbers walk the menu. Every effect
of a message (its claim, the new state, an opt-out, the reply) is committed
in one transaction, so a provider's retry neither loses nor doubles a reply.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sms_flows import keywords as kw
from ussd_app import store as db
from ussd_app.complaints.actions import WRONG_PIN
from ussd_app.complaints.model import ATTACHED_SMS
from ussd_app.complaints.service import Complaints, digits_of
from ussd_app.content.registry import ContentRegistry
from ussd_app.conversation import (
    Caller,
    Conversation,
    Inbound,
    apply_events,
    dump_state,
    identify,
    load_state,
    sms_item,
)
from ussd_app.engine.answers import Action
from ussd_app.engine.bidi import for_display
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
from ussd_app.engine.messages import BAD_REFERENCE
from ussd_app.engine.model import ARTICLE, ASK, Tree
from ussd_app.engine.screens import Layout, Translate
from ussd_app.privacy.protect import SEALED, PhoneHasher, Sealer
from ussd_app.zawgyi import to_unicode

log = logging.getLogger(__name__)

MAX_TEXT = 1600  # a long SMS (Twilio's limit): a complaint told in full; 10 kB is noise
LOOP_WINDOW = 600.0
LOOP_REPEATS = 3  # the same words this often in LOOP_WINDOW: an auto-responder
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_AUTO_REPLY = re.compile(r"auto.?reply|automatic reply|out of (the )?office|autoresponder",
                         re.I)
ACTING = ("status", "agency", "stop", "start")  # keywords that act even with more words
RIGHTS_NODE = "at_work"
REPORT_NODE = "report_consent"  # where the REPORT keyword starts a complaint
RECORD_NODE = "rec_consent"  # where the RECORD keyword starts a job-offer record


def sms_inbound(provider: str, message_id: str, phone: str, text: str) -> Inbound:
    """An inbound SMS in the conversation core's shape: no session (one message). Burmese
    typed in Zawgyi becomes Unicode here, before any keyword or answer is matched or
    stored (``ussd_app.zawgyi``)."""
    return Inbound("sms", provider, message_id, phone, to_unicode(text))


@dataclass(frozen=True)
class Hop:
    """One inbound message: its idempotency key (the provider's id) and who sent it."""

    key: str
    caller: Caller


@dataclass(frozen=True)
class Outcome:
    status: str  # replied, attached (to an open case), duplicate, limited, loop, unavailable
    reply: str | None = None


class SmsService:
    def __init__(self, store: db.Store, content: ContentRegistry, hasher: PhoneHasher,
                 sealer: Sealer, layout: Layout, article_layout: Layout, t: Translate,
                 services: Mapping[str, Service] | None = None,
                 actions: Mapping[str, Action] | None = None,
                 complaints: Complaints | None = None,
                 conversation_seconds: float = 24 * 3600, rate_per_hour: int = 30,
                 draft_seconds: float = 3600):
        self.store, self.content, self.hasher, self.sealer = store, content, hasher, sealer
        self.layout, self.article_layout, self.t = layout, article_layout, t
        self.conversation = Conversation(t, services, actions)
        self.complaints = complaints
        self.draft_seconds = draft_seconds
        self.conversation_seconds, self.rate_per_hour = conversation_seconds, rate_per_hour
        self._keywords: dict[tuple[str, ...], kw.Keywords] = {}

    def receive(self, msg: Inbound, now: float | None = None) -> Outcome:
        now = time.time() if now is None else now
        message_id = msg.session_id[:200] or f"none:{uuid.uuid4()}"  # no id: no dedup
        # No number: one message is all we know of this sender (no conversation, no
        # reply: there is nobody to send it to), and no other withheld sender shares it.
        caller = identify(self.hasher, Inbound("sms", msg.provider, message_id, msg.phone))
        withheld, phone_key = caller.withheld, caller.phone_key
        if db.inbound_seen(self.store, msg.provider, message_id):
            return Outcome("duplicate")
        whole = " ".join(_CONTROL.sub("", msg.content[:MAX_TEXT * 4]).split())
        text, cut = whole[:MAX_TEXT], len(whole) > MAX_TEXT
        # Keyed: a plain hash of a short message (a PIN, a number) is reversed by trying all.
        digest = self.hasher.text_digest(kw.normalise(text))
        recent = db.recent_inbound(self.store, phone_key, now - 3600)
        quiet = self._quiet(text, digest, recent, now)
        tree = self.content.current
        if tree is None:  # not claimed: the provider's retry may find content served again
            return Outcome("unavailable")
        if quiet:
            recorded = db.record_inbound(self.store, msg.provider, message_id, phone_key,
                                         digest, now)
            log.warning("SMS from a phone not answered: %s", quiet)
            return Outcome(quiet if recorded else "duplicate")
        conversation = None if withheld else db.sms_conversation(self.store, phone_key)
        if conversation and conversation.updated_at < now - self.conversation_seconds:
            conversation = None
        if conversation:
            tree = self.content.get(conversation.version) or tree
        state = self._state(conversation, now)
        known_lang = (state.lang if state else None) or self.store.phone_language(phone_key)
        hop = Hop(f"sms:{msg.provider}:{message_id}", caller)
        case = self._case(tree, state, known_lang, text, caller)
        if case is not None and self.complaints is not None:  # for a person: to the case
            attached = self.complaints.attach(*case, caller, msg.provider, message_id, text,
                                              cut, now)
            saved = self._saved(tree, state, caller, now)
            if not db.record_inbound(self.store, msg.provider, message_id, phone_key, digest,
                                     now, saved, None,
                                     [attached.reply] if attached.reply else [],
                                     attached.row):
                return Outcome("duplicate")
            reply = for_display(self.t(attached.reply.lang, ATTACHED_SMS).format(
                reference=attached.reference), attached.reply.lang) if attached.reply else None
            return Outcome("attached", reply)
        reply, state, opt_out, events = self._answer(hop, tree, state, known_lang, text)
        items = [sms_item(self.sealer, f"sms-reply:{msg.provider}:{message_id}", caller,
                          (state.lang if state else None) or known_lang
                          or tree.default_language, reply, "reply")]
        # Stored with the message's claim below: one transaction, so a retry adds none.
        apply_events(events, tree, caller, self.sealer,
                     f"sms-list:{msg.provider}:{message_id}", items.append)
        if withheld:
            items, opt_out = [], None
        if not db.record_inbound(self.store, msg.provider, message_id, phone_key, digest, now,
                                 self._saved(tree, state, caller, now), opt_out, items):
            return Outcome("duplicate")
        if state is not None and state.lang and state.lang != known_lang and not withheld:
            self.store.set_phone_language(phone_key, state.lang)
        return Outcome("replied", reply)

    def _saved(self, tree: Tree, state: State | None, caller: Caller,
               now: float) -> db.Conversation | None:
        """The conversation to keep for this phone (none for a withheld or erased one)."""
        if state is None or caller.withheld or self.store.forgotten(caller.phone_key):
            return None
        return db.Conversation(tree.version, self._keep(settled(tree, state)), now)

    def _case(self, tree: Tree, state: State | None, lang: str | None, text: str,
              caller: Caller) -> tuple[dict[str, Any], int] | None:
        """The open case this text goes to (and how many other open cases), or None.

        Words for a person, not the service: no keyword, or one followed by more
        words ("Help, they still have not paid me"), and no answer to a question
        the conversation asked. STATUS, AGENCY, STOP and START always act.
        """
        if self.complaints is None or caller.withheld or not text or text.isdigit():
            return None
        if state is not None and _asking(tree, state):
            return None
        match = self.keywords(tree).match(text, prefer=lang)
        if match is not None and (not match.argument or match.keyword in ACTING):
            return None
        return self.complaints.open_case(caller)

    def _state(self, conversation: db.Conversation | None, now: float) -> State | None:
        """The stored state; a draft complaint left longer than the draft time is dropped."""
        if conversation is None:
            return None
        if conversation.state.startswith(SEALED) and \
                conversation.updated_at < now - self.draft_seconds:
            return None
        return load_state(self.sealer, conversation.state)  # unreadable: start afresh

    def _keep(self, state: State) -> str:
        """The state to store: encrypted once it holds what the caller typed."""
        return dump_state(self.sealer, state)

    def _quiet(self, text: str, digest: str, recent: list[tuple[str, float]],
               now: float) -> str | None:
        """Why this message gets no answer (rate limit, a loop), or None."""
        if len(recent) >= self.rate_per_hour:
            return "limited"
        if _AUTO_REPLY.search(text):
            return "loop"
        if text and not text.isdigit():
            repeats = sum(1 for d, at in recent if d == digest and at >= now - LOOP_WINDOW)
            if repeats >= LOOP_REPEATS - 1:
                return "loop"
        return None

    def keywords(self, tree: Tree) -> kw.Keywords:
        found = self._keywords.get(tree.language_codes)
        if found is None:
            found = self._keywords[tree.language_codes] = kw.Keywords(self.t,
                                                                      tree.language_codes)
        return found

    def _answer(self, hop: Hop, tree: Tree, state: State | None, lang: str | None,
                text: str) -> tuple[str, State | None, bool | None, list[Event]]:
        """(reply text, new state or None to keep none, opt-out change, the step's events)."""
        match = self.keywords(tree).match(text, prefer=lang)
        if match is not None and match.argument and state is not None and \
                state.pending and match.keyword != "status":
            match = None  # "Help, my boss..." answers the question; a lone HELP still helps
        if match is not None and lang is None and len(match.langs) == 1:
            lang = next(iter(match.langs))  # "aide" from a new phone: answer in French
        say_lang = lang or tree.default_language
        if match is None:
            if state is not None and (text.isdigit() or _asking(tree, state)) and text:
                after, events = self.conversation.step(self._ctx(hop, tree, state), state,
                                                       text, hop.caller)
                return self._show(hop, tree, after, events)
            if state is None and (not text or text.isdigit()):
                return self._show(hop, tree, first_state(tree, lang))
            return self.t(say_lang, kw.UNKNOWN), state, None, []
        keyword = match.keyword
        if keyword == "stop":
            return self.t(say_lang, kw.STOPPED), state, True, []
        if keyword == "start":
            return self.t(say_lang, kw.STARTED), state, False, []
        if keyword == "status":
            return self._status(hop, say_lang, match.argument), state, None, []
        if lang is None and keyword != "help":
            return self._show(hop, tree, first_state(tree, None))
        main = ((tree.main, 0),)
        if keyword == "help":
            return self._show(hop, tree, State(lang=say_lang, node=tree.help, history=main))
        if keyword == "rights" and RIGHTS_NODE in tree.nodes:
            return self._show(hop, tree, State(lang=lang, node=RIGHTS_NODE, history=main))
        if keyword == "report" and REPORT_NODE in tree.nodes:
            return self._show(hop, tree, State(lang=lang, node=REPORT_NODE, history=main))
        if keyword == "record" and RECORD_NODE in tree.nodes:
            return self._show(hop, tree, State(lang=lang, node=RECORD_NODE, history=main))
        if keyword == "language":
            return self._show(hop, tree, State(lang=lang, node=LANGUAGE_NODE, history=main))
        if keyword == "agency":
            node = next((n for n in tree.nodes.values() if n.service == "agency_search"), None)
            if node is not None:
                if not match.argument:
                    return self._show(hop, tree, State(lang=lang, node=node.id, history=main,
                                                  pending=node.id))
                return self._show(hop, tree, State(lang=lang, node=node.id, history=main,
                                              answers=((node.id, match.argument[:160]),)))
        return self._show(hop, tree, first_state(tree, lang))

    def _show(self, hop: Hop, tree: Tree, state: State,
              events: list[Event] | None = None) -> tuple[str, State, None, list[Event]]:
        ctx = self._ctx(hop, tree, state)
        screen = view(ctx, state)
        return ctx.layout.render(screen, self.t), state, None, events or []

    def _ctx(self, hop: Hop, tree: Tree, state: State) -> Context:
        """Articles page with the article layout (more parts); everything else with menus'."""
        node = tree.nodes.get(state.node)
        layout = self.article_layout if node is not None and node.type == ARTICLE \
            else self.layout
        return self.conversation.context(tree, layout, hop.key, hop.caller)

    def _status(self, hop: Hop, lang: str, argument: str) -> str:
        """STATUS REFERENCE [PIN]: the same answers as the status menu gives."""
        if self.complaints is None:
            return self.t(lang, kw.UNKNOWN)
        # "1234 5678", "12345678 2468" and "1234 5678 2468" alike: 8 digits, then maybe 4.
        digits = digits_of(argument)
        typed, pin = (digits[:8], digits[8:]) if len(digits) == 12 else (argument, None)
        if not typed:
            return self.t(lang, kw.STATUS_HOW)
        found = self.complaints.lookup(typed, hop.caller, pin, hop.key)
        if found.kind == "status" and found.row is not None:
            return self.complaints.status_text(found.row, lang)
        if found.kind == "need_pin":
            return self.t(lang, kw.STATUS_NEED_PIN)
        if found.kind == "locked":
            return self.t(lang, kw.STATUS_LOCKED)
        if found.kind == "denied":
            return self.t(lang, WRONG_PIN)
        return self.t(lang, BAD_REFERENCE)


def _asking(tree: Tree, state: State) -> bool:
    node = tree.nodes.get(state.node)
    return bool(state.pending) or (node is not None and node.type == ASK)


