"""The distribution view (`v`): the cursor's target's histogram, p50/p95/p99 equal to numpy's on
the samples written (and to the Targets table's rollups), readable without colour, Esc closes,
a one-line answer when there is nothing to draw."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmscope_tui.config import load_settings
from llmscope_tui.model import Sample
from llmscope_tui.rollups import rollups
from llmscope_tui.store import SampleStore, open_readonly
from llmscope_tui.tui.app import LLMScopeApp
from llmscope_tui.tui.distribution import (
    MARKS,
    DistributionScreen,
    HistogramPlot,
    hist_metric,
    legend,
    nice_ticks,
    read_distribution,
    render_histogram,
)
from llmscope_tui.tui.themes import ChartColors
from llmscope_tui.tui.widgets import ChartsPane, TargetsTable
from test_tui import _IdleMonitor, wait_for

pytestmark = pytest.mark.anyio

NOW = time.time()
RNG = np.random.default_rng(7)
#: the known values: "fast" succeeds 80 times in the last hour (TTFT gamma-spread around 300 ms)
TTFT = [float(v) for v in 250 + RNG.gamma(2.0, 40.0, 80)]
LATENCY = [t + 400 + 3 * i for i, t in enumerate(TTFT)]


def _samples(now: float) -> list[Sample]:
    """What the numpy truth must leave out is there too: failures, a success with no TTFT, a
    sample older than the hour, another target's, and ingested app calls of another name."""
    out = [
        Sample(ts=now - 3000 + i * 30, target="fast", provider="p", model="m", ok=1, ttft_ms=t, latency_ms=lat)
        for i, (t, lat) in enumerate(zip(TTFT, LATENCY, strict=True))
    ]
    out += [
        Sample(ts=now - 100, target="fast", provider="p", model="m", ok=0, error_kind="timeout_total", ttft_ms=9999.0),
        Sample(ts=now - 90, target="fast", provider="p", model="m", ok=1, ttft_ms=None, latency_ms=None),
        Sample(ts=now - 7200, target="fast", provider="p", model="m", ok=1, ttft_ms=50_000.0, latency_ms=60_000.0),
        Sample(ts=now - 60, target="slow", provider="p", model="m", ok=1, ttft_ms=5000.0, latency_ms=7000.0),
        Sample(ts=now - 50, target="broken", provider="p", model="m", ok=0, error_kind="rate_limit"),
    ]
    return out


def _write(db: Path, now: float = NOW) -> None:
    store = SampleStore(db)
    store.add_many(_samples(now))
    store.close()


def _shown(values: list[float]) -> str:
    """What the view must say: numpy's percentiles (linear, its default) as whole ms."""
    p50, p95, p99 = np.percentile(np.array(values), [50, 95, 99])
    return f"┃ p50 {p50:.0f} ms   ┊ p95 {p95:.0f} ms   ║ p99 {p99:.0f} ms"


def test_the_percentiles_are_numpys_and_the_targets_tables(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    _write(db)
    dist = read_distribution(db, "fast", "ttft_ms", "1h", now=NOW)
    assert dist.stats is not None and dist.stats.n == len(TTFT)
    truth = np.percentile(np.array(TTFT), [50, 95, 99])
    assert [dist.stats.p50, dist.stats.p95, dist.stats.p99] == pytest.approx(truth.tolist(), rel=1e-12)
    assert legend(dist) == _shown(TTFT)
    with open_readonly(db) as store:  # the Targets table's and report's figures for the same hour
        table = {r.key: r for r in rollups(store, "1h", "target", now=NOW)}
    assert table["fast"].metrics["ttft_ms"] == dist.stats
    latency = read_distribution(db, "fast", "latency_ms", "1h", now=NOW)
    assert legend(latency) == _shown(LATENCY)
    day = read_distribution(db, "fast", "ttft_ms", "24h", now=NOW)  # the older sample is in the day
    assert day.stats is not None and day.stats.n == len(TTFT) + 1


def test_no_successful_samples_and_no_file_read_as_empty(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    _write(db)
    assert read_distribution(db, "broken", "ttft_ms", "1h", now=NOW).stats is None
    assert read_distribution(tmp_path / "none.db", "fast", "ttft_ms", "1h", now=NOW).stats is None


def test_the_plot_has_each_percentiles_glyph_and_an_outlier_is_counted_not_drawn(tmp_path: Path) -> None:
    db = tmp_path / "d.db"
    _write(db)
    dist = read_distribution(db, "fast", "ttft_ms", "24h", now=NOW)  # with the 50 s outlier
    assert dist.stats is not None and dist.above == 1 and dist.upper >= dist.stats.p99
    for width, height in ((76, 15), (196, 42)):
        text = render_histogram(dist, width, height, ChartColors()).plain
        lines = text.split("\n")
        assert len(lines) <= height and max(len(line) for line in lines) <= width
        for _, glyph in MARKS.values():
            assert glyph in text, (glyph, width)
        assert "█" in text and "e+" not in text and "50,000" not in text  # plain ms ticks, outlier off the axis


def test_nice_ticks_and_the_metric_fallback() -> None:
    assert nice_ticks(241.0, 1013.0, 5) == [400.0, 600.0, 800.0, 1000.0]
    assert nice_ticks(0, 12, 4) == [0, 5, 10]
    assert [hist_metric(m) for m in ("ttft_ms", "latency_ms", "itl_ms", "tps")] == [
        "ttft_ms", "latency_ms", "ttft_ms", "ttft_ms",
    ]


def _app(tmp_path: Path) -> LLMScopeApp:
    config = tmp_path / "config.toml"
    config.write_text("".join(
        f'[[targets]]\nname = "{n}"\nprovider = "ollama"\nmodel = "m"\nbase_url = "http://127.0.0.1:9"\n\n'
        for n in ("slow", "fast", "broken")
    ))
    _write(tmp_path / "d.db")
    settings = load_settings(config, env={}, db=tmp_path / "d.db")
    return LLMScopeApp(settings, monitor=_IdleMonitor(), store_every_s=600)  # type: ignore[arg-type]


async def _open_for(pilot: Any, app: LLMScopeApp, target: str) -> DistributionScreen:
    table = app.query_one(TargetsTable)
    await wait_for(pilot, lambda: table.row_count == 3, what="three rows")
    table.move_cursor(row=table.get_row_index(target))
    await wait_for(pilot, lambda: app.query_one(ChartsPane).selected == target, what="the chart follows")
    await pilot.press("v")
    await wait_for(pilot, lambda: isinstance(app.screen, DistributionScreen), what="the view")
    screen = app.screen
    assert isinstance(screen, DistributionScreen)
    await wait_for(pilot, lambda: screen.dist is not None, what="the store read")
    await pilot.pause()
    return screen


def _text(screen: DistributionScreen, selector: str) -> str:
    return str(screen.query_one(selector).render())


@pytest.mark.slow  # a whole app through Pilot: about a second
async def test_v_shows_the_cursors_target_with_numpys_percentiles_and_esc_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from textual.widgets._footer import FooterKey

    monkeypatch.setenv("NO_COLOR", "1")
    app = _app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        screen = await _open_for(pilot, app, "fast")
        assert screen.target == "fast"
        assert _text(screen, "#dist-title").startswith(f"fast · TTFT ms · last 1h · {len(TTFT)} samples")
        assert _text(screen, "#dist-legend") == _shown(TTFT)
        plot = screen.query_one(HistogramPlot)
        assert plot.display and plot.size.height >= 15  # 80x24: most of the screen is the plot
        drawn = str(plot.render())
        assert all(glyph in drawn for _, glyph in MARKS.values())
        assert {k.description for k in screen.query(FooterKey)} == {"Close", "TTFT/latency", "Window", "Refresh"}
        await pilot.press("c")  # latency, read again
        await wait_for(pilot, lambda: screen.dist is not None and screen.dist.metric == "latency_ms", what="latency")
        await pilot.pause()
        assert _text(screen, "#dist-legend") == _shown(LATENCY)
        await pilot.press("w")  # the day: the 60 s outlier of two hours ago is in, counted, not drawn
        await wait_for(pilot, lambda: screen.dist is not None and screen.dist.window == "24h", what="24h")
        await pilot.pause()
        assert _text(screen, "#dist-legend") == _shown([*LATENCY, 60_000.0])
        assert _text(screen, "#dist-note").startswith("1 above ") and "(max 60000 ms)" in _text(screen, "#dist-note")
        await pilot.press("escape")
        await wait_for(pilot, lambda: app.screen is app.main, what="closed")


@pytest.mark.slow  # a whole app through Pilot: about a second
async def test_a_target_with_no_successful_sample_says_so_in_one_line(tmp_path: Path) -> None:
    app = _app(tmp_path)
    async with app.run_test(size=(120, 36)) as pilot:
        app.query_one(ChartsPane).metric = "itl_ms"  # no histogram of its own: TTFT instead
        screen = await _open_for(pilot, app, "broken")
        assert screen.metric == "ttft_ms"
        assert not screen.query_one(HistogramPlot).display
        assert _text(screen, "#dist-note").startswith("no successful samples yet in the last 1h")
        assert _text(screen, "#dist-legend") == ""
        await pilot.press("v")
        await wait_for(pilot, lambda: app.screen is app.main, what="closed")
