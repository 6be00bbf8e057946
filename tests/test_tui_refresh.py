"""What a refresh costs: unchanged table cells are not rendered again, and a pane off the screen
(maximised away, not displayed) is not redrawn but is up to date the moment it is shown."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from llmscope_tui.config import load_settings
from llmscope_tui.tui.app import LLMScopeApp
from llmscope_tui.tui.widgets import ChartsPane, IncidentsTable, TargetsTable
from test_tui_targets import CONFIG, IdleMonitor, make_app, settle

pytestmark = pytest.mark.anyio


def sample(name: str, ts: float, ttft: float) -> dict[str, Any]:
    """A probe of ``name`` whose TTFT is new and whose other figures are as make_app's zeta."""
    return {"event": "sample", "target": name, "ts": ts, "source": "probe", "ok": True,
            "ttft_ms": ttft, "latency_ms": 900.0, "tps": 50.0}


def sparks(app: LLMScopeApp) -> str:
    return str(app.query_one("#sparks").render())


async def until(pilot: Any, condition: Callable[[], bool], what: str) -> None:
    for _ in range(200):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def count_calls(obj: Any, name: str, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    calls = [0]
    original = getattr(obj, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(obj, name, counted)
    return calls


@pytest.mark.slow  # a whole app through Pilot: over a second
async def test_a_changed_cell_renders_that_cell_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(TargetsTable)
        await settle(pilot, app)
        await pilot.pause()
        rendered = count_calls(app.console, "render_lines", monkeypatch)  # Rich renders a cell
        app.state.apply(sample("zeta", 1010.0, 444.0))  # only zeta's TTFT changes
        await settle(pilot, app)
        await until(pilot, lambda: "444" in str(table.get_cell("zeta", "ttft")), "the new TTFT")
        await pilot.pause()
        # Textual's own DataTable renders all 40 cells and the 10 headers again after one update
        assert 1 <= rendered[0] <= 2, rendered[0]  # one cell (Rich renders its padding, then it)
        await pilot.press("q")


@pytest.mark.slow  # a whole app through Pilot: over a second
async def test_a_maximised_away_pane_is_not_redrawn_but_is_current_when_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        charts = app.query_one(ChartsPane)
        await settle(pilot, app)
        await until(pilot, lambda: "300" in sparks(app), "zeta's sparkline")
        await pilot.press("1", "m")  # Targets maximised: Charts is off the screen
        await until(pilot, lambda: app.screen.maximized is not None, "the maximised table")
        drawn = count_calls(charts, "render_state", monkeypatch)
        app.state.apply(sample("zeta", 1010.0, 444.0))
        await settle(pilot, app)
        assert drawn[0] == 0 and "444" not in sparks(app)
        assert "444" in str(app.query_one(TargetsTable).get_cell("zeta", "ttft"))  # the shown pane is
        await pilot.press("m")  # restored: the chart is drawn at once, not at the next data
        await until(pilot, lambda: "444" in sparks(app), "the sparkline of the new point")
        assert drawn[0] >= 1
        await pilot.press("q")


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_a_pane_not_displayed_is_skipped_and_drawn_when_displayed(tmp_path: Path) -> None:
    """What a narrow layout does (`display: none` on the panes it does not show), whatever sets it."""
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        pane = app.query_one("#incidents-pane")
        pane.display = False
        await pilot.pause()
        app.state.apply({
            "event": "incident", "id": 7, "target": "zeta", "state": "open", "severity": "warning",
            "opened_ts": 1001.0, "start_ts": 1001.0, "ts": 1001.0, "metrics": [], "rules": [1],
        })
        await settle(pilot, app)
        incidents = app.query_one(IncidentsTable)
        assert incidents.row_count == 0 and incidents.stale
        pane.display = True
        await until(pilot, lambda: incidents.row_count == 1, "the incident row once displayed")
        await pilot.press("q")


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_a_pass_of_new_figures_asks_for_no_layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A layout pass re-measures and repaints the whole screen: the once-a-second update of the
    status line, the sparklines and the table cells must not ask for one."""
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot, app)
        await pilot.pause()
        layouts: list[str] = []
        for widget in app.main.walk_children(with_self=True):
            original = widget.refresh

            def spy(*regions: Any, _original: Any = original, _widget: Any = widget, **kwargs: Any) -> Any:
                if kwargs.get("layout"):
                    layouts.append(repr(_widget))
                return _original(*regions, **kwargs)

            monkeypatch.setattr(widget, "refresh", spy)
        app.state.apply(sample("zeta", 1010.0, 444.0))
        app.bridge.redraw()  # what the tick draws (synchronously: store reads are not in it)
        assert "444" in str(app.query_one(TargetsTable).get_cell("zeta", "ttft"))
        assert layouts == []
        await pilot.press("q")


async def test_the_first_probe_is_drawn_at_once_not_a_second_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.toml").write_text(CONFIG)
    settings = load_settings(tmp_path / "config.toml", env={}, db=tmp_path / "samples.db")
    app = LLMScopeApp(settings, fps=10, store_every_s=3600, monitor=IdleMonitor(settings))
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(TargetsTable)
        app.bridge.redraw()
        await pilot.pause()
        monkeypatch.setattr("llmscope_tui.tui.bridge.SLOW_PANES_EVERY_S", 1e9)  # the next pass: not yet
        assert "waiting" in str(table.get_cell("zeta", "status"))
        app.state.apply(sample("zeta", 1000.0, 321.0))
        app.bridge.tick()  # the refresh timer's next frame
        assert "up" in str(table.get_cell("zeta", "status")) and "321" in str(table.get_cell("zeta", "ttft"))
        await pilot.press("q")


@pytest.mark.slow  # a whole app through Pilot: over a second
async def test_a_store_read_is_drawn_by_the_next_pass_not_one_of_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 40)) as pilot:
        table = app.query_one(TargetsTable)
        await settle(pilot, app)
        for _ in range(3):  # layout follow-ups (a resize, the sparklines shown) drawn and done
            await pilot.pause()
            app.bridge.redraw()
        await pilot.pause()
        monkeypatch.setattr("llmscope_tui.tui.bridge.SLOW_PANES_EVERY_S", 1e9)  # the next pass: not yet
        drawn = count_calls(app.query_one(ChartsPane), "render_state", monkeypatch)
        stats = SimpleNamespace(metrics={"ttft_ms": SimpleNamespace(p50=111.0, p95=222.0)})
        app.reads.apply({"stats": {"zeta": stats}})  # the every-5-seconds percentiles
        app.bridge.tick()
        assert drawn[0] == 0 and "111/222" not in str(table.get_cell("zeta", "ttft_p"))
        monkeypatch.setattr("llmscope_tui.tui.bridge.SLOW_PANES_EVERY_S", 0.0)  # the next second
        app.bridge.tick()
        assert "111/222" in str(table.get_cell("zeta", "ttft_p"))
        await pilot.press("q")
