"""When it is safe to send a caller an SMS: days and hours in the caller's time zone.

A caller who said "only at some times" picks the days (``CONTACT_DAYS``; the
content's values write ``sun_thu`` for ``sun-thu``) and the hours (``CONTACT_HOURS``;
``h17_21`` for ``17-21``) from two choice screens; the case keeps them as one
compact string, ``days=fri;hours=17-21`` (``contact_window``), with the caller's
time zone (``time_zone``, an IANA name). I/O-free.

The time zone is where the caller is: the case's ``country`` (ISO code), else the
country of the number, mapped to the *first* zone ``zone.tab`` lists for it (the
country's main zone: ``America/New_York`` for the US), else Babel's list; UTC when
neither is known. Times are computed with ``zoneinfo``, so a clock change moves a
window's start and end with the local clock: a message is only ever sent while the
caller's local day and hour are inside the window.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path

from babel.core import get_global

# Python's weekday(): Monday is 0.
CONTACT_DAYS: dict[str, frozenset[int]] = {
    "all": frozenset(range(7)),
    "sun-thu": frozenset({6, 0, 1, 2, 3}),
    "mon-fri": frozenset({0, 1, 2, 3, 4}),
    "fri": frozenset({4}),
    "fri-sat": frozenset({4, 5}),
    "sat-sun": frozenset({5, 6}),
}
CONTACT_HOURS: dict[str, tuple[int, int]] = {
    "8-12": (8, 12), "12-17": (12, 17), "17-21": (17, 21), "8-21": (8, 21),
}
UTC = "UTC"


@dataclass(frozen=True)
class Window:
    """Days (a ``CONTACT_DAYS`` key) and hours (a ``CONTACT_HOURS`` key), local time."""

    days: str
    hours: str

    def __str__(self) -> str:
        return f"days={self.days};hours={self.hours}"

    @property
    def weekdays(self) -> frozenset[int]:
        return CONTACT_DAYS[self.days]

    @property
    def span(self) -> tuple[int, int]:
        return CONTACT_HOURS[self.hours]


def parse(text: str | None) -> Window | None:
    """The window a ``contact_window`` string names; None for empty or unknown values."""
    parts = dict(p.split("=", 1) for p in (text or "").split(";") if "=" in p)
    days, hours = parts.get("days", ""), parts.get("hours", "")
    if days in CONTACT_DAYS and hours in CONTACT_HOURS:
        return Window(days, hours)
    return None


def from_answers(days: str | None, hours: str | None) -> Window | None:
    """The window two choice answers name (content values: ``sun_thu``, ``h17_21``)."""
    return parse(f"days={(days or '').replace('_', '-')};"
                 f"hours={(hours or '').removeprefix('h').replace('_', '-')}")


@cache
def _zone_tab() -> dict[str, str]:
    first: dict[str, str] = {}
    for folder in zoneinfo.TZPATH:
        path = Path(folder) / "zone.tab"
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                cols = line.split("\t")
                if len(cols) >= 3 and not line.startswith("#"):
                    first.setdefault(cols[0].upper(), cols[2])
            break
    return first


def zone_for(*countries: str | None) -> str:
    """The first zone of the first known country among ``countries``; UTC if none."""
    for country in countries:
        code = (country or "").upper()
        if len(code) != 2:
            continue
        zone = _zone_tab().get(code)
        if zone is None:
            zones = get_global("territory_zones").get(code) or []
            zone = zones[0] if zones else None
        if zone is not None:
            return str(zone)
    return UTC


def _zone(name: str | None) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or UTC)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(UTC)


def inside(window: Window, zone: str | None, at: float) -> bool:
    """Whether ``at`` (a UNIX time) falls on a window day and hour, on the caller's clock."""
    local = datetime.fromtimestamp(at, _zone(zone))
    start, end = window.span
    return local.weekday() in window.weekdays and start <= local.hour < end


def next_start(window: Window, zone: str | None, at: float) -> float:
    """``at`` itself when inside the window, else the next moment the window opens.

    Each local day's opening hour is turned into a UNIX time by ``zoneinfo``; an
    opening that falls in a clock change's gap (a local time that never happens)
    becomes the first instant after it that is inside the window.
    """
    if inside(window, zone, at):
        return at
    tz = _zone(zone)
    day = datetime.fromtimestamp(at, tz).date()
    start, end = window.span
    for offset in range(9):
        date = day + timedelta(days=offset)
        if date.weekday() not in window.weekdays:
            continue
        local = datetime(date.year, date.month, date.day, start, tzinfo=tz)
        moment = local.timestamp()
        for _ in range(4 * (end - start)):  # in a gap: step on a quarter-hour at a time
            if moment > at and inside(window, zone, moment):
                return moment
            moment += 900
    raise ValueError(f"window {window} never opens")  # every window has a day: never


def local_time(at: float, zone: str | None) -> datetime:
    return datetime.fromtimestamp(at, _zone(zone))
