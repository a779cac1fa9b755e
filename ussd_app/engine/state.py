"""Where one caller is (``State``) and what the engine is given besides (``Context``).

A state is plain data: the channel stores it between inputs (sealed once it
holds answers) and the engine steps it. Also here: a caller's first state,
the resume offer after a dropped session, and what is worth storing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ussd_app.engine.answers import ActionResult
from ussd_app.engine.model import RESULT, Tree
from ussd_app.engine.screens import Layout, Translate

LANGUAGE_NODE = "language"
RESUME_NODE = "__resume__"
SMS_CONFIRM_NODE = "__sms_confirm__"
SMS_SENT_NODE = "__sms_sent__"
NO_SMS_NODE = "__no_sms__"  # asked for an SMS where none can go (a withheld number)

@dataclass(frozen=True)
class Listing:
    """A service's answer with items a caller may open: ``items[i]`` is the answer that
    shows item i+1 on its own (the agency search: that agency's licence number)."""

    text: str
    items: tuple[str, ...] = ()


# A service answers an ask node: (answer, language) -> text to show, or a listing; a node
# with ``prefer_from`` adds a third argument, the countries (ISO codes) to rank first.
Service = Callable[..., "str | Listing"]

# On a service's results, keys 1..MAX_ITEMS open the items listed and the node's
# options (actions) are keyed from ACTION_KEY_FROM: no key means two things.
MAX_ITEMS = 5
ACTION_KEY_FROM = 7
ITEM_FIELD = ":item"  # answers[node id + ITEM_FIELD]: the item opened on a results screen


@dataclass(frozen=True, slots=True)
class State:
    """Where one caller is: everything needed to draw the screen and go on."""

    lang: str | None
    node: str
    page: int = 0
    history: tuple[tuple[str, int], ...] = ()
    pending: str | None = None  # id of an ask node waiting for free text
    answers: tuple[tuple[str, str], ...] = ()
    hint: str = ""
    resume: State | None = None  # the state a resume offer would go back to
    sms: str | None = None  # id of the contact list or article asked for by SMS
    full: bool = False  # reading an article's full text where its short version is shown
    # Inputs stepped so far: with Context.session, names an action's hop. Not part of
    # where the caller is, so two states at the same place compare equal.
    seq: int = field(default=0, compare=False)

    def to_json(self) -> dict[str, Any]:
        # Field by field (what ``asdict`` gave, in its order): ``asdict`` deep-copies
        # through every tuple and cost a voice webhook more than its engine step.
        return {"lang": self.lang, "node": self.node, "page": self.page,
                "history": tuple(tuple(h) for h in self.history), "pending": self.pending,
                "answers": tuple(tuple(a) for a in self.answers), "hint": self.hint,
                "resume": self.resume.to_json() if self.resume else None, "sms": self.sms,
                "seq": self.seq, "full": self.full}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> State:
        return cls(
            lang=data.get("lang"), node=str(data["node"]), page=int(data.get("page", 0)),
            history=tuple((str(n), int(p)) for n, p in data.get("history", ())),
            pending=data.get("pending"),
            answers=tuple((str(k), str(v)) for k, v in data.get("answers", ())),
            hint=str(data.get("hint", "")),
            resume=cls.from_json(data["resume"]) if data.get("resume") else None,
            sms=data.get("sms"),
            seq=int(data.get("seq", 0)),
            full=bool(data.get("full", False)),
        )

    @property
    def answer_map(self) -> dict[str, str]:
        return dict(self.answers)


@dataclass(frozen=True)
class Context:
    """What the engine needs besides the state: content, layout, words, services.

    ``outcomes``: what the actions a flow asked for gave (the conversation core
    runs them), by their input's key, ``session`` (the channel's stable id for
    this conversation) and ``seq``: a retried or replayed hop has the same key.
    """

    tree: Tree
    layout: Layout
    t: Translate
    services: Mapping[str, Service] | None = None
    outcomes: Mapping[str, ActionResult] | None = None
    session: str = ""
    # An SMS can reach the caller: False for a withheld number, so "Send the full text"
    # says so instead of promising a message nobody can get.
    sms_ok: bool = True

    def lang(self, state: State) -> str:
        return state.lang or self.tree.default_language


def first_state(tree: Tree, lang: str | None) -> State:
    """A caller's first screen: the language list, unless we know their language."""
    if lang and lang in tree.language_codes:
        return State(lang=lang, node=tree.main)
    return State(lang=None, node=LANGUAGE_NODE)


def resume_offer(previous: State) -> State:
    if previous.node == RESUME_NODE and previous.resume is not None:
        previous = previous.resume
    return State(lang=previous.lang, node=RESUME_NODE,
                 resume=replace(previous, hint=""))


def is_resumable(tree: Tree, state: State) -> bool:
    """Worth offering to resume: somewhere deeper than the first screens.

    A caller who hangs up on the offer itself is offered the same place again.
    """
    if state.node == RESUME_NODE:
        return state.resume is not None and is_resumable(tree, state.resume)
    node = tree.nodes.get(state.node)
    if node is not None and node.type == RESULT and not node.options:
        return False  # an outcome (a case filed, data erased): nothing left to go back to
    return state.lang is not None and state.node not in (tree.main, LANGUAGE_NODE)


OUTCOME_FIELDS = ("reference", "receipt", "status")  # what an outcome screen shows


def settled(tree: Tree, state: State) -> State:
    """The state worth storing: on an outcome (a case filed, a status shown, data
    erased) only what that screen shows is kept, never the PIN or the path typed.

    Voice shows the stored state again to a retried webhook, so the screen's own
    fields stay (sealed with the rest); SMS and USSD never read them back.
    """
    node = tree.nodes.get(state.node)
    if node is None or node.type != RESULT or node.options:
        return state
    kept = tuple((k, v) for k, v in state.answers if k in OUTCOME_FIELDS)
    if kept == state.answers and state.resume is None:
        return state
    return replace(state, answers=kept, resume=None, pending=None)
