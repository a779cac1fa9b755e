"""What a migrant was promised beside what their complaint reports, for the case page.

Each row is (what, promised, reported); either side may be empty. The wage
paid is what the migrant reports (an operator notes it on the case); the rest
comes from the complaint's own answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def promised_vs_reported(record: Mapping[str, Any],
                         case: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """``record`` and ``case`` opened (``JobRecords.reveal``, ``Complaints.reveal``)."""
    against, kind = str(case.get("against") or ""), case.get("against_kind")
    wage = str(record.get("wage") or "")
    return [
        ("country", str(record.get("country") or ""), str(case.get("country") or "")),
        ("employer", str(record.get("employer") or ""),
         str(case.get("employer") or (against if kind == "employer" else ""))),
        ("agency", str(record.get("agency_name") or record.get("agency") or ""),
         str(case.get("agency_name") or (against if kind in ("agency", "both") else ""))),
        ("wage", f"{wage} {record.get('currency') or ''}".strip() if wage else "",
         str(case.get("wage_paid") or "")),
        ("job", str(record.get("job") or ""), ""),
        ("start", " · ".join(str(v) for v in (record.get("start"), record.get("months") and
                                               f"{record['months']} m") if v), ""),
    ]
