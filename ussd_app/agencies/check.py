"""The agency registry file: ``content/agencies.csv``, checked line by line.

``content/agencies.csv`` is the registry field staff publish: one agency a
line, with its licence number, names, country, status, licence expiry and
where the data comes from. Two sources (two official lists) may each have a
line for one licence; callers are served the newest and read both
(``agency.by_licence``). ``parse_agencies`` checks it (bytes in, rows and
``Problem``s out, no I/O) so ``migrantline content check`` and the service
refuse the same files with the same ``file:line`` messages. A file with any
error is never served: the service keeps the registry it had.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from ussd_app.agencies.agency import Agency, fold, licence_key, licence_query, territories
from ussd_app.engine.loader import ERROR, WARNING, Problem, decode_text

if TYPE_CHECKING:
    from _csv import _reader as CsvReader

AGENCY_FILE = "agencies.csv"
COLUMNS = ("licence", "name", "other_names", "country", "status", "expires", "source",
           "data_date")
STATUSES = ("licensed", "suspended", "revoked")
MAX_FILE_BYTES = 50_000_000
MAX_NAME = 200
MAX_SOURCE = 120

HINT_HEADER = "the first line names the columns: " + ",".join(COLUMNS)


def parse_agencies(data: bytes, name: str = AGENCY_FILE) -> tuple[list[Agency], list[Problem]]:
    """Check a registry file; the rows are only to be used when no problem is an error."""
    problems: list[Problem] = []
    text = _decode(name, data, problems)
    if text is None:
        return [], problems
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    columns = _header(name, reader, problems)
    if columns is None:
        return [], problems
    agencies = _rows(name, reader, columns, problems)
    if not agencies and not any(p.severity == ERROR for p in problems):
        problems.append(Problem(name, 1, "no agency in the file",
                                "add one line per agency, or delete the file"))
    return agencies, problems


def _header(name: str, reader: CsvReader, problems: list[Problem]) -> list[str] | None:
    """The columns the first line names, or None (with the problems) when it is unusable."""
    try:
        header = next(reader, None)
    except csv.Error as exc:
        problems.append(Problem(name, 1, f"CSV syntax: {exc}", HINT_HEADER))
        return None
    if not header or not any(h.strip() for h in header):
        problems.append(Problem(name, 1, "no header line", HINT_HEADER))
        return None
    columns = [h.strip().lower() for h in header]
    missing = [c for c in COLUMNS if c not in columns]
    for column in missing:
        problems.append(Problem(name, 1, f"missing column '{column}'", HINT_HEADER))
    for column in columns:
        if column not in COLUMNS:
            problems.append(Problem(name, 1, f"unknown column '{column}' is ignored",
                                    "remove it or fix its spelling", WARNING))
    if len(set(columns)) != len(columns):
        problems.append(Problem(name, 1, "a column is named twice", HINT_HEADER))
    if any(p.severity == ERROR for p in problems):
        return None
    return columns


def _rows(name: str, reader: CsvReader, columns: list[str],
          problems: list[Problem]) -> list[Agency]:
    """The agencies of the lines after the header; each bad line becomes a problem."""
    index = {c: columns.index(c) for c in COLUMNS}
    agencies: list[Agency] = []
    seen: dict[str, int] = {}
    line = 2
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                problems.append(Problem(name, line, "a quote (\") opened here is never closed",
                                        "close the quote, or remove it"))
            else:
                problems.append(Problem(name, line, f"CSV syntax: {exc}",
                                        "a field with a comma or a quote needs \"double "
                                        "quotes\"; a quote inside one is written \"\""))
            break
        start, line = line, reader.line_num + 1
        if not fields or not any(f.strip() for f in fields):
            continue
        if len(fields) != len(columns):
            problems.append(Problem(name, start, f"{len(fields)} fields, the header has "
                                    f"{len(columns)}",
                                    "a field with a comma needs \"double quotes\""))
            continue
        row = {c: fields[i].strip() for c, i in index.items()}
        agency = _agency(name, start, row, problems)
        if agency is None:
            continue
        # compared as callers type them: NP-DEMO-0002 and np demo 2 are one number; two
        # sources may each list it (both are shown), one source only once
        key = f"{licence_query(agency.licence)}\n{fold(agency.source)}"
        if key in seen:
            problems.append(Problem(name, start, f"licence '{agency.licence}' is also on line "
                                    f"{seen[key]} from the same source (numbers are compared "
                                    "without case, punctuation or leading zeros)",
                                    "each agency once a source; merge the two lines"))
            continue
        seen[key] = start
        agencies.append(agency)
    return agencies


def _decode(name: str, data: bytes, problems: list[Problem]) -> str | None:
    if not data.strip():
        problems.append(Problem(name, 1, "file is empty", HINT_HEADER))
        return None
    return decode_text(name, data, problems, MAX_FILE_BYTES, "is this the registry?")


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_COUNTRY = re.compile(r"[A-Z]{2}")


def _date(name: str, line: int, column: str, value: str,
          problems: list[Problem]) -> date | None:
    if _ISO_DATE.fullmatch(value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    problems.append(Problem(name, line, f"{column} '{value}' is not a date",
                            "write dates as YYYY-MM-DD, e.g. 2027-03-31"))
    return None


def _agency(name: str, line: int, row: dict[str, str], problems: list[Problem]) -> Agency | None:
    before = len(problems)
    if not licence_key(row["licence"]):
        problems.append(Problem(name, line, "licence is empty", "every agency needs its number"))
    if not row["name"]:
        problems.append(Problem(name, line, "name is empty", "write the agency's name"))
    for column, limit in (("name", MAX_NAME), ("source", MAX_SOURCE)):
        if len(row[column]) > limit:
            problems.append(Problem(name, line, f"{column} is longer than {limit} characters",
                                    "shorten it"))
    status = row["status"].lower()
    if status not in STATUSES:
        problems.append(Problem(name, line, f"status '{row['status']}' is not one of "
                                + ", ".join(STATUSES), "use one of the listed words"))
    country = row["country"].upper()
    if not _COUNTRY.fullmatch(country) or country not in territories("en"):
        problems.append(Problem(name, line, f"country '{row['country']}' is not a country code",
                                "use the two-letter ISO code, e.g. NP, MA"))
    expires = None
    if row["expires"]:
        expires = _date(name, line, "expires", row["expires"], problems)
    elif status == "licensed":
        problems.append(Problem(name, line, "expires is empty for a licensed agency",
                                "write the licence's expiry date, YYYY-MM-DD"))
    if not row["source"]:
        problems.append(Problem(name, line, "source is empty",
                                "say where the data comes from"))
    data_date = _date(name, line, "data_date", row["data_date"], problems)
    if len(problems) > before or data_date is None:
        return None
    other = tuple(n.strip() for n in row["other_names"].split("|") if n.strip())
    return Agency(row["licence"], row["name"], other, country, status, expires, row["source"],
                  data_date, line)


def file_version(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:12]


def check_file(directory: Path) -> list[Problem]:
    """The problems of a content tree's registry (none when it has no registry)."""
    path = Path(directory) / AGENCY_FILE
    if not path.is_file():
        return []
    return parse_agencies(read_file(path))[1]


def read_file(path: Path) -> bytes:
    with path.open("rb") as fh:
        return fh.read(MAX_FILE_BYTES + 1)
