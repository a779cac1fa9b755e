"""The actions complaint flows name in the content, for every channel's engine context.

The content says *when* (``action: file_complaint`` on the confirm node);
these say *what*: file, look up, erase, through ``Complaints``. Each gets the
hop's key, so a provider's retry or another worker's replay of the same hop
files nothing twice and counts no PIN attempt twice. A failure never shows a
reference that was not stored: the caller stays on the screen with a hint.

``file_dropped`` is no content's: the conversation core asks for it when a
caller hangs up after speaking answers (voice) that nothing filed yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ussd_app.complaints.model import number_country
from ussd_app.complaints.service import Complaints, show_reference
from ussd_app.conversation.inbound import Caller
from ussd_app.engine import messages as m
from ussd_app.engine.answers import LOCATED, Action, ActionResult, Query
from ussd_app.engine.messages import N_
from ussd_app.engine.screens import Translate

log = logging.getLogger(__name__)

RECEIPT_SENT = N_("We also sent it to you by SMS.")
RECEIPT_NOT_SENT = N_("We will not send you any SMS.")
RECEIPT_HELD = N_("We will send it to you by SMS at the times you chose.")
WRONG_PIN = N_("Not found, or wrong PIN")

REFERENCE = "reference_typed"  # the fields the status and erase questions keep
PIN = "pin_typed"


def guarded(run: Action) -> Action:
    """The action, or "not now" when it fails: nothing is shown as done that was not."""
    def action(q: Query) -> ActionResult:
        if not isinstance(q.caller, Caller):
            return ActionResult(hint=m.NOT_NOW)
        try:
            return run(q)
        except Exception:  # the database is locked or gone: nothing was shown as done
            log.exception("complaint action %s failed", q.action)
            return ActionResult(hint=m.NOT_NOW)
    return action


def _receipt_words(complaints: Complaints, row: Mapping[str, Any]) -> str:
    """Whether the reference goes by SMS: now, at the caller's safe time, or not at all."""
    if not complaints.receipt_goes(row):
        return RECEIPT_NOT_SENT
    return RECEIPT_HELD if complaints.send_time(row) > complaints.clock() else RECEIPT_SENT


def make_actions(complaints: Complaints, t: Translate) -> Mapping[str, Action]:
    """Every action the content may name (the schema lists the same names), and
    ``file_dropped``."""

    def file(q: Query, urgent: bool = False) -> ActionResult:
        row = complaints.file(q.key, q.caller, q.lang, q.answers, urgent=urgent)
        if q.caller.channel == "sms":  # this very reply carries the reference
            receipt = ""
        else:
            receipt = t(q.lang, _receipt_words(complaints, row))
        return ActionResult(answers={"reference": show_reference(row["reference"]),
                                     "receipt": receipt})

    def file_dropped(q: Query) -> ActionResult:
        """What a caller said before hanging up, filed if they agreed to report: they
        are contacted never (nobody asked them how)."""
        if q.answers.get("consent") != "yes":
            return ActionResult()
        row = complaints.file(q.key, q.caller, q.lang, {"contact": "never", **q.answers},
                              urgent=q.answers.get("urgent") == "yes")
        log.info("voice complaint kept after the caller hung up")
        return ActionResult(answers={"reference": str(row["reference"])})

    def status(q: Query, pin: str | None) -> ActionResult:
        found = complaints.lookup(q.answers.get(REFERENCE, ""), q.caller, pin, q.key)
        if found.kind == "bad_reference":
            return ActionResult(hint=m.BAD_REFERENCE)
        if found.kind == "need_pin":
            return ActionResult("pin")
        if found.kind == "denied":
            return ActionResult(hint=WRONG_PIN)
        if found.kind == "locked":
            return ActionResult("locked")
        assert found.row is not None
        return ActionResult("status", {"status": complaints.status_text(found.row, q.lang)})

    def status_lookup(q: Query) -> ActionResult:
        return status(q, None)

    def status_pin(q: Query) -> ActionResult:
        return status(q, q.answers.get(PIN, ""))

    def erase_complaint(q: Query) -> ActionResult:
        # Asked again with the same answers: only the phone that filed it, or its PIN.
        found = complaints.lookup(q.answers.get(REFERENCE, ""), q.caller,
                                  q.answers.get(PIN) or None, q.key)
        if found.kind != "status" or found.row is None:
            return ActionResult(hint=m.NOT_NOW)
        complaints.erase(found.reference)
        return ActionResult()

    return {name: guarded(run) for name, run in (
        ("file_complaint", file), ("file_dropped", file_dropped),
        *urgent_actions(complaints, file).items(),
        ("status_lookup", status_lookup), ("status_pin", status_pin),
        ("erase_complaint", erase_complaint))}


def urgent_actions(complaints: Complaints, file: Callable[..., ActionResult]
                   ) -> dict[str, Action]:
    """"I am in danger now": filed at once, then at most two questions (call now? where
    are you?) whose answers are added to the case and put their hotline first."""

    def file_urgent(q: Query) -> ActionResult:
        """Filed at once (in the queue before any question); then at most two questions,
        none for a withheld number (no number to call, no country to name)."""
        filed = file(q, urgent=True)
        country = number_country(q.caller)
        answers = {**filed.answers, "caller_country": country, LOCATED: country}
        return ActionResult("withheld" if q.caller.withheld else "next", answers)

    def urgent_answer(q: Query) -> ActionResult:
        """An answer to the urgent path's questions, added to the case. Never holds the
        caller up: if it cannot be stored, they still get the hotlines (logged)."""
        try:
            complaints.urgent_answer(q.caller, q.answers)
        except Exception:
            log.exception("could not add an urgent answer to its case")
        where = q.answers.get("where_now")
        located = "" if where == "other" else q.answers.get("caller_country", "")
        outcome = "no_country" if not q.answers.get("caller_country") else "next"
        return ActionResult(outcome, {LOCATED: located})

    return {"file_urgent": file_urgent, "urgent_answer": urgent_answer}
