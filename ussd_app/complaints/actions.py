"""The actions complaint flows name in the content, for every channel's engine context.

The content says *when* (``action: file_complaint`` on the confirm node);
these say *what*: file, look up, erase, through ``Complaints``. Each gets the
hop's key, so a provider's retry or another worker's replay of the same hop
files nothing twice and counts no PIN attempt twice. A failure never shows a
reference that was not stored: the caller stays on the screen with a hint.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from ussd_app.complaints.service import Caller, Complaints, show_reference
from ussd_app.engine import messages as m
from ussd_app.engine.answers import Action, ActionResult, Query
from ussd_app.engine.messages import N_
from ussd_app.engine.screens import Translate

log = logging.getLogger(__name__)

RECEIPT_SENT = N_("We also sent it to you by SMS.")
RECEIPT_NOT_SENT = N_("We will not send you any SMS.")
WRONG_PIN = N_("Not found, or wrong PIN")

REFERENCE = "reference_typed"  # the fields the status and erase questions keep
PIN = "pin_typed"


def make_actions(complaints: Complaints, t: Translate) -> Mapping[str, Action]:
    """Every action the content may name (the schema lists the same names)."""

    def guarded(run: Action) -> Action:
        def action(q: Query) -> ActionResult:
            if not isinstance(q.caller, Caller):
                return ActionResult(hint=m.NOT_NOW)
            try:
                return run(q)
            except Exception:  # the database is locked or gone: nothing was shown as done
                log.exception("complaint action %s failed", q.action)
                return ActionResult(hint=m.NOT_NOW)
        return action

    def file(q: Query, urgent: bool = False) -> ActionResult:
        row = complaints.file(q.key, q.caller, q.lang, q.answers, urgent=urgent)
        if q.caller.channel == "sms":  # this very reply carries the reference
            receipt = ""
        else:
            receipt = t(q.lang, RECEIPT_SENT if complaints.can_message(row) else RECEIPT_NOT_SENT)
        return ActionResult(answers={"reference": show_reference(row["reference"]),
                                     "receipt": receipt})

    def file_urgent(q: Query) -> ActionResult:
        return file(q, urgent=True)

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
        ("file_complaint", file), ("file_urgent", file_urgent),
        ("status_lookup", status_lookup), ("status_pin", status_pin),
        ("erase_complaint", erase_complaint))}
