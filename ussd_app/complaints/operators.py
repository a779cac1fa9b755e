"""What operators do with a complaint on the dashboard: read, change, note, message."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ussd_app.complaints.base import ComplaintsBase
from ussd_app.complaints.model import (
    MAX_REPLY_PARTS,
    MESSAGE_TEMPLATES,
    STATUS_SMS,
    STATUSES,
    ContactNotSafe,
    NotFound,
    ReplyTooLong,
)
from ussd_app.complaints.references import mask_phone, show_reference
from ussd_app.complaints.safe_window import Window
from ussd_app.engine.encoding import sms_segments
from ussd_app.store import complaints as db


@dataclass(frozen=True)
class Reply:
    """A free-text reply as it would be sent: ``send_at`` is now or the window's opening."""

    body: str
    encoding: str
    segments: int
    send_at: float
    window: Window | None
    time_zone: str


class OperatorActions(ComplaintsBase):
    def get(self, complaint_id: int) -> dict[str, Any]:
        row = db.by_id(self.store, complaint_id)
        if row is None:
            raise NotFound(complaint_id)
        return row

    def reveal(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The complaint with its personal data decrypted, for an operator's screen."""
        shown = dict(row)
        for column in db.ALL_SEALED:
            sealed = row.get(column)
            name = column.removesuffix("_sealed")
            sealer = self.phone_sealer if column == "phone_sealed" else self.text_sealer
            try:
                shown[name] = sealer.open(sealed) if sealed else ""
            except Exception:  # a key change: say so rather than fail the page
                shown[name] = "(cannot be decrypted with the current secret key)"
        shown["phone_masked"] = mask_phone(shown.get("phone", ""))
        shown["reference_shown"] = show_reference(str(row["reference"]))
        return shown

    def history(self, complaint_id: int) -> list[dict[str, Any]]:
        shown = []
        for event in db.events(self.store, complaint_id):
            sealed = event.pop("detail_sealed", None)
            try:
                event["detail"] = self.text_sealer.open(sealed) if sealed else ""
            except Exception:
                event["detail"] = "(cannot be decrypted with the current secret key)"
            shown.append(event)
        return shown

    def set_status(self, complaint_id: int, status: str, operator_id: int | None,
                   actor: str, detail: str = "") -> dict[str, Any]:
        """Change the status; the migrant gets an SMS in their language if contact is safe."""
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        row = self.get(complaint_id)
        now = self.clock()
        fields: dict[str, Any] = {"status": status, "updated_at": now, "last_action_at": now,
                                  "closed_at": now if status == "closed" else None}
        messages = []
        template = STATUS_SMS.get(status)
        to = self._contact_number(row, automatic=True)
        if template and to and status != row["status"]:
            lang = row["lang"]
            body = self.t(lang, template).format(reference=show_reference(row["reference"]))
            messages.append(self._sms(f"complaint-status:{complaint_id}:{status}:{now}", to,
                                      lang, body, row.get("phone_key"), case=row))
        event = {"at": now, "actor": actor, "operator_id": operator_id, "kind": "status",
                 "status": status, "detail_sealed": self._seal(detail)}
        stored = db.update(self.store, complaint_id, fields, event, messages)
        return stored or row

    def act(self, complaint_id: int, kind: str, operator_id: int | None, actor: str,
            detail: str = "", fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Record an operator's action (note, assignment, referral) in the history."""
        now = self.clock()
        self.get(complaint_id)
        stored = db.update(self.store, complaint_id,
                           {**(fields or {}), "updated_at": now, "last_action_at": now},
                           {"at": now, "actor": actor, "operator_id": operator_id,
                            "kind": kind, "detail_sealed": self._seal(detail)})
        assert stored is not None
        return stored

    def message(self, complaint_id: int, template: str, operator_id: int | None,
                actor: str) -> dict[str, Any]:
        """Queue a templated SMS in the migrant's language; ``ContactNotSafe`` if it must not."""
        row = self.get(complaint_id)
        if template not in MESSAGE_TEMPLATES:
            raise ValueError(f"unknown template {template!r}")
        to = self._contact_number(row)
        if to is None:
            raise ContactNotSafe(row.get("contact") or "unknown")
        now = self.clock()
        lang = row["lang"]
        body = self.t(lang, MESSAGE_TEMPLATES[template]).format(
            reference=show_reference(row["reference"]))
        stored = db.update(
            self.store, complaint_id, {"updated_at": now, "last_action_at": now},
            {"at": now, "actor": actor, "operator_id": operator_id, "kind": "message",
             "status": template, "detail_sealed": self._seal(body)},
            [self._sms(f"complaint-message:{complaint_id}:{template}:{now}", to, lang, body,
                       row.get("phone_key"), case=row)])
        assert stored is not None
        return stored

    def reply_check(self, row: Mapping[str, Any], text: str) -> Reply:
        """What a free-text reply would be: its encoding, parts and when it would go.

        ``ContactNotSafe`` when the case must get no SMS, ``ReplyTooLong`` over
        ``MAX_REPLY_PARTS`` parts, ``ValueError`` when there is no text.
        """
        body = text.strip()
        if not body:
            raise ValueError("empty reply")
        if self._contact_number(row) is None:
            raise ContactNotSafe(row.get("contact") or "unknown")
        encoding, segments = sms_segments(body)
        if segments > MAX_REPLY_PARTS:
            raise ReplyTooLong(segments)
        window, zone = self.window(row)
        return Reply(body, encoding.value, segments, self.send_time(row), window, zone)

    def reply(self, complaint_id: int, text: str, operator_id: int | None,
              actor: str) -> dict[str, Any]:
        """Queue an operator's own words to the migrant, held until their safe time;
        raises as ``reply_check`` does."""
        row = self.get(complaint_id)
        checked = self.reply_check(row, text)
        to = self._contact_number(row)
        assert to is not None
        now = self.clock()
        stored = db.update(
            self.store, complaint_id, {"updated_at": now, "last_action_at": now},
            {"at": now, "actor": actor, "operator_id": operator_id, "kind": "message",
             "status": "reply", "detail_sealed": self._seal(checked.body)},
            [self._sms(f"complaint-message:{complaint_id}:reply:{now}", to, str(row["lang"]),
                       checked.body, row.get("phone_key"), case=row)])
        assert stored is not None
        return stored
