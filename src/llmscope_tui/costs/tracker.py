"""Live spend against budgets: seeded from the data file at start, kept current per sample.

The monitor calls observe() for every priced sample (in memory, O(budgets)); thresholds and
pauses come from :class:`~llmscope_tui.costs.alerter.BudgetAlerter`, so each of 50/80/100 % is
announced once per period, and a restart does not announce again what was already crossed
before it.
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

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    def seed(self, spend_since: SpendQuery) -> None:
        """Read this period's spend so far from the store (blocking: run it in a thread)."""
        now = self._now()
        for budget in self.budgets:
            start, end = period_bounds(budget.period, now)
            self._spent[budget.name] = spend_since(budget, start.timestamp())
            self._period_end[budget.name] = end.timestamp()
            self.alerter.seed(budget_status(budget, self._spent[budget.name], now))

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
            if matched or rolled:
                status = budget_status(budget, self._spent[budget.name], now)
                events.extend(self.alerter.update(status))
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
        return [budget_status(b, self._spent[b.name], now) for b in self.budgets]

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
