"""Budgets: :class:`Budget` (limit, period, scope), :func:`budget_status` (where it stands),
the thresholds and the words a budget alert says.

Warning at 80 %, critical at 100 %; alerts at 50, 80 and 100 %. Every comparison of spend with a
threshold goes through :func:`reached` and every alert line through :func:`threshold_text`, so
the bar, the alert and its severity never disagree. Threshold alerts and probe pausing over
time are :class:`~llmscope_tui.costs.alerter.BudgetAlerter`'s job; live spend is
:class:`~llmscope_tui.costs.tracker.BudgetTracker`'s.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict, cast

from llmscope_tui.costs.errors import CostConfigError
from llmscope_tui.costs.formatting import format_usd
from llmscope_tui.costs.periods import PERIODS, period_bounds
from llmscope_tui.costs.projection import SpendRate, projected_period_spend
from llmscope_tui.model import Target

#: Budget bar states: warning from this fraction, critical from 1.0.
WARNING_AT = 0.8
CRITICAL_AT = 1.0

#: Alert thresholds, as fractions of a budget's limit (DESIGN 7).
BUDGET_THRESHOLDS: tuple[float, ...] = (0.5, 0.8, 1.0)

BudgetState = Literal["ok", "warning", "critical"]

# Sums of many float costs land a hair below a round limit (39.99999999 of 40): compare with slack.
_EPS = 1e-9

_SCOPE_HELP = 'expected "all", "provider:NAME", "target:NAME", "source:probe" or "source:app"'


def reached(fraction: float, level: float) -> bool:
    """Has spend reached ``level`` (a fraction of the limit)? With slack for float sums."""
    return fraction >= level - _EPS


def budget_state(fraction: float) -> BudgetState:
    """"ok", "warning" from 80 % or "critical" from 100 % of the limit."""
    if reached(fraction, CRITICAL_AT):
        return "critical"
    if reached(fraction, WARNING_AT):
        return "warning"
    return "ok"


def period_words(period: str) -> str:
    """"today" for a daily budget, "this month" for a monthly one."""
    return {"day": "today", "month": "this month"}.get(period, f"this {period}")


def spent_text(spent: float, limit: float, period: str) -> str:
    """'$40.00 of $50.00 this month'."""
    return f"{format_usd(spent)} of {format_usd(limit)} {period_words(period)}"


def threshold_text(
    name: str,
    threshold: float,
    spent: float,
    limit: float,
    period: str,
    projected: float | None = None,
) -> str:
    """The alert line: 'budget "all" reached 80 %: $40.00 of $50.00 this month, $61.20 projected'.

    The projection is named only when it is above what is spent.
    """
    text = f'budget "{name}" reached {threshold * 100:.0f} %: {spent_text(spent, limit, period)}'
    if projected is not None and projected > spent:
        text += f", {format_usd(projected)} projected"
    return text


class StoreScope(TypedDict, total=False):
    """A budget's scope as the store's spend filters (keyword arguments of ``store.spend``)."""

    target: str
    provider: str
    source: str


def parse_scope(scope: Any) -> tuple[str, str | None]:
    """'all' -> ('all', None); 'provider:openai' -> ('provider', 'openai'); CostConfigError else."""
    if not isinstance(scope, str):
        raise CostConfigError("scope", f"{_SCOPE_HELP}, got {scope!r}")
    text = scope.strip()
    if text == "all":
        return "all", None
    kind, sep, value = text.partition(":")
    kind, value = kind.strip(), value.strip()
    if not sep or kind not in ("provider", "target", "source") or not value:
        raise CostConfigError("scope", f"{_SCOPE_HELP}, got {scope!r}")
    if kind == "source" and value not in ("probe", "app"):
        raise CostConfigError("scope", f'source must be "probe" or "app", got {value!r}')
    return kind, value


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


@dataclass(frozen=True, slots=True)
class Budget:
    """A spending limit (DESIGN 7), e.g. ``Budget("all", 50.0, "month", "all", 1.0)``.

    ``scope``: "all" | "provider:NAME" | "target:NAME" | "source:probe" | "source:app".
    ``pause_probes_at``: pause the probes in scope once spend reaches this fraction of the
    limit (None: never pause). Build from config with :func:`parse_budget`.
    """

    name: str
    limit_usd: float
    period: str = "month"
    scope: str = "all"
    pause_probes_at: float | None = None
    _scope: tuple[str, str | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise CostConfigError("period", f'must be "day" or "month", got {self.period!r}')
        object.__setattr__(self, "_scope", parse_scope(self.scope))

    def matches(self, sample_like: Any) -> bool:
        """Does a sample (or a mapping with provider/target/source) count against this budget?

        A missing ``source`` counts as "probe" (the Sample default).
        """
        kind, value = self._scope
        if kind == "all":
            return True
        if kind == "provider":
            return _field(sample_like, "provider") == value
        if kind == "target":
            return _field(sample_like, "target") == value
        return (_field(sample_like, "source") or "probe") == value

    def matches_target(self, target: Target) -> bool:
        """Do this target's probes count against this budget?"""
        return self.matches({"provider": target.provider, "target": target.name, "source": "probe"})

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        return period_bounds(self.period, now)

    def store_filter(self) -> StoreScope:
        """The scope as the store's spend filters: {} for "all", else e.g. {"provider": "openai"}."""
        kind, value = self._scope
        return StoreScope() if kind == "all" or value is None else cast(StoreScope, {kind: value})


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Where one budget stands now: ``fraction`` = spent / limit, ``state`` its bar colour."""

    name: str
    spent: float
    limit: float
    fraction: float
    projected: float
    state: BudgetState
    period_start: datetime
    period_end: datetime
    period: str = "month"
    pause_probes: bool = False


def budget_status(
    budget: Budget, spent: float, now: datetime, rate: SpendRate | None = None
) -> BudgetStatus:
    """The status of ``budget`` given ``spent`` USD so far in the period containing ``now``;
    ``projected`` is at ``rate`` (the spend in scope over the last hour, or since start), or
    just ``spent`` when no rate is given."""
    start, end = budget.bounds(now)
    spent = max(float(spent), 0.0)
    limit = float(budget.limit_usd)
    if limit > 0:
        fraction = spent / limit
    else:
        fraction = math.inf if spent > 0 else 0.0
    pause = budget.pause_probes_at is not None and reached(fraction, budget.pause_probes_at)
    return BudgetStatus(
        name=budget.name,
        spent=spent,
        limit=limit,
        fraction=fraction,
        projected=projected_period_spend(spent, end, now, rate),
        state=budget_state(fraction),
        period_start=start,
        period_end=end,
        period=budget.period,
        pause_probes=pause,
    )
