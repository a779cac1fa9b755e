"""Urgent cases reach a person in minutes: on-call phones texted, escalation, acknowledgement.

An urgent case is in the dashboard's queue the moment it is filed (and its
alert strip shows it, with a sound, within seconds). This adds what does not
need anyone to be looking at a screen: every on-call phone
(``MIGRANTLINE_URGENT_ALERT_NUMBERS``) gets an SMS with the reference only
("Urgent case 9442 9094, open the dashboard": no name, number or text, a
supervisor's phone may be seen by others), and a case nobody acknowledged
after ``MIGRANTLINE_URGENT_ESCALATE_MINUTES`` is escalated the same way to
the escalation phones. The SMS go through the outbox; their keys make a run
repeated (two nodes, a retry) queue nothing twice. Where SMTP is configured, the
supervisors' addresses (``MIGRANTLINE_URGENT_ALERT_EMAILS``) get the same words by
e-mail (best effort: a failed e-mail is logged, the SMS are the retried path). The job runs once per
cluster (``services``), every ``INTERVAL`` seconds.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable, Sequence
from typing import Any

from ussd_app.complaints.base import ComplaintsBase
from ussd_app.complaints.references import show_reference
from ussd_app.engine.messages import N_
from ussd_app.store import OutboxItem
from ussd_app.store import complaints as db

log = logging.getLogger(__name__)

INTERVAL = 15.0  # seconds between runs: an on-call phone hears of a case within a minute
LOOK_BACK = 24 * 3600.0  # cases filed longer ago than this are not alerted (a new node)
ALERT_SUBJECT = N_("Urgent case {reference}")
ALERT_SMS = N_("MigrantLine: urgent case {reference}. Open the dashboard now.")
ESCALATE_SMS = N_("MigrantLine: urgent case {reference} is not acknowledged after "
                  "{minutes} min. Open the dashboard now.")


class UrgentAlerts:
    """The job: alert the on-call phones of new urgent cases, escalate the waiting ones."""

    def __init__(self, complaints: ComplaintsBase, numbers: Sequence[str],
                 escalate_numbers: Sequence[str], escalate_minutes: int, lang: str,
                 mail: Callable[[str, str, str], None] | None = None,
                 emails: Sequence[str] = ()):
        self.complaints, self.lang = complaints, lang
        self.mail, self.emails = mail, tuple(emails)
        self.numbers, self.escalate_numbers = tuple(numbers), tuple(escalate_numbers)
        self.escalate_minutes = escalate_minutes

    def run(self, now: float | None = None) -> dict[str, int]:
        """One pass; how many cases were alerted and escalated."""
        now = self.complaints.clock() if now is None else now
        store = self.complaints.store
        alerted = escalated = 0
        for row in db.urgent_to_alert(store, now - LOOK_BACK):
            self._tell(row, "alerted_at", "alerted", ALERT_SMS, self.numbers, now)
            alerted += 1
        for row in db.urgent_to_escalate(store, now - 60 * self.escalate_minutes):
            self._tell(row, "escalated_at", "escalated", ESCALATE_SMS,
                       self.escalate_numbers or self.numbers, now)
            escalated += 1
        if alerted or escalated:
            log.warning("urgent cases: %d alerted, %d escalated", alerted, escalated)
        return {"alerted": alerted, "escalated": escalated}

    def _tell(self, row: dict[str, Any], column: str, kind: str, msgid: str,
              numbers: Sequence[str], now: float) -> None:
        body = self.complaints.t(self.lang, msgid).format(
            reference=show_reference(str(row["reference"])), minutes=self.escalate_minutes)
        messages: list[OutboxItem] = [
            self.complaints._sms(f"urgent-{kind}:{row['id']}:{n}", number, self.lang, body)
            for n, number in enumerate(numbers)]
        db.update(self.complaints.store, int(row["id"]), {column: now},
                  {"at": now, "actor": "system", "kind": kind}, messages)
        if self.mail is not None:  # best effort: the SMS above are the ones retried
            subject = self.complaints.t(self.lang, ALERT_SUBJECT).format(
                reference=show_reference(str(row["reference"])))
            for address in self.emails:
                try:
                    self.mail(address, subject, body)
                except (OSError, smtplib.SMTPException) as exc:
                    log.error("urgent case alert e-mail to one supervisor failed: %s", exc)


def acknowledge(complaints: ComplaintsBase, complaint_id: int,
                operator_id: int) -> dict[str, Any] | None:
    """An operator took the urgent case: the alert strip stops showing it, no escalation."""
    row = db.by_id(complaints.store, complaint_id)
    if row is None or not row.get("urgent") or row.get("acknowledged_at"):
        return row
    now = complaints.clock()
    return db.update(complaints.store, complaint_id,
                     {"acknowledged_at": now, "acknowledged_by": operator_id,
                      "last_action_at": now},
                     {"at": now, "actor": "operator", "operator_id": operator_id,
                      "kind": "acknowledged"})
