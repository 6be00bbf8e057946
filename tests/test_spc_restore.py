"""A restart must not change what SPC says: a chart rebuilt from the data file (frozen baseline +
the latest phase II points replayed) fires exactly where the chart that never stopped fires."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmscope_tui.config import SpcSettings
from llmscope_tui.model import Sample
from llmscope_tui.spc.bank import RESTORE_RECENT, ChartBank
from llmscope_tui.store import SampleStore

N = 10  # baseline points


def samples(values: list[float]) -> list[Sample]:
    return [Sample(ts=1000.0 + i, target="t", provider="p", model="m", ok=1, ttft_ms=v) for i, v in enumerate(values)]


def firings(bank: ChartBank, feed: list[Sample]) -> list[tuple[float, int, float]]:
    return [(v.ts, v.rule, round(v.z, 12)) for s in feed for v in bank.observe(s).violations]


def restart(tmp_path: Path, values: list[float], stop_after: int) -> tuple[list, list, int]:
    """Stop after ``stop_after`` samples and restore from the data file: (the firings of the
    chart that never stopped on the rest, the restored chart's, the points it replayed)."""
    settings = SpcSettings(baseline_samples=N, transform="none", metrics=("ttft_ms",))
    feed = samples(values)
    store = SampleStore(tmp_path / f"s{stop_after}.db", flush_interval_s=0)
    try:
        live = ChartBank(settings, store)
        before = feed[:stop_after]
        for s in before:
            store.add(s)
            live.observe(s)
        store.flush()
        restored = ChartBank(settings, store)
        assert restored.restore() == 1
        chart = restored.chart("t", "ttft_ms")
        assert chart is not None and chart.phase == "monitoring"
        replayed = chart.n_monitored
        return firings(live, feed[stop_after:]), firings(restored, feed[stop_after:]), replayed
    finally:
        store.close()


def test_the_last_baseline_point_is_not_replayed_as_a_phase_ii_point(tmp_path: Path) -> None:
    # the last baseline point (12) is above the center (10.6); seven phase II points above it
    # then an eighth: only 8 in a row on one side, so rule 2 (9 in a row) must not fire yet
    baseline = [10.0, 11.0, 10.0, 11.0, 10.0, 11.0, 10.0, 11.0, 10.0, 12.0]
    values = baseline + [10.9] * 8 + [10.9, 9.0]
    uninterrupted, restored, replayed = restart(tmp_path, values, stop_after=N + 7)
    assert [(ts, rule) for ts, rule, _ in uninterrupted] == [(1000.0 + N + 8, 2)]  # the 9th above
    assert restored == uninterrupted
    assert replayed == 7


@pytest.mark.parametrize("seed", [1, 2])
def test_a_restart_at_any_point_fires_exactly_where_the_live_chart_does(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = list(100 + rng.normal(0, 5, N + 60))
    values[N + 12 : N + 30] = [v + 8 for v in values[N + 12 : N + 30]]  # a shift: runs and 2-of-3
    values[N + 40] = 200.0  # rule 1
    for stop_after in range(N, len(values), 2):
        uninterrupted, restored, replayed = restart(tmp_path, values, stop_after)
        if stop_after == N:
            assert {1, 5} <= {rule for _, rule, _ in uninterrupted}  # there is something to agree on
        assert restored == uninterrupted, f"restarted after sample {stop_after}"
        assert replayed == min(stop_after - N, RESTORE_RECENT)  # phase II points only
