"""Issue 11 items 6-10: what the keys, the themes and the notices do, driven through Pilot with
a monitor that never probes (the UI alone)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.color import Color as RichColor
from rich.color import ColorSystem

from llmscope_tui.config import load_settings
from llmscope_tui.tui.app import LLMScopeApp
from llmscope_tui.tui.themes import load_themes
from test_tui import _IdleMonitor, wait_for

pytestmark = pytest.mark.anyio


def _luminance(rgb: tuple[int, int, int]) -> float:
    def channel(v: int) -> float:
        x = v / 255
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4

    r, g, b = rgb
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def contrast(a: tuple[int, int, int], b: tuple[int, int, int]) -> float:
    """WCAG contrast ratio: 1 (the same) to 21 (black on white)."""
    low, high = sorted((_luminance(a), _luminance(b)))
    return (high + 0.05) / (low + 0.05)


def at_256(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    t = RichColor.from_rgb(*rgb).downgrade(ColorSystem.EIGHT_BIT).get_truecolor()
    return (t.red, t.green, t.blue)


def demo_app(tmp_path: Path, **kwargs: Any) -> LLMScopeApp:
    settings = load_settings(demo=True, db=tmp_path / "k.db")
    return LLMScopeApp(settings, monitor=_IdleMonitor(), store_every_s=600, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("theme", sorted(n for n, t in load_themes().themes.items() if not t.theme.ansi))
async def test_unfocused_pane_borders_stand_out_from_the_background(tmp_path: Path, theme: str) -> None:
    app = demo_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        app.theme = theme
        await pilot.pause()
        pane = app.query_one("#charts-pane")  # Targets has the focus
        assert not pane.has_focus_within
        border = pane.styles.border_top[1].rgb
        background = app.screen.styles.background.rgb
        assert contrast(border, background) >= 2.0, (theme, border, background)
        assert contrast(at_256(border), at_256(background)) >= 2.0, (theme, at_256(border), at_256(background))


def toast_texts(app: LLMScopeApp) -> list[str]:
    from textual.widgets._toast import Toast

    return [str(toast.render()) for toast in app.screen.query(Toast)]


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_config_text_in_a_notification_keeps_its_brackets(tmp_path: Path) -> None:
    app = demo_app(tmp_path)
    app.settings.tui.theme = "nosuch"
    async with app.run_test(size=(100, 30), notifications=True) as pilot:
        await wait_for(pilot, lambda: bool(toast_texts(app)), what="a toast")
        assert any("[tui] theme: no theme 'nosuch'" in text for text in toast_texts(app)), toast_texts(app)
        # the status line shows paths as they are
        app.state.db = "/[red]x[/red]/samples.db"
        app.bridge.render_status()
        await pilot.pause()
        assert "[red]x[/red]" in str(app.query_one("#status").render())
        # a question that names a target
        app.state.target("[b]odd[/b]")
        app.main.query_one("#charts").selected = "[b]odd[/b]"
        await pilot.press("b")
        await pilot.pause()
        assert "Rebaseline [b]odd[/b]?" in str(app.screen.query_one("#confirm-question").render())


def an_incident(target: str = "demo-openai", ts: float = 1_700_000_000.0) -> dict[str, Any]:
    return {"event": "incident", "state": "open", "id": 1, "target": target, "provider": "openai",
            "severity": "warning", "metrics": [{"metric": "latency_ms", "effect": 0.8}], "rules": [1],
            "start_ts": ts, "opened_ts": ts, "text": f"{target}: latency +80 %", "ts": ts}


@pytest.mark.slow  # a whole app through Pilot, or a real process: about a second
async def test_enter_in_a_maximised_incidents_pane_restores_it_and_shows_the_chart(tmp_path: Path) -> None:
    from llmscope_tui.tui.widgets import ChartsPane, IncidentsTable

    app = demo_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        app.state.target("demo-openai")
        app.monitor.publish(an_incident())
        app.bridge.redraw()
        await pilot.press("3")  # stacked at 100x30: the Incidents view, drawn once shown
        await pilot.pause()
        incidents = app.query_one(IncidentsTable)
        await wait_for(pilot, lambda: incidents.row_count == 1, what="the incident row")
        await pilot.press("m")
        assert app.screen.maximized is not None
        await pilot.press("enter")
        await pilot.pause()
        assert app.screen.maximized is None
        charts = app.query_one(ChartsPane)
        assert isinstance(app.focused, ChartsPane) and charts.region.height > 3
        assert charts.metric == "latency_ms" and charts.selected == "demo-openai"
        # an incident from the data file whose target is no longer configured: said, no crash
        gone = {**an_incident("gone", ts=1_700_000_100.0), "id": 2}
        app.monitor.publish(gone)
        app.bridge.redraw()
        await pilot.press("3")
        incidents.move_cursor(row=0)  # newest first
        await pilot.press("enter")
        await pilot.pause()
        assert any("gone is not in the configuration" in str(n.message) for n in app._notifications)
        assert charts.selected == "demo-openai"


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_a_disabled_target_says_why_in_the_targets_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmscope_tui.tui.widgets import TargetsTable

    monkeypatch.delenv("LLMSCOPE_TEST_UNSET_KEY", raising=False)
    config = tmp_path / "config.toml"
    config.write_text(f"""
[monitor]
db = "{tmp_path / 'samples.db'}"

[[targets]]
name = "local"
provider = "openai-compatible"
model = "m"
base_url = "http://127.0.0.1:9/v1"

[[targets]]
name = "keyless"
provider = "openai"
model = "gpt-4o-mini"
api_key_env = "LLMSCOPE_TEST_UNSET_KEY"
""")
    settings = load_settings(config, env={})
    for width in (80, 140):  # the compact two-line layout and the one-line one
        app = LLMScopeApp(settings, monitor=_IdleMonitor(), store_every_s=600)  # type: ignore[arg-type]
        async with app.run_test(size=(width, 30)) as pilot:
            table = app.query_one(TargetsTable)
            await wait_for(pilot, lambda: table.row_count == 2, what="two rows")  # noqa: B023
            row = " ".join(str(cell) for cell in table.get_row("keyless"))
            assert "disabled" in row and "LLMSCOPE_TEST_UNSET_KEY is not set" in row, (width, row)
            # the monitor's start event says the same and keeps it, and which clock stamps arrivals
            app.monitor.publish({"event": "start", "clock": "kernel", "db": str(settings.db_path), "targets": [
                {"name": "keyless", "enabled": False, "disabled_reason": "LLMSCOPE_TEST_UNSET_KEY is not set"}]})
            app.bridge.redraw()
            assert "LLMSCOPE_TEST_UNSET_KEY is not set" in " ".join(str(c) for c in table.get_row("keyless"))
            status = str(app.query_one("#status").render()).rstrip()
            # 80 columns: the data file's name first (the clock gives way); wider, both
            assert status.endswith(settings.db_path.name), status
            assert ("kernel clock" in status) == (width > 100), status
            assert "saturated" not in status
            app.monitor.saturated = True  # the probe loop reads responses itself (probe/pace.py)
            app.bridge.render_status()
            status = str(app.query_one("#status").render()).rstrip()
            assert "loop saturated" in status and status.endswith(settings.db_path.name), status


def three_targets(tmp_path: Path, prefix: str = "") -> Any:
    config = tmp_path / "config.toml"
    blocks = "".join(
        f'\n[[targets]]\nname = "{prefix}{name}"\nprovider = "openai-compatible"\nmodel = "m"\nbase_url = "http://127.0.0.1:9/v1"\n'
        for name in ("alpha", "bravo", "charlie")
    )
    config.write_text(f'[monitor]\ndb = "{tmp_path / "samples.db"}"\n{blocks}')
    return load_settings(config, env={})


@pytest.mark.slow  # a whole app through Pilot, or a real process: about a second
@pytest.mark.parametrize("prefix", ["", "demo-"])  # "demo-": names that share a first character
async def test_esc_anywhere_clears_the_filter_and_the_rows_keep_their_order(tmp_path: Path, prefix: str) -> None:
    from textual.widgets import Input

    from llmscope_tui.tui.widgets import ChartsPane, TargetsTable

    app = LLMScopeApp(three_targets(tmp_path, prefix), monitor=_IdleMonitor(), store_every_s=600)  # type: ignore[arg-type]
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(TargetsTable)
        await wait_for(pilot, lambda: table.row_count == 3, what="three rows")
        order = [str(row.key.value) for row in table.ordered_rows]
        await pilot.press("slash", "b", "r", "enter")  # Enter keeps the filter, the table has the focus
        assert [str(row.key.value) for row in table.ordered_rows] == [f"{prefix}bravo"]
        await pilot.press("2")
        assert isinstance(app.focused, ChartsPane)
        await pilot.press("escape")
        await pilot.pause()
        box = app.query_one("#filter", Input)
        assert box.value == "" and not box.display
        assert [str(row.key.value) for row in table.ordered_rows] == order
        assert isinstance(app.focused, ChartsPane)  # the focus stays where it was


@pytest.mark.slow  # a whole app through Pilot, or a real process: about a second
async def test_a_modal_footer_shows_the_modal_keys_only(tmp_path: Path) -> None:
    from textual.widgets import Footer
    from textual.widgets._footer import FooterKey

    app = demo_app(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        shown = {k.description for k in app.screen.query(FooterKey)}
        assert "Pause" in shown
        for key, words in (("question_mark", {"Close"}), ("b", {"Yes", "No"})):
            if key == "b":
                app.main.query_one("#charts").selected = "t"
            await pilot.press(key)
            await pilot.pause()
            shown = {k.description for k in app.screen.query(FooterKey)}
            assert shown == words, (key, shown)
            # what is drawn on the bottom row is the modal's footer, not the main screen's
            widget, _ = app.screen.get_widget_at(2, 29)
            assert widget.screen is app.screen and (isinstance(widget, (Footer, FooterKey))), widget
            await pilot.press("escape")
            await pilot.pause()


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_no_alert_while_paused_then_one_summary_that_covers_nothing(tmp_path: Path) -> None:
    """Incident alerts wait while paused, then come as one line in the Targets pane's bottom
    border: no toast over the chart or the status counts."""
    from textual.widgets._toast import Toast

    app = demo_app(tmp_path)
    async with app.run_test(size=(80, 24), notifications=True) as pilot:
        pane = app.main.query_one("#targets-pane")
        await pilot.press("p")
        for target in ("a", "b", "c"):
            app.monitor.publish({"event": "alert", "kind": "incident", "severity": "warning", "target": target,
                                 "text": f"{target}: TTFT +80 %", "details": {"state": "open"}})
            app.bridge.tick()
            await pilot.pause()
        assert not str(pane.border_subtitle or "")
        await pilot.press("p")
        await wait_for(pilot, lambda: "incident" in str(pane.border_subtitle or ""), what="the summary line")
        assert "3 incident changes: a, b, c" in str(pane.border_subtitle)
        assert not list(app.screen.query(Toast))


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_l_scrolls_a_table_a_column_at_a_time(tmp_path: Path) -> None:
    from llmscope_tui.tui.widgets import IncidentsTable

    app = demo_app(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        name = "a-target-with-a-name-long-enough-to-push-the-columns-sideways"
        app.state.target(name)
        incident = an_incident(name)
        incident["metrics"] = [{"metric": m, "effect": 0.5} for m in ("ttft_ms", "latency_ms", "itl_ms", "tps")]
        app.monitor.publish(incident)
        app.bridge.redraw()
        await pilot.press("3")
        table = app.query_one(IncidentsTable)
        await pilot.pause()
        assert table.max_scroll_x > 0
        widths = [c.get_render_width(table) for c in table.ordered_columns]
        await pilot.press("l")
        await pilot.pause()
        assert table.scroll_x == widths[0]  # the second column at the left edge
        await pilot.press("l")
        await pilot.pause()
        assert table.scroll_x == min(widths[0] + widths[1], table.max_scroll_x)
        await pilot.press("h")
        await pilot.pause()
        assert table.scroll_x == widths[0]
