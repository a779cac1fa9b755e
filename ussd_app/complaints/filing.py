"""Filing a complaint: the flow's answers checked, sealed and stored with a receipt SMS."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ussd_app.agencies.agency import fold
from ussd_app.complaints import safe_window
from ussd_app.complaints.base import ComplaintsBase
from ussd_app.complaints.model import (
    AGAINST,
    CALL_NOW,
    CATEGORIES,
    CONTACTS,
    FIELD_LIMITS,
    FILED_BY,
    RECEIPT_SMS,
    WHERE_NOW,
    Caller,
    number_country,
)
from ussd_app.complaints.references import (
    digits_of,
    new_reference,
    parse_reference,
    show_reference,
)
from ussd_app.store import OutboxItem
from ussd_app.store import complaints as db

log = logging.getLogger(__name__)


class Filing(ComplaintsBase):
    def file(self, key: str, caller: Caller, lang: str, answers: Mapping[str, str],
             urgent: bool = False) -> dict[str, Any]:
        """Store a complaint (committed before this returns); the same key, the same one.

        With ``answers["reference"]`` naming a complaint this phone filed at once
        ("I am in danger now"), the details are added to it instead.
        """
        now = self.clock()
        fields, cut, pin = self._fields(answers)
        existing = self._own(answers.get("reference", ""), caller)
        if existing is not None:
            return self._add_details(existing, key, lang, fields, cut, pin, now,
                                     self._record_to_link(caller, answers))
        row: dict[str, Any] = {
            "key": key, "channel": caller.channel, "lang": lang, "created_at": now,
            "updated_at": now, "status": "new", "urgent": int(urgent),
            "phone_key": caller.phone_key,
            "phone_sealed": None if caller.withheld else self.phone_sealer.seal(caller.phone),
            "number_country": number_country(caller) or None,
            **({"contact": "unknown"} if urgent and "contact" not in fields else {}),
            **fields, "truncated": ",".join(cut),
        }
        row["time_zone"] = safe_window.zone_for(row.get("country"), row["number_country"])
        row["job_record_id"] = self._record_to_link(caller, answers)
        event = {"at": now, "actor": "caller", "kind": "urgent" if urgent else "filed",
                 "status": "new"}
        for _ in range(8):
            reference = row["reference"] = new_reference()
            row["pin_hash"] = self.pin_hash(reference, pin) if pin else None
            try:
                stored, created = db.insert(self.store, row, event,
                                            self._receipt(key, row, lang))
            except db.ReferenceTaken:
                continue
            if created:
                log.info("complaint filed on %s%s", caller.channel, " (urgent)" if urgent else "")
            return stored
        raise RuntimeError("could not draw a free reference")  # 10^7 of them: never

    def urgent_answer(self, caller: Caller, answers: Mapping[str, str]) -> dict[str, Any] | None:
        """Add the urgent path's answers (call now? where now?) to the case this phone
        filed at once; None when there is none to add them to (a withheld number).

        "Here" also fills the case's country (where the caller is) from the number, unless
        the caller's details name one. Answering again changes the case again; the same
        answer (a retried or replayed hop) adds no event.
        """
        row = self._own(answers.get("reference", ""), caller)
        if row is None:
            return None
        fields: dict[str, Any] = {}
        for name, allowed in (("call_now", CALL_NOW), ("where_now", WHERE_NOW)):
            if answers.get(name) in allowed:
                fields[name] = answers[name]
        if fields.get("where_now") == "here" and row.get("number_country") \
                and not row.get("country"):
            fields["country"] = row["number_country"]
        changed = {k: v for k, v in fields.items() if row.get(k) != v}
        if not changed:
            return row
        now = self.clock()
        return db.update(self.store, int(row["id"]), {**changed, "updated_at": now},
                         {"at": now, "actor": "caller", "kind": "urgent_answer"}) or row

    def _add_details(self, row: dict[str, Any], key: str, lang: str, fields: dict[str, Any],
                     cut: list[str], pin: str, now: float,
                     record_id: int | None = None) -> dict[str, Any]:
        """The rest of a report filed at once as urgent: same case, same reference."""
        if row.get("details_key") == key:
            return row  # this very hop added them already
        merged = {**fields, "updated_at": now, "lang": lang, "details_key": key,
                  "truncated": ",".join(sorted({*str(row.get("truncated") or "").split(","),
                                                *cut} - {""}))}
        if pin:
            merged["pin_hash"] = self.pin_hash(str(row["reference"]), pin)
        if record_id and not row.get("job_record_id"):
            merged["job_record_id"] = record_id
        merged["time_zone"] = safe_window.zone_for(merged.get("country") or row.get("country"),
                                                   row.get("number_country"))
        receipt = self._receipt(key, {**row, **merged}, lang)
        stored = db.update(self.store, int(row["id"]), merged,
                           {"at": now, "actor": "caller", "kind": "details"},
                           [receipt] if receipt else [])
        return stored or row

    def _record_to_link(self, caller: Caller, answers: Mapping[str, str]) -> int | None:
        """The job-offer record the complaint is held against: quoted, or the phone's."""
        if self.job_records is None:
            return None
        try:
            linked = self.job_records.to_link(caller, *(answers.get(name, "") for name in (
                "description", "against", "employer", "record_typed")))
        except Exception:  # a link is a help for staff: never a reason not to file
            log.exception("could not look for the job record of a complaint")
            return None
        return int(linked) if linked is not None else None

    def _own(self, reference: str, caller: Caller) -> dict[str, Any] | None:
        """The complaint behind ``reference`` if this very phone filed it."""
        parsed = parse_reference(reference) if reference else None
        if parsed is None:
            return None
        row = db.by_reference(self.store, parsed)
        if row is None or row.get("erased_at") or row.get("phone_key") != caller.phone_key:
            return None
        return row

    def _fields(self, answers: Mapping[str, str]) -> tuple[dict[str, Any], list[str], str]:
        """Columns from the flow's answers: choices checked, free text cut and sealed."""
        fields: dict[str, Any] = {}
        for name, allowed in (("filed_by", FILED_BY), ("category", CATEGORIES),
                              ("contact", CONTACTS), ("against_kind", AGAINST)):
            value = answers.get(name)
            if value:
                fields[name] = value if value in allowed else "other"
        if answers.get("against") and not answers.get("against_kind"):
            fields["against_kind"] = "agency"  # reported from an agency's check result
        window = safe_window.from_answers(answers.get("contact_days"),
                                          answers.get("contact_hours"))
        if fields.get("contact") == "times" and window is not None:
            fields["contact_window"] = str(window)
        if answers.get("share") in ("yes", "no"):
            fields["share_consent"] = answers["share"]
        country = answers.get("country", "")
        if country:
            fields["country"] = country.upper()[:8] if country != "other" else "other"
        cut = [n for n in answers.get("_cut", "").split(",") if n]
        for name, limit in FIELD_LIMITS.items():
            text = " ".join(str(answers.get(name, "")).split())
            if not text:
                continue
            if len(text) > limit:
                text, cut = text[:limit], [*cut, name]
            fields[f"{name}_sealed"] = self.text_sealer.seal(text)
        against = answers.get("against", "")
        if against and fields.get("against_kind") in ("agency", "both") and self.resolve_agency:
            found = self.resolve_agency(against)
            if found:
                fields["agency_licence"], fields["agency_name"] = found
        if against and fields.get("against_kind") in ("agency", "both") and \
                not fields.get("agency_licence") and fold(against):
            fields["agency_name_key"] = self.agency_name_key(fold(against))
        pin = digits_of(answers.get("pin", ""))
        return fields, sorted(set(cut)), pin if len(pin) == 4 else ""

    def _receipt(self, key: str, row: Mapping[str, Any], lang: str) -> OutboxItem | None:
        """The reference by SMS, where the caller said contact is safe, held until their
        safe time when they gave one.

        Not for a complaint filed by SMS: the reply that shows the reference is one.
        """
        if row.get("channel") == "sms":
            return None
        to = self._contact_number(row, automatic=True)  # "at times" needs its window
        if to is None:
            return None
        body = self.t(lang, RECEIPT_SMS).format(reference=show_reference(str(row["reference"])))
        return self._sms(f"complaint-receipt:{key}", to, lang, body, row.get("phone_key"),
                         case=row)
