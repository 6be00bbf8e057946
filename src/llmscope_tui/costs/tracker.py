"""Live spend against budgets: seeded from the data file at start, kept current per sample.

The monitor calls observe() for every priced sample (in memory, O(budgets)); thresholds and
pauses come from :class:`~llmscope_tui.costs.alerter.BudgetAlerter`, so each of 50/80/100 % is
announced once per period, and a restart does not announce again what was already crossed
before it. Projections are at the spend rate over the last hour (or since start when shorter,
DESIGN 7), kept per budget in a :class:`~llmscope_tui.costs.projection.RecentSpend`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from llmscope_tui.costs.alerter import BudgetAlerter, BudgetEvent
from llmscope_tui.costs.budgets import Budget, BudgetStatus, budget_status
from llmscope_tui.costs.periods import period_bounds
from llmscope_tui.costs.projection import RecentSpend, SpendRate, rate_window

#: spend_since(budget, since_epoch) -> dollars spent in the budget's scope since then.
SpendQuery = Callable[[Budget, float], float]


class BudgetTracker:
    """Spent-so-far per budget for the current period, with threshold and pause events."""

    def __init__(self, budgets: list[Budget], *, clock: Callable[[], float] = time.time) -> None:
        self.budgets = list(budgets)
        self.clock = clock
        self.alerter = BudgetAlerter(self.budgets)
        self._spent: dict[str, float] = {b.name: 0.0 for b in self.budgets}
        self._period_end: dict[str, float] = {}
        self._recent: dict[str, RecentSpend] = {b.name: RecentSpend() for b in self.budgets}
        self._started = self.clock()  # where the rate's window may begin, until seed() says

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def seed(self, spend_since: SpendQuery, data_start: float | None = None) -> None:
        """Read this period's spend so far, and the last hour's, from the store (blocking: run it
        in a thread). ``data_start``: the first sample's ts in the data file (None: empty), so
        a restart projects from the last hour, not from its own few seconds."""
        now = self._now()
        now_s = now.timestamp()
        self._started = now_s if data_start is None else min(data_start, now_s)
        since = rate_window(now_s, self._started)[0]
        for budget in self.budgets:
            start, end = period_bounds(budget.period, now)
            self._spent[budget.name] = spend_since(budget, start.timestamp())
            self._period_end[budget.name] = end.timestamp()
            self._recent[budget.name] = RecentSpend()
            if since < now_s:
                self._recent[budget.name].spread(spend_since(budget, since), since, now_s)
            self.alerter.seed(self._status(budget, now))

    def _status(self, budget: Budget, now: datetime) -> BudgetStatus:
        since, until = rate_window(now, self._started)
        rate = SpendRate(self._recent[budget.name].total(since), since, until)
        return budget_status(budget, self._spent[budget.name], now, rate)

    def observe(self, sample: Any) -> list[BudgetEvent]:
        """Add one sample's cost to the budgets it counts against; return what changed."""
        cost = _cost(sample)
        now = self._now()
        events: list[BudgetEvent] = []
        for budget in self.budgets:
            rolled = self._roll_period(budget, now)
            matched = cost is not None and budget.matches(sample)
            if cost is not None and matched:
                self._spent[budget.name] += cost
                self._recent[budget.name].add(now.timestamp(), cost)
            if matched or rolled:
                events.extend(self.alerter.update(self._status(budget, now)))
        return events

    def _roll_period(self, budget: Budget, now: datetime) -> bool:
        end = self._period_end.get(budget.name)
        if end is not None and now.timestamp() < end:
            return False
        self._spent[budget.name] = 0.0 if end is not None else self._spent[budget.name]
        self._period_end[budget.name] = period_bounds(budget.period, now)[1].timestamp()
        return end is not None

    def statuses(self) -> list[BudgetStatus]:
        now = self._now()
        return [self._status(b, now) for b in self.budgets]

    def spent_now(self) -> list[tuple[str, str, float, float]]:
        """(name, period, spent this period, limit) per budget, for a metrics scrape. It only
        reads (safe from another thread); a period that ended since the last sample reads 0."""
        now = self.clock()
        return [
            (b.name, b.period, 0.0 if now >= self._period_end.get(b.name, math.inf) else self._spent[b.name], b.limit_usd)
            for b in self.budgets
        ]

    def should_pause(self, target: Any) -> bool:
        """True while a budget covering this target is spent past its pause_probes_at."""
        return self.alerter.should_pause(target)


def _cost(sample: Any) -> float | None:
    """The dollars a sample adds, or None: no price, zero, or not a finite number.

    A NaN must not reach the running sum: it would stay NaN for the rest of the period, so no
    threshold would ever be announced and no pause ever taken.
    """
    cost = getattr(sample, "cost_usd", None)
    if cost is None or cost == 0 or not math.isfinite(cost):
        return None
    return float(cost)


def budget_event(event: BudgetEvent, ts: float) -> dict[str, Any]:
    """The JSON-log shape of a budget event (DESIGN 8)."""
    status = event.status
    return {
        "event": "budget",
        "ts": ts,
        "kind": event.kind,
        "budget": event.budget,
        "threshold": event.threshold,
        "spent_usd": status.spent,
        "limit_usd": status.limit,
        "fraction": status.fraction,
        "projected_usd": status.projected,
        "state": status.state,
        "period": status.period,
        "message": event.message,
    }
