"""The Textual face driven through App.run_test / Pilot, against the fake provider and the demo."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from conftest import ScriptedProbes, fake_settings
from fake_provider import FakeProvider, Script
from llmscope_tui.config import load_settings
from llmscope_tui.session import demo_ready
from llmscope_tui.spc import LiveChart
from llmscope_tui.tui.app import QUIT_GRACE_S, LLMScopeApp
from llmscope_tui.tui.chartrender import control_chart, sparkline
from llmscope_tui.tui.screens import KEY_HELP, ConfirmScreen, FiringsScreen, HelpScreen
from llmscope_tui.tui.state import ViewState
from llmscope_tui.tui.themes import ChartColors, ThemeError, load_themes, parse_theme
from llmscope_tui.tui.widgets import ChartsPane, CostsPane, IncidentsTable, TargetsTable

pytestmark = pytest.mark.anyio


async def wait_for(pilot: Any, condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)


def status_text(app: LLMScopeApp) -> str:
    return str(app.query_one("#status").render())


@pytest.mark.slow
async def test_samples_and_an_incident_reach_the_panes(
    tmp_path: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the figures a server would cause, free of a busy machine's scheduling noise (conftest)
    ScriptedProbes(lambda name, n: 20 + 2 * (n % 3) if n < 8 else 400).install(monkeypatch)
    app = LLMScopeApp(fake_settings(tmp_path, fake_provider), fps=20, store_every_s=0.5)
    async with app.run_test(size=(120, 40)) as pilot:
        table = app.query_one(TargetsTable)
        await wait_for(pilot, lambda: table.row_count == 1 and app.state.samples >= 2, what="a targets row")
        assert "waiting" in str(table.get_cell("fake", "status")) or app.state.samples
        await wait_for(
            pilot,
            lambda: any(w in str(table.get_cell("fake", "status")) for w in ("up", "degraded", "down")),
            what="a status word",
        )
        incidents = app.query_one(IncidentsTable)
        await wait_for(pilot, lambda: incidents.row_count >= 1, timeout=20, what="an incident row")
        row = incidents.get_row_at(0)
        assert "open" in str(row[0]) and row[1] == "fake" and "TTFT +" in row[4]
        # the rules the charts fired during it (none when a slow start-up probe widened the chart's
        # 5-point baseline: the incident engine leaves a run's first probe out, the charts do not)
        (shown,) = incidents.by_key.values()  # the incident as the row was drawn from it
        assert row[5] == (",".join(map(str, sorted(shown.rules))) or "-")
        assert incidents.row_count == 1  # a sustained shift is one incident, not a row per firing
        await wait_for(pilot, lambda: "+" in str(table.get_cell("fake", "incident")), what="the change in Targets")
        await wait_for(pilot, lambda: "degraded" in str(table.get_cell("fake", "status")), what="degraded")
        assert "1 open incidents" in status_text(app) and "config" in status_text(app)
        # the control chart shows the limits by name and the firing as ✖
        chart = str(app.query_one("#chart").render())
        title = str(app.query_one("#chart-title").render())
        assert "UCL" in title and "LCL" in title and "✖" in chart
        assert any(name in chart for name in ("UCL", "LCL", "LIM"))
        await wait_for(pilot, lambda: app.reads.cost_data.summary is not None, what="spend read from the store")
        # Enter on an incident charts its target and its biggest change, zoomed to it
        await pilot.press("3")
        await pilot.press("c", "c")  # move the chart away from TTFT and latency first
        assert app.query_one(ChartsPane).metric == "itl_ms"
        incidents.move_cursor(row=0)
        await pilot.press("enter")
        incident = incidents.selected_incident()
        assert incident is not None
        biggest = max(incident.metrics.values(), key=lambda m: abs(m.effect)).metric
        charts = app.query_one(ChartsPane)
        assert isinstance(app.focused, ChartsPane) and charts.metric == biggest and charts.selected == "fake"
        assert charts.window.points is not None  # a few points since the start: a points window
        # one level down: the rule firings behind it
        await pilot.press("3", "d")
        assert isinstance(app.screen, FiringsScreen)
        assert "rule firings" in app.screen.title_text and app.screen.rows
        await pilot.press("escape")
        assert not isinstance(app.screen, FiringsScreen)
        await pilot.press("q")
        await wait_for(pilot, app._monitor_done.is_set, what="the monitor to stop")
    assert app.return_code == 0


@pytest.mark.slow
async def test_every_key_does_what_it_says(tmp_path: Path, fake_provider: FakeProvider) -> None:
    fake_provider.script(default=Script(first_token_delay_s=0.01))
    exports = tmp_path / "exports"
    app = LLMScopeApp(fake_settings(tmp_path, fake_provider, interval="300ms"), fps=10, export_dir=exports)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for(pilot, lambda: app.query_one(TargetsTable).row_count == 1, what="a targets row")
        # help
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        # pause / resume
        await pilot.press("p")
        assert app.paused and "PAUSED" in status_text(app)
        await pilot.press("p")
        assert not app.paused and "LIVE" in status_text(app)
        # focus by number and Tab
        for key, widget in (("2", ChartsPane), ("3", IncidentsTable), ("4", CostsPane), ("1", TargetsTable)):
            await pilot.press(key)
            assert isinstance(app.focused, widget), key
        await pilot.press("tab")
        assert not isinstance(app.focused, TargetsTable)
        await pilot.press("1")
        # metric
        charts = app.query_one(ChartsPane)
        assert charts.metric == "ttft_ms"
        await pilot.press("c")
        assert charts.metric == "latency_ms"
        await pilot.press("C")
        assert charts.metric == "ttft_ms"
        # zoom
        window = charts.zoom_index
        await pilot.press("minus")
        assert charts.zoom_index > window
        await pilot.press("plus", "plus")
        assert charts.zoom_index < window
        # theme
        before = app.theme
        await pilot.press("t")
        assert app.theme != before and app.theme in app.themes
        assert charts.chart_colors == app.themes[app.theme].chart  # chart colours follow the theme
        seen = {app.theme}
        for _ in range(len(app.themes)):
            await pilot.press("t")
            seen.add(app.theme)
        assert {"llmscope-dark", "llmscope-light", "llmscope-ansi"} <= seen
        # maximise / restore
        await pilot.press("m")
        assert app.screen.maximized is not None and app.screen.maximized.id == "targets-pane"
        await pilot.press("m")
        assert app.screen.maximized is None
        # filter
        await pilot.press("slash")
        await pilot.press("z", "z", "z")
        table = app.query_one(TargetsTable)
        assert table.row_count == 0
        await pilot.press("escape")
        await wait_for(pilot, lambda: table.row_count == 1, what="filter cleared")
        # refresh (r): says so, and re-reads spend and percentiles now, not at the next 30 s costs read
        reads = app.reads
        await wait_for(pilot, lambda: reads.cost_data.summary is not None and not reads.busy, what="a first spend read")
        spend_before, told = reads.cost_data.summary, []
        real_notify = app.notify

        def notify(message: str, **kwargs: Any) -> None:
            told.append(message)
            real_notify(message, **kwargs)

        app.notify = notify  # type: ignore[method-assign]
        await pilot.press("r")
        del app.notify
        assert "refreshing" in told
        await wait_for(pilot, lambda: reads.cost_data.summary is not spend_before, what="spend re-read after r")
        # command palette
        from textual.command import CommandPalette

        await pilot.press("ctrl+p")
        assert isinstance(app.screen, CommandPalette)
        await pilot.press("escape")
        assert not isinstance(app.screen, CommandPalette)
        # export
        await pilot.press("e")
        await wait_for(pilot, lambda: app.last_export is not None and app.last_export.exists(), what="the export")
        assert app.last_export.parent == exports
        assert app.last_export.read_text().startswith("ts,")
        # rebaseline, after the confirm
        await wait_for(
            pilot,
            lambda: (c := app.monitor.charts.chart("fake", "ttft_ms")) is not None and c.phase == "monitoring",
            what="a frozen baseline",
        )
        await pilot.press("b")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert app.monitor.charts.chart("fake", "ttft_ms").phase == "monitoring"
        frozen = app.monitor.charts.chart("fake", "ttft_ms").baseline
        await pilot.press("b")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.state.rebaselines == 1, what="the rebaseline event")
        # a new baseline is being (or has just been) collected: the old limits are gone
        chart = app.monitor.charts.chart("fake", "ttft_ms")
        assert chart.baseline is not frozen
        # quit
        await pilot.press("q")
        await wait_for(pilot, app._monitor_done.is_set, what="the monitor to stop")
    assert app.return_code == 0


@pytest.mark.slow
async def test_the_demo_renders_at_80x24_without_colour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    settings = load_settings(demo=True, db=tmp_path / "demo.db")
    with demo_ready(settings) as session:
        app = LLMScopeApp(session.settings, fps=10, store_every_s=0.5, monitor=session.monitor())
        async with app.run_test(size=(80, 24)) as pilot:
            assert app.no_color
            await wait_for(pilot, lambda: app.state.samples >= 4, timeout=15, what="demo samples")
            await pilot.pause(0.3)
            text = app.export_screenshot()
            assert "DEMO" in text
            assert "Targets" in text and "Charts" in text
            for key in ("2", "3", "4", "m", "m", "1"):
                await pilot.press(key)
            await pilot.press("q")
            await wait_for(pilot, app._monitor_done.is_set, timeout=10, what="the monitor to stop")


@pytest.mark.slow
async def test_a_broken_user_theme_is_reported_by_name(
    tmp_path: Path, fake_provider: FakeProvider, isolated_env: Path
) -> None:
    from llmscope_tui import paths

    user = paths.user_themes_dir()
    user.mkdir(parents=True)
    (user / "broken.toml").write_text("name = 'broken'\n[colors]\nprimary = 'not-a-colour'\n")
    # parses, but Textual's CSS would miss a variable it needs: refused at start, not a crash later
    (user / "halfansi.toml").write_text(
        "name = 'halfansi'\n[colors]\nprimary = 'ansi_blue'\n[variables]\nborder = '$nope'\n"
    )
    (user / "mine.toml").write_text("name = 'mine'\n[colors]\nprimary = '#336699'\n[chart]\nlimit = 'magenta'\n")
    app = LLMScopeApp(fake_settings(tmp_path, fake_provider, interval="1s"), fps=10)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("broken" in m for m in messages)
        assert any("halfansi" in m for m in messages) and "halfansi" not in app.themes
        assert app.theme == "llmscope-dark"
        assert "mine" in app.themes and app.themes["mine"].chart.limit == "magenta"
        await pilot.press("q")


def test_built_in_themes_load() -> None:
    loaded = load_themes()
    assert {"llmscope-dark", "llmscope-light", "llmscope-ansi"} <= set(loaded.themes)
    assert not loaded.errors
    assert loaded.themes["llmscope-ansi"].theme.ansi
    with pytest.raises(ThemeError, match="primary"):
        parse_theme({"colors": {}}, "x")
    with pytest.raises(ThemeError, match="unknown"):
        parse_theme({"colors": {"primary": "#000000", "bogus": "#ffffff"}}, "x")


def test_the_control_chart_names_its_lines_and_marks_firings() -> None:
    chart = LiveChart(baseline_size=10)
    points = []
    for i in range(30):
        value = 100.0 + (i % 3) + (50.0 if i == 25 else 0.0)
        chart.add(value)
        points.append((1_700_000_000.0 + i, value))
    text = control_chart(points, {points[25][0]}, chart.limits(original_unit=True), 70, 14, ChartColors())
    console = Console(width=80, color_system=None, record=True)
    console.print(text)
    plain = console.export_text()
    for name in ("UCL", "LCL", "CL", "✖", "•"):
        assert name in plain
    assert len(sparkline([1, 2, 3], 10)) == 10
    # zoomed out past the width: buckets keep the firing visible
    many = [(float(i), 100.0 + (i % 3)) for i in range(500)]
    many[333] = (333.0, 170.0)
    squeezed = control_chart(many, {333.0}, chart.limits(original_unit=True), 70, 14, ChartColors(), window=500)
    assert "✖" in squeezed.plain


def test_view_state_status_words() -> None:
    state = ViewState()
    state.apply({"event": "start", "targets": [{"name": "a", "provider": "p", "model": "m", "enabled": True}]})
    assert state.targets["a"].status() == "waiting"
    state.apply({"event": "sample", "target": "a", "ok": 1, "ts": 1.0, "ttft_ms": 10.0})
    assert state.targets["a"].status() == "up"
    state.apply({"event": "sample", "target": "a", "ok": 0, "ts": 2.0, "error_kind": "timeout_total"})
    assert state.targets["a"].status() == "up"  # one failure is not news: incidents say degraded
    shift = {"event": "incident", "state": "opened", "id": 1, "target": "a", "provider": "p", "scope": "target",
             "opened_ts": 2.0, "start_ts": 1.5, "metrics": [{"metric": "ttft_ms", "effect": 0.5}], "rules": [1]}
    state.apply(shift)
    assert state.targets["a"].status(state.open_incident("a")) == "degraded"
    state.apply({**shift, "metrics": [{"metric": "ttft_ms", "effect": -0.5}]})
    assert state.targets["a"].status(state.open_incident("a")) == "up"  # a speed-up is not bad news
    state.apply({**shift, "state": "closed", "closed_ts": 9.0})
    assert state.open_incident("a") is None and len(state.incidents) == 1
    for ts in (3.0, 4.0):
        state.apply({"event": "sample", "target": "a", "ok": 0, "ts": ts, "error_kind": "network"})
    assert state.targets["a"].status() == "down"
    assert state.errors == 3


def test_the_help_lists_every_bound_key() -> None:
    listed = " ".join(keys for keys, _ in KEY_HELP)
    for key in ("?", "p", "r", "b", "e", "t", "m", "q", "/", "c", "s", "1", "Tab", "d", "Enter", "v"):
        assert key in listed


# -- snapshots (deterministic content only: the help overlay and a control chart on fixed data) --

from textual.app import App, ComposeResult
from textual.widgets import Static

import llmscope_tui.tui as tui_package
from llmscope_tui.tui.themes import AppVariables

TCSS = str(Path(tui_package.__file__).parent / "app.tcss")


class _HelpOnly(AppVariables, App[None]):
    CSS_PATH = TCSS

    def on_mount(self) -> None:
        loaded = load_themes()
        for theme in loaded.themes.values():
            self.register_theme(theme.theme)
        self.theme = "llmscope-dark"
        self.push_screen(HelpScreen())


class _ChartOnly(AppVariables, App[None]):
    CSS_PATH = TCSS

    def compose(self) -> ComposeResult:
        chart = LiveChart(baseline_size=10)
        points = []
        for i in range(60):
            value = 100.0 + (i * 7 % 5) + (40.0 if i in (41, 50) else 0.0)
            chart.add(value)
            points.append((0.0 + i, value))
        firings = {points[41][0], points[50][0]}
        yield Static(control_chart(points, firings, chart.limits(original_unit=True), 78, 16, ChartColors()))


def test_snapshot_help_80x24(snap_compare: Any) -> None:
    assert snap_compare(_HelpOnly(), terminal_size=(80, 24))


def test_snapshot_help_160x48(snap_compare: Any) -> None:
    assert snap_compare(_HelpOnly(), terminal_size=(160, 48))


def test_snapshot_chart_no_color(snap_compare: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TZ", "UTC")
    time_module = __import__("time")
    time_module.tzset()  # the time axis is local time: pin it
    try:
        assert snap_compare(_ChartOnly(), terminal_size=(80, 24))
    finally:
        monkeypatch.undo()
        time_module.tzset()


def test_history_from_the_store_goes_in_front_of_live_points() -> None:
    from types import SimpleNamespace

    state = ViewState()
    state.apply({"event": "sample", "target": "a", "ok": 1, "ts": 10.0, "ttft_ms": 5.0})
    state.apply({"event": "violation", "target": "a", "metric": "ttft_ms", "rule": 1, "ts": 10.0, "value": 5.0, "z": 4})
    old = SimpleNamespace(target="a", metric="ttft_ms", ts=3.0, value=9.0, rule=1)
    dup = SimpleNamespace(target="a", metric="ttft_ms", ts=10.0, value=5.0, rule=1)
    state.backfill({("a", "ttft_ms"): [(1.0, 1.0), (2.0, 2.0), (10.0, 5.0)]}, [old, dup])
    assert list(state.targets["a"].series["ttft_ms"]) == [(1.0, 1.0), (2.0, 2.0), (10.0, 5.0)]
    assert [f[0] for f in state.targets["a"].firings["ttft_ms"]] == [3.0, 10.0]


def test_budget_bars_say_their_state_in_words() -> None:
    from types import SimpleNamespace

    from llmscope_tui.tui.widgets.costs import CostData, budget_bar, render_costs

    def status(fraction: float, state: str) -> Any:
        return SimpleNamespace(name="daily", spent=fraction, limit=1.0, fraction=fraction, period="day", state=state)

    assert "83% WARNING" in budget_bar(status(0.83, "warning"), 60).plain
    assert "120% CRITICAL" in budget_bar(status(1.2, "critical"), 60).plain
    bar = budget_bar(status(0.5, "ok"), 60)
    assert "$0.50 of $1.00" in bar.plain and len(bar.plain) == 60
    summary = SimpleNamespace(today=1.0, month=2.0, projected_month_end=3.0, by_provider={}, unpriced=["x/y"])
    text = render_costs(CostData(summary=summary, budgets=[status(0.9, "warning")], overhead_day=0.5), 80).plain
    for words in ("today: $1.00", "this month: $2.00", "projected month-end: $3.00", "probe overhead: $0.50/day", "unpriced", "WARNING"):
        assert words in text
    # spend since the last read counts in every card: a projection never reads below the month
    summary.by_provider = {"openai": 2.0}
    pane_data = CostData(summary=summary)
    pane = SimpleNamespace(data=pane_data, stale=False)
    CostsPane.add_live(pane, {"openai": 1.0, "anthropic": 0.5})  # type: ignore[arg-type]
    text = render_costs(pane_data, 80).plain
    assert "this month: $3.50" in text and "projected month-end: $4.50" in text
    assert "anthropic $0.50, openai $3.00" in text and pane.stale


@pytest.mark.slow
def test_losing_the_terminal_stops_the_tui_and_keeps_the_data(tmp_path: Path) -> None:
    """SIGHUP with the terminal gone (an SSH drop): the process exits, nothing left running."""
    import sqlite3

    from conftest import subprocess_env, wait_for_stored_samples
    from pty_terminal import PtyRun

    db = tmp_path / "hup.db"
    run = PtyRun(["--tui", "--demo", "--db", str(db)], subprocess_env(TERM="xterm-256color"))
    try:
        assert run.wait_for(b"DEMO")
        wait_for_stored_samples(db)  # probes have landed on disk
        assert run.proc.poll() is None, "the TUI exited on its own"
        run.hang_up()
        assert run.proc.wait(timeout=20) is not None
    finally:
        run.close()
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM samples").fetchone()[0] > 0


def test_cli_tui_flags_dispatch_to_the_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any) -> None:
    from llmscope_tui import cli

    seen: dict[str, Any] = {}

    def fake_run(self: LLMScopeApp, *, mouse: bool = True) -> None:
        seen.update(mouse=mouse, fps=self.fps, demo=self.settings.demo)

    monkeypatch.setattr(LLMScopeApp, "run", fake_run)
    assert cli.main(["--tui", "--demo", "--fps", "2", "--no-mouse", "--db", str(tmp_path / "c.db")]) == 0
    assert seen == {"mouse": False, "fps": 2.0, "demo": True}
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["--tui", "--fps", "0"])
    assert exit_info.value.code == 2
    assert "--fps" in capsys.readouterr().err


def test_no_arguments_open_the_tui_at_a_terminal_and_the_log_elsewhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from llmscope_tui import cli
    from llmscope_tui.cli import run

    opened: list[str] = []
    monkeypatch.setattr(cli, "run_tui", lambda args: opened.append("tui") or 0)
    monkeypatch.setattr(cli, "run_log", lambda args: opened.append("log") or 0)
    monkeypatch.setattr(run, "_is_terminal", lambda stream: True)
    for argv, face in (
        ([], "tui"),
        (["--demo"], "tui"),
        (["--headless"], "log"),
        (["--format", "text"], "log"),
        (["--duration", "5s"], "log"),
        (["--tui", "--duration", "5s"], "tui"),
    ):
        opened.clear()
        assert cli.main(argv) == 0
        assert opened == [face], argv
    monkeypatch.setattr(run, "_is_terminal", lambda stream: False)  # a pipe, a service, CI
    opened.clear()
    assert cli.main([]) == 0
    assert opened == ["log"]


def test_tui_settings_come_from_the_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Any) -> None:
    from llmscope_tui import cli

    seen: dict[str, Any] = {}

    def fake_run(self: LLMScopeApp, *, mouse: bool = True) -> None:
        seen.update(mouse=mouse, fps=self.fps, theme=self.settings.tui.theme)

    monkeypatch.setattr(LLMScopeApp, "run", fake_run)
    config = tmp_path / "c.toml"
    target = '[[targets]]\nname = "t"\nprovider = "ollama"\nmodel = "m"\nbase_url = "http://127.0.0.1:9"\n'
    config.write_text('[tui]\nfps = 1\ntheme = "light"\nmouse = false\n' + target)
    assert cli.main(["--tui", "--config", str(config), "--db", str(tmp_path / "d.db")]) == 0
    assert seen == {"mouse": False, "fps": 1.0, "theme": "light"}
    assert cli.main(["--tui", "--config", str(config), "--fps", "8", "--db", str(tmp_path / "d.db")]) == 0
    assert seen["fps"] == 8.0  # the flag wins over the file
    config.write_text('[tui]\n\nfps = 100\n')
    assert cli.main(["--tui", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}:3" in err and "fps" in err and "Traceback" not in err


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_the_theme_named_in_the_config_is_used_and_a_wrong_one_is_reported(tmp_path: Path) -> None:
    settings = load_settings(demo=True, db=tmp_path / "t.db")
    settings.tui.theme = "light"
    app = LLMScopeApp(settings, monitor=_IdleMonitor())  # type: ignore[arg-type]
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.theme == "llmscope-light"
    settings.tui.theme = "no-such-theme"
    app = LLMScopeApp(settings, monitor=_IdleMonitor())  # type: ignore[arg-type]
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        assert app.theme == "llmscope-dark"
        assert any("no-such-theme" in str(n.message) for n in app._notifications)


class _IdleMonitor:
    """A monitor that never probes: for tests about the UI alone."""

    def __init__(self) -> None:
        from llmscope_tui.config import SpcSettings
        from llmscope_tui.costs import PriceBook
        from llmscope_tui.spc.bank import ChartBank

        self.charts = ChartBank(SpcSettings())
        self.prices = PriceBook([])
        self._stop = asyncio.Event()
        self.wall_clock = time.time
        self._subscribers: list[Any] = []
        self.saturated = False

    def reads_on_loop(self) -> bool:
        return self.saturated

    def subscribe(self, callback: Any) -> None:
        self._subscribers.append(callback)

    def publish(self, event: dict[str, Any]) -> None:
        for callback in self._subscribers:
            callback(event)

    async def run(self) -> None:
        await self._stop.wait()

    def stop(self, reason: str = "", grace_s: float | None = None) -> None:
        self._stop.set()

    def rebaseline(self, target: str | None = None) -> list[Any]:
        return []


@pytest.mark.slow
async def test_zooming_out_reaches_seven_days_from_the_data_file_and_past_incidents_return(tmp_path: Path) -> None:
    import time as time_module

    from llmscope_tui.incidents import Incident, MetricEffect
    from llmscope_tui.model import Sample, Violation
    from llmscope_tui.store import SampleStore

    now = time_module.time()
    db = tmp_path / "week.db"
    spike_ts = now - 3 * 86400  # three days ago: far beyond the 600 points held in memory
    with SampleStore(db) as store:
        store.add_many(
            Sample(ts=now - 7 * 86400 + 60 * i, target="demo-openai", provider="openai", model="gpt-4o-mini",
                   ok=True, ttft_ms=200.0 + (i % 7), tokens_in=5, tokens_out=5)
            for i in range(7 * 24 * 60 - 1)
        )
        store.add(Sample(ts=spike_ts + 30, target="demo-openai", provider="openai", model="gpt-4o-mini",
                         ok=True, ttft_ms=900.0, tokens_in=5, tokens_out=5))
        store.add_violation(Violation("demo-openai", "ttft_ms", 1, spike_ts + 30, 900.0, 9.0, 203.0, 2.0))
        past = Incident(id=3, target="demo-openai", provider="openai", opened_ts=spike_ts + 40, start_ts=spike_ts + 30,
                        rules={1, 5}, closed_ts=spike_ts + 400, resolution="recovered")
        past.metrics["ttft_ms"] = MetricEffect("ttft_ms", 0.45, 203.0, 294.0)
        store.save_incident(past)
    settings = load_settings(demo=True, db=db)
    app = LLMScopeApp(settings, monitor=_IdleMonitor(), store_every_s=60)  # type: ignore[arg-type]
    async with app.run_test(size=(120, 40)) as pilot:
        incidents = app.query_one(IncidentsTable)
        await wait_for(pilot, lambda: incidents.row_count == 1, what="the incident from before the restart")
        row = incidents.get_row_at(0)
        assert "closed" in str(row[0]) and row[1] == "demo-openai" and row[4] == "TTFT +45%" and row[5] == "1,5"
        assert row[2] == time_module.strftime("%m-%d %H:%M", time_module.localtime(spike_ts + 30))  # not today: dated
        assert row[3] == "6m 10s"
        charts = app.query_one(ChartsPane)
        await pilot.press("2")
        for _ in range(10):  # past the last step it stays at 7 days
            await pilot.press("minus")
        assert charts.window.label == "last 7 days"
        await wait_for(pilot, lambda: "✖" in str(app.query_one("#chart").render()), what="the stored firing drawn")
        title = str(app.query_one("#chart-title").render())
        assert "last 7 days" in title and "reading" not in title
        axis = str(app.query_one("#chart").render()).splitlines()[-1]
        week_ago = time_module.strftime("%m-%d", time_module.localtime(now - 7 * 86400))
        assert week_ago in axis  # the time axis is dated
        for _ in range(10):
            await pilot.press("plus")
        assert charts.window.label == "last 50 points"
        await pilot.press("q")


@pytest.mark.slow
async def test_maximising_the_charts_redraws_the_chart_to_the_new_size(tmp_path: Path) -> None:
    settings = load_settings(demo=True, db=tmp_path / "m.db")
    app = LLMScopeApp(settings, monitor=_IdleMonitor(), store_every_s=600)  # type: ignore[arg-type]
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.5)  # past the first store read, which redraws everything
        for i in range(60):  # points that arrive while nothing else changes afterwards
            app.state.apply({"event": "sample", "source": "probe", "target": "demo-openai", "ok": True,
                             "ts": 1_700_000_000.0 + i, "ttft_ms": 100.0 + i % 7})
        await pilot.pause(0.3)
        app.action_refresh_now()
        await pilot.pause(0.3)
        rows_before = len(str(app.query_one("#chart").render()).splitlines())
        await pilot.press("2", "m")
        await wait_for(pilot, lambda: len(str(app.query_one("#chart").render()).splitlines()) > rows_before + 3,
                       timeout=2.0, what="the chart redrawn to the maximised pane")
        await pilot.press("q")


@pytest.mark.slow  # a whole app through Pilot, or a real process: about a second
async def test_the_chart_title_keeps_the_windows_unit_at_80_columns(tmp_path: Path) -> None:
    settings = load_settings(demo=True, db=tmp_path / "z.db")
    app = LLMScopeApp(settings, monitor=_IdleMonitor(), store_every_s=600)  # type: ignore[arg-type]
    chart = LiveChart(baseline_size=10)
    app.monitor.charts.charts[("demo-openai", "ttft_ms")] = chart
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("2")
        app.query_one(ChartsPane).selected = "demo-openai"
        for i in range(30):  # limits and a firing: the longest title
            chart.add(100.0 + i % 7 + (80.0 if i == 29 else 0.0))
            app.state.apply({"event": "sample", "source": "probe", "target": "demo-openai", "ok": True,
                             "ts": time.time() - 30 + i, "ttft_ms": 100.0 + i % 7})
        for _ in range(10):
            await pilot.press("minus")
        assert app.query_one(ChartsPane).window.label == "last 7 days"
        heading = app.query_one("#chart-title")
        await wait_for(pilot, lambda: "7 d" in str(heading.render()), timeout=5.0, what="the 7-day title")
        shown = str(heading.render())[: heading.size.width]  # what fits on the line
        assert heading.size.width < 80 and len(str(heading.render())) <= heading.size.width, shown
        assert "UCL 107" in shown and ("7 d " in f"{shown} " or "7 days" in shown), shown
        await pilot.press("q")


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_the_demo_banner_names_the_target_of_the_scripted_incident_at_80_columns(tmp_path: Path) -> None:
    from llmscope_tui.demo import DemoProvider

    settings = load_settings(demo=True, db=tmp_path / "d.db")
    app = LLMScopeApp(settings, monitor=_IdleMonitor(), store_every_s=600)  # type: ignore[arg-type]
    clock = [1000.0]
    async with app.run_test(size=(80, 24)) as pilot:
        banner = app.query_one("#banner")
        assert str(banner.render()).startswith("DEMO: simulated provider")
        with DemoProvider(clock=lambda: clock[0]) as demo:
            clock[0] += 110  # the demo's latency shift runs
            event = demo.announce_due()
        assert event is not None and event["event"] == "demo"
        app.monitor.publish(event)  # as the demo's event source does
        app.bridge.tick()
        app.bridge.render_status()
        await pilot.pause()
        line = str(banner.render()).splitlines()[0]
        assert line.startswith("DEMO · scripted now: latency shift: demo-anthropic TTFT x1.8")
        assert len(line) <= 80
        await pilot.press("q")



@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_q_cancels_a_probe_in_flight_after_a_short_grace_and_stores_it(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    """Quitting does not wait out a slow provider (the scheduler's grace is the 3 s timeout
    here): the probe in flight gets QUIT_GRACE_S, then it is cancelled and stored as
    `cancelled`, and the WAL is checkpointed into the data file."""
    fake_provider.script(default=Script(fault="hang"))
    settings = fake_settings(tmp_path, fake_provider)
    app = LLMScopeApp(settings, fps=10)
    async with app.run_test() as pilot:
        await wait_for(pilot, lambda: app.monitor.scheduler is not None and app.monitor.scheduler.stats.in_flight > 0,
                       what="a probe in flight")
        await pilot.press("q")
        await wait_for(pilot, lambda: app.state.stopped is not None and app.monitor.scheduler.stopping)
    scheduler = app.monitor.scheduler
    assert scheduler is not None and scheduler.grace_s == QUIT_GRACE_S < settings.timeout_s
    assert app.return_code == 0
    with sqlite3.connect(settings.db_path) as conn:
        kinds = [kind for (kind,) in conn.execute("SELECT error_kind FROM samples")]
    assert kinds and set(kinds) == {"cancelled"}
