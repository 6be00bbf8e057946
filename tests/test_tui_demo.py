"""The real demo through the TUI: the simulated provider over HTTP on 127.0.0.1, its four
targets through the real protocols, SPC on the live samples, and a scripted incident that the
banner names (the demo's ``demo`` events) and that shows up as one incident in the Incidents
pane and a ✖ on the control chart, in a few seconds."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmscope_tui.config import load_settings
from llmscope_tui.demo import DemoProvider, DemoTimeline
from llmscope_tui.monitor import Monitor
from llmscope_tui.session import demo_prices
from llmscope_tui.tui.app import LLMScopeApp
from llmscope_tui.tui.widgets import ChartsPane, IncidentsTable, TargetsTable

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # the real demo through the app: seconds

#: A bound for a hang, not a speed target: the test stands still until each step has happened,
#: however slowly a busy machine gets there (typical: 3-5 s).
BUDGET_S = 60.0
SHIFTED = "demo-anthropic"  # claude-haiku-sim: the timeline's latency shift (TTFT x1.8)


class HeldClock:
    """The demo's clock, standing still: at 0 while every chart collects its baseline in calm
    weather, then at a moment inside the scripted shift for as long as the probes take to see it."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def wait_for(pilot: Any, condition: Callable[[], bool], deadline: float, what: str | Callable[[], str]) -> None:
    loop = asyncio.get_running_loop()
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what if isinstance(what, str) else what()}")
        await pilot.pause(0.05)


def _cells(table: Any) -> list[list[str]]:
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


async def test_the_demo_incident_reaches_the_incidents_pane(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BUDGET_S - 4.0  # what is left is for the clean stop
    clock = HeldClock()
    # x 0.02: the shift runs 2.1-3.6 s on the demo's clock, the 429 burst 2.8-3.0 s, the cycle
    # 4.2 s; latencies x 0.05: a probe takes tens of milliseconds
    demo = DemoProvider(clock=clock, timeline=DemoTimeline().scaled(0.02), latency_scale=0.05)
    settings = load_settings(demo=True, db=tmp_path / "demo.db")
    with demo:
        ready = dataclasses.replace(
            settings,
            targets=demo.targets(interval_s=0.1),
            prices=[*settings.prices, *demo_prices()],
            # 20 points: the incident detector's reference starts from them, and 5 on a loaded
            # machine could be so spread (one probe stalled 3x) that the 1.8x shift looked like
            # noise until its points joined the reference (no incident in 50 s, twice in CI)
            spc=dataclasses.replace(settings.spc, baseline_samples=20),
        )
        monitor = Monitor(ready, sources=[demo.announce])  # the demo says which incident runs
        app = LLMScopeApp(ready, fps=10, store_every_s=1.0, shutdown_timeout_s=3.0, monitor=monitor)
        async with app.run_test(size=(120, 40)) as pilot:
            names = [t.name for t in ready.targets]
            table = app.query_one(TargetsTable)
            # samples reach the Targets table: a row per target, a measured TTFT in each
            await wait_for(
                pilot,
                lambda: table.row_count == 4 and all(app.state.targets[n].last.get("ttft_ms") for n in names),
                deadline, "a TTFT from every demo target",
            )

            def measured_rows() -> bool:
                rows = {r[1]: r for r in _cells(table)}
                return set(rows) == set(names) and all(r[2] not in ("-", "") for r in rows.values())

            await wait_for(pilot, measured_rows, deadline, "a TTFT in every row of the Targets table")

            def baselines_frozen() -> bool:
                charts = [app.monitor.charts.chart(n, "ttft_ms") for n in names]
                return all(c is not None and c.phase == "monitoring" for c in charts)

            # the first probes carry the start-up (connections, the price database loading): a
            # second baseline, as the b key takes, is the calm one the incident is tested against
            await wait_for(pilot, baselines_frozen, deadline, "every TTFT chart past its first baseline")
            app.monitor_thread.call(app.monitor.rebaseline)  # on the monitor's loop, as the b key does
            await wait_for(pilot, baselines_frozen, deadline, "every TTFT chart past its second baseline")
            clock.now = 2.5  # inside the scripted shift (and outside the 429 burst) until the end

            incidents = app.query_one(IncidentsTable)
            released = time.time()
            banner = app.query_one("#banner")
            await wait_for(
                pilot, lambda: "DEMO · scripted now: " in str(banner.render()), deadline,
                "the banner to name the scripted incident",
            )

            def shifted_incident() -> str | None:
                """The row key of the shifted target's incident that carries the scripted shift,
                once it is listed: one that opened with it, or one that noise opened just before
                (short baselines allow it; a target has one incident) and that the shift's
                probes then moved to a TTFT or latency effect past +50 % (the shift is +80 %)."""
                shown = {str(k.value) for k in incidents.rows}
                for incident in app.state.incidents.values():
                    if incident.target != SHIFTED or str(incident.id) not in shown:
                        continue
                    shifted = any(m.metric in ("ttft_ms", "latency_ms") and m.effect >= 0.5 for m in incident.metrics.values())
                    if incident.opened_ts >= released or (incident.open and shifted):
                        return str(incident.id)
                return None

            def seen() -> str:
                chart = app.monitor.charts.chart(SHIFTED, "ttft_ms")
                baseline = None if chart is None else chart.baseline
                return str({
                    "incidents": [(i.id, round(i.opened_ts - released, 1), i.open, {m.metric: round(m.effect, 2) for m in i.metrics.values()})
                                  for i in app.state.incidents.values() if i.target == SHIFTED],
                    "phase": None if chart is None else chart.phase,
                    "baseline": None if baseline is None else (round(baseline.center, 3), round(baseline.sigma, 3)),
                    "last ttft": app.state.targets[SHIFTED].last.get("ttft_ms"),
                    "samples": app.state.samples, "violations": app.state.violations,
                })
            await wait_for(pilot, lambda: shifted_incident() is not None, deadline,
                           lambda: f"a {SHIFTED} incident in the Incidents pane (its incidents: {seen()})")
            key = shifted_incident()
            assert key is not None
            row = [str(c) for c in incidents.get_row(key)]
            assert row[1].startswith(SHIFTED) and "+" in row[4] and ("open" in row[0] or "closed" in row[0]), row
            # Enter on the incident charts its target and biggest change, the firings marked ✖.
            # Paused, so that new incidents (listed newest first) do not move the rows under the
            # cursor. The keys' actions are called directly: Pilot.press waits for the process to
            # go idle, up to 2 s a key while 40 probes a second run (the keys themselves are
            # tested in test_tui.py).
            app.action_pause()
            app.action_focus_pane(2)
            incidents.move_cursor(row=incidents.get_row_index(key))
            incidents.action_select_cursor()
            await pilot.pause()
            charts = app.query_one(ChartsPane)
            assert charts.selected == SHIFTED and charts.metric in ("ttft_ms", "latency_ms") and app.focused is charts
            app.action_pause()
            await wait_for(
                pilot, lambda: "✖" in str(app.query_one("#chart").render()), deadline, "a ✖ on the control chart"
            )
            assert str(app.query_one("#chart-title").render()).startswith(f"{SHIFTED} · ")
            assert app.state.violations > 0 and "DEMO" in str(app.query_one("#banner").render())
            await app.action_quit()
            await wait_for(pilot, app._monitor_done.is_set, loop.time() + 15.0, "the monitor to stop")
        assert app.return_code == 0
        assert loop.time() < deadline + 15.0
