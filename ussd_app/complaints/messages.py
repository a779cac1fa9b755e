"""The case timeline: what a migrant texts about an open case, and what was sent back.

An SMS that is no keyword, from a phone with an open case, goes to the case
(``open_case``, then ``attach``): to the most recent open one when the phone
has several, and the case says how many others there were. The migrant gets
"your message was added to case ..." in the case's language, only where the
case says contact is safe, as automatic status SMS: never for "never" or "not
asked"; for "only at some times", held until the caller's window opens, and not
at all for an old case whose times are free text). The text is sealed like the rest of
what the migrant said; ``timeline`` opens it for an operator's screen, in
order with every SMS the case caused and its voice messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ussd_app.complaints.base import ComplaintsBase
from ussd_app.complaints.model import ATTACHED_SMS, OPEN_STATUSES, Caller
from ussd_app.complaints.references import show_reference
from ussd_app.privacy.protect import open_text
from ussd_app.store import OutboxItem
from ussd_app.store import case_messages as messages_db
from ussd_app.store import complaints as db
from ussd_app.store import queue as queue_db

UNREADABLE = "(cannot be decrypted with the current secret key)"


@dataclass(frozen=True)
class Attached:
    """A message to attach (``case_messages`` row) and the acknowledgement, if safe."""

    row: dict[str, Any]
    reply: OutboxItem | None
    reference: str


class CaseMessages(ComplaintsBase):
    def open_case(self, caller: Caller) -> tuple[dict[str, Any], int] | None:
        """(the phone's most recent open case, how many other open cases it has), or None.

        A withheld number has no case to find: its pseudonym is one message's own.
        """
        if caller.withheld:
            return None
        found = db.open_for_phone(self.store, caller.phone_key, OPEN_STATUSES)
        return (found[0], len(found) - 1) if found else None

    def attach(self, case: Mapping[str, Any], others: int, caller: Caller, provider: str,
               message_id: str, text: str, truncated: bool, at: float) -> Attached:
        """The message as ``case_messages`` keeps it, and the reply the migrant may get."""
        row = {"key": f"sms:{provider}:{message_id}", "complaint_id": int(case["id"]),
               "phone_key": caller.phone_key, "at": at, "channel": "sms",
               "provider": provider, "body_sealed": self._seal(text),
               "truncated": int(truncated), "other_open": others}
        reference = show_reference(str(case["reference"]))
        to = self._contact_number(case, automatic=True)
        reply = None
        if to is not None:
            lang = str(case["lang"])
            body = self.t(lang, ATTACHED_SMS).format(reference=reference)
            reply = self._sms(f"complaint-reply:{case['id']}:{provider}:{message_id}", to, lang,
                              body, case.get("phone_key"), kind="reply", case=case)
        return Attached(row, reply, reference)

    def timeline(self, row: Mapping[str, Any],
                 recordings: Iterable[Mapping[str, Any]] = ()) -> list[dict[str, Any]]:
        """Every message in (SMS, voice) and out (SMS) of this case, oldest first.

        Each entry: ``at``, ``direction`` (in, out, voice), ``text`` (opened),
        and the row's own columns (status, parts, truncated, other_open...).
        """
        entries: list[dict[str, Any]] = []
        for message in messages_db.for_complaint(self.store, int(row["id"])):
            sealed = message.pop("body_sealed", None)
            entries.append({**message, "direction": "in", "order": 0,
                            "text": self._open(self.text_sealer.open, sealed)})
        for sent in queue_db.outbox_for(self.store, *self.outbox_keys(row)):
            entries.append({**sent, "at": sent["created_at"], "direction": "out", "order": 1,
                            "text": self._open(lambda s: open_text(self.phone_sealer, s),
                                               sent.pop("body", None))})
        for recording in recordings:
            entries.append({**recording, "at": recording["created_at"], "direction": "voice",
                            "order": 0, "text": ""})
        return sorted(entries, key=lambda e: (float(e["at"]), e["order"], int(e["id"])))

    @staticmethod
    def _open(opener: Any, sealed: str | None) -> str:
        if not sealed:
            return ""
        try:
            return str(opener(sealed))
        except Exception:  # a key change: say so rather than fail the page
            return UNREADABLE
