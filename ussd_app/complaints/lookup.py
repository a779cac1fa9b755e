"""Following a case by its reference: in full to the filing phone, else only with its PIN.

Wrong PINs are counted per reference and per phone, so that guessing is
locked out long before a PIN could be found; a wrong PIN and an unknown
reference get the same answer. The one exception tells nothing about any case: a
number that could be an issued reference copied down backwards (``reads_backwards``)
is never issued itself, so it is "not found" at once. References issued before that
rule (about a quarter of them) still answer as before when they exist.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ussd_app.complaints.base import ComplaintsBase
from ussd_app.complaints.model import (
    PHONE_TRIES,
    PIN_LOCK_SECONDS,
    PIN_TRIES,
    RECORD_ERASED,
    RECORD_LINE,
    RECORD_LINE_KEPT,
    STATUS_ERASED,
    STATUS_LABELS,
    STATUS_LINE_CASE,
    STATUS_LINE_FILED,
    STATUS_LINE_STATUS,
    STATUS_LINE_UPDATED,
    Caller,
    Lookup,
)
from ussd_app.complaints.references import (
    digits_of,
    parse_reference,
    reads_backwards,
    show_reference,
)
from ussd_app.store import complaints as db


class Following(ComplaintsBase):
    def lookup(self, typed: str, caller: Caller, pin: str | None = None,
               key: str = "") -> Lookup:
        """Status for a reference: in full to the filing phone, else only with its PIN."""
        reference = parse_reference(typed)
        if reference is None:
            return Lookup("bad_reference")
        row = self._by_reference(reference)
        if row is None and reads_backwards(reference):  # never issued: a number misread
            return Lookup("bad_reference")
        if row is not None and not row.get("erased_at") and not caller.withheld and \
                row.get("phone_key") == caller.phone_key:
            return Lookup("status", row, reference)
        if pin is None:
            return Lookup("need_pin", reference=reference)
        now = self.clock()
        by_ref, by_phone, _ = db.pin_failures(self.store, reference, caller.phone_key,
                                              now - PIN_LOCK_SECONDS, exclude_key=key)
        if by_ref >= PIN_TRIES or by_phone >= PHONE_TRIES:
            return Lookup("locked", reference=reference)
        digits = digits_of(pin)
        ok = bool(row and row.get("pin_hash") and not row.get("erased_at")
                  and hmac.compare_digest(str(row["pin_hash"]),
                                          self.pin_hash(reference, digits)))
        db.record_pin_attempt(self.store, key or f"pin:{secrets.token_hex(8)}", reference,
                              caller.phone_key, ok, now)
        if ok:
            return Lookup("status", row, reference)
        if by_ref + 1 >= PIN_TRIES or by_phone + 1 >= PHONE_TRIES:
            return Lookup("locked", reference=reference)
        return Lookup("denied", reference=reference)

    def _by_reference(self, reference: str) -> dict[str, Any] | None:
        """The complaint, or the job-offer record (its reference starts with 0): followed
        and erased by the same questions, phone or PIN, with the same lock-outs."""
        if reference.startswith("0") and self.job_records is not None:
            found: dict[str, Any] | None = self.job_records.by_reference(reference)
            return found
        return db.by_reference(self.store, reference)

    def status_text(self, row: Mapping[str, Any], lang: str) -> str:
        """What a caller reads about their case: reference, status, dates. No details."""
        t = self.t
        if "status" not in row:  # a job-offer record: what is kept, and since when
            lines = [t(lang, RECORD_LINE).format(reference=show_reference(row["reference"])),
                     t(lang, RECORD_LINE_KEPT).format(date=_day(row["created_at"]))]
            if row.get("erased_at"):
                lines.append(t(lang, RECORD_ERASED))
            return "\n".join(lines)
        lines = [t(lang, STATUS_LINE_CASE).format(reference=show_reference(row["reference"])),
                 t(lang, STATUS_LINE_STATUS).format(
                     status=t(lang, STATUS_LABELS.get(row["status"], STATUS_LABELS["new"]))),
                 t(lang, STATUS_LINE_FILED).format(date=_day(row["created_at"]))]
        updated = row.get("last_action_at")
        if updated:
            lines.append(t(lang, STATUS_LINE_UPDATED).format(date=_day(updated)))
        if row.get("erased_at"):
            lines.append(t(lang, STATUS_ERASED))
        return "\n".join(lines)


def _day(at: Any) -> str:
    """A date in digits only: no month names to translate, no bidi marks (see protocols)."""
    return datetime.fromtimestamp(float(at), UTC).strftime("%Y-%m-%d")
