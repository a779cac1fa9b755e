"""What a job-offer record is made of: its reference, its fields, the scans it may hold.

A record's reference follows the complaints' scheme (8 digits, the last a Damm
check digit, shown as ``0123 4567``) but always starts with ``0``, which no
complaint reference does: staff, callers and the filing code tell the two
apart at a glance, and a typed record reference is never looked up as a case.
"""

from __future__ import annotations

import re
import secrets

from ussd_app.complaints.references import damm, parse_reference

RECORD_PURPOSE = "job record text v1"  # the key purpose of what a record's owner typed
SCAN_PURPOSE = "job record scan v1"  # the key purpose of a scan's bytes

CURRENCIES = ("QAR", "AED", "SAR", "KWD", "MYR", "USD", "NPR", "MAD", "other")
MONTHS = ("12", "24", "36", "other")
# The free text a caller types, and how much of each is kept.
TEXT_LIMITS = {"employer": 160, "agency": 160, "job": 80, "wage": 12, "start": 40,
               "family": 120}
# The flow's answers (``job_`` fields) and the record's columns they fill.
ANSWER_FIELDS = {"job_employer": "employer", "job_agency": "agency", "job_title": "job",
                 "job_wage": "wage", "job_start": "start", "job_family": "family"}
SCAN_KINDS = ("contract", "passport", "other")


def new_record_reference() -> str:
    body = "0" + f"{secrets.randbelow(1_000_000):06d}"
    return body + str(damm(body))


def is_record_reference(reference: str) -> bool:
    """A checked reference that names a record (leading 0), not a complaint."""
    return reference.startswith("0") and parse_reference(reference) == reference


_EIGHT = re.compile(r"(?<!\d)(\d{4})[ .-]?(\d{4})(?!\d)")


def quoted_record_reference(*texts: str) -> str | None:
    """The first record reference quoted in what a caller wrote ("my record 0123 4567")."""
    for text in texts:
        for found in _EIGHT.finditer(text or ""):
            reference = found[1] + found[2]
            if is_record_reference(reference):
                return reference
    return None
