"""Job-offer records: kept before departure, linked to a later complaint, erased whole.

Every channel files through ``JobRecords.file`` (the ``file_job_record``
action); the dashboard reads, adds scans and erases through the rest. What the
migrant typed is sealed with its own key purpose; the number is sealed with
the outbox's (so that a centre could text it) and kept as the phone's
pseudonym, which is how a later complaint from the same phone finds it.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from ussd_app.complaints.model import Agencies, Caller
from ussd_app.complaints.references import digits_of, mask_phone, show_reference
from ussd_app.conversation.core import SPOKEN
from ussd_app.job_records.model import (
    ANSWER_FIELDS,
    CURRENCIES,
    MONTHS,
    RECORD_PURPOSE,
    SCAN_KINDS,
    SCAN_PURPOSE,
    TEXT_LIMITS,
    is_record_reference,
    new_record_reference,
    quoted_record_reference,
)
from ussd_app.job_records.scans import MAX_SCAN_BYTES, sniff
from ussd_app.privacy.protect import BytesSealer, Sealer
from ussd_app.store import Store
from ussd_app.store import job_records as db
from ussd_app.store.privacy import checkpoint

log = logging.getLogger(__name__)

UNREADABLE = "(cannot be decrypted with the current secret key)"


class ScanRefused(ValueError):
    """An upload that is not a PDF, JPEG or PNG by its content, or too large: args[0]
    is ``not_a_scan``, ``too_large`` or ``empty``."""


class JobRecords:
    """One object per process, shared by every channel and the dashboard."""

    def __init__(self, store: Store, secret: bytes, resolve_agency: Agencies | None = None,
                 clock: Callable[[], float] = time.time):
        self.store, self.clock, self.resolve_agency = store, clock, resolve_agency
        self.text_sealer = Sealer(secret, RECORD_PURPOSE)
        self.phone_sealer = Sealer(secret)
        self.scan_sealer = BytesSealer(secret, SCAN_PURPOSE)
        # The complaints' PIN key: one hash scheme, one rotation (privacy/rekey.py).
        self._pin_key = hmac.new(secret, b"migrantline complaint pin v1",
                                 hashlib.sha256).digest()

    def pin_hash(self, reference: str, pin: str) -> str:
        return hmac.new(self._pin_key, f"{reference}:{pin}".encode(), hashlib.sha256).hexdigest()

    # ------------------------------------------------------------ filing

    def file(self, key: str, caller: Caller, lang: str,
             answers: Mapping[str, str]) -> dict[str, Any]:
        """Store a record (committed before this returns); the same key, the same one."""
        now = self.clock()
        row: dict[str, Any] = {
            "key": key, "channel": caller.channel, "lang": lang, "created_at": now,
            "updated_at": now, "phone_key": caller.phone_key,
            "phone_sealed": None if caller.withheld else self.phone_sealer.seal(caller.phone),
            **self._fields(answers)}
        pin = digits_of(answers.get("job_pin", ""))
        for _ in range(8):
            reference = row["reference"] = new_record_reference()
            row["pin_hash"] = self.pin_hash(reference, pin) if len(pin) == 4 else None
            try:
                stored, created = db.insert(self.store, row)
            except db.ReferenceTaken:
                continue
            if created:
                log.info("job record kept on %s", caller.channel)
            return stored
        raise RuntimeError("could not draw a free record reference")

    def _fields(self, answers: Mapping[str, str]) -> dict[str, Any]:
        """Columns from the flow's answers: choices checked, free text cut and sealed; a
        spoken answer (voice) is not text: its field is named in ``spoken``."""
        fields: dict[str, Any] = {}
        country = answers.get("job_country", "")
        if country:
            fields["country"] = country.upper()[:8] if country != "other" else "other"
        currency = answers.get("job_currency", "").upper()
        if currency:
            fields["currency"] = currency if currency in CURRENCIES else "other"
        months = answers.get("job_months", "")
        if months in MONTHS and months != "other":
            fields["months"] = int(months)
        spoken = []
        for answer, column in ANSWER_FIELDS.items():
            if answers.get(SPOKEN + answer):  # its text is only "(voice answer)"
                spoken.append(column)
                continue
            text = " ".join(str(answers.get(answer, "")).split())[:TEXT_LIMITS[column]]
            if text:
                fields[f"{column}_sealed"] = self.text_sealer.seal(text)
        fields["spoken"] = ",".join(spoken) or None
        agency = " ".join(answers.get("job_agency", "").split())
        if agency and self.resolve_agency:
            found = self.resolve_agency(agency)
            if found:
                fields["agency_licence"], fields["agency_name"] = found
        return fields

    # ------------------------------------------------------------ reading

    def get(self, record_id: int) -> dict[str, Any] | None:
        return db.by_id(self.store, record_id)

    def by_reference(self, typed: str) -> dict[str, Any] | None:
        reference = digits_of(typed)
        if not is_record_reference(reference):
            return None
        return db.by_reference(self.store, reference)

    def reveal(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The record with what the migrant typed decrypted, for a staff member's screen."""
        shown = dict(row)
        for column in db.SEALED:
            sealed = row.get(column)
            name = column.removesuffix("_sealed")
            sealer = self.phone_sealer if column == "phone_sealed" else self.text_sealer
            try:
                shown[name] = sealer.open(str(sealed)) if sealed else ""
            except Exception:
                shown[name] = UNREADABLE
        shown["phone_masked"] = mask_phone(shown.get("phone", ""))
        shown["reference_shown"] = show_reference(str(row["reference"]))
        shown["spoken_fields"] = [f for f in str(row.get("spoken") or "").split(",") if f]
        return shown

    def recent(self, limit: int = 50) -> list[dict[str, Any]]:
        """The latest records, with their scan counts; nothing personal is opened."""
        return db.recent(self.store, limit)

    def to_link(self, caller: Caller, *texts: str) -> int | None:
        """The record a new complaint is held against: the one whose reference the caller
        quoted, else this phone's latest (None for a withheld number with no quote)."""
        quoted = quoted_record_reference(*texts)
        if quoted:
            row = db.by_reference(self.store, quoted)
            if row is not None and not row.get("erased_at"):
                return int(row["id"])
        if caller.withheld:
            return None
        row = db.latest_for_phone(self.store, caller.phone_key)
        return int(row["id"]) if row is not None else None

    # ------------------------------------------------------------ scans

    def add_scan(self, record_id: int, kind: str, data: bytes,
                 operator_id: int | None) -> int | None:
        """Keep a scan, sealed; its id, or None when the record is unknown or erased.

        Raises ``ScanRefused`` for an empty file, one over ``MAX_SCAN_BYTES``, or one
        whose content is not a PDF, JPEG or PNG (whatever its name says)."""
        if not data:
            raise ScanRefused("empty")
        if len(data) > MAX_SCAN_BYTES:
            raise ScanRefused("too_large")
        mimetype = sniff(data)
        if mimetype is None:
            raise ScanRefused("not_a_scan")
        sealed = self.scan_sealer.seal(data, str(record_id).encode())
        return db.add_scan(self.store, record_id, kind if kind in SCAN_KINDS else "other",
                           mimetype, len(data), sealed, self.clock(), operator_id)

    def scans(self, record_id: int) -> list[dict[str, Any]]:
        return db.scans(self.store, record_id)

    def scan(self, record_id: int, scan_id: int) -> tuple[bytes, str] | None:
        """A scan's bytes, opened, and its type; None if it is not this record's."""
        row = db.scan_data(self.store, scan_id)
        if row is None or int(row["record_id"]) != record_id or row["data_sealed"] is None:
            return None
        data = self.scan_sealer.open(row["data_sealed"], str(record_id).encode())
        return data, str(row["mimetype"])

    # ------------------------------------------------------------ erasure

    def erase(self, record_id: int, reason: str) -> bool:
        """Erase one record: its scans, what its owner typed, its number and PIN."""
        erased = db.erase(self.store, [record_id], reason, self.clock())
        checkpoint(self.store)  # no old WAL frame keeps a scan
        return bool(erased)

    def erase_for_phone(self, caller: Caller, reason: str) -> int:
        if caller.withheld:
            return 0
        count = db.erase(self.store, db.ids_for_phone(self.store, caller.phone_key), reason,
                         self.clock())
        checkpoint(self.store)
        return count
