"""Erasure: a caller's own request, one case by its reference, and the retention period."""

from __future__ import annotations

from collections.abc import Callable

from ussd_app.complaints.base import ComplaintsBase
from ussd_app.complaints.model import Caller
from ussd_app.store import complaints as db
from ussd_app.store.privacy import checkpoint, erase_phones


class Erasure(ComplaintsBase):
    # Run after each erasure that erased something: deletes what lives outside the
    # database (a recording's audio in the shared bucket), set by ``build_services``.
    after_erase: Callable[[], object] | None = None

    def _erased(self, count: int) -> int:
        if count and self.after_erase is not None:
            self.after_erase()
        return count

    def erase_for_phone(self, caller: Caller, reason: str = "asked by the caller") -> int:
        """The caller's own request: erase the personal data of what this phone filed,
        and what it left elsewhere (sessions, conversations, calls, SMS)."""
        if caller.withheld:
            return 0  # no phone to speak for: a case is erased by its reference and PIN
        count = db.erase(self.store, db.ids_for_phone(self.store, caller.phone_key), reason,
                         self.clock())
        erase_phones(self.store, [caller.phone_key], self.clock())
        if self.job_records is not None:  # the job-offer records it kept, scans and all
            count += self.job_records.erase_for_phone(caller, reason)
        checkpoint(self.store)
        return self._erased(count)

    def erase(self, reference: str) -> bool:
        """Erase one case (or job-offer record); the caller was found entitled by
        ``lookup`` (phone or PIN)."""
        if reference.startswith("0") and self.job_records is not None:
            record = self.job_records.by_reference(reference)
            return bool(record is not None and self.job_records.erase(
                int(record["id"]), "asked by the caller"))
        row = db.by_reference(self.store, reference)
        if row is None or row.get("erased_at"):
            return False
        erased = bool(db.erase(self.store, [int(row["id"])], "asked by the caller",
                               self.clock()))
        checkpoint(self.store)  # no old WAL frame keeps what was erased
        return bool(self._erased(int(erased)))

    def purge(self, retention_days: float) -> int:
        """Erase personal data of complaints closed longer ago than the retention period."""
        now = self.clock()
        ids = db.closed_before(self.store, now - retention_days * 86400)
        db.purge_pin_attempts(self.store, now - 7 * 86400)
        count = db.erase(self.store, ids, "retention period over", now)
        checkpoint(self.store)
        return self._erased(count)
