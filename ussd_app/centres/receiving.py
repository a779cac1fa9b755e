"""Receiving at ``POST /partners/inbox``: checked, stored once, audited (see ``service``).

The sender must be a known, unrevoked centre; the signature must verify; the box
must be sealed to us; a message id seen before is answered 200 "idempotent" and
stores nothing. Every refusal is a 4xx with its reason and an audit row. An update
is shown on the origin case, and the migrant is told by SMS in their language where
contact is safe for automatic updates, held to their safe window.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ussd_app.centres import crypto
from ussd_app.centres.base import MESSAGE_LIMIT, Answer, CentresBase
from ussd_app.complaints.model import CATEGORIES, STATUSES
from ussd_app.complaints.outcomes import COMPENSATION, OUTCOMES
from ussd_app.complaints.references import new_reference, show_reference
from ussd_app.engine.messages import N_
from ussd_app.store import centres as db

log = logging.getLogger(__name__)

# What the migrant reads (their language, through the existing outbox); neutral wording.
CENTRE_STATUS_SMS = N_("MigrantLine: news on case {reference}: {status}. Call us if you "
                       "need help.")
CENTRE_COMPENSATION_SMS = N_("MigrantLine: case {reference}: {amount} {currency} was "
                             "recovered for you. Call us to know more.")
STATUS_WORDS = {"in_progress": N_("In progress"), "resolved": N_("Resolved"),
                "closed": N_("Closed")}


ANONYMOUS_AUDIT_SECONDS = 60.0


class Receiving(CentresBase):
    def receive(self, raw: bytes, ip: str = "") -> Answer:
        """One envelope POSTed to /partners/inbox, checked, stored once, audited."""
        now = self.clock()

        def refuse(status: int, reason: str, centre: Mapping[str, Any] | None = None,
                   signed: bool = False) -> Answer:
            who = f"centre {centre['id']}" if centre else "unknown sender"
            if signed or self._unsigned_due(ip, f"{who}: {reason}", now):
                self.audit("centre_inbox_refused", f"{who}: {reason}", ip=ip)
            log.warning("partner inbox refused a message from %s: %s", who, reason)
            return Answer(status, {"ok": False, "error": reason})

        try:
            envelope = crypto.read_envelope(raw)
        except crypto.BadEnvelope as exc:
            return refuse(400, exc.reason)
        centre = db.centre_by_sign_key(self.store, envelope["from"])
        if centre is None:
            return refuse(403, "unknown_sender")
        if centre["revoked_at"] is not None:
            return refuse(403, "revoked_sender", centre)
        try:
            payload = crypto.open_envelope(self.keys(), envelope)
        except crypto.BadEnvelope as exc:
            return refuse(400, exc.reason, centre)
        msg_id, uid, kind = payload.get("id"), payload.get("referral"), payload.get("kind")
        if not (isinstance(msg_id, str) and isinstance(uid, str) and 8 <= len(msg_id) <= 64
                and 8 <= len(uid) <= 64 and kind in ("referral", "update")):
            return refuse(400, "malformed_payload", centre, signed=True)
        if db.seen(self.store, msg_id):
            self.audit("centre_inbox_replay", f"centre {centre['id']}: message {msg_id}", ip=ip)
            return Answer(200, {"ok": True, "idempotent": True})
        try:
            if kind == "referral":
                complaint_id = self._store_referral(centre, payload, now)
            else:
                found = self._store_update(centre, payload, now)
                if found is None:
                    return refuse(400, "unknown_referral", centre, signed=True)
                complaint_id = found
        except db.Replayed:
            self.audit("centre_inbox_replay", f"centre {centre['id']}: message {msg_id}", ip=ip)
            return Answer(200, {"ok": True, "idempotent": True})
        except (KeyError, TypeError, ValueError):
            return refuse(400, "malformed_payload", centre, signed=True)
        self.audit(f"centre_{kind}_received", f"from centre {centre['id']}; referral {uid}; "
                   f"message {msg_id}", complaint_id=complaint_id, ip=ip)
        return Answer(200, {"ok": True})

    def _unsigned_due(self, ip: str, reason: str, now: float) -> bool:
        """Whether a refusal of a message no known centre signed (unreadable, unknown or
        revoked sender, a signature that does not verify, sealed to another centre) is
        audited: once a minute per address, claimed sender and reason (every one is
        logged), so that whoever can reach the inbox cannot fill the audit log. What a
        known centre signed and we refuse is audited each time."""
        with self._lock:
            if len(self._refused) > 10_000:
                self._refused.clear()
            due = now - self._refused.get((ip, reason), float("-inf")) >= ANONYMOUS_AUDIT_SECONDS
            if due:
                self._refused[(ip, reason)] = now
            return due

    def _store_referral(self, centre: Mapping[str, Any], payload: Mapping[str, Any],
                        now: float) -> int:
        case = payload["case"]
        if not isinstance(case, dict):
            raise ValueError("case")
        text = self.complaints.text_sealer

        def sealed(name: str, limit: int) -> str | None:
            value = case.get(name)
            return text.seal(" ".join(str(value).split())[:limit]) if value else None

        category = str(case.get("category") or "other")
        lang = str(case.get("lang") or "en")[:8]
        complaint = {
            "key": f"centre:{payload['referral']}", "channel": "partner", "lang": lang,
            "created_at": now, "updated_at": now, "status": "new", "urgent": 0,
            "reference": new_reference(), "contact": "never",
            "category": category if category in CATEGORIES else "other",
            "country": str(case.get("country") or "")[:8].upper() or None,
            "city_sealed": sealed("city", 80), "employer_sealed": sealed("employer", 160),
            "against_sealed": sealed("against", 160),
            "description_sealed": sealed("description", 2000),
            "contact_phone_sealed": sealed("phone", 32)}
        origin = str(case.get("reference") or "")[:16]
        detail = f"{centre['name']} ({centre['country']}): {origin}"
        record = case.get("record")
        if isinstance(record, dict):  # the promised job / the lost relative, as sent
            said = "; ".join(f"{k}: {' '.join(str(v).split())[:200]}"
                             for k, v in list(record.items())[:20] if isinstance(k, str) and v)
            detail += f"\n{said[:2000]}" if said else ""
        event = {"at": now, "actor": "centre", "kind": "centre_referred_in", "status": "new",
                 "detail_sealed": text.seal(detail)}
        referral = {"uid": payload["referral"], "direction": "in", "centre_id": centre["id"],
                    "fields": ",".join(str(f) for f in payload.get("fields") or [])[:200],
                    "created_at": now, "updated_at": now, "remote_reference": origin,
                    "remote_at": float(payload.get("at") or 0)}
        return db.receive_referral(self.store, str(payload["id"]), int(centre["id"]),
                                   str(payload["referral"]), complaint, event, referral, now)

    def _store_update(self, centre: Mapping[str, Any], payload: Mapping[str, Any],
                      now: float) -> int | None:
        referral = db.referral(self.store, str(payload["referral"]), "out")
        if referral is None or int(referral["centre_id"]) != int(centre["id"]):
            return None
        row = self.complaints.get(int(referral["complaint_id"]))
        status = payload.get("status")
        status = status if status in STATUSES else None
        outcome = payload.get("outcome") if isinstance(payload.get("outcome"), dict) else None
        if outcome is not None and outcome.get("outcome") not in OUTCOMES:
            outcome = None
        message = str(payload.get("message") or "")[:MESSAGE_LIMIT]
        remote: dict[str, Any] = {"remote_at": float(payload.get("at") or 0)}
        if payload.get("reference"):
            remote["remote_reference"] = str(payload["reference"])[:16]
        if status:
            remote["remote_status"] = status
        if outcome:
            remote.update(remote_outcome=outcome["outcome"],
                          remote_amount=str(outcome.get("amount") or "")[:24] or None,
                          remote_currency=str(outcome.get("currency") or "")[:3] or None)
        if message:
            remote["remote_message_sealed"] = self.complaints.text_sealer.seal(message)
        parts = [f"{centre['name']}:"]
        if status:
            parts.append(f"status {status}")
        if outcome:
            parts.append(" ".join(filter(None, ("outcome", str(outcome["outcome"]),
                                                str(outcome.get("amount") or ""),
                                                str(outcome.get("currency") or "")))))
        if message:
            parts.append(f"“{message}”")
        event = {"at": now, "actor": "centre", "kind": "centre_update", "status": status,
                 "detail_sealed": self.complaints.text_sealer.seal(" ".join(parts))}
        sms = self._migrant_sms(row, status, outcome, str(payload["id"]))
        return db.receive_update(self.store, str(payload["id"]), int(centre["id"]),
                                 str(payload["referral"]), remote, event,
                                 {"updated_at": now}, [sms] if sms else [], now)

    def _migrant_sms(self, row: Mapping[str, Any], status: str | None,
                     outcome: Mapping[str, Any] | None, msg_id: str) -> Any:
        """The migrant's SMS for an update, in their language, only where contact is safe
        for automatic updates, held to their safe window; None otherwise."""
        to = self.complaints._contact_number(row, automatic=True)
        if to is None:
            return None
        lang = str(row["lang"])
        reference = show_reference(str(row["reference"]))
        if outcome and outcome.get("outcome") == COMPENSATION and outcome.get("amount"):
            body = self.t(lang, CENTRE_COMPENSATION_SMS).format(
                reference=reference, amount=outcome["amount"],
                currency=outcome.get("currency") or "")
        elif status in STATUS_WORDS:
            body = self.t(lang, CENTRE_STATUS_SMS).format(
                reference=reference, status=self.t(lang, STATUS_WORDS[status]))
        else:
            return None
        return self.complaints._sms(f"complaint-status:{row['id']}:centre:{msg_id}", to, lang,
                                    body, row.get("phone_key"), case=row)
