"""What the data file says, for people: rollups, spend, budgets, probe overhead, recommendations.

The gathering functions return plain data (the TUI's panes use them too); render_report turns
them into the text `llmscope-tui report` prints. All of it reads the store: blocking, so a UI
calls it from a worker thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from llmscope_tui.config import Settings
from llmscope_tui.costs import (
    SECONDS_PER_MONTH,
    BudgetStatus,
    Measured,
    ModelUsage,
    OverheadLine,
    PriceBook,
    Recommendation,
    SpendRate,
    budget_status,
    format_usd,
    overhead_totals,
    period_bounds,
    probe_overhead,
    projected_period_spend,
    rate_window,
    recommend,
)
from llmscope_tui.durations import format_duration
from llmscope_tui.rollups import WINDOWS, Rollup, rollups

DAY = 86400.0


@dataclass(slots=True)
class CostSummary:
    """Spend in US dollars from the data file, priced models only."""

    today: float
    month: float
    last_30d: float
    projected_month_end: float
    by_target: dict[str, float] = field(default_factory=dict)  # this month
    by_provider: dict[str, float] = field(default_factory=dict)  # this month
    by_source: dict[str, float] = field(default_factory=dict)  # this month
    unpriced: list[str] = field(default_factory=list)  # "provider/model" seen this month without a price


def spend_rate(store: Any, now: float, started: float | None = None, **scope: Any) -> SpendRate:
    """Spend in ``scope`` (store filters, e.g. provider="openai") over the last hour, or since
    ``started`` (the data file's first sample) when shorter: the rate projections use."""
    since, until = rate_window(now, started)
    return SpendRate(store.spend(since=since, until=until, **scope) if since < until else 0.0, since, until)


def cost_summary(store: Any, prices: PriceBook, now: float | None = None) -> CostSummary:
    now_s = time.time() if now is None else now
    when = datetime.fromtimestamp(now_s, UTC)
    day_start = period_bounds("day", when)[0].timestamp()
    month_start, month_end = period_bounds("month", when)
    month = store.spend(since=month_start.timestamp())
    models = store.usage_by_model(since=month_start.timestamp())
    rate = spend_rate(store, now_s, store.first_sample_ts())
    return CostSummary(
        today=store.spend(since=day_start),
        month=month,
        last_30d=store.spend(since=now_s - 30 * DAY),
        projected_month_end=projected_period_spend(month, month_end, when, rate),
        by_target=store.spend_by("target", since=month_start.timestamp()),
        by_provider=store.spend_by("provider", since=month_start.timestamp()),
        by_source=store.spend_by("source", since=month_start.timestamp()),
        unpriced=sorted(f"{p}/{m}" for p, m, *_ in models if not prices.is_priced(p, m)),
    )


def budget_statuses(store: Any, settings: Settings, now: float | None = None) -> list[BudgetStatus]:
    now_s = time.time() if now is None else now
    when = datetime.fromtimestamp(now_s, UTC)
    started = store.first_sample_ts() if settings.budgets else None
    statuses = []
    for budget in settings.budgets:
        start = period_bounds(budget.period, when)[0].timestamp()
        scope = budget.store_filter()
        spent = store.spend(since=start, **scope)
        statuses.append(budget_status(budget, spent, when, spend_rate(store, now_s, started, **scope)))
    return statuses


def recommendations(
    store: Any, settings: Settings, prices: PriceBook, measured_rollups: list[Rollup], now: float | None = None
) -> list[Recommendation]:
    """Cheaper alternatives, saving per month at the current rate of use (the last hour's, or
    since the data begins when shorter), with what each alternative's targets measured, named:
    two targets of one model can differ (a broken gateway must not be read as the model)."""
    now_s = time.time() if now is None else now
    since, until = rate_window(now_s, store.first_sample_ts())
    if until <= since:
        return []
    per_month = SECONDS_PER_MONTH / (until - since)
    usage = [
        ModelUsage(provider, model, *(count * per_month for count in counts))
        for provider, model, *counts in store.usage_by_model(since=since, until=until)
    ]
    by_name = {t.name: t for t in settings.targets}
    measured: dict[tuple[str, str], list[Measured]] = {}
    for rollup in measured_rollups:
        target = by_name.get(rollup.key)
        if target is not None:
            ttft = rollup.metrics.get("ttft_ms")
            figures = Measured(target.name, ttft.p50 if ttft else None, rollup.error_rate)
            measured.setdefault((target.provider, target.model), []).append(figures)
    monitored = [(t.provider, t.model) for t in settings.targets]
    return recommend(usage, prices, monitored, measured)


def overhead(settings: Settings, prices: PriceBook) -> tuple[list[OverheadLine], float, float, list[str]]:
    """What the configured probing costs per day and month, before it is spent."""
    lines = probe_overhead(settings.enabled_targets, prices)
    per_day, per_month, unpriced = overhead_totals(lines)
    return lines, per_day, per_month, unpriced


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def _ms(stats: Any) -> str:
    return "-" if stats is None else f"{stats.p50:,.0f}/{stats.p95:,.0f}/{stats.p99:,.0f}"


def render_report(
    store: Any, settings: Settings, window: str = "24h", group_by: str = "target", now: float | None = None
) -> str:
    """The text of `llmscope-tui report` (as of ``now``, default the clock, for spend and budgets)."""
    now_s = time.time() if now is None else now
    prices = PriceBook(settings.prices)
    lines: list[str] = []
    ups = rollups(store, window, group_by, now_s)
    lines.append(f"Probes over the last {window}, by {group_by} (ms: p50/p95/p99)")
    if not ups:
        lines.append("  no probe samples in this window")
    header = f"  {group_by:<24} {'probes':>7} {'avail':>7}  {'TTFT ms':>17}  {'latency ms':>17}  {'tok/s p50':>9}  errors"
    if ups:
        lines.append(header)
    for r in ups:
        tps = r.metrics.get("tps")
        errors = ", ".join(f"{k} {n}" for k, n in sorted(r.errors_by_kind.items())) or "-"
        lines.append(
            f"  {r.key:<24} {r.count:>7} {_pct(r.availability):>7}  {_ms(r.metrics.get('ttft_ms')):>17}  "
            f"{_ms(r.metrics.get('latency_ms')):>17}  {('-' if tps is None else f'{tps.p50:.1f}'):>9}  {errors}"
        )
    lines += ["", *incident_lines(store, window, now_s)]
    summary = cost_summary(store, prices, now_s)
    lines += [
        "",
        "Spend (priced models)",
        (
            f"  today {format_usd(summary.today)}   this month {format_usd(summary.month)}   "
            f"last 30 days {format_usd(summary.last_30d)}   "
            f"projected month-end {format_usd(summary.projected_month_end)}"
        ),
    ]
    for title, table in (("provider", summary.by_provider), ("source", summary.by_source)):
        if table:
            lines.append(f"  this month by {title}: " + ", ".join(f"{k} {format_usd(v)}" for k, v in sorted(table.items())))
    if summary.unpriced:
        lines.append(f"  unpriced (no cost recorded): {', '.join(summary.unpriced)}")
    statuses = budget_statuses(store, settings, now_s)
    if statuses:
        lines += ["", "Budgets"]
        for s in statuses:
            lines.append(
                f"  {s.name:<16} {format_usd(s.spent):>10} of {format_usd(s.limit):<10} {s.fraction * 100:5.1f}%  "
                f"{s.state.upper():<8} projected {format_usd(s.projected)} by the end of the {s.period}"
            )
    if settings.enabled_targets:
        _, per_day, per_month, unpriced = overhead(settings, prices)
        lines += [
            "",
            f"Probe overhead at the configured intervals: {format_usd(per_day)}/day, "
            f"{format_usd(per_month)}/month" + (f" (unpriced: {', '.join(unpriced)})" if unpriced else ""),
        ]
    recs = recommendations(store, settings, prices, rollups(store, "24h", "target", now_s), now_s)
    if recs:
        lines += ["", "Recommendations"]
        lines += [f"  {r.text}" for r in recs[:10]]
    return "\n".join(lines) + "\n"


#: Incidents listed one per line in a report; the rest are counted.
REPORT_INCIDENTS = 20


def incident_lines(store: Any, window: str = "24h", now: float | None = None) -> list[str]:
    """The report's Incidents section: every incident open at some time in the window, newest
    first, one line each (state, since, how long, the target and what changed, the evidence)."""
    now_s = time.time() if now is None else now
    found = store.incidents(since=now_s - WINDOWS[window])
    if not found:
        return [f"Incidents over the last {window}: none"]
    open_now = sum(1 for i in found if i.open)
    lines = [f"Incidents over the last {window}: {len(found)} ({open_now} open), newest first"]
    for incident in sorted(found, key=lambda i: i.opened_ts, reverse=True)[:REPORT_INCIDENTS]:
        since = datetime.fromtimestamp(incident.start_ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        state = "OPEN  " if incident.open else "closed"
        how = "" if incident.open else f" ({incident.resolution or 'recovered'})"
        scope = f" [{incident.scope_words()}]" if incident.scope != "target" else ""
        rules = f"; rules {','.join(map(str, sorted(incident.rules)))}" if incident.rules else ""
        lines.append(
            f"  #{incident.id:<4} {state} {since} for {format_duration(incident.duration(now_s)):<7}{how} "
            f"{incident.target}: {incident.what()}{rules}{scope}"
        )
    if len(found) > REPORT_INCIDENTS:
        lines.append(f"  ... and {len(found) - REPORT_INCIDENTS} older (the incidents table of the data file has them all)")
    return lines
