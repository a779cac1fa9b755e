"""The conversation core: one input through the engine, its actions run, its events out.

Every channel reads as parse -> step -> apply -> render:

* parse: the provider's request becomes an ``Inbound`` and its ``Caller``
  (``inbound.identify``);
* step: ``Conversation.step`` steps the engine; when the flow asks for an
  action (``ActionRequested``: a complaint ready to file, a status to look
  up) it runs it through the actions the complaints feature provides and
  steps the same input again with the outcome (``Context.outcomes``). The
  engine never calls domain code, and a replayed input (USSD) or a retried
  one passes the same key, so the action is done once (the same reference);
* apply: ``effects.apply_events`` queues the SMS and notes the recordings;
* render: the channel draws ``machine.view`` its own way.

Spoken answers (voice) are kept under ``SPOKEN + field``; once the complaint
has its reference, each step says which recordings to fetch for it
(``RecordingExpected``), so no channel reads a flow's field names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Protocol, runtime_checkable

from ussd_app.conversation.inbound import Caller
from ussd_app.engine.answers import Action, ActionResult, Query, ascii_digits, with_answers
from ussd_app.engine.events import ActionRequested, Event, RecordingExpected
from ussd_app.engine.machine import Context, Service, State, step_events
from ussd_app.engine.model import Tree
from ussd_app.engine.screens import Layout, Translate
from ussd_app.parsing import bounded_int

SPOKEN = "voice:"  # answers["voice:<field>"] = "<url> <seconds>": a spoken answer
REFERENCE = "reference"  # the outcome field a filed complaint shows (machine.OUTCOME_FIELDS)
DROPPED = "file_dropped"  # the action for what was said before a hang-up
MAX_ACTIONS = 4  # actions one input may ask for (one, in every flow so far)
MAX_BOUND = 256  # (content version, caller's country) pairs whose services are kept bound


@runtime_checkable
class PerTree(Protocol):
    """A service whose answers depend on the content version a conversation is on (the
    agency search: each tree came with its own registry)."""

    def for_tree(self, tree_version: str, near: str = "") -> Service: ...


class Conversation:
    """The services and actions a channel's engine context gets, and running them."""

    def __init__(self, t: Translate, services: Mapping[str, Service] | None = None,
                 actions: Mapping[str, Action] | None = None):
        self.t = t
        self.services = services or {}
        self.actions = actions or {}
        self._bound: dict[tuple[str, str], Mapping[str, Service]] = {}

    def context(self, tree: Tree, layout: Layout, session: str,
                caller: Caller | None = None) -> Context:
        """The engine context of one conversation (``session``: its key for actions), with
        the services of the tree it is on, for this caller (the agency search puts the
        agencies of the country of their number first)."""
        near = caller.country if caller is not None else ""
        return Context(tree, layout, self.t, self.services_for(tree.version, near),
                       session=session, sms_ok=caller is None or not caller.withheld)

    def services_for(self, tree_version: str, near: str = "") -> Mapping[str, Service]:
        """The services as a conversation on ``tree_version`` sees them, for a caller
        whose number is from ``near`` (an ISO code, or "")."""
        found = self._bound.get((tree_version, near))
        if found is None:
            found = {name: s.for_tree(tree_version, near) if isinstance(s, PerTree) else s
                     for name, s in self.services.items()}
            if len(self._bound) >= MAX_BOUND:
                self._bound.clear()
            self._bound[(tree_version, near)] = found
        return found

    def step(self, ctx: Context, state: State, raw: str,
             caller: Caller) -> tuple[State, list[Event]]:
        """The state after one input and its events, the actions it asked for done
        (their requests first among the events: what this input did)."""
        outcomes: dict[str, ActionResult] = dict(ctx.outcomes or {})
        done: list[Event] = []
        after, events = step_events(ctx, state, raw)
        for _ in range(MAX_ACTIONS):
            asked = [e for e in events if isinstance(e, ActionRequested)
                     and e.key not in outcomes and e.action in self.actions]
            if not asked:  # an action nobody provides: the engine says "not now"
                break
            for request in asked:
                outcomes[request.key] = self.run(request, caller)
            done += asked
            after, events = step_events(replace(ctx, outcomes=outcomes), state, raw)
        return after, [*done, *events]

    def replay(self, ctx: Context, state: State, inputs: Iterable[str],
               caller: Caller) -> State:
        for raw in inputs:
            state = self.step(ctx, state, raw, caller)[0]
        return state

    def run(self, request: ActionRequested, caller: Caller) -> ActionResult:
        return self.actions[request.action](Query(
            key=request.key, action=request.action, lang=request.lang,
            answers=dict(request.answers), caller=caller, node=request.node))

    def hung_up(self, ctx: Context, state: State, caller: Caller) -> State:
        """The caller hung up after speaking answers nothing has filed yet: file what
        they said (the complaints feature decides whether and how); the state after."""
        answers = state.answer_map
        if answers.get(REFERENCE) or not any(n.startswith(SPOKEN) for n in answers) \
                or DROPPED not in self.actions:
            return state
        request = ActionRequested(f"{ctx.session}:dropped", DROPPED, ctx.lang(state),
                                  state.answers, state.node)
        result = self.run(request, caller)
        return replace(state, answers=with_answers(state.answers, result.answers))


def with_spoken(state: State, field: str, url: str, seconds: int | None) -> State:
    """The state with a spoken answer to ``field`` kept by its recording's URL."""
    value = f"{url} {'' if seconds is None else seconds}"
    return replace(state, answers=with_answers(state.answers, {SPOKEN + field: value}))


def recordings_expected(state: State, provider: str, session: str) -> list[RecordingExpected]:
    """Once the complaint has its reference, its spoken answers to fetch for it (keyed by
    the conversation and field: asked again, nothing more is fetched)."""
    answers = state.answer_map
    reference = ascii_digits(answers.get(REFERENCE, "")) or ""
    if not reference:
        return []
    found = []
    for name, value in answers.items():
        if name.startswith(SPOKEN):
            url, _, seconds = value.rpartition(" ")  # a URL may hold a space
            found.append(RecordingExpected(reference, provider, url,
                                           bounded_int(seconds, 0, 86_400),
                                           f"{session}:{name[len(SPOKEN):]}"))
    return found


__all__ = ["Conversation", "DROPPED", "SPOKEN", "recordings_expected", "with_spoken"]
