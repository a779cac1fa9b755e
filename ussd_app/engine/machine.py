"""The channel-neutral menu state machine.

``step(state, input)`` gives the next state; ``view(state)`` the screen to
show. Both are pure: no clock, no database, no network. That is what lets a
USSD hop be recomputed from the ``text`` Africa's Talking resends each time,
so a retried callback gets the same answer and two workers need not share
memory. Services (an agency search, say) are passed in by the caller; the
engine only calls them. Actions (file a complaint) it never runs: it asks for
them with an ``ActionRequested`` event and reads their outcome, once the
conversation core has it, from ``Context.outcomes``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ussd_app.engine import messages as m
from ussd_app.engine.answers import (
    CUT_FIELD,
    Action,
    ActionResult,
    Query,
    check_input,
    confirm_pages,
    result_pages,
    with_answers,
)
from ussd_app.engine.events import ActionRequested, Event, LanguageChosen, SmsRequested
from ussd_app.engine.model import (
    ASK,
    CHOICE,
    CONFIRM,
    CONTACTS,
    LANGUAGE,
    MENU,
    RESULT,
    Node,
    Tree,
)
from ussd_app.engine.paging import longest_hint, menu_pages, nav, node_pages, text_pages
from ussd_app.engine.screens import Layout, Screen, Translate
from ussd_app.parsing import ascii_digits_of, bounded_int

LANGUAGE_NODE = "language"
RESUME_NODE = "__resume__"
SMS_CONFIRM_NODE = "__sms_confirm__"
SMS_SENT_NODE = "__sms_sent__"
MAX_KEY = 9999  # an option number; a longer run of digits is no key

# A service answers an ask node: (answer, language) -> text to show.
Service = Callable[[str, str], str]


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
    sms: str | None = None  # id of the contact list the caller asked to get by SMS
    # Inputs stepped so far: with Context.session, names an action's hop. Not part of
    # where the caller is, so two states at the same place compare equal.
    seq: int = field(default=0, compare=False)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["resume"] = self.resume.to_json() if self.resume else None
        return data

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


def replay(ctx: Context, state: State, inputs: Iterable[str]) -> State:
    for raw in inputs:
        state = step(ctx, state, raw)
    return state


def step(ctx: Context, state: State, raw: str) -> State:
    """The state after one input (``step_events`` without its events)."""
    return step_events(ctx, state, raw)[0]


def step_events(ctx: Context, state: State, raw: str) -> tuple[State, list[Event]]:
    """The state after one input, and what this very input asks the channel to do.

    Every input counts in ``seq``, whatever state follows, so no two hops of a
    session give an action the same key."""
    seq = state.seq + 1
    events: list[Event] = []
    after = _step(ctx, replace(state, hint="", seq=seq), raw, events)
    return (after if after.seq == seq else replace(after, seq=seq)), events


def _step(ctx: Context, state: State, raw: str, events: list[Event]) -> State:
    tree = ctx.tree
    # A key typed on an Arabic or Devanagari keypad ('١', '٩٨') is the same key; free text
    # is still read from ``raw``.
    answer = ascii_digits_of(" ".join(raw.split()))
    if state.node == RESUME_NODE:
        return _step_resume(tree, state, answer)
    if state.node in (SMS_CONFIRM_NODE, SMS_SENT_NODE) and answer not in ("00", "99"):
        return _step_sms(tree, state, answer, events)
    node = tree.nodes.get(state.node)
    if node is None:  # content changed under an old session: start from the menu
        return first_state(tree, state.lang)
    if state.pending and answer == "98" and state.page + 1 < _page_count(ctx, state, node):
        return replace(state, page=state.page + 1)  # a question long enough to page
    if state.pending and answer not in ("0", "00", "99"):
        return _answer(ctx, state, node, raw, events)
    if answer == "00":
        if state.lang is None:
            return replace(state, hint=m.PICK_LANGUAGE)
        return State(lang=state.lang, node=tree.main, answers=state.answers)
    if answer == "0":
        return _back(tree, state)
    if answer == "98":
        if state.page + 1 < _page_count(ctx, state, node):
            return replace(state, page=state.page + 1)
        return replace(state, hint=m.NO_MORE)
    if answer == "99":
        if state.node == tree.help and state.page == 0:
            return state
        return _go(state, tree.help)
    number = bounded_int(answer, 0, MAX_KEY, max_len=4) or 0
    if node.type in (MENU, LANGUAGE) and number:
        return _choose(ctx, state, node, number, events)
    if node.type in (CHOICE, RESULT, ASK) and 1 <= number <= len(node.options):
        return _pick(ctx, state, node, node.options[number - 1], events)
    if node.type == CONFIRM and answer in ("1", "2"):
        if answer == "2":  # cancel: nothing is kept
            return State(lang=state.lang, node=tree.main)
        return _act(ctx, state, node, node.action, node.next or tree.main, events)
    if node.type == ASK and node.service and answer:  # on a results screen: search again
        return _answer(ctx, state, node, raw, events)
    if node.type == CONTACTS and answer == "1":
        return replace(_go(state, SMS_CONFIRM_NODE), sms=node.id)
    return replace(state, hint=m.INVALID)


def _step_sms(tree: Tree, state: State, answer: str, events: list[Event]) -> State:
    """Confirm, then say it is queued; the channel sends it on ``SmsRequested``."""
    if state.node == SMS_CONFIRM_NODE and answer == "1":
        if state.sms in tree.nodes:
            events.append(SmsRequested(str(state.sms), state.lang or tree.default_language))
        return replace(state, node=SMS_SENT_NODE)
    if answer in ("0", "2") or (state.node == SMS_SENT_NODE and answer == "0"):
        return _back(tree, replace(state, sms=None))
    return replace(state, hint=m.INVALID)


def _step_resume(tree: Tree, state: State, answer: str) -> State:
    if answer == "1" and state.resume is not None:
        return state.resume
    if answer == "2":
        return first_state(tree, state.lang)
    if answer in ("00", "0"):
        return first_state(tree, state.lang)
    return replace(state, hint=m.INVALID)


def _go(state: State, target: str) -> State:
    return replace(state, node=target, page=0, pending=None,
                   history=(*state.history, (state.node, state.page))[-20:])


def _back(tree: Tree, state: State) -> State:
    if state.page > 0:
        return replace(state, page=state.page - 1)
    if state.history:
        node_id, page = state.history[-1]
        node = tree.nodes.get(node_id)
        pending = node_id if node is not None and node.type == ASK else None
        return replace(state, node=node_id, page=page, pending=pending,
                       history=state.history[:-1])
    if state.node == tree.main:
        return replace(state, hint=m.INVALID)
    if state.lang is None:
        return replace(state, hint=m.PICK_LANGUAGE)
    return State(lang=state.lang, node=tree.main, answers=state.answers)


def _choose(ctx: Context, state: State, node: Node, number: int,
            events: list[Event]) -> State:
    tree = ctx.tree
    if node.type == LANGUAGE:
        if 1 <= number <= len(tree.languages):
            events.append(LanguageChosen(tree.languages[number - 1].code))
            return State(lang=tree.languages[number - 1].code, node=tree.main,
                         answers=state.answers, seq=state.seq)
        return replace(state, hint=m.INVALID)
    if 1 <= number <= len(node.options):
        return _enter(ctx, state, node.options[number - 1].target)
    return replace(state, hint=m.INVALID)


def _enter(ctx: Context, state: State, target_id: str) -> State:
    """Go to a node: past the ones whose question is answered, waiting at an ask."""
    nodes = ctx.tree.nodes
    target = nodes[target_id]
    seen = {target_id}
    answered = state.answer_map
    while target.skip_if and target.next and any(answered.get(f) for f in target.skip_if):
        if target.next in seen:
            break
        seen.add(target.next)
        target = nodes[target.next]
    moved = _go(state, target.id)
    return replace(moved, pending=target.id) if target.type == ASK else moved


def _pick(ctx: Context, state: State, node: Node, option: Any,
          events: list[Event]) -> State:
    """A choice's value kept under its field; an option on a results page; a link."""
    updates: dict[str, str] = {}
    if node.type == CHOICE:
        updates[node.answer_field] = option.value
    if option.keep_as:  # an agency found: report it, with what was searched for
        updates[option.keep_as] = state.answer_map.get(node.answer_field, "")
    target = option.target or option.next or node.next or ctx.tree.main
    state = replace(state, answers=with_answers(state.answers, updates))
    return _act(ctx, state, node, option.action or (node.action if node.type == CHOICE
                                                     else None), target, events)


def _act(ctx: Context, state: State, node: Node, action: str | None, target: str,
         events: list[Event]) -> State:
    """Go where the node's action's outcome leads; one not known yet is asked for
    (``ActionRequested``), and until it is given the caller stays put: "not now"."""
    if action:
        key = f"{ctx.session}:{state.seq}"
        result = (ctx.outcomes or {}).get(key)
        if result is None:
            events.append(ActionRequested(key, action, ctx.lang(state), state.answers,
                                          node.id))
            return replace(state, hint=m.NOT_NOW, pending=node.id if node.type == ASK else None)
        state = replace(state, answers=with_answers(state.answers, result.answers))
        if result.hint:
            return replace(state, hint=result.hint,
                           pending=node.id if node.type == ASK else None)
        target = node.outcomes.get(result.outcome, target)
    return _enter(ctx, state, target)


def _answer(ctx: Context, state: State, node: Node, raw: str, events: list[Event]) -> State:
    text, problem, cut = check_input(raw, node.input, node.max_length)
    if problem:
        return replace(state, hint=problem, pending=node.id)
    updates = {node.answer_field: text}
    if cut:
        cuts = {f for f in state.answer_map.get(CUT_FIELD, "").split(",") if f}
        updates[CUT_FIELD] = ",".join(sorted(cuts | {node.answer_field}))
    state = replace(state, answers=with_answers(state.answers, updates))
    if node.action or node.next:
        moved = _act(ctx, state, node, node.action, node.next or ctx.tree.main, events)
        return replace(moved, hint=moved.hint or (m.TEXT_CUT if cut else ""))
    return replace(state, pending=None, page=0)


def _page_count(ctx: Context, state: State, node: Node) -> int:
    return _pages(ctx, state, node)[0].pages


def _pages(ctx: Context, state: State, node: Node) -> list[Screen]:
    lang = ctx.lang(state)
    if node.type == ASK and not state.pending:
        return _service_pages(ctx, state, node, lang)
    if node.type == CONFIRM:
        return confirm_pages(ctx.tree, node, lang, state.answer_map, ctx.layout, ctx.t,
                             longest_hint(lang, ctx.t))
    if node.type == RESULT:
        return result_pages(ctx.tree, node, lang, state.answer_map, ctx.layout, ctx.t,
                            longest_hint(lang, ctx.t))
    return node_pages(ctx.tree, node, lang, ctx.layout, ctx.t, root=node.id == ctx.tree.main)


def _service_pages(ctx: Context, state: State, node: Node, lang: str) -> list[Screen]:
    service = (ctx.services or {}).get(node.service or "")
    answer = state.answer_map.get(node.id, "")
    body = service(answer, lang) if service else ctx.t(lang, m.UNAVAILABLE)
    keys = tuple((str(i + 1), ctx.tree.label(o, lang)) for i, o in enumerate(node.options))
    return text_pages(lang, ctx.tree.text(node.title, lang), body, ctx.layout, ctx.t,
                      (*keys, ("0", m.BACK)), node.id, by_line=True,
                      reserve=longest_hint(lang, ctx.t))


def view(ctx: Context, state: State) -> Screen:
    """The screen for a state, with its hint when it fits."""
    lang = ctx.lang(state)
    if state.node == RESUME_NODE:
        options = (("1", ctx.t(lang, m.RESUME_CONTINUE)), ("2", ctx.t(lang, m.RESUME_RESTART)))
        screen = menu_pages(lang, "", ctx.t(lang, m.RESUME_QUESTION), options, ctx.layout,
                            ctx.t, (), RESUME_NODE, longest_hint(lang, ctx.t))[0]
    elif state.node == SMS_CONFIRM_NODE:
        options = (("1", ctx.t(lang, m.SMS_YES)), ("2", ctx.t(lang, m.SMS_NO)))
        screen = menu_pages(lang, "", ctx.t(lang, m.SMS_QUESTION), options, ctx.layout,
                            ctx.t, (("0", m.BACK),), SMS_CONFIRM_NODE,
                            longest_hint(lang, ctx.t))[0]
    elif state.node == SMS_SENT_NODE:
        screen = text_pages(lang, "", ctx.t(lang, m.SMS_QUEUED), ctx.layout, ctx.t,
                            (("0", m.BACK),), SMS_SENT_NODE, reserve=longest_hint(lang, ctx.t))[0]
    else:
        node = ctx.tree.nodes.get(state.node)
        if node is None:
            return view(ctx, first_state(ctx.tree, state.lang))
        pages = _pages(ctx, state, node)
        screen = pages[min(state.page, len(pages) - 1)]
        if node.type == LANGUAGE and state.lang is None:
            screen = replace(screen, title="", nav=())
    if state.hint:
        return _with_hint(ctx, screen, ctx.t(lang, state.hint))
    return screen


def _with_hint(ctx: Context, screen: Screen, hint: str) -> Screen:
    """Hint above the screen; else in place of the title; else left out."""
    for candidate in (screen.with_hint(hint), replace(screen, title="", hint=hint)):
        if ctx.layout.fits(ctx.layout.render(candidate, ctx.t)):
            return candidate
    return screen


__all__ = ["Action", "ActionRequested", "ActionResult", "Context", "Event", "LANGUAGE_NODE",
           "LanguageChosen", "Query", "RESUME_NODE", "Service", "SmsRequested", "State",
           "first_state",
           "is_resumable", "nav", "replay", "resume_offer", "step", "step_events", "view"]
