"""End-of-period spend at the actual rate (DESIGN 7), and the spend that rate is taken from.

period-end spend = spent so far + (spend rate over the last hour, or since start when shorter)
x time left in the period. "Start" is where the data begins (the first sample in the data
file, or the monitor's start when that is later): a run two minutes old projects from those
two minutes, one that has run all day from its last hour. Every projection (budget bars and
alerts, `report`, the TUI's cards, headless budget events) and every "per month" saving goes
through :func:`projected_period_spend` and :class:`SpendRate`, with the time passed in.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

#: The rate is the spend over this many seconds before now (or since start when shorter).
RATE_WINDOW_S = 3600.0


def _epoch(moment: datetime | float) -> float:
    if isinstance(moment, datetime):
        return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment).timestamp()
    return float(moment)


@dataclass(frozen=True, slots=True)
class SpendRate:
    """Dollars spent over [since, until): the rate a projection extrapolates."""

    spent: float
    since: float
    until: float

    @property
    def seconds(self) -> float:
        return max(self.until - self.since, 0.0)

    @property
    def per_second(self) -> float | None:
        """Dollars per second, or None when the window is empty (no rate is known yet)."""
        if self.seconds <= 0 or not math.isfinite(self.spent):
            return None
        return max(self.spent, 0.0) / self.seconds

    def over(self, seconds: float) -> float | None:
        """What ``seconds`` more at this rate cost (e.g. a month's worth), None when unknown."""
        rate = self.per_second
        return None if rate is None else rate * max(seconds, 0.0)


def rate_window(now: datetime | float, started: datetime | float | None) -> tuple[float, float]:
    """[since, now) as epoch seconds: the last hour, or since ``started`` when that is shorter.

    ``started`` None (nothing known about the start) means the whole hour."""
    now_s = _epoch(now)
    since = now_s - RATE_WINDOW_S
    if started is not None:
        since = max(since, min(_epoch(started), now_s))
    return since, now_s


def projected_period_spend(
    spent: float, period_end: datetime | float, now: datetime | float, rate: SpendRate | None
) -> float:
    """Spend at the end of the period if the rate goes on: spent + rate x (end - now).

    With no rate (None, or an empty window) or after the period, it is the spend itself."""
    spent = float(spent)
    per_second = None if rate is None else rate.per_second
    remaining = _epoch(period_end) - _epoch(now)
    if per_second is None or remaining <= 0:
        return spent
    return spent + per_second * remaining


class RecentSpend:
    """Spend over the last :data:`RATE_WINDOW_S`, kept live, in one-second buckets: constant
    memory at any probe rate (a cost is placed in the second it was observed, so the window's
    edge is exact to a second).

    ``total(since)`` must be asked with a ``since`` that never goes back: buckets before it
    are forgotten.
    """

    def __init__(self) -> None:
        self._buckets: deque[list[float]] = deque()  # [second, dollars], oldest first
        self._total = 0.0

    def add(self, ts: float, dollars: float) -> None:
        second = float(math.floor(ts))
        if self._buckets and self._buckets[-1][0] >= second:
            self._buckets[-1][1] += dollars  # same second (or the clock stepped back)
        else:
            self._buckets.append([second, dollars])
        self._total += dollars

    def spread(self, dollars: float, since: float, until: float) -> None:
        """Add spend known only as a sum over [since, until) (read from the data file at a
        start), spread evenly over the seconds it covers."""
        first, last = math.floor(since), math.ceil(until)
        seconds = max(last - first, 1)
        for second in range(first, first + seconds):
            self.add(second, dollars / seconds)

    def total(self, since: float) -> float:
        """Dollars in the buckets from ``since`` on (a bucket that ends after ``since`` counts)."""
        while self._buckets and self._buckets[0][0] + 1 <= since:
            self._total -= self._buckets.popleft()[1]
        if not self._buckets:
            self._total = 0.0  # no rounding residue left behind
        return max(self._total, 0.0)
