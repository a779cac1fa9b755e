"""An official list of agencies in: read, checked, compared with the registry, then applied.

A government list arrives as CSV or XLSX with its own column names, status
words and date format; a small YAML mapping (``ImportConfig``) says which
column is which. ``official_list.read_list`` turns the file into registry
rows (bytes and config in, rows and ``file:line`` problems out); ``diff`` says what would
change in ``content/agencies.csv`` (new, expired, suspended, revoked,
renamed, updated, no longer listed); ``merged`` is the registry after the
import. Nothing is written until the caller applies, and then in one
``os.replace`` of a file that passed the registry's own check: a list with
any error changes nothing.

Why the result lands in ``content/agencies.csv``: that file travels with the
content tree, so publishing the tree syncs the import to every field office
the same way as an edited article, and ``content check`` guards both.

Several sources coexist: the import replaces only the lines of its own
source. When another source also lists a licence, both lines stay: callers
are served the newest and read the other under it, and the diff names both
(newest first).
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from ussd_app.agencies.agency import Agency, fold, licence_key
from ussd_app.agencies.check import (
    AGENCY_FILE,
    COLUMNS,
    parse_agencies,
    read_file,
)
from ussd_app.agencies.official_list import (  # noqa: F401 - the importer's API
    ImportConfig,
    load_config,
    read_list,
)
from ussd_app.engine.loader import ERROR, Problem

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


def _mine(agency: Agency, source: str) -> bool:
    return fold(agency.source) == fold(source)


def diff(current: Iterable[Agency], incoming: Iterable[Agency], source: str,
         when: date) -> list[Change]:
    """What applying the list would change, per licence, in the registry's order."""
    current = list(current)
    held = {licence_key(a.licence): a for a in current if _mine(a, source)}
    others: dict[str, list[Agency]] = {}
    for agency in current:
        if not _mine(agency, source):
            others.setdefault(licence_key(agency.licence), []).append(agency)
    changes: list[Change] = []
    seen: set[str] = set()
    for new in incoming:
        key = licence_key(new.licence)
        seen.add(key)
        old = held.get(key)
        if key in others and (old is None or _label(old) != _label(new)):
            said = sorted([new, *others[key]], key=lambda a: a.data_date, reverse=True)
            changes.append(Change("other_source", new.licence, "; ".join(
                f"{a.source} {a.data_date}: {_label(a)}" for a in said)))
        if old is None:
            if key not in others:
                changes.append(Change("new", new.licence, f"{new.name} ({new.country}, "
                                                          f"{_label(new)})"))
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
        if key not in seen:
            changes.append(Change("unlisted", old.licence, f"{old.name} ({_label(old)})"))
    return changes


def merged(current: list[Agency], incoming: list[Agency], source: str) -> list[Agency]:
    """The registry after the import: the list's rows replace its own source's lines and
    other sources' lines stay beside them (callers read every source, newest first);
    a line of its own source the list no longer has is kept."""
    fresh = {licence_key(a.licence): a for a in incoming}
    out: list[Agency] = []
    for old in current:
        key = licence_key(old.licence)
        new = fresh.pop(key, None) if _mine(old, source) else None
        if new is None:
            out.append(old)
            continue
        # Names the registry knew stay searchable (a list without other names, a
        # renamed agency callers still know by its old name).
        known = [n for n in (*new.other_names, *old.other_names, old.name)
                 if fold(n) != fold(new.name)]
        out.append(replace(new, other_names=tuple(dict.fromkeys(known))))
    out.extend(fresh.values())
    return out


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
