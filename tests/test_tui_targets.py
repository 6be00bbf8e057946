"""The Targets table through Pilot: `s` sorts for real, one order for Targets and Charts, the
highlighted row is the charted target, and the figures line up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.text import Text

from conftest import IdleMonitor
from llmscope_tui.config import load_settings
from llmscope_tui.costs import usd_column
from llmscope_tui.tui.app import LLMScopeApp
from llmscope_tui.tui.widgets import ChartsPane, TargetsTable

pytestmark = pytest.mark.anyio

#: configuration order: zeta, alpha, mid, beta
CONFIG = "".join(
    f'[[targets]]\nname = "{name}"\nprovider = "ollama"\nmodel = "m"\nbase_url = "http://127.0.0.1:9"\n\n'
    for name in ("zeta", "alpha", "mid", "beta")
)
#: name -> (ttft ms, latency ms, tok/s, cost of a probe); beta fails every probe (down)
FIGURES = {
    "zeta": (300.4, 900.0, 50.0, 0.02 / 3),
    "alpha": (120.6, 400.0, 123.456, 0.0000096 / 3),
    "mid": (800.0, 2000.0, 12.34, 0.0023 / 3),
}


def make_app(tmp_path: Path) -> LLMScopeApp:
    (tmp_path / "config.toml").write_text(CONFIG)
    settings = load_settings(tmp_path / "config.toml", env={}, db=tmp_path / "samples.db")
    app = LLMScopeApp(settings, fps=10, store_every_s=3600, monitor=IdleMonitor(settings))
    for n in range(3):
        for name in ("zeta", "alpha", "mid", "beta"):
            event: dict[str, Any] = {"event": "sample", "target": name, "ts": 1000.0 + n, "source": "probe"}
            if name == "beta":
                event.update(ok=False, error_kind="connect")
            else:
                ttft, latency, tps, cost = FIGURES[name]
                event.update(ok=True, ttft_ms=ttft, latency_ms=latency, tps=tps, cost_usd=cost)
            app.state.apply(event)
    return app


def rows(table: TargetsTable) -> list[str]:
    return [str(row.key.value) for row in table.ordered_rows]


def header(table: TargetsTable) -> str:
    return " | ".join(column.label.plain for column in table.ordered_columns)


async def settle(pilot: Any, app: LLMScopeApp) -> None:
    app.bridge.redraw()
    await pilot.pause()


@pytest.mark.slow  # a whole app through Pilot, or a real process: about a second
async def test_s_cycles_real_orders_and_the_header_shows_which(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(TargetsTable)
        await settle(pilot, app)
        # at start: not-up first, the rest in configuration order
        assert rows(table) == ["beta", "zeta", "alpha", "mid"]
        assert "Status ▼" in header(table)
        expected = [
            ("Target ▲", ["alpha", "beta", "mid", "zeta"]),
            ("TTFT ms ▼", ["mid", "zeta", "alpha", "beta"]),  # beta has no figure: last
            ("Lat. ms ▼", ["mid", "zeta", "alpha", "beta"]),
            ("tok/s ▲", ["mid", "zeta", "alpha", "beta"]),
            ("Err ▼", ["beta", "zeta", "alpha", "mid"]),
            ("Cost today ▼", ["zeta", "mid", "alpha", "beta"]),
            ("Status ▼", ["beta", "zeta", "alpha", "mid"]),
        ]
        await pilot.press("1")
        for label, order in expected:
            await pilot.press("s")
            await pilot.pause()
            assert rows(table) == order, label
            assert label in header(table) and header(table).count("▼") + header(table).count("▲") == 1
            # the Charts pane lists the targets in the table's order
            assert app.query_one(ChartsPane).names == order, label
        await pilot.press("q")


@pytest.mark.slow  # a whole app through Pilot, or a real process: about a second
async def test_the_highlighted_row_is_the_charted_target_and_stays_on_it(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(TargetsTable)
        charts = app.query_one(ChartsPane)
        await settle(pilot, app)
        await pilot.pause()
        assert table.cursor_row == 0 and table.selected_target() == "beta"
        assert charts.selected == "beta" and charts.names[0] == "beta"
        await pilot.press("1", "j")  # zeta
        await pilot.pause()
        assert charts.selected == "zeta"
        await pilot.press("s")  # by name: zeta moves to the bottom, the cursor with it
        await pilot.pause()
        assert table.selected_target() == "zeta" and table.cursor_row == 3 and charts.selected == "zeta"
        await pilot.press("q")


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_figures_are_right_aligned_with_one_precision_a_column(tmp_path: Path) -> None:
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(TargetsTable)
        await settle(pilot, app)

        def cell(name: str, column: str) -> Text:
            value = table.get_cell(name, column)
            assert isinstance(value, Text) and value.justify == "right", (name, column)
            return value

        assert [cell(n, "ttft").plain for n in ("zeta", "alpha", "mid")] == ["300", "121", "800"]
        assert [cell(n, "latency").plain for n in ("zeta", "alpha", "mid")] == ["900", "400", "2000"]
        assert [cell(n, "tps").plain for n in ("zeta", "alpha", "mid")] == ["50.0", "123", "12.3"]
        assert [cell(n, "cost").plain for n in ("zeta", "mid", "alpha", "beta")] == [
            "$0.0200", "$0.0023", "<$0.0001", "$0.0000",
        ]
        for label in ("TTFT ms", "Cost today"):
            column = next(c for c in table.ordered_columns if c.label.plain.startswith(label))
            assert column.label.justify == "right"
        await pilot.press("q")


def test_a_cost_column_has_one_number_of_decimals() -> None:
    assert usd_column([0.02, 0.0023, 0.0000096, 0.0]) == ["$0.0200", "$0.0023", "<$0.0001", "$0.0000"]
    assert usd_column([1.5, 0.02]) == ["$1.50", "$0.02"]
    assert usd_column([0.5, 0.042]) == ["$0.50", "$0.04"]
    assert usd_column([0.5, 0.0042]) == ["$0.5000", "$0.0042"]
    assert usd_column([1234.5, 0.25]) == ["$1,234.50", "$0.25"]


@pytest.mark.slow
async def test_a_column_gives_its_room_back_when_a_long_value_goes(tmp_path: Path) -> None:
    """beta's `timeout_first_token` widens the TTFT column; once beta answers again the column is
    as narrow as before (Textual's own columns only ever grow: the picture drifted with history)."""
    app = make_app(tmp_path)
    async with app.run_test(size=(160, 30)) as pilot:
        table = app.query_one(TargetsTable)
        await pilot.pause()
        ttft = next(c for c in table.ordered_columns if str(c.key.value) == "ttft")
        before = ttft.content_width
        failed = {"event": "sample", "target": "beta", "ts": 1010.0, "source": "probe", "ok": False}
        app.state.apply({**failed, "error_kind": "timeout_first_token"})
        app.bridge.redraw()
        await pilot.pause()
        assert ttft.content_width >= len("timeout_first_token") > before
        for n in range(3):  # answers again: the error kind leaves the TTFT cell
            app.state.apply({**failed, "ts": 1011.0 + n, "ok": True, "ttft_ms": 250.0, "latency_ms": 500.0})
        app.bridge.redraw()
        await pilot.pause()
        assert ttft.content_width == before
