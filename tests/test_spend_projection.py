"""Spend projections and recommendation savings at the actual rate (DESIGN 7): period-end spend
= spent so far + (spend over the last hour, or since start when shorter) x time left.

Every expected figure is worked out by hand in the comment beside it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest

from conftest import fake_settings
from llmscope_tui.config import load_settings
from llmscope_tui.costs import (
    Budget,
    BudgetTracker,
    PriceBook,
    SpendRate,
    budget_event,
    projected_period_spend,
    rate_window,
)
from llmscope_tui.model import Sample
from llmscope_tui.monitor import Monitor
from llmscope_tui.report import budget_statuses, cost_summary, recommendations, render_report
from llmscope_tui.rollups import rollups
from llmscope_tui.store import SampleStore

NOON = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)  # a Monday in June (30 days)
MIDNIGHT = datetime(2026, 6, 16, tzinfo=UTC)
T0 = NOON.timestamp()


# -- the one function ------------------------------------------------------------------------


def test_just_started_projects_from_the_minutes_since_start() -> None:
    # the run: $0.0059 in the 2 minutes since start, at 12:02 -> $0.0059/120 s;
    # 11 h 58 min = 43,080 s left today: 0.0059 + 0.0059 x 43080/120 = 0.0059 x 360 = $2.124
    since, until = rate_window(T0 + 120, started=T0)
    assert (since, until) == (T0, T0 + 120)
    rate = SpendRate(0.0059, since, until)
    assert projected_period_spend(0.0059, MIDNIGHT, T0 + 120, rate) == pytest.approx(2.124)


def test_more_than_an_hour_in_only_the_last_hour_counts() -> None:
    # started at 07:00, now 12:00: the window is 11:00-12:00, not five hours
    assert rate_window(NOON, started=NOON - timedelta(hours=5)) == (T0 - 3600, T0)
    assert rate_window(NOON, started=None) == (T0 - 3600, T0)
    # $3 spent today, $0.50 of it in the last hour; 12 h left: 3 + 0.5 x 12 = $9.00
    rate = SpendRate(0.5, T0 - 3600, T0)
    assert projected_period_spend(3.0, MIDNIGHT, NOON, rate) == pytest.approx(9.0)
    # a month budget at the same rate: 15.5 days = 372 h left in June: 40 + 0.5 x 372 = $226
    assert projected_period_spend(40.0, datetime(2026, 7, 1, tzinfo=UTC), NOON, rate) == pytest.approx(226.0)


def test_a_period_about_to_end_adds_only_its_last_minute() -> None:
    # 23:59 with $1.20/hour: one minute left adds $0.02
    now = MIDNIGHT - timedelta(minutes=1)
    rate = SpendRate(1.2, now.timestamp() - 3600, now.timestamp())
    assert projected_period_spend(7.0, MIDNIGHT, now, rate) == pytest.approx(7.02)
    assert projected_period_spend(7.0, MIDNIGHT, MIDNIGHT + timedelta(seconds=1), rate) == 7.0  # over


def test_zero_spend_and_no_elapsed_time_project_the_spend_itself() -> None:
    assert projected_period_spend(0.0, MIDNIGHT, NOON, SpendRate(0.0, T0 - 3600, T0)) == 0.0
    assert projected_period_spend(2.0, MIDNIGHT, NOON, SpendRate(0.0, T0 - 3600, T0)) == 2.0
    assert projected_period_spend(2.0, MIDNIGHT, NOON, SpendRate(1.0, T0, T0)) == 2.0  # no time yet
    assert projected_period_spend(2.0, MIDNIGHT, NOON, None) == 2.0


# -- live: the tracker behind budget bars, alerts and headless budget events -------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _cost(dollars: float, provider: str = "openai") -> Sample:
    return Sample(ts=0.0, target="t", provider=provider, model="m", cost_usd=dollars)


def test_the_tracker_projects_at_the_rate_since_start_then_over_the_last_hour() -> None:
    clock = Clock(T0)
    budget = Budget("daily", 0.005, "day")
    tracker = BudgetTracker([budget], clock=clock)
    tracker.seed(lambda b, since: 0.0, data_start=None)  # an empty data file: start is now
    clock.now = T0 + 30
    tracker.observe(_cost(0.003))
    clock.now = T0 + 120
    events = tracker.observe(_cost(0.0029))  # $0.0059 in 2 minutes: past 100 % of $0.005
    # 0.0059 + 0.0059/120 x 43080 = $2.124 (was "$0.00062 projected" with a one-hour floor)
    assert events[-1].status.projected == pytest.approx(2.124)
    assert events[-1].message.endswith("$0.0059 of $0.0050 today, $2.12 projected")
    assert budget_event(events[-1], clock.now)["projected_usd"] == pytest.approx(2.124)
    # 13:30: the 12:00-12:02 spend has left the window; $0.01 at 13:00 is the last hour's rate
    clock.now = T0 + 3600
    tracker.observe(_cost(0.01))
    clock.now = T0 + 5400
    (status,) = tracker.statuses()
    # 0.0159 spent; 10 h 30 min = 37,800 s left at 0.01/3600 per s: 0.0159 + 0.105 = $0.1209
    assert status.spent == pytest.approx(0.0159) and status.projected == pytest.approx(0.1209)


def test_a_restart_projects_from_the_stored_last_hour() -> None:
    clock = Clock(T0)
    budget = Budget("openai", 100.0, "day", "provider:openai")
    tracker = BudgetTracker([budget], clock=clock)
    # the data file began at 09:00: $6 today, $1.20 of it since 11:00 (spend_since answers both)
    day_start = T0 - 12 * 3600
    tracker.seed(lambda b, since: 6.0 if since == day_start else 1.2, data_start=T0 - 3 * 3600)
    (status,) = tracker.statuses()
    # 6 + 1.2 x 12 h = $20.40
    assert status.spent == 6.0 and status.projected == pytest.approx(20.4)
    clock.now = T0 + 1800
    tracker.observe(_cost(5.0, provider="anthropic"))  # not in scope: no effect on the rate
    (status,) = tracker.statuses()
    # 12:30: half the seeded hour (11:30-12:00, $0.60) is still in the window:
    # 6 + 0.6/3600 x 41400 s = $12.90
    assert status.projected == pytest.approx(12.9, rel=1e-3)


# -- the data file: report, the TUI's cards and bars ---------------------------------------------

CONFIG = """
[[targets]]
name = "{name}"
provider = "vllm"
model = "big"
base_url = "http://127.0.0.1:9/v1"

[[targets]]
name = "healthy"
provider = "vllm"
model = "small"
base_url = "http://127.0.0.1:9/v1"

[[targets]]
name = "broken"
provider = "vllm"
model = "small"
base_url = "http://127.0.0.2:9/v1"

[[prices]]
provider = "vllm"
model = "big"
input_per_mtok = 10
output_per_mtok = 30

[[prices]]
provider = "vllm"
model = "small"
input_per_mtok = 1
output_per_mtok = 3

[[budgets]]
name = "daily"
limit_usd = 1
period = "day"

[[budgets]]
name = "small only"
limit_usd = 1
period = "day"
scope = "target:healthy"
"""


def _settings(tmp_path: Path) -> object:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG.format(name="main"))
    return load_settings(path, env={}, db=tmp_path / "s.db")


def _fill(db: Path, samples: list[Sample]) -> SampleStore:
    store = SampleStore(db)
    store.add_many(samples)
    assert store.flush(30)
    return store


def test_report_projects_from_the_data_since_it_began(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    # 59 calls of $0.0001 from 12:00:00, one every 2 s: $0.0059 in the two minutes to 12:02
    calls = [
        Sample(ts=T0 + 2 * i, target="main", provider="vllm", model="big", ok=1, tokens_in=10, tokens_out=0,
               cost_usd=0.0001)
        for i in range(59)
    ]  # fmt: skip
    store = _fill(tmp_path / "s.db", calls)
    try:
        now = T0 + 120
        daily, healthy_only = budget_statuses(store, settings, now)  # type: ignore[arg-type]
        # 0.0059 + 0.0059/120 x 43080 = $2.124
        assert daily.spent == pytest.approx(0.0059) and daily.projected == pytest.approx(2.124)
        assert healthy_only.spent == 0.0 and healthy_only.projected == 0.0  # nothing in its scope
        summary = cost_summary(store, PriceBook(settings.prices), now)  # type: ignore[attr-defined]
        # month: 15 days 11 h 58 min = 1,339,080 s left in June: 0.0059 x (1 + 1339080/120) = $65.844
        assert summary.projected_month_end == pytest.approx(65.844)
        text = render_report(store, settings, now=now)  # type: ignore[arg-type]
        assert "projected $2.12 by the end of the day" in text
    finally:
        store.close()


def test_recommendations_save_per_month_at_the_current_rate(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    # started 10 minutes ago; 1M input tokens on vllm/big in that time: $10 per 10 min.
    # A month (30 days = 4,320 ten-minute spans) at that rate: $43,200 on big, $4,320 on small
    store = _fill(tmp_path / "s.db", [
        Sample(ts=T0 - 600, target="main", provider="vllm", model="big", ok=1, tokens_in=500_000,
               tokens_out=0, cost_usd=5.0),
        Sample(ts=T0 - 300, target="main", provider="vllm", model="big", ok=1, tokens_in=500_000,
               tokens_out=0, cost_usd=5.0),
    ])  # fmt: skip
    try:
        (rec,) = recommendations(store, settings, PriceBook(settings.prices), [], T0)  # type: ignore[arg-type]
        assert rec.current_monthly == pytest.approx(43_200.0) and rec.alt_monthly == pytest.approx(4_320.0)
        assert rec.saving_monthly == pytest.approx(38_880.0)
        assert "$43,200 -> $4,320 per month at the current rate (-90 %)" in rec.text
    finally:
        store.close()


def test_a_recommendation_names_each_target_it_quotes(tmp_path: Path) -> None:
    """Two targets probe vllm/small: "healthy" answers, "broken" (a dead gateway) fails every
    time. The recommendation to switch to vllm/small must say whose figures are whose, not
    pin broken's 100 % errors on the model (and so on the healthy target)."""
    settings = _settings(tmp_path)
    samples = [
        Sample(ts=T0 - 600, target="main", provider="vllm", model="big", ok=1, tokens_in=1_000_000,
               tokens_out=0, cost_usd=10.0),
    ]  # fmt: skip
    for i in range(10):
        samples.append(Sample(ts=T0 - 500 + i, target="healthy", provider="vllm", model="small", ok=1,
                              ttft_ms=200.0 + i, latency_ms=400.0, tokens_in=5, tokens_out=5))  # fmt: skip
        samples.append(Sample(ts=T0 - 500 + i, target="broken", provider="vllm", model="small", ok=0,
                              error_kind="network"))  # fmt: skip
    store = _fill(tmp_path / "s.db", samples)
    try:
        ups = rollups(store, "24h", "target", T0)
        (rec,) = recommendations(store, settings, PriceBook(settings.prices), ups, T0)  # type: ignore[arg-type]
        assert [m.target for m in rec.alt_measured] == ["broken", "healthy"]
        assert rec.text.endswith(
            "; on target broken: error rate 100 %; on target healthy: p50 TTFT 204 ms, error rate 0 %"
        )
        text = render_report(store, settings, now=T0)  # type: ignore[arg-type]
        assert "on target healthy: p50 TTFT 204 ms, error rate 0 %" in text
        assert "small's error rate" not in text
    finally:
        store.close()


@pytest.mark.anyio
async def test_a_restarted_monitor_projects_from_the_stored_last_hour(
    tmp_path: Path, fake_provider: object
) -> None:
    """The monitor seeds its budgets with the data file's last hour and where the data begins:
    right after a restart its projection is the stored rate, not its own first seconds'."""
    noon = (time.time() // 86400) * 86400 + 12 * 3600  # today's noon: inside any retention
    budget = "[[budgets]]\nname = 'daily'\nlimit_usd = 1000\nperiod = 'day'\n"
    settings = fake_settings(tmp_path, fake_provider, extra=budget)
    store = _fill(settings.db_path, [  # data since 10:00; $3.60 at 11:30, inside the last hour
        Sample(ts=noon - 7200, target="fake", provider="openai-compatible", model="fake-model", cost_usd=0.0),
        Sample(ts=noon - 1800, target="fake", provider="openai-compatible", model="fake-model", cost_usd=3.6),
    ])  # fmt: skip
    store.close()
    monitor = Monitor(settings, wall_clock=lambda: noon)
    at_start: list[float] = []

    def on_start(event: dict[str, object]) -> None:
        if event["event"] == "start":
            at_start.append(monitor.budgets.statuses()[0].projected)

    monitor.subscribe(on_start)
    with anyio.fail_after(30):
        await monitor.run(count=1)
    # $3.60 in the last hour, 12 h left: 3.6 + 3.6 x 12 = $46.80 (a one-hour floor gave $7.20)
    assert at_start == [pytest.approx(46.8, rel=1e-6)]
