"""The supervisors' figures from the rows of a period: pure, no Flask, no SQL.

``summarise`` turns the cases of a period (``store.analytics.cases``) and the
menu counts into what the analytics page and its CSV show: cases by week and
by category, country, agency, channel and language; the hours to the first
operator action and to closure (median and 90th percentile, nearest rank);
urgent cases and the hours to their first contact (the first "Show number",
which operators press to call, or the first SMS sent from the dashboard); the
outcomes of closed cases and the compensation recovered per currency. Menu
counts under ``SMALL`` are shown as "<5": a count of one or two sessions on a
rare node could point at a person.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

SMALL = 5
GROUPS = ("category", "country", "agency", "channel", "lang")
WEEK_SECONDS = 7 * 86400


@dataclass(frozen=True)
class Spread:
    """Hours: how many cases, their median and 90th percentile (None when no case)."""

    count: int
    median: float | None
    p90: float | None


@dataclass
class Summary:
    cases: int = 0
    weeks: list[tuple[str, int]] = field(default_factory=list)
    groups: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    first_response: Spread = Spread(0, None, None)
    closure: Spread = Spread(0, None, None)
    urgent: int = 0
    urgent_contacted: int = 0
    urgent_contact: Spread = Spread(0, None, None)
    outcomes: list[tuple[str, int]] = field(default_factory=list)
    compensation: list[tuple[str, str, int]] = field(default_factory=list)  # currency, sum, n
    menu: list[tuple[str, str, str]] = field(default_factory=list)  # node, reached, ended


def percentile(sorted_values: Sequence[float], share: float) -> float | None:
    """The nearest-rank percentile of values sorted ascending (None for none)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(share * len(sorted_values)))
    return sorted_values[rank - 1]


def spread(hours: Iterable[float]) -> Spread:
    values = sorted(hours)
    median = None
    if values:
        middle = len(values) // 2
        median = values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2
    return Spread(len(values), median, percentile(values, 0.9))


def small(count: int) -> str:
    """A count as shown: below ``SMALL`` (and above none) it is "<5"."""
    return f"<{SMALL}" if 0 < count < SMALL else str(count)


def week_labels(first: date, weeks: int) -> list[str]:
    out = []
    for i in range(weeks):
        year, week, _ = date.fromordinal(first.toordinal() + 7 * i).isocalendar()
        out.append(f"{year}-W{week:02d}")
    return out


def _key(row: Mapping[str, Any], group: str) -> str:
    if group == "agency":
        return str(row.get("agency_name") or row.get("agency_licence") or "")
    return str(row.get(group) or "")


def summarise(rows: Sequence[Mapping[str, Any]], labels: Sequence[str], first: date,
              menu: Iterable[tuple[str, int, int]] = ()) -> Summary:
    """The figures of the cases filed in the weeks ``labels`` (ISO weeks from the Monday
    ``first``, oldest first). One pass over the rows: a period holds tens of thousands."""
    out = Summary(cases=len(rows))
    start = datetime(first.year, first.month, first.day, tzinfo=UTC).timestamp()
    by_week = [0] * len(labels)
    groups: dict[str, Counter[str]] = {g: Counter() for g in GROUPS}
    response, closure, contact = [], [], []
    outcomes: Counter[str] = Counter()
    money: dict[str, tuple[Decimal, int]] = {}
    for r in rows:
        created = float(r["created_at"])
        index = int((created - start) // WEEK_SECONDS)
        if 0 <= index < len(by_week):
            by_week[index] += 1
        for group, counts in groups.items():
            counts[_key(r, group)] += 1
        if r["first_response"] is not None:
            response.append(max(0.0, (float(r["first_response"]) - created) / 3600))
        if r["urgent"]:
            out.urgent += 1
            reached = _first(r["first_call"], r["first_sms"])
            if reached is not None:
                contact.append(max(0.0, (reached - created) / 3600))
        if r["status"] != "closed":
            continue
        if r["closed_at"] is not None:
            closure.append(max(0.0, (float(r["closed_at"]) - created) / 3600))
        if r["outcome"]:
            outcomes[str(r["outcome"])] += 1
        if r["outcome"] == "compensation" and r["outcome_currency"]:
            total, n = money.get(str(r["outcome_currency"]), (Decimal(0), 0))
            money[str(r["outcome_currency"])] = (total + Decimal(str(r["outcome_amount"])), n + 1)
    out.weeks = list(zip(labels, by_week, strict=True))
    out.groups = {g: sorted(c.items(), key=lambda kv: (-kv[1], kv[0])) for g, c in groups.items()}
    out.first_response, out.closure = spread(response), spread(closure)
    out.urgent_contacted, out.urgent_contact = len(contact), spread(contact)
    out.outcomes = sorted(outcomes.items(), key=lambda kv: (-kv[1], kv[0]))
    out.compensation = [(c, str(t), n) for c, (t, n) in sorted(money.items())]
    out.menu = [(node, small(reached), small(ended)) for node, reached, ended in menu]
    return out


def _first(*times: Any) -> float | None:
    found = [float(t) for t in times if t is not None]
    return min(found) if found else None


def hours(value: float | None) -> str:
    """Hours with one decimal, or "–" when there is nothing to say."""
    return "–" if value is None else f"{value:.1f}"


def csv_rows(s: Summary) -> list[tuple[str, str, str, str]]:
    """(section, key, measure, value) rows: the page's figures, one per line."""
    out: list[tuple[str, str, str, str]] = [("cases", "all", "count", str(s.cases))]
    out += [("week", w, "cases", str(n)) for w, n in s.weeks]
    for group in GROUPS:
        out += [(group, key or "-", "cases", str(n)) for key, n in s.groups.get(group, [])]
    for section, value in (("first_response", s.first_response), ("closure", s.closure),
                           ("urgent_first_contact", s.urgent_contact)):
        out += [(section, "all", "cases", str(value.count)),
                (section, "all", "median_hours", hours(value.median)),
                (section, "all", "p90_hours", hours(value.p90))]
    out += [("urgent", "all", "cases", str(s.urgent)),
            ("urgent", "all", "contacted", str(s.urgent_contacted))]
    out += [("outcome", key, "cases", str(n)) for key, n in s.outcomes]
    for currency, total, n in s.compensation:
        out += [("compensation", currency, "amount", total),
                ("compensation", currency, "cases", str(n))]
    for node, reached, ended in s.menu:
        out += [("menu", node, "reached", reached), ("menu", node, "ended", ended)]
    return out
