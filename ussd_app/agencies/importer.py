"""An official list of agencies in: read, checked, compared with the registry, then applied.

A government list arrives as CSV or XLSX with its own column names, status
words and date format; a small YAML mapping (``ImportConfig``) says which
column is which. ``read_list`` turns the file into registry rows (bytes and
config in, rows and ``file:line`` problems out); ``diff`` says what would
change in ``content/agencies.csv`` (new, expired, suspended, revoked,
renamed, updated, no longer listed); ``merged`` is the registry after the
import. Nothing is written until the caller applies, and then in one
``os.replace`` of a file that passed the registry's own check: a list with
any error changes nothing.

Why the result lands in ``content/agencies.csv``: that file travels with the
content tree, so publishing the tree syncs the import to every field office
the same way as an edited article, and ``content check`` guards both.

Several sources coexist: the import replaces only the rows of its own
source. When another source already lists a licence, the row with the
newest date is served and the diff names both (newest first).
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import yaml

from ussd_app.agencies.agency import Agency, fold, licence_key, territories
from ussd_app.agencies.check import (
    AGENCY_FILE,
    COLUMNS,
    MAX_NAME,
    MAX_SOURCE,
    STATUSES,
    parse_agencies,
    read_file,
)
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


# ---------------------------------------------------------------- comparing


@dataclass(frozen=True)
class Change:
    kind: str  # new, expired, suspended, revoked, renamed, updated, unlisted, other_source
    licence: str
    text: str


KINDS = ("new", "expired", "suspended", "revoked", "renamed", "updated", "unlisted",
         "other_source")
KIND_TITLES = {"new": "new", "expired": "expired", "suspended": "suspended",
               "revoked": "revoked", "renamed": "renamed", "updated": "other changes",
               "unlisted": "no longer on this list (kept)",
               "other_source": "also listed by another source (newest shown first)"}


def _label(agency: Agency) -> str:
    until = f" until {agency.expires.isoformat()}" if agency.expires else ""
    return f"{agency.status}{until}"


def diff(current: Iterable[Agency], incoming: Iterable[Agency], source: str,
         when: date) -> list[Change]:
    """What applying the list would change, per licence, in the registry's order."""
    held = {licence_key(a.licence): a for a in current}
    changes: list[Change] = []
    seen: set[str] = set()
    for new in incoming:
        key = licence_key(new.licence)
        seen.add(key)
        old = held.get(key)
        if old is None:
            changes.append(Change("new", new.licence, f"{new.name} ({new.country}, "
                                                      f"{_label(new)})"))
            continue
        if old.source != source:
            first, second = sorted((old, new), key=lambda a: a.data_date, reverse=True)
            changes.append(Change("other_source", new.licence,
                                  f"{first.source} {first.data_date}: {_label(first)}; "
                                  f"{second.source} {second.data_date}: {_label(second)}"))
            continue
        if fold(old.name) != fold(new.name):
            changes.append(Change("renamed", new.licence, f"{old.name} -> {new.name}"))
        if new.status != old.status and new.status in ("suspended", "revoked"):
            changes.append(Change(new.status, new.licence, f"{new.name}: was {_label(old)}"))
        elif new.expired(when) and not old.expired(when):
            changes.append(Change("expired", new.licence,
                                  f"{new.name}: expired {new.expires}"))
        elif (new.status, new.expires, new.country) != (old.status, old.expires, old.country):
            changes.append(Change("updated", new.licence,
                                  f"{new.name}: {_label(old)} -> {_label(new)}"))
    for key, old in held.items():
        if old.source == source and key not in seen:
            changes.append(Change("unlisted", old.licence, f"{old.name} ({_label(old)})"))
    return changes


def merged(current: list[Agency], incoming: list[Agency], source: str) -> list[Agency]:
    """The registry after the import: the list's rows replace its own source's; another
    source's row for the same licence stays when it is newer."""
    out: dict[str, Agency] = {licence_key(a.licence): a for a in current}
    for new in incoming:
        key = licence_key(new.licence)
        old = out.get(key)
        if old is None:
            out[key] = new
        elif old.source == source or new.data_date >= old.data_date:
            # Names the registry knew stay searchable (a list without other names, a
            # renamed agency callers still know by its old name).
            known = [n for n in (*new.other_names, *old.other_names, old.name)
                     if fold(n) != fold(new.name)]
            out[key] = replace(new, other_names=tuple(dict.fromkeys(known)))
    return list(out.values())


def report(changes: list[Change], limit: int = 20) -> list[str]:
    """The diff as lines for a terminal: a count per kind, then the first few of each."""
    lines: list[str] = []
    for kind in KINDS:
        of_kind = [c for c in changes if c.kind == kind]
        if not of_kind:
            continue
        lines.append(f"{KIND_TITLES[kind]}: {len(of_kind)}")
        lines.extend(f"  {c.licence}  {c.text}" for c in of_kind[:limit])
        if len(of_kind) > limit:
            lines.append(f"  ... and {len(of_kind) - limit} more")
    return lines or ["no change"]


# ---------------------------------------------------------------- writing


def to_csv(agencies: Iterable[Agency]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for a in agencies:
        writer.writerow([a.licence, a.name, "|".join(a.other_names), a.country, a.status,
                         a.expires.isoformat() if a.expires else "", a.source,
                         a.data_date.isoformat()])
    return out.getvalue().encode("utf-8")


def current_registry(directory: Path) -> tuple[list[Agency], list[Problem]]:
    path = Path(directory) / AGENCY_FILE
    if not path.is_file():
        return [], []
    return parse_agencies(read_file(path), str(path))


def write_registry(directory: Path, agencies: list[Agency]) -> list[Problem]:
    """Write the registry whole (a temporary file renamed over it), after the same check
    the service runs; on any error nothing is written."""
    data = to_csv(agencies)
    path = Path(directory) / AGENCY_FILE
    problems = [p for p in parse_agencies(data, str(path))[1] if p.severity == ERROR]
    if problems:
        return problems
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".agencies-", suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return []


@dataclass
class Plan:
    """An import read and compared, ready to apply (when ``problems`` has no error)."""

    incoming: list[Agency]
    changes: list[Change]
    result: list[Agency]
    problems: list[Problem]

    @property
    def ok(self) -> bool:
        return not any(p.severity == ERROR for p in self.problems)


def plan(directory: Path, path: Path, data: bytes, config: ImportConfig, source: str,
         when: date) -> Plan:
    current, problems = current_registry(directory)
    if any(p.severity == ERROR for p in problems):
        return Plan([], [], [], problems + [Problem(
            str(Path(directory) / AGENCY_FILE), 0, "the current registry has errors",
            "fix it (migrantline content check) before importing")])
    incoming, problems = read_list(path, data, config, source, when)
    if any(p.severity == ERROR for p in problems):
        return Plan([], [], [], problems)
    return Plan(incoming, diff(current, incoming, source, when),
                merged(current, incoming, source), problems)
