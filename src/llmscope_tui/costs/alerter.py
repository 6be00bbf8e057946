"""Budget alerts over time: :class:`BudgetAlerter` turns statuses into events.

An alert when 50 %, 80 % and 100 % are first reached in a period, and optional probe
pausing. See :class:`BudgetAlerter` for what happens across restarts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from llmscope_tui.costs.budgets import (
    BUDGET_THRESHOLDS,
    Budget,
    BudgetStatus,
    reached,
    spent_text,
    threshold_text,
)
from llmscope_tui.model import Target


@dataclass(frozen=True, slots=True)
class BudgetEvent:
    """Something to tell the user about a budget.

    kind "threshold": spend reached ``threshold`` (0.5, 0.8 or 1.0) of the limit for the first
    time this period. "paused" / "resumed": probes in the budget's scope stop / may start again.
    """

    kind: Literal["threshold", "paused", "resumed"]
    budget: str
    threshold: float | None
    status: BudgetStatus
    message: str


@dataclass(slots=True)
class _AlertState:
    period_start: datetime
    announced: set[float]
    paused: bool


class BudgetAlerter:
    """Turns budget statuses over time into threshold alerts and a probe-pause decision.

    Feed it each budget's latest :class:`BudgetStatus` with :meth:`update`. Each threshold
    (50 %, 80 %, 100 %) yields one "threshold" event the first time it is reached in a period
    (a jump from 30 % to 110 % yields all three, in order); a status from a new period re-arms
    them. "paused"/"resumed" events mark changes of the pause decision, which
    :meth:`should_pause` answers per target.

    Restarts: the alerter keeps no file. Seed it at startup with the statuses computed from
    the spend already in the store (``initial=`` or :meth:`seed`): every threshold the spend
    has already reached this period counts as announced, silently, and the pause state is
    restored, also silently (ask :meth:`should_pause`). The choice: a restart never repeats
    an alert; the price is that a threshold crossed while llmscope-tui was not running is not
    announced when it comes back (its bar still shows the state).
    """

    def __init__(
        self,
        budgets: Iterable[Budget] = (),
        initial: Iterable[BudgetStatus] = (),
        thresholds: Sequence[float] = BUDGET_THRESHOLDS,
    ) -> None:
        self._budgets: dict[str, Budget] = {b.name: b for b in budgets}
        self._thresholds = tuple(sorted(thresholds))
        self._state: dict[str, _AlertState] = {}
        for status in initial:
            self.seed(status)

    @property
    def budgets(self) -> list[Budget]:
        return list(self._budgets.values())

    def _reached(self, status: BudgetStatus) -> set[float]:
        return {t for t in self._thresholds if reached(status.fraction, t)}

    def _should_pause(self, status: BudgetStatus) -> bool:
        budget = self._budgets.get(status.name)
        if budget is None or budget.pause_probes_at is None:
            return status.pause_probes
        return reached(status.fraction, budget.pause_probes_at)

    def seed(self, status: BudgetStatus) -> None:
        """Take ``status`` as already announced (see the class docstring); emits nothing."""
        reached_now, paused = self._reached(status), self._should_pause(status)
        self._state[status.name] = _AlertState(status.period_start, reached_now, paused)

    def update(self, status: BudgetStatus) -> list[BudgetEvent]:
        """The events this status causes (usually none)."""
        state = self._state.get(status.name)
        if state is None or state.period_start != status.period_start:
            was_paused = state.paused if state is not None else False
            state = _AlertState(status.period_start, set(), was_paused)
            self._state[status.name] = state
        events: list[BudgetEvent] = []
        for threshold in sorted(self._reached(status) - state.announced):
            state.announced.add(threshold)
            message = _threshold_message(status, threshold)
            events.append(BudgetEvent("threshold", status.name, threshold, status, message))
        pause = self._should_pause(status)
        if pause != state.paused:
            state.paused = pause
            word: Literal["paused", "resumed"] = "paused" if pause else "resumed"
            budget = self._budgets.get(status.name)
            scope = budget.scope if budget is not None else "its scope"
            spent = spent_text(status.spent, status.limit, status.period)
            message = f'budget "{status.name}": probes in {scope} {word} ({spent})'
            events.append(BudgetEvent(word, status.name, None, status, message))
        return events

    def is_paused(self, budget_name: str) -> bool:
        state = self._state.get(budget_name)
        return state is not None and state.paused

    def paused_budgets(self) -> list[str]:
        return [name for name, state in self._state.items() if state.paused]

    def should_pause(self, target: Target | Any) -> bool:
        """Should this target's probes (or this sample-like's calls) be held back now?"""
        for name, state in self._state.items():
            budget = self._budgets.get(name)
            if not state.paused or budget is None:
                continue
            matches = budget.matches_target if isinstance(target, Target) else budget.matches
            if matches(target):
                return True
        return False


def _threshold_message(status: BudgetStatus, threshold: float) -> str:
    projected = status.projected if status.period_end > status.period_start else None
    s = status
    return threshold_text(s.name, threshold, s.spent, s.limit, s.period, projected)
