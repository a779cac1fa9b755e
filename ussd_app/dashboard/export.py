"""CSV export of the queue for supervisors, safe to open in a spreadsheet.

A caller may type ``=HYPERLINK(...)`` as their complaint: a spreadsheet would
run it as a formula. Every cell that starts with ``=``, ``+``, ``-``, ``@``, a
tab or a carriage return gets a leading apostrophe (OWASP's advice), so it
shows as the text it is. Phone numbers stay masked; the free text is there,
since that is what a supervisor exports for (and the export is audited).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
COLUMNS = ("reference", "filed_at", "status", "urgent", "category", "country", "channel",
           "lang", "filed_by", "against_kind", "against", "employer", "agency_licence",
           "agency_name", "city", "country_other", "description", "contact", "contact_when",
           "phone_masked", "assigned_to", "last_action_at", "closed_at", "erased_at",
           "truncated")


def cell(value: Any) -> str:
    if value is None:
        return ""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_lines(rows: Iterable[Mapping[str, Any]],
              shape: Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> Iterator[str]:
    """The header, then one line per row as ``shape`` turns it into the export's columns."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(values: Iterable[Any]) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([cell(v) for v in values])
        return buffer.getvalue()

    yield "\ufeff" + line(COLUMNS)  # the BOM: spreadsheets then read UTF-8 (Arabic, Nepali)
    for row in rows:
        shaped = shape(row)
        yield line(shaped.get(c) for c in COLUMNS)
