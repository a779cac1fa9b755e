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

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from ussd_app.engine import messages as m
from ussd_app.engine.answers import (
    CUT_FIELD,
    Action,
    ActionResult,
    Query,
    check_input,
    with_answers,
)
from ussd_app.engine.events import ActionRequested, Event, LanguageChosen, SmsRequested
from ussd_app.engine.fitting import nav
from ussd_app.engine.keys import action_keys
from ussd_app.engine.model import (
    ARTICLE,
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
from ussd_app.engine.paging import has_short
from ussd_app.engine.state import (
    ITEM_FIELD,
    LANGUAGE_NODE,
    MAX_ITEMS,
    NO_SMS_NODE,
    OUTCOME_FIELDS,
    RESUME_NODE,
    SMS_CONFIRM_NODE,
    SMS_SENT_NODE,
    Context,
    Service,
    State,
    first_state,
    is_resumable,
    resume_offer,
    settled,
)
from ussd_app.engine.view import page_count, service_answer, view
from ussd_app.parsing import ascii_digits_of, bounded_int

MAX_KEY = 9999  # an option number; a longer run of digits is no key


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
    if state.node in (SMS_CONFIRM_NODE, SMS_SENT_NODE, NO_SMS_NODE) and \
            answer not in ("00", "99"):
        return _step_sms(tree, state, answer, events)
    node = tree.nodes.get(state.node)
    if node is None:  # content changed under an old session: start from the menu
        return first_state(tree, state.lang)
    if state.pending and answer == "98" and state.page + 1 < page_count(ctx, state, node):
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
        if state.page + 1 < page_count(ctx, state, node):
            return replace(state, page=state.page + 1)
        return replace(state, hint=m.NO_MORE)
    if answer == "99":
        if state.node == tree.help and state.page == 0:
            return state
        return _go(state, tree.help)
    number = bounded_int(answer, 0, MAX_KEY, max_len=4) or 0
    if node.type in (MENU, LANGUAGE) and number:
        return _choose(ctx, state, node, number, events)
    if node.type == ASK and node.service:
        return _on_results(ctx, state, node, answer, raw, events)
    if node.type in (CHOICE, RESULT, ASK) and 1 <= number <= len(node.options):
        return _pick(ctx, state, node, node.options[number - 1], events)
    if node.type == CONFIRM and answer in ("1", "2"):
        if answer == "2":  # cancel: nothing is kept
            return State(lang=state.lang, node=tree.main)
        return _act(ctx, state, node, node.action, node.next or tree.main, events)
    if node.type == CONTACTS and answer == "1":
        return replace(_go(state, SMS_CONFIRM_NODE), sms=node.id)
    if node.type == ARTICLE and answer in ("1", "2") and \
            has_short(node, ctx.layout, ctx.lang(state)):
        return _full_text(ctx, state, node, answer)
    return replace(state, hint=m.INVALID)


def _full_text(ctx: Context, state: State, node: Node, answer: str) -> State:
    """Under a short version: 1 the full text by SMS (asked first, as the contact lists
    are: an SMS may be read by someone else), where an SMS can reach the caller, else a
    screen that says why not; 2 the full text here, where 0 comes back to the short."""
    if answer == "2":
        return replace(state, page=0, full=True) if state.full else \
            replace(_go(state, node.id), full=True)
    return replace(_go(state, SMS_CONFIRM_NODE if ctx.sms_ok else NO_SMS_NODE), sms=node.id)


def _on_results(ctx: Context, state: State, node: Node, answer: str, raw: str,
                events: list[Event]) -> State:
    """On a service's results: 1..MAX_ITEMS open an item, the actions have their own
    keys (``action_keys``), anything else is searched again."""
    if answer in action_keys(node):
        return _pick(ctx, state, node, node.options[action_keys(node).index(answer)], events)
    item_field = node.id + ITEM_FIELD
    if answer.isdigit() and len(answer) == 1:
        if state.answer_map.get(item_field):  # an item opened: only its actions
            return replace(state, hint=m.INVALID)
        items = service_answer(ctx, state, node, ctx.lang(state)).items
        number = int(answer)
        if 1 <= number <= min(len(items), MAX_ITEMS):
            opened = replace(state, page=0, answers=with_answers(
                state.answers, {item_field: items[number - 1]}))
            return replace(opened, history=(*state.history, (node.id, state.page))[-20:])
        return replace(state, hint=m.INVALID)
    if answer:  # search again
        cleared = replace(state, answers=with_answers(state.answers, {item_field: ""}))
        return _answer(ctx, cleared, node, raw, events)
    return replace(state, hint=m.INVALID)


def _step_sms(tree: Tree, state: State, answer: str, events: list[Event]) -> State:
    """Confirm, then say it is queued; the channel sends it on ``SmsRequested``. Where no
    SMS can go, 2 reads the article's full text here instead."""
    if state.node == NO_SMS_NODE and answer == "2" and state.sms in tree.nodes:
        return replace(state, node=str(state.sms), page=0, sms=None, full=True)
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
    return replace(state, node=target, page=0, pending=None, full=False,
                   history=(*state.history, (state.node, state.page))[-20:])


def _back(tree: Tree, state: State) -> State:
    if state.page > 0:
        return replace(state, page=state.page - 1)
    if state.history:
        node_id, page = state.history[-1]
        if node_id == state.node and state.answer_map.get(node_id + ITEM_FIELD):
            return replace(state, page=page, history=state.history[:-1], answers=with_answers(
                state.answers, {node_id + ITEM_FIELD: ""}))
        node = tree.nodes.get(node_id)
        pending = node_id if node is not None and node.type == ASK else None
        return replace(state, node=node_id, page=page, pending=pending, full=False,
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
    if option.keep_as:  # an agency found: report it, the one opened or what was searched
        answers = state.answer_map
        updates[option.keep_as] = (answers.get(node.id + ITEM_FIELD)
                                   or answers.get(node.answer_field, ""))
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



# State, Context and the view live in state.py and view.py; channels and tests import
# them from here, with the step.
__all__ = ["Action", "ActionRequested", "ActionResult", "Context", "Event", "LANGUAGE_NODE",
           "LanguageChosen", "NO_SMS_NODE", "OUTCOME_FIELDS", "Query", "RESUME_NODE",
           "SMS_CONFIRM_NODE", "SMS_SENT_NODE", "Service", "SmsRequested", "State",
           "first_state",
           "is_resumable", "nav", "replay", "resume_offer", "settled", "step", "step_events",
           "view"]
