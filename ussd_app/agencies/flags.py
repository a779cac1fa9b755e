"""Flags on agencies, as callers read them: a reason from a fixed list, a source, a date.

Why a fixed list of reasons: a supervisor's own words would reach callers
untranslated, and a public warning is a statement about a business (a
wrong one can be defamatory). Each reason is an interface string translated
into every shipped language; the source is the authority or body named on
the flag (shown as typed, like a registry's source) and the date is when it
was raised. Flags are raised by a person on the dashboard, never by a count.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from ussd_app.agencies.agency import Agency, fold, licence_key
from ussd_app.engine.messages import N_
from ussd_app.engine.screens import Translate

REASONS: Mapping[str, str] = {
    "investigation": N_("Under investigation by the authorities."),
    "licence_cancelled": N_("Licence cancelled by the authority."),
    "many_reports": N_("Many migrants have reported problems with this agency."),
    "not_licensed": N_("Not a licensed agency: it must not recruit."),
    "fees": N_("Reported for charging illegal recruitment fees."),
}
FLAG_LINE = N_("WARNING: {reason} Source: {source}, {date}.")
MAX_SOURCE = 80
STAMP_SECONDS = 5.0  # how long a process trusts its copy of the flags


@dataclass(frozen=True)
class Flag:
    id: int
    licence_key: str
    licence: str
    name: str
    reason: str
    source: str
    flagged_on: date

    @classmethod
    def from_record(cls, row: Mapping[str, Any]) -> Flag:
        return cls(int(row["id"]), row["licence_key"], row["licence"], row["name"],
                   row["reason"], row["source"], date.fromisoformat(row["flagged_on"]))


def flag_lines(flags: Sequence[Flag], lang: str, t: Translate) -> list[str]:
    """The lines a caller reads under an agency, newest flag first."""
    return [t(lang, FLAG_LINE).format(reason=t(lang, REASONS[f.reason]), source=f.source,
                                      date=f.flagged_on.isoformat())
            for f in sorted(flags, key=lambda f: (f.flagged_on, f.id), reverse=True)
            if f.reason in REASONS]


class FlagSet:
    """The flags not lifted, by licence and by name, refreshed when the store's change.

    A process checks the store's stamp at most every ``STAMP_SECONDS``, so a
    hop costs no query, and a flag raised on the dashboard reaches callers
    within seconds on every node.
    """

    def __init__(self, load: Callable[[], list[dict[str, Any]]],
                 stamp: Callable[[], object], clock: Callable[[], float] = time.monotonic):
        self._load, self._stamp, self._clock = load, stamp, clock
        self._lock = threading.Lock()
        self._checked = -1e18
        self.version: object = None
        self._by_key: dict[str, list[Flag]] = {}
        self._by_name: dict[str, list[Flag]] = {}

    def refresh(self) -> object:
        now = self._clock()
        if now - self._checked < STAMP_SECONDS:
            return self.version
        with self._lock:
            if now - self._checked < STAMP_SECONDS:
                return self.version
            stamp = self._stamp()
            if stamp != self.version:
                by_key: dict[str, list[Flag]] = {}
                by_name: dict[str, list[Flag]] = {}
                for flag in map(Flag.from_record, self._load()):
                    if flag.licence_key:
                        by_key.setdefault(flag.licence_key, []).append(flag)
                    by_name.setdefault(fold(flag.name), []).append(flag)
                self._by_key, self._by_name, self.version = by_key, by_name, stamp
            self._checked = now
        return self.version

    def expire(self) -> None:
        """Read the store again on the next hop (this node raised or lifted a flag)."""
        self._checked = -1e18

    def of(self, agency: Agency) -> list[Flag]:
        """The flags on a registry agency: by its licence, or by its name when the flag
        was raised on the name alone."""
        found = list(self._by_key.get(licence_key(agency.licence), ()))
        for name in (agency.name, *agency.other_names):
            found.extend(f for f in self._by_name.get(fold(name), ())
                         if not f.licence_key and f not in found)
        return found

    def by_name(self, query: str) -> list[Flag]:
        """Flags whose agency is named exactly so (folded): an agency missing from the
        registry is found by its name."""
        return list(self._by_name.get(fold(query), ()))
