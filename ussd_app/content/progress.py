"""A sync's progress in words a field officer reads at a glance.

"12.4 MB of 40.1 MB, 110 kB/s, about 4 minutes left": megabytes because
data is bought by the megabyte; a rate averaged over the last half minute,
so one stall or one burst does not make the estimate jump; minutes rounded
the way a person says them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW = 30.0  # seconds the rate is averaged over


def human_bytes(size: float) -> str:
    if size < 1000:
        return f"{int(size)} bytes"
    if size < 1_000_000:
        return f"{size / 1e3:.0f} kB"
    if size < 1_000_000_000:
        return f"{size / 1e6:.1f} MB"
    return f"{size / 1e9:.2f} GB"


def human_rate(per_second: float) -> str:
    return f"{human_bytes(per_second)}/s"


def human_time(seconds: float) -> str:
    if seconds < 60:
        return "less than a minute"
    minutes = round(seconds / 60)
    if minutes < 2:
        return "about 1 minute"
    if minutes < 90:
        return f"about {minutes} minutes"
    hours = seconds / 3600
    return f"about {hours:.0f} hours" if hours >= 10 else f"about {hours:.1f} hours"


def line(done: int, total: int, rate: float) -> str:
    """The progress line; the time left only once a rate is known."""
    done = min(done, total)
    text = f"{human_bytes(done)} of {human_bytes(total)}"
    if rate <= 0:
        return text + ", starting"
    left = (total - done) / rate
    return f"{text}, {human_rate(rate)}, {human_time(left)} left"


class Meter:
    """Bytes received over time: the rate over the last ``WINDOW`` seconds."""

    def __init__(self, total: int, clock: Callable[[], float] = time.monotonic):
        self.total = total
        self.done = 0
        self.clock = clock
        self.samples: deque[tuple[float, int]] = deque([(clock(), 0)])

    def add(self, size: int) -> None:
        self.done += size
        now = self.clock()
        self.samples.append((now, self.done))
        while len(self.samples) > 2 and now - self.samples[1][0] > WINDOW:
            self.samples.popleft()

    def rate(self) -> float:
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 - t0 >= 0.5 else 0.0

    def line(self) -> str:
        return line(self.done, self.total, self.rate())
