"""Snapshots of the live panes on fixed data: no probing, no wall clock in the picture.

The app gets a ``ReplayMonitor``: the real :class:`Monitor` (pricing, SPC charts, incidents,
alerts, event shapes) with its probe loop replaced by a fixed script of samples at fixed
timestamps. The script runs through the monitor before the app starts; the events it published
are applied to ``app.state`` with the view state's probe-rate clock following the samples' own
timestamps, so "probes/s" is a fixed number. Spend, budgets and the p50/p95 columns come from a
fixed store-read result handed to the app's own store-result path. The local time zone is UTC
for the clock columns and the chart's time axis.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console

from llmscope_tui.config import Settings, load_settings
from llmscope_tui.costs import ModelUsage, budget_status, recommend
from llmscope_tui.model import Sample
from llmscope_tui.monitor import Monitor
from llmscope_tui.report import CostSummary, overhead
from llmscope_tui.rollups import Rollup, metric_stats
from llmscope_tui.tui import state as state_module
from llmscope_tui.tui.app import LLMScopeApp
from llmscope_tui.tui.widgets import TargetsTable

pytestmark = pytest.mark.slow  # pictures of the whole app: a second or two each

#: 2024-06-10 08:00:00 UTC: the replay's first probe.
T0 = 1_718_006_400.0
ROUNDS = 48  # probes per target, one every INTERVAL_S
INTERVAL_S = 15.0
SEED = 4  # a seed whose noise alone opens no incident: the incidents are the scripted ones
#: the moment the fixed store read is taken (just after the last probe)
NOW = T0 + ROUNDS * INTERVAL_S

CONFIG = """
[monitor]
interval = "15s"

[spc]
baseline_samples = 20
close_after = 6

[alerts]
bell = false

[[targets]]
name = "anthropic/haiku"
provider = "openai-compatible"
model = "claude-haiku"
base_url = "http://127.0.0.1:9/v1"

[[targets]]
name = "gemini/flash"
provider = "openai-compatible"
model = "gemini-flash"
base_url = "http://127.0.0.1:9/v1"

[[targets]]
name = "local/llama3"
provider = "ollama"
model = "llama3"
base_url = "http://127.0.0.1:9"

[[targets]]
name = "openai/gpt-4o-mini"
provider = "openai-compatible"
model = "gpt-4o-mini"
base_url = "http://127.0.0.1:9/v1"

[[prices]]
model = "claude-haiku"
input_per_mtok = 0.8
output_per_mtok = 4.0

[[prices]]
model = "gemini-flash"
input_per_mtok = 0.1
output_per_mtok = 0.4

[[prices]]
model = "llama3"
input_per_mtok = 0
output_per_mtok = 0

[[prices]]
model = "gpt-4o-mini"
input_per_mtok = 0.15
output_per_mtok = 0.6

[[budgets]]
name = "all probes"
limit_usd = 0.05
period = "month"

[[budgets]]
name = "today"
limit_usd = 0.005
period = "day"

[[budgets]]
name = "haiku"
limit_usd = 0.003
period = "day"
scope = "target:anthropic/haiku"
"""


# -- the fixed script ----------------------------------------------------------------------


def _noise(rng: random.Random) -> float:
    """About N(0, 1) from random.random() alone, whose sequence Python keeps across versions."""
    return sum(rng.random() for _ in range(12)) - 6.0


def script_samples(settings: Settings) -> list[Sample]:
    """48 probes per target: haiku's TTFT shifts up (an open incident), llama drifts and comes
    back (a closed one), gemini is rate limited at the end (down), gpt-4o-mini stays calm."""
    targets = {t.name: t for t in settings.targets}
    personality = {  # name: (offset in the round, TTFT median, spread, gap ms, tokens)
        "anthropic/haiku": (0.0, 520.0, 0.12, 17.0, 14),
        "gemini/flash": (4.0, 270.0, 0.2, 9.0, 12),
        "local/llama3": (8.0, 650.0, 0.05, 28.0, 13),
        "openai/gpt-4o-mini": (11.0, 330.0, 0.1, 12.0, 11),
    }
    rng = random.Random(SEED)
    samples: list[Sample] = []
    for i in range(ROUNDS):
        for name, (offset, median, spread, gap, tokens) in personality.items():
            target = targets[name]
            ts = T0 + i * INTERVAL_S + offset
            base = {"ts": ts, "target": name, "provider": target.provider, "model": target.model}
            if name == "gemini/flash" and i in (33, 34, 45, 46, 47):
                samples.append(Sample(**base, ok=0, error_kind="rate_limit", http_status=429, retry_after_s=1.0))
                continue
            factor = 1.0 + spread * _noise(rng)
            if name == "anthropic/haiku" and i >= 38:
                factor *= 1.8  # the latency shift
            if name == "local/llama3" and 21 <= i < 32:
                factor *= 1.0 + 0.035 * (i - 20)  # a slow drift, then back to normal
            ttft = round(median * factor, 1)
            itl = round(gap * (1.0 + 0.1 * _noise(rng)), 2)
            latency = round(ttft + itl * (tokens - 1), 1)
            samples.append(
                Sample(
                    **base, ok=1, http_status=200, connect_ms=0.0, ttft_ms=ttft, latency_ms=latency, itl_ms=itl,
                    tps=round(1000.0 / itl, 1), tokens_in=21, tokens_out=tokens,
                )
            )
    return samples


class _Sink:
    """Where the replayed monitor's writes go (the picture never reads them back)."""

    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.violations: list[Any] = []

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    def add_violation(self, violation: Any) -> None:
        self.violations.append(violation)

    def save_baseline(self, *args: Any) -> None:
        pass

    def clear_baselines(self, target: str | None = None) -> None:
        pass

    def save_incident(self, incident: Any) -> None:
        pass


class ReplayMonitor(Monitor):
    """The real Monitor whose probe loop is a fixed script, run before the app starts.

    Every sample takes the monitor's own path (price, publish, SPC charts, incidents, alerts), so ``charts``, ``prices`` and the recorded events are what a live run with
    these measurements would have produced. ``run()`` then just waits for ``stop()``.
    """

    def __init__(self, settings: Settings, samples: list[Sample]) -> None:
        super().__init__(settings, store=_Sink(), wall_clock=lambda: NOW)  # type: ignore[arg-type]
        self.recorded: list[dict[str, Any]] = []
        self.subscribe(self.recorded.append)
        for sample in samples:
            self._on_sample(sample)
        self._stopped = asyncio.Event()

    async def run(self, **_: Any) -> Any:
        await self._stopped.wait()
        self.publish({"event": "stop", "ts": NOW, "reason": self.summary.reason})
        return self.summary

    def stop(self, reason: str = "stopped", grace_s: float | None = None) -> None:
        super().stop(reason, grace_s)
        self._stopped.set()


class _ReplayTime:
    """Stands in for the ``time`` module inside tui/state.py: ``monotonic()`` is the replay's
    clock, so the probe rate in the status line is computed from the samples' timestamps."""

    def __init__(self, now: float) -> None:
        self.now = now

    def monotonic(self) -> float:
        return self.now

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def store_result(settings: Settings, monitor: ReplayMonitor) -> dict[str, Any]:
    """What the app's store read would return at NOW for these samples, from fixed figures and
    the real cost functions (budget states, recommendations, probe overhead, percentiles)."""
    samples: list[Sample] = monitor.store.samples  # type: ignore[attr-defined]
    by_target: dict[str, float] = {}
    for s in samples:
        by_target[s.target] = by_target.get(s.target, 0.0) + (s.cost_usd or 0.0)
    today = sum(by_target.values())
    providers: dict[str, float] = {}
    for t in settings.targets:
        providers[t.provider] = providers.get(t.provider, 0.0) + 9.0 * by_target.get(t.name, 0.0)
    summary = CostSummary(
        today=today,
        month=9.0 * today,
        last_30d=9.0 * today,
        projected_month_end=30.0 * today,
        by_target={k: 9.0 * v for k, v in by_target.items()},
        by_provider=providers,
        by_source={"probe": 9.0 * today},
    )
    when = datetime.fromtimestamp(NOW, UTC)
    spent = {"all probes": summary.month, "today": today, "haiku": by_target["anthropic/haiku"]}
    budgets = [budget_status(b, spent[b.name], when) for b in settings.budgets]
    stats = {}
    for t in settings.targets:
        mine = [s for s in samples if s.target == t.name]
        rollup = Rollup(key=t.name, window="1h", count=len(mine), ok=sum(s.ok for s in mine))
        for metric in ("ttft_ms", "latency_ms", "itl_ms", "tps"):
            values = np.array([getattr(s, metric) for s in mine if s.ok], dtype=float)
            if (found := metric_stats(values)) is not None:
                rollup.metrics[metric] = found
        stats[t.name] = rollup
    cloud = [t for t in settings.targets if t.provider != "ollama"]
    usage = [ModelUsage(t.provider, t.model, 2_000_000.0, 600_000.0) for t in cloud]
    recs = recommend(usage, monitor.prices, [(t.provider, t.model) for t in cloud], catalogue=False, when=when)
    _, per_day, per_month, unpriced = overhead(settings, monitor.prices)
    return {
        "overhead": (per_day, per_month, unpriced),
        "summary": summary,
        "budgets": budgets,
        "recs": [r.text for r in recs[:3]],
        "stats": stats,
        "today": by_target,
    }


# -- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture
def utc() -> Iterator[None]:
    """Local time is UTC while the test runs (the clock columns and the chart axis)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TZ", "UTC")
        time.tzset()
        yield
    time.tzset()


@pytest.fixture
def live_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, utc: None) -> LLMScopeApp:
    """The app over the replayed script, its state fed before the first render."""
    (tmp_path / "config.toml").write_text(CONFIG)
    monkeypatch.chdir(tmp_path)  # the status line shows the paths: keep them short and fixed
    settings = load_settings(tmp_path / "config.toml", env={})
    settings = dataclasses.replace(settings, config_file=Path("config.toml"), db_path=Path("samples.db"))
    assert not settings.db_path.exists()  # the app's own store read finds no file: nothing moves
    monitor = ReplayMonitor(settings, script_samples(settings))
    clock = _ReplayTime(T0)
    monkeypatch.setattr(state_module, "time", clock)
    app = LLMScopeApp(settings, fps=10, store_every_s=3600, monitor=monitor)
    for event in monitor.recorded:
        if event["event"] == "sample":
            clock.now = float(event["ts"])  # each sample "arrives" at its own time
        app.state.apply(event)
    app.snapshot_store_result = store_result(settings, monitor)  # type: ignore[attr-defined]
    return app


async def show_live(pilot: Any, *keys: str) -> None:
    """After the first layout: hand the app the fixed store read (its own store-result path:
    costs pane, p50/p95, cost today), let the layout settle, press ``keys``, and redraw every
    pane at its final size the way the next sample would (the panes redraw when the state
    changes, not when a pane is resized). Toasts are dropped: they cover the panes."""
    app: LLMScopeApp = pilot.app
    await pilot.pause()
    # the app's own first store read (0.05 s after start, in a worker: no data file, so only the
    # probe overhead) lands first, whenever a busy machine lets it; a late one would redraw the
    # tables between the steps below and change their column widths
    deadline = time.monotonic() + 30
    while app.reads.cost_data.overhead_day is None or app.reads.busy:
        assert time.monotonic() < deadline, "the app's first store read never came"
        await pilot.pause(0.01)
    app.reads.apply(app.snapshot_store_result)  # type: ignore[attr-defined]
    await pilot.pause()
    await pilot.press(*keys)
    await pilot.pause()
    app.bridge.redraw()
    app.clear_notifications()
    await pilot.pause()


def screen_text(app: LLMScopeApp) -> str:
    """The screen as plain text (what the SVG shows, without colours)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True, legacy_windows=False, safe_box=False)
    console.print(app.screen._compositor.render_update(full=True, screen_stack=app._background_screens))
    return console.export_text()


# -- the replay itself ------------------------------------------------------------------------


def test_the_replay_has_what_the_snapshots_show(live_app: LLMScopeApp) -> None:
    """The script produces what the pictures are meant to show, independent of the pixels."""
    state = live_app.state
    assert state.samples == ROUNDS * 4 and state.errors == 5
    haiku = live_app.monitor.charts.chart("anthropic/haiku", "ttft_ms")
    assert haiku is not None and haiku.phase == "monitoring"
    assert haiku.limits(original_unit=True).ucl < 520 * 1.5
    assert state.targets["anthropic/haiku"].firings["ttft_ms"][-1][0] == state.targets["anthropic/haiku"].series["ttft_ms"][-1][0]
    incidents = {i.target: i for i in state.incidents.values()}
    haiku_incident = incidents["anthropic/haiku"]
    assert haiku_incident.open and 1 in haiku_incident.rules and haiku_incident.metrics["ttft_ms"].effect > 0.5
    assert not incidents["local/llama3"].open and incidents["local/llama3"].resolution == "recovered"
    assert incidents["gemini/flash"].down and incidents["gemini/flash"].error_kind == "rate_limit"
    assert "openai/gpt-4o-mini" not in incidents and len(state.incidents) == 3
    assert state.targets["gemini/flash"].status() == "down"
    assert state.targets["anthropic/haiku"].status(state.open_incident("anthropic/haiku")) == "degraded"
    assert state.targets["openai/gpt-4o-mini"].status(state.open_incident("openai/gpt-4o-mini")) == "up"
    assert 0.0 < state.probes_per_s() < 1.0  # from the samples' own times: 4 targets every 15 s
    states = {b.state for b in live_app.snapshot_store_result["budgets"]}  # type: ignore[attr-defined]
    assert states == {"ok", "warning", "critical"}


@pytest.mark.anyio
async def test_the_live_picture_is_stable(live_app: LLMScopeApp) -> None:
    """Two frames a while apart are identical: no wall clock, no moving rate in the picture."""
    async with live_app.run_test(size=(160, 48)) as pilot:
        await show_live(pilot)
        first = screen_text(live_app)
        await pilot.pause(1.2)  # past the slow-pane refresh and several status repaints
        assert screen_text(live_app) == first
        assert "0.3 probes/s" in first and "192 samples" in first
        for words in ("UCL", "LCL", "✖", "● open", "○ closed", "CRITICAL", "WARNING", "today: $"):
            assert words in first, words


# -- snapshots --------------------------------------------------------------------------------


def test_snapshot_live_80x24(snap_compare: Any, live_app: LLMScopeApp) -> None:
    """Narrow: Targets and the top of Charts (the body scrolls)."""
    assert snap_compare(live_app, terminal_size=(80, 24), run_before=show_live)


def test_snapshot_live_80x24_charts(snap_compare: Any, live_app: LLMScopeApp) -> None:
    """Narrow, Charts maximised: sparklines, the control chart with its limits and a firing."""

    async def run_before(pilot: Any) -> None:
        await show_live(pilot, "2", "m")

    assert snap_compare(live_app, terminal_size=(80, 24), run_before=run_before)


def test_snapshot_live_80x24_incidents(snap_compare: Any, live_app: LLMScopeApp) -> None:
    """Narrow, Incidents maximised: open and closed incidents with their times (UTC)."""

    async def run_before(pilot: Any) -> None:
        await show_live(pilot, "3", "m")

    assert snap_compare(live_app, terminal_size=(80, 24), run_before=run_before)


def test_snapshot_live_80x24_costs(snap_compare: Any, live_app: LLMScopeApp) -> None:
    """Narrow, Costs maximised: cards and budget bars (ok, warning, critical)."""

    async def run_before(pilot: Any) -> None:
        await show_live(pilot, "4", "m")

    assert snap_compare(live_app, terminal_size=(80, 24), run_before=run_before)


def test_snapshot_live_160x48(snap_compare: Any, live_app: LLMScopeApp) -> None:
    """Wide: every pane at once."""
    assert snap_compare(live_app, terminal_size=(160, 48), run_before=show_live)


@pytest.fixture
def no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")


def test_snapshot_live_no_color_120x40(snap_compare: Any, no_color: None, live_app: LLMScopeApp) -> None:
    """NO_COLOR: states are told by words and glyphs (● open, ✖, WARNING), not by colour."""
    assert live_app.no_color
    assert snap_compare(live_app, terminal_size=(120, 40), run_before=show_live)


def test_snapshot_confirm_rebaseline_80x24(snap_compare: Any, live_app: LLMScopeApp) -> None:
    """The rebaseline question over the live panes: its Yes / No buttons, "No" highlighted."""
    assert snap_compare(live_app, terminal_size=(80, 24), run_before=lambda pilot: show_live(pilot, "b"))


# -- the confirm dialog by mouse, in the app ------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("button", ["yes", "no"])
async def test_rebaseline_by_mouse(live_app: LLMScopeApp, button: str) -> None:
    from llmscope_tui.tui.screens import ConfirmScreen

    charts = live_app.monitor.charts
    async with live_app.run_test(size=(80, 24)) as pilot:
        await show_live(pilot)
        # the highlighted target (the first row: not-up targets come first)
        selected = live_app.query_one(TargetsTable).selected_target()
        assert selected is not None and selected != "openai/gpt-4o-mini"
        assert charts.chart(selected, "ttft_ms").phase == "monitoring"
        await pilot.press("b")
        assert isinstance(live_app.screen, ConfirmScreen)
        assert await pilot.click(f"#{button}")
        await pilot.pause()
        assert not isinstance(live_app.screen, ConfirmScreen)
        phases = {charts.chart(selected, m).phase for m in ("ttft_ms", "latency_ms", "itl_ms", "tps")}
        others = {charts.chart("openai/gpt-4o-mini", "ttft_ms").phase}
        if button == "yes":  # the selected target only: its charts collect a new baseline
            assert phases == {"baseline"} and others == {"monitoring"}
            await pilot.pause()
            assert live_app.state.rebaselines == 1
        else:
            assert phases == {"monitoring"} and live_app.state.rebaselines == 0
