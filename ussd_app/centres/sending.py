"""Sending to partner centres: a referral, an update, and the job that delivers them.

Every message is sealed to the partner and signed by us when it is queued, and goes
into the durable ``centre_outbox`` in the same transaction as what it records (the
referral row, the case's history event). ``deliver`` (the background job, once per
cluster) POSTs due envelopes: a 2xx is delivered; a 4xx is ``refused`` (kept and
shown; an admin retries it); anything else waits ``backoff * 2**(n-1)`` seconds, at
most ``max_backoff``, and is never given up.
"""

from __future__ import annotations

import http.client
from collections.abc import Mapping
from typing import Any

from ussd_app.centres import crypto
from ussd_app.centres.base import (
    BATCH,
    DEFAULT_SHARED,
    LEASE_SECONDS,
    MESSAGE_LIMIT,
    SHAREABLE,
    CentresBase,
    ReferralRefused,
    inbox_url,
)
from ussd_app.complaints.references import show_reference
from ussd_app.job_records.referral import referral_fields
from ussd_app.store import centres as db


class Sending(CentresBase):
    def refer(self, complaint_id: int, centre_id: int, wanted: list[str],
              operator_id: int | None, actor: str = "operator") -> str:
        """Queue the referral; its id. ``ReferralRefused``: no_consent, erased,
        unknown_centre, revoked_centre (each audited)."""
        row = self.complaints.get(complaint_id)
        try:
            if row.get("erased_at"):
                raise ReferralRefused("erased")
            if row.get("share_consent") != "yes":
                raise ReferralRefused("no_consent")
            centre = self._partner(centre_id)
        except ReferralRefused as exc:
            self.audit("centre_refer_refused", f"centre {centre_id}: {exc.reason}", actor,
                       operator_id, complaint_id)
            raise
        fields = [f for f in SHAREABLE if f in wanted] or list(DEFAULT_SHARED)
        shown = self.complaints.reveal(row)
        case: dict[str, Any] = {"reference": shown["reference_shown"], "lang": row["lang"],
                                "filed_at": row.get("created_at")}
        for name in fields:
            if name == "record":
                found = referral_fields(self.complaints, self.records, row)
                if found:
                    case["record"] = found
                continue
            value = shown.get(name) if name != "phone" else (
                shown.get("contact_phone") if row.get("contact") == "other"
                else shown.get("phone"))
            if value:
                case[name] = value
        now = self.clock()
        uid, msg_id = crypto.new_id(), crypto.new_id()
        payload = {"kind": "referral", "id": msg_id, "referral": uid, "at": now,
                   "centre": self.config.centre_name, "fields": fields, "case": case}
        envelope = crypto.seal_envelope(self.keys(), centre["box_key"], payload)
        referral = {"uid": uid, "direction": "out", "centre_id": centre["id"],
                    "complaint_id": complaint_id, "fields": ",".join(fields),
                    "created_at": now, "updated_at": now}
        event = {"at": now, "actor": actor, "operator_id": operator_id, "kind": "centre_referral",
                 "detail_sealed": self.complaints.text_sealer.seal(
                     f"{centre['name']} ({centre['country']}): {', '.join(fields)}")}
        db.queue_message(self.store, msg_id, int(centre["id"]), uid, "referral",
                         envelope.decode(), now, referral=referral,
                         event=(complaint_id, event))
        self.audit("centre_refer", f"to centre {centre['id']}; referral {uid}; shared "
                   f"{','.join(fields)}", actor, operator_id, complaint_id)
        return uid

    def send_update(self, complaint_id: int, operator_id: int | None, status: str | None = None,
                    outcome: Mapping[str, Any] | None = None, message: str = "",
                    actor: str = "operator") -> bool:
        """On a case referred here from another centre, tell that centre; False when the
        case did not come from one (nothing to do). ``ReferralRefused("revoked_centre")``
        when the centre was revoked since."""
        incoming = db.incoming_for(self.store, complaint_id)
        if incoming is None:
            return False
        if incoming["centre_revoked_at"] is not None:
            self.audit("centre_update_refused", f"centre {incoming['centre_id']}: revoked",
                       actor, operator_id, complaint_id)
            raise ReferralRefused("revoked_centre")
        row = self.complaints.get(complaint_id)
        now = self.clock()
        msg_id = crypto.new_id()
        payload: dict[str, Any] = {
            "kind": "update", "id": msg_id, "referral": incoming["uid"], "at": now,
            "reference": show_reference(str(row["reference"])),
            "status": status, "outcome": dict(outcome) if outcome else None,
            "message": message.strip()[:MESSAGE_LIMIT] or None}
        envelope = crypto.seal_envelope(self.keys(), str(incoming["box_key"]), payload)
        db.queue_message(self.store, msg_id, int(incoming["centre_id"]), str(incoming["uid"]),
                         "update", envelope.decode(), now)
        what = ",".join(k for k in ("status", "outcome", "message") if payload.get(k))
        self.audit("centre_update", f"to centre {incoming['centre_id']}; referral "
                   f"{incoming['uid']}; {what}", actor, operator_id, complaint_id)
        return True

    def deliver(self) -> dict[str, int]:
        """Deliver every due envelope (batches until none is due); what became of them."""
        done = {"sent": 0, "retry": 0, "refused": 0}
        started = self.clock()
        while True:
            rows = db.claim(self.store, self.clock(), LEASE_SECONDS, BATCH, since=started)
            if not rows:
                return done
            for row in rows:
                done[self._deliver(row)] += 1

    def _deliver(self, row: Mapping[str, Any]) -> str:
        attempts = int(row["attempts"])
        centre = db.centre(self.store, int(row["centre_id"]))
        now = self.clock()
        if centre is None or centre["revoked_at"] is not None:
            db.finish(self.store, int(row["id"]), attempts, "refused", now,
                      "the centre was revoked here")
            return "refused"
        try:
            status = self.post(inbox_url(str(centre["url"])), str(row["envelope"]).encode(),
                               self.config.partner_notify_timeout_seconds)
            error = None if 200 <= status < 300 else f"the centre answered {status}"
        except (OSError, http.client.HTTPException) as exc:
            status, error = 0, (str(exc)[:300] or type(exc).__name__)
        now = self.clock()
        if error is None:
            db.finish(self.store, int(row["id"]), attempts, "sent", now)
            self.audit("centre_delivered", f"to centre {centre['id']}; {row['kind']} "
                       f"{row['msg_id']}; attempt {attempts}")
            return "sent"
        if 400 <= status < 500 and status not in (408, 425, 429):
            db.finish(self.store, int(row["id"]), attempts, "refused", now, error)
            self.audit("centre_delivery_refused", f"to centre {centre['id']}; {row['kind']} "
                       f"{row['msg_id']}: {error}")
            return "refused"
        wait = min(self.config.referral_backoff_seconds * 2 ** min(attempts - 1, 30),
                   self.config.referral_max_backoff_seconds)
        db.finish(self.store, int(row["id"]), attempts, "queued", now, error, now + wait)
        if attempts == 1 or attempts % 10 == 0:  # not one row per retry of a long outage
            self.audit("centre_delivery_retry", f"to centre {centre['id']}; {row['kind']} "
                       f"{row['msg_id']}; attempt {attempts}: {error}")
        return "retry"
