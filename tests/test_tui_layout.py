"""The screen fits: at 80x24 nothing scrolls, the chart keeps 8 plot rows, the targets that are
not up show first and the other panes are one key away; wide terminals show every column."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from conftest import IdleMonitor
from llmscope_tui.config import load_settings
from llmscope_tui.store import SampleStore
from llmscope_tui.tui.app import LLMScopeApp
from llmscope_tui.tui.layout import CHART_PLOT_ROWS, plan_layout
from llmscope_tui.tui.widgets import ChartsPane, CostsPane, IncidentsTable, TargetsTable

pytestmark = pytest.mark.anyio

#: seven targets, the last two down (they must be the ones shown first at 80x24)
NAMES = ("oa-gpt4o-mini", "oa-gpt4o", "an-haiku", "an-sonnet", "gm-flash", "ol-llama", "ol-qwen")
DOWN = {"ol-llama", "ol-qwen"}


def make_app(tmp_path: Path, samples: int = 12) -> LLMScopeApp:
    config = "".join(
        f'[[targets]]\nname = "{n}"\nprovider = "ollama"\nmodel = "m"\nbase_url = "http://127.0.0.1:9"\n\n'
        for n in NAMES
    )
    (tmp_path / "config.toml").write_text(config)
    settings = load_settings(tmp_path / "config.toml", env={}, db=tmp_path / "samples.db")
    app = LLMScopeApp(settings, fps=10, store_every_s=3600, monitor=IdleMonitor(settings))
    for i in range(samples):
        for n, name in enumerate(NAMES):
            event: dict[str, Any] = {"event": "sample", "target": name, "ts": 1000.0 + i, "source": "probe"}
            if name in DOWN:
                event.update(ok=False, error_kind="timeout_first_token")
            else:
                event.update(ok=True, ttft_ms=100.0 + 10 * n + i % 3, latency_ms=400.0 + i, tps=50.0, cost_usd=0.001)
            app.state.apply(event)
    return app


def test_80x24_keeps_eight_plot_rows_and_gives_the_table_the_rest() -> None:
    demo = plan_layout(80, 24, targets=4, banner=True)
    assert demo.mode == "stack" and demo.rows == "one" and demo.targets_height == 7  # all 4 shown
    seven = plan_layout(80, 24, targets=7, banner=False)
    # 24 - status - footer - (8 plot rows + axis + title + border) = 10 rows: 7 targets fit
    assert seven.mode == "stack" and seven.targets_height == 10
    assert plan_layout(80, 24, targets=20, banner=False).targets_height == 10  # the table scrolls
    assert plan_layout(80, 40, targets=4, banner=True).rows == "two"  # room for the p50/p95 line
    assert plan_layout(120, 24, targets=4, banner=False).mode == "stack"  # too short for the grid
    assert plan_layout(120, 36, targets=4, banner=True).mode == "grid"
    assert plan_layout(160, 48, targets=7, banner=False) == plan_layout(160, 48, 7, False)


def shown(app: LLMScopeApp, selector: str) -> bool:
    """On screen: the widget and every container around it displayed."""
    node: Any = app.query_one(selector)
    while node is not None and node is not app.screen:
        if not node.display:
            return False
        node = node.parent
    return True


def scrolls(app: LLMScopeApp) -> list[str]:
    """The containers that would scroll: the screen and the body must not."""
    out = []
    for node in (app.screen, app.query_one("#body")):
        if node.max_scroll_y > 0 or node.max_scroll_x > 0:
            out.append(str(node))
    return out


@pytest.mark.slow  # a whole app through Pilot, or a real process: about a second
async def test_80x24_fits_without_scrolling_down_targets_first_and_views_one_key_away(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        app.bridge.redraw()
        await pilot.pause()
        await pilot.pause()
        assert scrolls(app) == []
        chart = app.query_one("#chart")
        assert chart.region.height - 1 >= CHART_PLOT_ROWS  # plot rows above the time axis
        assert chart.region.bottom <= app.query_one("#status").region.y
        table = app.query_one(TargetsTable)
        order = [str(row.key.value) for row in table.ordered_rows]
        assert set(order[:2]) == DOWN
        visible = table.region.height - table.header_height
        assert visible >= 2 and table.virtual_size.width <= table.region.width  # no sideways scroll
        assert "t/o TTFT" in str(table.get_row(order[0])[0])  # why it is down, in 10 columns
        # 2/3/4: one of Charts, Incidents, Costs under the table; the border names the keys
        assert "3 Incidents" in str(app.query_one("#charts-pane").border_subtitle)
        await pilot.press("3")
        await pilot.pause()
        assert shown(app, "#incidents-pane") and not shown(app, "#charts-pane")
        assert app.focused is app.query_one(IncidentsTable)
        await pilot.press("4")
        await pilot.pause()
        assert shown(app, "#costs-pane") and not shown(app, "#incidents-pane")
        assert app.focused is app.query_one(CostsPane)
        assert "[4 Costs]" in str(app.query_one("#costs-pane").border_subtitle)
        await pilot.press("2")
        await pilot.pause()
        assert shown(app, "#charts-pane") and not shown(app, "#costs-pane")
        assert app.focused is app.query_one(ChartsPane)
        assert scrolls(app) == []


@pytest.mark.slow  # a whole app through Pilot, or a real process: about a second
async def test_160x48_shows_every_pane_with_every_column(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    opened = {"event": "incident", "state": "open", "id": 1, "target": "an-sonnet", "provider": "anthropic",
              "severity": "warning", "metrics": [{"metric": "ttft_ms", "effect": 0.82}, {"metric": "latency_ms", "effect": 0.64}],
              "rules": [1, 2, 5], "start_ts": 1000.0, "opened_ts": 1000.0, "text": "an-sonnet: TTFT +82 %", "ts": 1000.0}
    app.state.apply(opened)
    async with app.run_test(size=(160, 48)) as pilot:
        app.bridge.redraw()
        await pilot.pause()
        await pilot.pause()
        assert scrolls(app) == []
        for pane in ("#targets-pane", "#charts-pane", "#incidents-pane", "#costs-pane"):
            assert shown(app, pane) and app.query_one(pane).region.height > 2, pane
        for table in (app.query_one(TargetsTable), app.query_one(IncidentsTable)):
            assert table.virtual_size.width <= table.region.width, table  # every column in full
        assert app.query_one("#chart").region.height - 1 >= CHART_PLOT_ROWS
        assert not app.query_one("#charts-pane").border_subtitle  # no switcher: all on screen


@pytest.mark.slow  # a whole app through Pilot, or a real process: about a second
async def test_the_costs_card_today_adds_the_live_spend_like_the_targets_do(tmp_path: Path) -> None:
    """The card said `today: $0.00` while the targets summed to $0.0014: it waited for the
    half-minute store read, the Targets pane did not."""
    app = make_app(tmp_path, samples=0)
    with SampleStore(tmp_path / "samples.db"):
        pass  # the data file exists, with nothing spent in it yet
    async with app.run_test(size=(160, 48)) as pilot:
        app.reads.read_soon()
        await pilot.pause()
        for _ in range(100):
            if app.reads.cost_data.summary is not None:
                break
            await asyncio.sleep(0.05)
        for i in range(10):  # then samples arrive, between two store reads
            app.state.apply({"event": "sample", "target": NAMES[i % 5], "ts": 2000.0 + i, "source": "probe",
                             "ok": True, "ttft_ms": 100.0, "latency_ms": 400.0, "cost_usd": 0.0014})
        app.bridge.redraw()
        await pilot.pause()
        text = str(app.query_one("#costs-body").render())
        assert "today: $0.01" in text, text  # 10 x $0.0014 = $0.014, as the targets' column sums it
        table = app.query_one(TargetsTable)
        column = [str(table.get_cell(name, "cost")) for name in NAMES[:5]]
        assert sum(float(c.strip().lstrip("$")) for c in column) == pytest.approx(0.014)


@pytest.mark.slow  # a whole app through Pilot, or a real process: about a second
async def test_the_first_frame_has_the_footer_and_nothing_shifts_when_data_comes(tmp_path: Path) -> None:
    from textual.widgets import Footer

    app = make_app(tmp_path, samples=0)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        footer = app.query_one(Footer)
        first = {sel: app.query_one(sel).region for sel in ("#status", "#charts-pane", "#chart")}
        assert footer.region.y == 23 and "Quit" in " ".join(str(k.render()) for k in footer.children)
        for i in range(12):
            for name in NAMES:
                app.state.apply({"event": "sample", "target": name, "ts": 1000.0 + i, "source": "probe",
                                 "ok": True, "ttft_ms": 100.0 + i, "latency_ms": 400.0, "tps": 50.0})
        app.bridge.redraw()
        await pilot.pause()
        assert {sel: app.query_one(sel).region for sel in first} == first
        assert footer.region.y == 23


def test_a_costs_card_figure_is_never_cut_short() -> None:
    """At 120 columns `projected month-end: $202.72` read `$202.7` (four cards cut to a quarter)."""
    from types import SimpleNamespace

    from llmscope_tui.tui.widgets.costs import CostData, render_costs

    summary = SimpleNamespace(today=0.0046, month=0.0046, projected_month_end=202.72, by_provider={}, unpriced=[])
    data = CostData(summary=summary, overhead_day=15.51)
    for width in (40, 80, 116, 160, 200):
        text = render_costs(data, width).plain
        assert "projected month-end: $202.72" in text and "probe overhead: $15.51/day" in text, (width, text)
        cards = [line for line in text.split("\n") if "today:" in line or "overhead:" in line or "month" in line]
        assert all(len(line) <= width for line in cards), (width, text)
