"""The keys and what they do, and what the panes' own messages (Enter, `d`, a resize) change.

The help screen (screens.py KEY_HELP) and docs/tui.md list the same keys. The actions live on
the App (a key works whatever pane has the focus; under a modal screen only the modal's own keys
work, as Textual leaves the screens below a modal out of its bindings);
:class:`KeyActions` is the App's base so that they read in one place.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual.app import App
from textual.binding import Binding, BindingType
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Input
from textual.widgets.data_table import RowDoesNotExist

from llmscope_tui import paths
from llmscope_tui.config import Settings
from llmscope_tui.monitor import Monitor
from llmscope_tui.viewer import FileViewer

from .chartrender import clock, fmt_value
from .distribution import DistributionScreen
from .layout import VIEWS, PaneLayout
from .screens import ConfirmScreen, FiringsScreen, HelpScreen
from .state import METRIC_LABEL, METRICS, ViewState
from .themes import DEFAULT_THEME, LoadedTheme
from .widgets import ChartsPane, CostsPane, IncidentsTable, TargetsTable
from .widgets.visibility import PaneShown

if TYPE_CHECKING:
    from .bridge import Bridge
    from .monitor_thread import MonitorThread
    from .store_reads import StoreReads


class KeyActions(App[int]):
    """The key actions and pane-message handlers of :class:`~.app.LLMScopeApp` (all but quit:
    stopping cleanly is the app's own lifecycle, in app.py)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
        Binding("p", "pause", "Pause"),
        Binding("r", "refresh_now", "Refresh", show=False),
        Binding("c", "metric(1)", "Metric"),
        Binding("C", "metric(-1)", "Metric back", show=False),
        Binding("plus,equals_sign", "zoom(-1)", "Zoom in", show=False),
        Binding("minus", "zoom(1)", "Zoom out", show=False),
        Binding("b", "rebaseline", "Rebase"),
        Binding("e", "export", "Export"),
        Binding("t", "cycle_theme", "Theme", show=False),
        Binding("m", "maximize", "Max"),
        Binding("v", "distribution", "Dist"),
        Binding("slash", "filter", "Filter"),
        Binding("1", "focus_pane(0)", "Targets", show=False),
        Binding("2", "focus_pane(1)", "Charts", show=False),
        Binding("3", "focus_pane(2)", "Incidents", show=False),
        Binding("4", "focus_pane(3)", "Costs", show=False),
    ]

    # what the actions use: set by LLMScopeApp (__init__, on_mount)
    main: Screen[Any]
    settings: Settings
    monitor: Monitor
    monitor_thread: MonitorThread
    state: ViewState
    bridge: Bridge
    panes: PaneLayout
    reads: StoreReads
    themes: dict[str, LoadedTheme]
    paused: bool
    export_dir: Path | None
    last_export: Path | None

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = False,
    ) -> None:
        """Textual's notify, with markup off by default: our messages carry config text, paths
        and provider errors (``[tui] theme`` must not lose its ``[tui]``)."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=markup)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_distribution(self) -> None:
        """The charted target's (the Targets cursor's) TTFT or latency histogram."""
        charts = self.main.query_one(ChartsPane)
        target = charts.selected or self.main.query_one(TargetsTable).selected_target()
        if target is None:
            self.notify("no target selected", severity="warning")
            return
        self.push_screen(DistributionScreen(self.settings.db_path, target, charts.metric, charts.chart_colors))

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.bridge.invalidate()
        self.bridge.tick()
        self.bridge.render_status()

    def action_refresh_now(self) -> None:
        self.bridge.invalidate()
        self.reads.last_costs_read = -1e9  # spend too, now
        self.bridge.tick()
        self.reads.read_soon()
        self.notify("refreshing", timeout=1)

    def action_focus_pane(self, index: int) -> None:
        """1-4: that pane has the focus; in the stack (80x24), 2-4 also show it under Targets."""
        widget = self.main.query_one((TargetsTable, ChartsPane, IncidentsTable, CostsPane)[index])
        self.show_pane(widget, VIEWS[index - 1] if index else None)

    def show_pane(self, widget: Widget, view: str | None) -> None:
        """Focus ``widget``, first showing its view in the stack and restoring a maximised pane;
        a hidden widget refuses the focus, so it takes it once it is laid out again."""
        hidden = view is not None and self.panes.show(view)
        if self.screen.maximized is not None and self.screen.maximized is not widget:
            self.screen.minimize()
            hidden = True
        if hidden:
            self.bridge.invalidate()
            self.call_after_refresh(widget.focus)
            self.call_after_refresh(self.bridge.tick)  # drawn at its new size
        else:
            widget.focus()

    def action_maximize(self) -> None:
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
        elif screen.focused is not None:
            screen.maximize(screen.focused)

    def action_metric(self, step: int) -> None:
        charts = self.main.query_one(ChartsPane)
        charts.metric = METRICS[(METRICS.index(charts.metric) + step) % len(METRICS)]
        self.bridge.redraw()

    def action_zoom(self, step: int) -> None:
        window = self.main.query_one(ChartsPane).zoom(step)
        self.bridge.redraw()
        self.notify(f"chart: {window.label}", timeout=1.5)

    def action_cycle_theme(self) -> None:
        names = list(self.themes) or [self.theme]
        index = names.index(self.theme) if self.theme in names else -1
        name = names[(index + 1) % len(names)]
        try:
            self.theme = name
        except Exception as exc:  # noqa: BLE001 (a theme Textual cannot apply: say which, keep the default)
            self.notify(f"theme {name!r} cannot be used: {exc}", severity="error", timeout=10)
            self.themes.pop(name, None)
            self.theme = DEFAULT_THEME if DEFAULT_THEME in self.themes else "textual-dark"
            return
        self.notify(f"theme: {self.theme}", timeout=2)

    # -- the targets filter (/) -------------------------------------------------------------

    def action_filter(self) -> None:
        box = self.main.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.main.query_one(TargetsTable).filter_text = event.value
            self.bridge.redraw()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            if not event.value:
                event.input.display = False
            self.main.query_one(TargetsTable).focus()

    def on_key(self, event: Any) -> None:
        """Esc clears an active filter wherever the focus is on the main screen (a modal's Esc
        closes the modal: its bindings see the key first)."""
        if event.key != "escape" or self.screen is not self.main:
            return
        box = self.main.query_one("#filter", Input)
        if not (box.display or box.value):
            return
        focus_targets = box.has_focus
        box.value = ""
        box.display = False
        if focus_targets:
            self.main.query_one(TargetsTable).focus()
        event.stop()

    # -- what the panes say -----------------------------------------------------------------

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """The chart follows the Targets cursor. The target is read from the table now, not
        from the message: rows added or sorted since it was posted may have moved it."""
        if isinstance(event.data_table, TargetsTable):
            target = event.data_table.selected_target()
            charts = self.main.query_one(ChartsPane)
            if target is not None and charts.selected != target:
                charts.selected = target
                self.bridge.invalidate()

    def on_targets_table_sorted(self, message: TargetsTable.Sorted) -> None:
        """`s`: the sparklines take the table's new order at once."""
        self.bridge.redraw()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on an incident: its target's chart of its biggest change, zoomed to it."""
        if isinstance(event.data_table, IncidentsTable) and event.row_key is not None:
            incident = event.data_table.by_key.get(str(event.row_key.value))
            if incident is None:
                return
            if incident.target not in self.state.targets:  # a past incident of a target since removed
                self.notify(f"{incident.target} is not in the configuration any more: no chart", severity="warning")
                return
            metrics = sorted(incident.metrics.values(), key=lambda m: -abs(m.effect))
            charts = self.main.query_one(ChartsPane)
            charts.selected = incident.target
            charts.metric = metrics[0].metric if metrics else charts.metric
            charts.zoom_to(self.state, incident.start_ts)
            self.bridge.invalidate()
            self.show_pane(charts, "charts")
            self.bridge.tick()

    def on_incidents_table_details(self, message: IncidentsTable.Details) -> None:
        """`d` on an incident: the rule firings behind it (one level down)."""
        incident = message.incident
        view = self.state.targets.get(incident.target)
        rows: list[tuple[float, str, str, str]] = []
        end = incident.closed_ts if incident.closed_ts is not None else float("inf")
        from llmscope_tui.spc import RULE_TEXT

        for metric, firings in (view.firings.items() if view is not None else ()):
            for ts, value, rule in firings:
                if incident.start_ts <= ts <= end:
                    rows.append((ts, METRIC_LABEL.get(metric, metric), fmt_value(value), f"{rule} {RULE_TEXT.get(rule, '')}"))
        rows.sort(reverse=True)
        title = f"incident #{incident.id} · {incident.target} · {len(rows)} rule firings"
        self.push_screen(FiringsScreen(title, [(clock(ts), label, shown, why) for ts, label, shown, why in rows]))

    def on_pane_shown(self, message: PaneShown) -> None:
        """A pane skipped while off the screen (a narrow layout, another pane maximised) is
        shown again: draw it now, not at the next second's pass."""
        self.bridge.redraw()

    def on_charts_pane_resized(self, message: ChartsPane.Resized) -> None:
        self.bridge.invalidate()
        self.call_after_refresh(self.bridge.tick)  # once the new size is laid out

    def on_charts_pane_selected(self, message: ChartsPane.Selected) -> None:
        table = self.main.query_one(TargetsTable)
        try:
            table.move_cursor(row=table.get_row_index(message.target))
        except RowDoesNotExist:  # filtered out of the table: nothing to move
            pass
        self.bridge.redraw()

    # -- rebaseline (b) and export (e) ------------------------------------------------------

    def action_rebaseline(self) -> None:
        if isinstance(self.monitor, FileViewer):  # another process runs the charts of this file
            self.notify(self.monitor.refusal("b (rebaseline)"), severity="warning", timeout=10)
            return
        target = self.main.query_one(ChartsPane).selected or self.main.query_one(TargetsTable).selected_target()
        if target is None:
            self.notify("no target selected", severity="warning")
            return
        n = self.settings.spc.baseline_samples

        def done(yes: bool | None) -> None:
            if yes:
                keys = self.monitor_thread.call(self.monitor.rebaseline, target)
                self.notify(f"{target}: {len(keys)} charts start a new baseline ({n} good samples each)")
                self.bridge.redraw()

        self.push_screen(
            ConfirmScreen(f"Rebaseline {target}?\nIts control limits are forgotten; the next {n} good samples set new ones."),
            done,
        )

    def action_export(self) -> None:
        self.run_worker(self._export, thread=True, group="export", name="export", exit_on_error=False)

    def _export(self) -> None:
        from llmscope_tui.export import write_csv

        folder = self.export_dir or (paths.data_dir() / "exports")
        out = folder / f"llmscope-{time.strftime('%Y%m%d-%H%M%S')}.csv"
        try:
            paths.private_dir(folder)
            count = write_csv(self.settings.db_path, out)
        except Exception as exc:  # noqa: BLE001 (any failure is the user's to read: a toast)
            self.call_from_thread(self.notify, f"export failed: {exc}", severity="error", timeout=10)
            return
        self.last_export = out
        self.call_from_thread(self.notify, f"exported {count} samples to {out}", title="CSV export", timeout=10)
