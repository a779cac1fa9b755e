"""An official list of agencies read: CSV or XLSX, its columns mapped by a YAML config.

A government list has its own column names, status words and date format;
``ImportConfig`` says which column is which. ``read_list`` turns the file
into registry rows (bytes and config in, rows and ``file:line`` problems
out, no writing); ``agencies.importer`` compares and applies them.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from ussd_app.agencies.agency import Agency, fold, licence_key, territories
from ussd_app.agencies.check import MAX_NAME, MAX_SOURCE, STATUSES
from ussd_app.engine.loader import ERROR, WARNING, Problem

FIELDS = ("licence", "name", "other_names", "country", "status", "expires")
REQUIRED = ("licence", "name")
MAX_ROWS = 500_000

HINT_CONFIG = ("the mapping config names the list's columns, e.g. "
               "columns: {licence: 'Licence No', name: 'Agency'}")


@dataclass(frozen=True)
class ImportConfig:
    """How an official list's columns, statuses and dates map onto the registry's."""

    columns: Mapping[str, str]  # registry field -> the list's column header
    statuses: Mapping[str, str] = field(default_factory=dict)  # list word -> registry status
    date_format: str = "%Y-%m-%d"
    country: str = ""  # for lists without a country column
    status: str = "licensed"  # for lists without a status column
    sheet: str = ""  # XLSX: the sheet to read (default: the first)


def load_config(path: Path | None) -> tuple[ImportConfig | None, list[Problem]]:
    """The mapping config (default: the list already uses the registry's columns)."""
    if path is None:
        return ImportConfig(columns={f: f for f in FIELDS}), []
    name = str(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(name, 0, f"cannot read the config: {exc}", "check the path")]
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", -1) + 1
        return None, [Problem(name, line, f"YAML syntax: {exc}", HINT_CONFIG)]
    if not isinstance(raw, dict) or not isinstance(raw.get("columns"), dict):
        return None, [Problem(name, 1, "no 'columns' mapping", HINT_CONFIG)]
    problems: list[Problem] = []
    columns = {str(k): str(v) for k, v in raw["columns"].items()}
    for key in columns:
        if key not in FIELDS:
            problems.append(Problem(name, 1, f"unknown field '{key}'",
                                    "fields are: " + ", ".join(FIELDS)))
    for key in REQUIRED:
        if key not in columns:
            problems.append(Problem(name, 1, f"'columns' does not map '{key}'", HINT_CONFIG))
    statuses = {fold(str(k)): str(v).lower() for k, v in (raw.get("statuses") or {}).items()}
    for word, status in statuses.items():
        if status not in STATUSES:
            problems.append(Problem(name, 1, f"status '{word}' maps to '{status}'",
                                    "map each word to one of " + ", ".join(STATUSES)))
    config = ImportConfig(columns=columns, statuses=statuses,
                          date_format=str(raw.get("date_format") or "%Y-%m-%d"),
                          country=str(raw.get("country") or "").upper(),
                          status=str(raw.get("status") or "licensed").lower(),
                          sheet=str(raw.get("sheet") or ""))
    if "country" not in columns and config.country not in territories("en"):
        problems.append(Problem(name, 1, "no country column and no 'country' code",
                                "add country: NP (the list's country) or map its column"))
    return (None if problems else config), problems


# ---------------------------------------------------------------- reading


def _table(path: Path, data: bytes, config: ImportConfig,
           problems: list[Problem]) -> list[tuple[int, list[Any]]] | None:
    """The list's rows with their line numbers (header first), CSV or XLSX."""
    name = str(path)
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _xlsx(name, data, config, problems)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.append(Problem(name, 1, f"not UTF-8 text (byte {exc.start})",
                                "save the list as CSV UTF-8, or as XLSX"))
        return None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows: list[tuple[int, list[Any]]] = []
    line = 1
    try:
        for fields in reader:
            rows.append((line, list(fields)))
            line = reader.line_num + 1
    except csv.Error as exc:
        problems.append(Problem(name, line, f"CSV syntax: {exc}",
                                "a field with a comma or a quote needs \"double quotes\""))
        return None
    return rows


def _xlsx(name: str, data: bytes, config: ImportConfig,
          problems: list[Problem]) -> list[tuple[int, list[Any]]] | None:
    from zipfile import BadZipFile  # lazy: only XLSX needs it

    import openpyxl  # lazy: only XLSX needs it
    try:
        book = openpyxl.load_workbook(io.BytesIO(data), data_only=True)
    except (BadZipFile, OSError, KeyError, ValueError) as exc:
        problems.append(Problem(name, 1, f"not a readable XLSX file: {exc}",
                                "open it in a spreadsheet and save it again as .xlsx"))
        return None
    if config.sheet and config.sheet not in book.sheetnames:
        problems.append(Problem(name, 1, f"no sheet '{config.sheet}'",
                                "sheets are: " + ", ".join(book.sheetnames)))
        return None
    sheet = book[config.sheet] if config.sheet else book.worksheets[0]
    merged = sorted(sheet.merged_cells.ranges, key=lambda r: (r.min_row, r.min_col))
    for cells in merged:
        problems.append(Problem(name, cells.min_row, f"merged cells {cells.coord}",
                                "unmerge them and write the value on every row"))
    if merged:
        return None
    return [(row[0].row if row else i + 1, [c.value for c in row])
            for i, row in enumerate(sheet.iter_rows())]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return unicodedata.normalize("NFC", str(value)).strip()


def _when(name: str, line: int, column: str, value: Any, config: ImportConfig,
          problems: list[Problem]) -> date | None:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _text(value)
    try:
        return datetime.strptime(text, config.date_format).date()
    except ValueError:
        example = date(2027, 3, 31).strftime(config.date_format)
        problems.append(Problem(name, line, f"{column} '{text}' is not a date written "
                                f"{config.date_format} (e.g. {example})",
                                "set date_format in the config to the list's format, "
                                "e.g. date_format: '%d/%m/%Y'"))
        return None


def read_list(path: Path, data: bytes, config: ImportConfig, source: str,
              when: date) -> tuple[list[Agency], list[Problem]]:
    """The agencies of an official list; use them only when no problem is an error."""
    name = str(path)
    problems: list[Problem] = []
    if not source.strip() or len(source) > MAX_SOURCE:
        problems.append(Problem(name, 0, f"--source must be 1 to {MAX_SOURCE} characters",
                                "name the authority, e.g. 'DoFE Nepal'"))
        return [], problems
    table = _table(path, data, config, problems)
    if table is None:
        return [], problems
    rows = [(n, r) for n, r in table if any(_text(v) for v in r)]
    if not rows:
        problems.append(Problem(name, 1, "the list is empty", HINT_CONFIG))
        return [], problems
    if len(rows) > MAX_ROWS:
        problems.append(Problem(name, 1, f"more than {MAX_ROWS} rows", "split the list"))
        return [], problems
    header_line, header = rows[0]
    names = [_text(h).lower() for h in header]
    where: dict[str, int] = {}
    for key, column in config.columns.items():
        if column.strip().lower() not in names:
            problems.append(Problem(name, header_line, f"no column '{column}' (for {key})",
                                    "the header has: " + ", ".join(_text(h) for h in header)))
        else:
            where[key] = names.index(column.strip().lower())
    if problems:
        return [], problems
    agencies: list[Agency] = []
    seen: dict[str, int] = {}
    for line, fields in rows[1:]:
        def cell(key: str, _f: list[Any] = fields) -> Any:
            i = where.get(key)
            return _f[i] if i is not None and i < len(_f) else None
        agency = _agency(name, line, cell, config, source, when, problems)
        if agency is None:
            continue
        key = licence_key(agency.licence)
        if key in seen:
            problems.append(Problem(name, line, f"licence '{agency.licence}' is also on line "
                                    f"{seen[key]}", "each licence once; fix the list"))
            continue
        seen[key] = line
        agencies.append(agency)
    return agencies, problems


def _agency(name: str, line: int, cell: Any, config: ImportConfig, source: str, when: date,
            problems: list[Problem]) -> Agency | None:
    before = len(problems)
    licence, title = _text(cell("licence")), _text(cell("name"))
    if not licence_key(licence):
        problems.append(Problem(name, line, "licence is empty", "every agency needs its number"))
    if not title:
        problems.append(Problem(name, line, "name is empty", "write the agency's name"))
    elif len(title) > MAX_NAME:
        problems.append(Problem(name, line, f"name is longer than {MAX_NAME} characters",
                                "shorten it"))
    elif not any("a" <= c <= "z" for c in fold(title)) and not _text(cell("other_names")):
        problems.append(Problem(name, line, f"name '{title}' has no Latin letters",
                                "callers typing Latin letters will not find it; add a Latin "
                                "form in other names", WARNING))
    word = _text(cell("status")) if "status" in config.columns else config.status
    status = config.statuses.get(fold(word), word.lower())
    if status not in STATUSES:
        problems.append(Problem(name, line, f"status '{word}' is not one of "
                                + ", ".join(STATUSES),
                                "map the list's word in the config's 'statuses'"))
    country = (_text(cell("country")) if "country" in config.columns
               else config.country).upper()
    if country not in territories("en") or len(country) != 2:
        problems.append(Problem(name, line, f"country '{country}' is not a country code",
                                "use the two-letter ISO code, e.g. NP"))
    expires = None
    if _text(cell("expires")):
        expires = _when(name, line, "expires", cell("expires"), config, problems)
    elif status == "licensed":
        problems.append(Problem(name, line, "expires is empty for a licensed agency",
                                "the list must give each licence's expiry"))
    if any(p.severity == ERROR for p in problems[before:]):
        return None
    other = tuple(n.strip() for n in _text(cell("other_names")).split("|") if n.strip())
    return Agency(licence, title, other, country, status, expires, source, when, line)
