"""Complaints per ISO week, stacked by category: the numbers and the bars' geometry.

The page draws the bars as inline SVG from what this returns (no chart
library, no script): a few hundred bytes that render on any browser and
print as they show.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

# Okabe-Ito: told apart by colour-blind readers too.
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7",
           "#999999")
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 260, 40, 40, 10


@dataclass
class Week:
    monday: date
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def label(self) -> str:
        year, week, _ = self.monday.isocalendar()
        return f"{year}-W{week:02d}"

    @property
    def total(self) -> int:
        return sum(self.counts.values())


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    colour: str
    category: str
    count: int
    week: str


def first_monday(today: date, weeks: int) -> date:
    return today - timedelta(days=today.weekday()) - timedelta(weeks=weeks - 1)


def weekly(daily: Iterable[tuple[str, str, int]], today: date, weeks: int = 12) -> list[Week]:
    """The last ``weeks`` ISO weeks (this one last) from (day, category, count) rows."""
    start = first_monday(today, weeks)
    out = [Week(start + timedelta(weeks=i)) for i in range(weeks)]
    for day, category, count in daily:
        index = (date.fromisoformat(day) - start).days // 7
        if 0 <= index < weeks:
            counts = out[index].counts
            counts[category] = counts.get(category, 0) + count
    return out


def scale_top(highest: int) -> int:
    """A round top for the axis: 5, 10, 20, 50, 100 ... at or above the highest bar."""
    top = 5
    while top < highest:
        top = top * 2 if str(top)[0] in "15" else top * 5 // 2
    return top


def bars(weeks: Sequence[Week], categories: Sequence[str]) -> tuple[list[Bar], int]:
    """One rectangle per week and category with complaints, stacked; and the axis top."""
    top = scale_top(max((w.total for w in weeks), default=0))
    plot_height = HEIGHT - BOTTOM - TOP
    slot = (WIDTH - LEFT) / max(len(weeks), 1)
    out = []
    for i, week in enumerate(weeks):
        base = float(HEIGHT - BOTTOM)
        for j, category in enumerate(categories):
            count = week.counts.get(category, 0)
            if not count:
                continue
            height = plot_height * count / top
            base -= height
            out.append(Bar(round(LEFT + i * slot + slot * 0.15, 1), round(base, 1),
                           round(slot * 0.7, 1), round(height, 1),
                           PALETTE[j % len(PALETTE)], category, count, week.label))
    return out, top
