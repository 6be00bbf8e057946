"""Costs: prices, budgets, projections and recommendations (DESIGN 7).

Pure logic, no I/O of its own: the monitor prices samples with a :class:`PriceBook`, the store
sums spend per period, and this package turns spend into budget states, alerts, projections and
"switch X to Y" recommendations. It imports nothing from the UI (no Textual) and nothing from
the probe, and importing it does not import genai-prices either (see :mod:`.prices`).

Import everything from here (``from llmscope_tui.costs import PriceBook``); the modules are:

``prices``
    :class:`PriceBook`: every price from genai-prices' bundled snapshot or a ``[[prices]]``
    override; :data:`PROVIDER_IDS`. Its docstring says exactly how a call is priced.
``units``
    The value types: :class:`PriceOverride`, :class:`UnitPrices` (base-tier prices and their
    cost), :class:`CatalogueModel`.
``periods``
    :func:`period_bounds` (UTC day, calendar month); a month is :data:`DAYS_PER_MONTH` days.
``projection``
    :func:`projected_period_spend`: period-end spend at the actual rate, the spend over the last
    hour or since start when shorter (:func:`rate_window`, :class:`SpendRate`; live:
    :class:`RecentSpend`).
``budgets``
    :class:`Budget`, :class:`BudgetStatus`, :func:`budget_status`: warning at 80 %, critical
    at 100 %; the alert thresholds (50, 80, 100 %) and the words of a budget alert
    (:func:`threshold_text`).
``alerter``
    :class:`BudgetAlerter` and :class:`BudgetEvent`: an alert when 50 %, 80 % and 100 % are
    first reached in a period, and optional probe pausing. See :class:`BudgetAlerter` for what
    happens across restarts.
``tracker``
    :class:`BudgetTracker`: live spend per budget, seeded from the data file, kept current per
    sample; :func:`budget_event`, the JSON-log shape of a budget event.
``overhead``
    What monitoring itself costs: :func:`probe_overhead`, :func:`overhead_totals`.
``recommendations``
    :func:`recommend`: cheaper alternatives to the models in use.
``parsing``
    ``[[budgets]]`` and ``[[prices]]`` config tables -> :class:`Budget` / :class:`PriceOverride`.
``errors``
    :class:`CostConfigError`.
``formatting``
    :func:`format_usd`, :func:`usd_column`.

Dependencies, with no cycle: formatting, errors, periods, projection and prices import nothing
from the package; budgets uses errors, formatting, periods and projection; alerter uses budgets;
tracker uses alerter, budgets, periods and projection; overhead uses periods and prices;
recommendations uses prices and formatting; parsing uses errors, periods, prices and budgets.
"""

from __future__ import annotations

from llmscope_tui.costs.alerter import BudgetAlerter, BudgetEvent
from llmscope_tui.costs.budgets import (
    BUDGET_THRESHOLDS,
    CRITICAL_AT,
    WARNING_AT,
    Budget,
    BudgetState,
    BudgetStatus,
    budget_state,
    budget_status,
    threshold_text,
)
from llmscope_tui.costs.errors import CostConfigError
from llmscope_tui.costs.formatting import format_usd, usd_column
from llmscope_tui.costs.overhead import (
    PROMPT_OVERHEAD_TOKENS,
    OverheadLine,
    estimate_prompt_tokens,
    overhead_totals,
    probe_overhead,
)
from llmscope_tui.costs.parsing import parse_budget, parse_budgets, parse_price
from llmscope_tui.costs.periods import DAYS_PER_MONTH, PERIODS, SECONDS_PER_MONTH, period_bounds
from llmscope_tui.costs.prices import PROVIDER_IDS, PriceBook
from llmscope_tui.costs.projection import (
    RATE_WINDOW_S,
    RecentSpend,
    SpendRate,
    projected_period_spend,
    rate_window,
)
from llmscope_tui.costs.recommendations import (
    NON_CHAT_MARKERS,
    Measured,
    ModelUsage,
    Recommendation,
    recommend,
)
from llmscope_tui.costs.tracker import BudgetTracker, SpendQuery, budget_event
from llmscope_tui.costs.units import CatalogueModel, PriceOverride, UnitPrices

__all__ = [
    "BUDGET_THRESHOLDS",
    "CRITICAL_AT",
    "DAYS_PER_MONTH",
    "NON_CHAT_MARKERS",
    "PERIODS",
    "PROMPT_OVERHEAD_TOKENS",
    "PROVIDER_IDS",
    "RATE_WINDOW_S",
    "SECONDS_PER_MONTH",
    "WARNING_AT",
    "Budget",
    "BudgetAlerter",
    "BudgetEvent",
    "BudgetState",
    "BudgetStatus",
    "BudgetTracker",
    "CatalogueModel",
    "CostConfigError",
    "Measured",
    "ModelUsage",
    "OverheadLine",
    "PriceBook",
    "PriceOverride",
    "RecentSpend",
    "Recommendation",
    "SpendQuery",
    "SpendRate",
    "UnitPrices",
    "budget_event",
    "budget_state",
    "budget_status",
    "estimate_prompt_tokens",
    "format_usd",
    "overhead_totals",
    "parse_budget",
    "parse_budgets",
    "parse_price",
    "period_bounds",
    "probe_overhead",
    "projected_period_spend",
    "rate_window",
    "recommend",
    "threshold_text",
    "usd_column",
]
