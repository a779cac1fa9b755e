"""What a referral of a case may carry from a job-offer record and a lost-contact report.

The hook for cross-border referral (issue 17, points 1-3, built elsewhere): the
referral code asks ``referral_fields`` for the fields it may add to a case it
sends, and sends only those the operator picked and the migrant consented to
share. Nothing here sends or encrypts anything; it only opens what is sealed
and names it.

``RECORD_SHAREABLE`` lists every field this can give; ``RECORD_DEFAULT`` the
ones that help a destination centre recover a wage without exposing the
family (no family contact, no phone number).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ussd_app.complaints.service import Complaints
from ussd_app.job_records.service import JobRecords

# Fields from the job-offer record the case is held against ("promised_" + what).
RECORD_FIELDS = ("record_reference", "promised_country", "promised_employer",
                 "promised_agency", "promised_agency_licence", "promised_job",
                 "promised_wage", "promised_currency", "promised_start",
                 "promised_months", "promised_family_contact", "record_scans")
# Fields of a lost-contact report (category lost_contact).
LOST_CONTACT_FIELDS = ("relative_name", "relative_country", "relative_employer",
                       "last_contact")
RECORD_SHAREABLE = (*RECORD_FIELDS, *LOST_CONTACT_FIELDS)
RECORD_DEFAULT = ("record_reference", "promised_country", "promised_employer",
                  "promised_agency", "promised_agency_licence", "promised_job",
                  "promised_wage", "promised_currency", "promised_start", "promised_months",
                  "relative_name", "relative_country", "relative_employer", "last_contact")


def referral_fields(complaints: Complaints, records: JobRecords | None,
                    complaint: Mapping[str, Any],
                    wanted: Iterable[str] = RECORD_DEFAULT) -> dict[str, str]:
    """The record's and the lost-contact report's fields a referral of ``complaint`` (a
    stored row) may carry, opened, limited to ``wanted``; empty ones are left out. An
    erased case or record gives nothing."""
    keep = set(wanted) & set(RECORD_SHAREABLE)
    if complaint.get("erased_at"):
        return {}
    case = complaints.reveal(complaint)
    found: dict[str, str] = {}
    if case.get("category") == "lost_contact":
        found.update({"relative_name": case.get("relative_name") or "",
                      "relative_country": case.get("country") or "",
                      "relative_employer": case.get("against") or "",
                      "last_contact": case.get("last_contact") or ""})
    row = records.get(int(complaint["job_record_id"])) \
        if records is not None and complaint.get("job_record_id") else None
    if row is not None and not row.get("erased_at"):
        r = records.reveal(row) if records is not None else {}
        found.update({
            "record_reference": str(row["reference"]),
            "promised_country": r.get("country") or "",
            "promised_employer": r.get("employer") or "",
            "promised_agency": r.get("agency_name") or r.get("agency") or "",
            "promised_agency_licence": r.get("agency_licence") or "",
            "promised_job": r.get("job") or "", "promised_wage": r.get("wage") or "",
            "promised_currency": r.get("currency") or "",
            "promised_start": r.get("start") or "",
            "promised_months": str(r.get("months") or ""),
            "promised_family_contact": r.get("family") or "",
            "record_scans": ",".join(s["kind"] for s in records.scans(int(row["id"])))
            if records is not None else ""})
    return {k: str(v) for k, v in found.items() if k in keep and v}
