"""The Textual face: runs the monitor in the same process and shows its events.

The monitor probes on an event loop of its own in a thread (monitor_thread.py), so composing
the screen never delays a probe's timestamps. Event flow: the monitor calls our subscriber on
its thread; the subscriber only appends to a deque. A timer (``fps`` per second) drains the
deque into the ViewState and, unless the display is paused, updates the panes in place (one
pass a second at most). Store reads (percentiles, spend, budgets) run in a
thread worker every few seconds and never overlap.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import threading
import time
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container, Vertical
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer, Input, Static

from llmscope_tui import paths
from llmscope_tui.config import Settings
from llmscope_tui.demo.timeline import event_words
from llmscope_tui.monitor import Monitor

from .monitor_thread import MonitorThread
from .chartrender import clock, fmt_value
from .screens import ConfirmScreen, FiringsScreen, HelpScreen
from .state import METRIC_LABEL, METRICS, ViewState
from .themes import DEFAULT_THEME, ChartColors, LoadedTheme, load_themes
from .widgets import ChartsPane, CostsPane, IncidentsTable, TargetsTable
from .widgets.charts import STORED_BUCKETS, StoredWindow
from .widgets.costs import CostData

TOAST_EVERY_S = 3.0
#: Once the data is safe, how long an exit may take before the process ends itself.
QUIT_WATCHDOG_S = 10.0
SIGNAL_WATCHDOG_S = 3.0
SLOW_PANES_EVERY_S = 1.0
#: Spend, budgets and recommendations: re-read this often (percentiles: every store read).
COSTS_EVERY_S = 30.0
PANES = ("targets-pane", "charts-pane", "incidents-pane", "costs-pane")


class Pane(Vertical):
    """A bordered, titled, maximisable pane."""

    ALLOW_MAXIMIZE = True


class LLMScopeApp(App[int]):
    CSS_PATH = "app.tcss"
    TITLE = "llmscope-tui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
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
        Binding("slash", "filter", "Filter"),
        Binding("1", "focus_pane(0)", "Targets", show=False),
        Binding("2", "focus_pane(1)", "Charts", show=False),
        Binding("3", "focus_pane(2)", "Incidents", show=False),
        Binding("4", "focus_pane(3)", "Costs", show=False),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        fps: float = 4.0,
        store_every_s: float = 5.0,
        monitor: Monitor | None = None,
        shutdown_timeout_s: float = 6.0,
        export_dir: Path | None = None,
        exit_watchdog: bool = False,
        freeze_gc: bool = False,
    ) -> None:
        """``exit_watchdog``: a real run (the command) ends its process if the exit stalls after
        the data is safe; ``freeze_gc``: it moves what startup built out of the garbage
        collector's way (see :meth:`_freeze_startup_objects`). Tests leave both off: they act on
        the whole test process."""
        super().__init__()
        self.exit_watchdog = exit_watchdog
        self.freeze_gc = freeze_gc
        self.settings = settings
        self.fps = max(0.2, min(float(fps), 30.0))
        self.store_every_s = store_every_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.export_dir = export_dir
        self.monitor = monitor or Monitor(settings)
        self.state = ViewState(
            demo=settings.demo,
            db=str(settings.db_path),
            config=str(settings.config_file) if settings.config_file else None,
        )
        for target in settings.targets:
            view = self.state.target(target.name)
            view.provider, view.model, view.enabled = target.provider, target.model, target.enabled
        self._events: deque[dict[str, Any]] = deque()
        self.monitor.subscribe(self._events.append)  # called on the monitor's thread: append only
        self.paused = False
        self._rendered = -1
        self._last_slow = -1e9
        self._last_status = -1e9
        self._last_costs_read = -1e9
        self._status_line = self._banner_line = ""
        self._store_busy = False
        self._window_busy = False
        self._history_loaded = False
        self._monitor_done = asyncio.Event()
        self._quitting = False
        self._watchdog: threading.Timer | None = None
        self._watchdog_due = float("inf")
        self._pending_alerts: list[dict[str, Any]] = []
        self._last_toast = -1e9
        self.stats: dict[str, Any] = {}
        self.cost_today: dict[str, float] = {}
        self.cost_data = CostData()
        self.themes: dict[str, LoadedTheme] = {}
        self.last_export: Path | None = None
        self.exit_code = 0

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        if self.settings.demo:
            yield Static("DEMO: simulated provider", id="banner")
        with Container(id="body"):
            with Pane(id="targets-pane", classes="pane"):
                yield Input(placeholder="filter targets by name (Enter keeps, Esc clears)", id="filter")
                yield TargetsTable(id="targets")
            with Pane(id="charts-pane", classes="pane"):
                yield ChartsPane(id="charts")
            with Pane(id="incidents-pane", classes="pane"):
                yield IncidentsTable(id="incidents")
            with Pane(id="costs-pane", classes="pane"):
                yield CostsPane(id="costs")
        yield Static(id="status")
        # fits 80 columns: the rest of the keys (r, t, +/-, 1-4, Ctrl+P palette) are in the ? help
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.main = self.screen  # panes are looked up here even while a modal screen is on top
        self._load_themes()
        titles = ("1 Targets", "2 Charts", "3 Incidents", "4 Costs")
        for pane_id, title in zip(PANES, titles, strict=True):
            self.main.query_one(f"#{pane_id}").border_title = title
        self.main.query_one("#filter", Input).display = False
        self.monitor_thread = MonitorThread(self.monitor, asyncio.get_running_loop(), self._monitor_ended)
        self.monitor_thread.start()
        self.set_interval(1.0 / self.fps, self._tick, name="refresh")
        self.set_interval(self.store_every_s, self._read_store_soon, name="store")
        self.set_timer(0.05, self._read_store_soon)  # the history: charts fill at once after a restart
        self.main.query_one(TargetsTable).focus()
        self._install_signals()
        self._tick()

    # -- themes -------------------------------------------------------------------------------

    def _load_themes(self) -> None:
        loaded = load_themes()
        for name, error in loaded.errors:
            self.notify(f"theme {name!r} failed to load: {error}", title="theme", severity="error", timeout=10)
        for name, theme in loaded.themes.items():
            problem = self._theme_problem(theme.theme)
            if problem is not None:
                self.notify(f"theme {name!r} cannot be used: {problem}", title="theme", severity="error", timeout=10)
                continue
            self.register_theme(theme.theme)
            self.themes[name] = theme
        wanted = self.settings.tui.theme
        start = _theme_named(wanted, self.themes) if wanted else DEFAULT_THEME
        if wanted and start is None:
            known = ", ".join(sorted(self.themes))
            where = f"{self.settings.config_file}: [tui] theme" if self.settings.config_file else "[tui] theme"
            self.notify(f"{where}: no theme {wanted!r} (have: {known}); using the default", severity="error", timeout=10)
            start = DEFAULT_THEME
        if start in self.themes:
            self.theme = start
            self._apply_chart_colors()

    def _theme_problem(self, theme: Any) -> str | None:
        """Try the theme on a copy of the stylesheet: Textual only finds a missing CSS variable
        when it applies a theme, and then the app dies; better to refuse the theme here."""
        variables = {
            **self.get_theme_variable_defaults(),
            **theme.to_color_system().generate(),
            **theme.variables,
        }
        sheet = self.stylesheet.copy()
        try:
            sheet.set_variables(variables)
            sheet.reparse()
        except Exception as exc:
            return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None

    def _apply_chart_colors(self) -> None:
        loaded = self.themes.get(self.theme)
        self.main.query_one(ChartsPane).chart_colors = loaded.chart if loaded else ChartColors()
        self._rendered = -1

    def watch_theme(self, theme: str) -> None:
        if self.is_mounted and self.themes:
            self._apply_chart_colors()

    def action_cycle_theme(self) -> None:
        names = list(self.themes) or [self.theme]
        index = names.index(self.theme) if self.theme in names else -1
        name = names[(index + 1) % len(names)]
        try:
            self.theme = name
        except Exception as exc:  # a theme Textual cannot apply: say which, keep the default
            self.notify(f"theme {name!r} cannot be used: {exc}", severity="error", timeout=10)
            self.themes.pop(name, None)
            self.theme = DEFAULT_THEME if DEFAULT_THEME in self.themes else "textual-dark"
            return
        self.notify(f"theme: {self.theme}", timeout=2)

    # -- the monitor --------------------------------------------------------------------------

    def _monitor_ended(self, error: BaseException | None) -> None:
        """The monitor's thread finished (on our loop). A failure is shown, not raised: the UI
        stays up to say what happened."""
        self._monitor_done.set()
        if error is not None and not isinstance(error, (KeyboardInterrupt, SystemExit)):
            self.state.last_error = f"the monitor stopped: {error}"
            self.state.stopped = "failed"
            self.notify(f"the monitor stopped: {error}", severity="error", timeout=30)

    def _install_signals(self) -> None:
        """SIGHUP (terminal gone, SSH dropped) and SIGTERM: stop probing and exit."""
        loop = asyncio.get_running_loop()
        for name in ("SIGHUP", "SIGTERM"):
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            try:
                loop.add_signal_handler(signum, lambda n=name: self.call_next(self._on_signal, n))
            except (NotImplementedError, RuntimeError, ValueError):
                pass

    def _remove_signals(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        for name in ("SIGHUP", "SIGTERM"):
            signum = getattr(signal, name, None)
            if signum is not None:
                try:
                    loop.remove_signal_handler(signum)
                except (NotImplementedError, RuntimeError, ValueError):
                    pass

    async def _on_signal(self, name: str) -> None:
        """The terminal went away (SIGHUP) or we were told to stop (SIGTERM): stop probing with
        the data safe on disk, then exit, with a short watchdog (see :meth:`_stop_and_exit`)."""
        await self._stop_and_exit(f"signal {name}", watchdog_s=SIGNAL_WATCHDOG_S)

    async def _stop_and_exit(self, reason: str, watchdog_s: float = QUIT_WATCHDOG_S) -> None:
        """Stop the monitor (in-flight probes finish, the store closes), then exit.

        Restoring a terminal that hung up can block Textual's exit for ever (its writer queue
        never drains), and by then our signal handlers are gone. So once the store is closed a
        watchdog ends the process if the exit stalls: no orphan left after an SSH drop, however
        the quit began (q, then the terminal vanished; or the signal itself)."""
        if self._quitting:  # a second q or signal: leave as soon as the data is safe
            watchdog_s = min(watchdog_s, SIGNAL_WATCHDOG_S)
        else:
            self._quitting = True
            self.state.stopped = "stopping…"
            self._render_status()
            self.monitor_thread.stop(reason)
        try:
            await asyncio.wait_for(asyncio.shield(self._monitor_done.wait()), self.shutdown_timeout_s)
        except TimeoutError:
            pass  # the worker is cancelled on exit; the store still closes (shielded)
        self._remove_signals()
        self._arm_watchdog(watchdog_s)
        self.exit(self.exit_code)

    def _arm_watchdog(self, seconds: float) -> None:
        if not self.exit_watchdog:
            return
        if self._watchdog is not None and self._watchdog_due <= time.monotonic() + seconds:
            return
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._watchdog_due = time.monotonic() + seconds
        self._watchdog = threading.Timer(seconds, os._exit, (self.exit_code,))
        self._watchdog.daemon = True
        self._watchdog.start()

    def disarm_watchdog(self) -> None:
        """The exit completed: the process ends its own way."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    async def action_quit(self) -> None:
        await self._stop_and_exit("quit")

    # -- refresh ------------------------------------------------------------------------------

    def _tick(self) -> None:
        events = self._events
        alerts: list[dict[str, Any]] = []
        while events:
            event = events.popleft()
            self.state.apply(event)
            if event.get("event") == "alert":
                alerts.append(event)
        self._pending_alerts.extend(alerts)
        now = time.monotonic()
        if self._pending_alerts and not self.paused and now - self._last_toast >= TOAST_EVERY_S:
            self._last_toast = now
            self._announce(self._pending_alerts)
            self._pending_alerts = []
        try:
            if not self.paused and self.state.version != self._rendered:
                self._render_panes()
            if now - self._last_status >= SLOW_PANES_EVERY_S:  # its counts move with every sample
                self._render_status()
        except NoMatches:  # the screen is being torn down (exit)
            pass

    def _announce(self, alerts: list[dict[str, Any]]) -> None:
        """Incidents and budget thresholds (the alerts: never single rule firings), at most one
        toast every few seconds and one on screen; held while the display is paused."""
        self.clear_notifications()
        incidents = [a for a in alerts if a.get("kind") == "incident"]
        others = [a for a in alerts if a.get("kind") != "incident"]
        severity = {"critical": "error", "warning": "warning", "info": "information"}
        if len(incidents) == 1:
            a = incidents[0]
            self.notify(a["text"], title="incident", severity=severity.get(a["severity"], "warning"), timeout=6, markup=False)
        elif incidents:
            names = sorted({str(a["target"]) for a in incidents})
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            worst = "error" if any(a["severity"] == "critical" for a in incidents) else "warning"
            self.notify(
                f"{len(incidents)} incident changes: {', '.join(names[:3])}{more} (pane 3)",
                title="incidents", severity=worst, timeout=6, markup=False,
            )
        for a in others[-2:]:
            self.notify(str(a.get("text") or "budget threshold crossed"), title="budget", severity="warning", markup=False)
        opened = any((a.get("details") or {}).get("state") != "closed" for a in incidents)
        if self.settings.alerts.bell and (opened or others):
            self.bell()

    def _render_panes(self) -> None:
        """Everything that changed, in one pass at most once a second (or every frame when
        ``fps`` < 1), so the terminal gets one compact update a second however many samples
        arrive; a key that changes the view forces a pass at once."""
        force = self._rendered == -1
        now = time.monotonic()
        if not force and now - self._last_slow < SLOW_PANES_EVERY_S:
            return
        self._last_slow = now
        targets = self.main.query_one(TargetsTable)
        charts = self.main.query_one(ChartsPane)
        targets.fit_width(self.size.width)
        targets.refresh_rows(self.state, self.stats, self.cost_today)
        if charts.selected is None:
            charts.selected = targets.selected_target()
        charts.render_state(self.state, self.monitor, force=force)
        self.main.query_one(IncidentsTable).refresh_rows(self.state, now=self.monitor.wall_clock())
        open_now = self.state.open_incidents
        self._set_title("#incidents-pane", f"3 Incidents · {open_now} open · {len(self.state.incidents)}")
        self._set_title("#charts-pane", f"2 Charts · {METRIC_LABEL[charts.metric]}")
        self._read_window_soon(charts)
        self._rendered = self.state.version
        self._render_status()

    def _set_title(self, selector: str, title: str) -> None:
        pane = self.main.query_one(selector)
        if pane.border_title != title:
            pane.border_title = title

    def _render_status(self) -> None:
        self._last_status = time.monotonic()
        s = self.state
        narrow = self.size.width < 120
        source = "DEMO" if s.demo else (f"config {_fit_path(s.config, 40)}" if s.config else "no config file (keys from environment)")
        parts = [
            ("PAUSED" if narrow else "PAUSED (p resumes; probing continues)") if self.paused else "LIVE",
            source,
            f"{self.state.probes_per_s():.1f} probes/s",
            f"{s.samples} samples",
            f"{s.errors} {'err' if narrow else 'errors'}",
            f"{s.open_incidents} {'incid.' if narrow else 'open incidents'}",
        ]
        if s.stopped:
            parts.insert(1, f"monitor {s.stopped}")
        room = self.size.width - 2 - len(" · ".join(parts)) - len(" · data ")
        if room < 16 and narrow:
            parts.remove(f"{s.samples} samples")  # the least needed part gives way to the data file
            room += len(f" · {s.samples} samples")
        line = " · ".join(parts) + f" · data {_fit_path(str(s.db), max(12, room))}"
        if line != self._status_line:  # an unchanged line costs no repaint
            self._status_line = line
            self.main.query_one("#status", Static).update(line)
        if self.settings.demo:
            banner = "DEMO: simulated provider (no config file and no provider keys)"
            incident = event_words(s.demo_event, time.time())
            if incident:  # what runs now, first: 80 columns must show the target
                banner = f"DEMO · scripted now: {incident}"
            if banner != self._banner_line:
                self._banner_line = banner
                self.main.query_one("#banner", Static).update(banner)

    def action_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self._rendered = -1
        self._tick()
        self._render_status()

    def action_refresh_now(self) -> None:
        self._rendered = -1
        self._last_costs_read = -1e9  # spend too, now
        self._tick()
        self._read_store_soon()
        self.notify("refreshing", timeout=1)

    # -- store reads (thread worker, never overlapping) -----------------------------------------

    def _read_store_soon(self) -> None:
        if self._store_busy or self._quitting:
            return
        self._store_busy = True
        self.run_worker(self._read_store, thread=True, group="store", name="store-read", exit_on_error=False)

    def _read_store(self) -> None:
        from llmscope_tui.report import budget_statuses, cost_summary, overhead, recommendations
        from llmscope_tui.rollups import rollups
        from llmscope_tui.store import open_readonly

        result: dict[str, Any] = {}
        try:
            prices = self.monitor.prices
            if self.cost_data.overhead_day is None:
                _, per_day, per_month, unpriced = overhead(self.settings, prices)
                result["overhead"] = (per_day, per_month, unpriced)
            if Path(self.settings.db_path).exists():
                with open_readonly(self.settings.db_path) as store:
                    if not self._history_loaded:  # alone, so the charts fill at once (~0.1 s on 1M samples)
                        result["history"] = _read_history(store, [t.name for t in self.settings.targets])
                    else:
                        ups = rollups(store, "1h", "target")
                        result["stats"] = {r.key: r for r in ups}
                    if "stats" in result and time.monotonic() - self._last_costs_read >= COSTS_EVERY_S:
                        # month-long spend scans take seconds on a big file, and spend moves slowly
                        # (the targets' cost today also adds what the live events bring meanwhile)
                        result["summary"] = cost_summary(store, prices)
                        result["budgets"] = budget_statuses(store, self.settings)
                        day = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
                        result["today"] = store.spend_by("target", since=day)
                        result["recs"] = [r.text for r in recommendations(store, self.settings, prices, ups)[:3]]
        except Exception as exc:  # a locked or damaged file: say so in the pane, keep going
            result["error"] = str(exc)
        try:
            self.call_from_thread(self._apply_store, result)
        except RuntimeError:
            pass  # the app is gone

    def _freeze_startup_objects(self) -> None:
        """A full garbage collection stops every thread, the monitor's too, for as long as it
        walks every object: 50-90 ms with the 150k objects the UI, Textual and the price
        catalogue hold, which would land in a probe's TTFT. What exists once the first screen
        and the history are up (widgets, styles, catalogue) lives as long as the app, so it is
        collected once and moved out of the collector's reach (gc.freeze)."""
        if self.freeze_gc:
            gc.collect()
            gc.freeze()

    def _apply_store(self, result: dict[str, Any]) -> None:
        self._store_busy = False
        data = self.cost_data
        if "history" in result:
            self._history_loaded = True
            self.state.backfill(*result["history"])
            self.set_timer(0.05, self._read_store_soon)  # then percentiles and spend
            self._rendered = -1
            self.call_later(self._tick)  # draw it now, not at the next frame
            self.set_timer(2.0, self._freeze_startup_objects)  # once the first screen is up
        if "overhead" in result:
            data.overhead_day, data.overhead_month, data.unpriced_targets = result["overhead"]
        if "stats" in result:
            self.stats = result["stats"]
        if "summary" in result:
            self._last_costs_read = time.monotonic()
            data.summary = result["summary"]
            data.budgets = result["budgets"]
            data.recommendations = result["recs"]
            self.cost_today = result["today"]
            for view in self.state.targets.values():
                view.cost_live = 0.0
        data.error = result.get("error")
        if not self.paused:
            try:
                self.main.query_one(CostsPane).render_data(data)
            except NoMatches:
                return
            self._rendered = -1

    def _read_window_soon(self, charts: ChartsPane) -> None:
        """A chart zoomed out past what memory holds (1 hour to 7 days) reads its window from
        the data file in a thread, squeezed in SQLite; one read at a time."""
        key = charts.stored_read_due()
        if key is None or self._window_busy or self._quitting or not Path(self.settings.db_path).exists():
            return
        self._window_busy = True
        chart = self.monitor.charts.chart(key[0], key[1]) if self.monitor is not None else None
        limits = chart.limits(original_unit=True) if chart is not None else None
        center = limits.center if limits is not None else None
        self.run_worker(
            lambda: self._read_window(key, center), thread=True, group="window", name="window-read", exit_on_error=False
        )

    def _read_window(self, key: tuple[str, str, float], center: float | None) -> None:
        from llmscope_tui.store import open_readonly

        target, metric, seconds = key
        until = time.time()
        result: StoredWindow | str
        try:
            with open_readonly(self.settings.db_path) as store:
                ts, values = store.metric_extremes(target, metric, until - seconds, until, STORED_BUCKETS, center)
                fired = store.violations(target, metric, since=until - seconds, limit=20_000)
            result = StoredWindow(
                read_at=time.monotonic(),
                until=until,
                points=list(zip(ts.tolist(), values.tolist(), strict=True)),
                firings={v.ts: v.value for v in fired},
            )
        except Exception as exc:  # a locked or damaged file: say so, keep the live chart
            result = str(exc)
        try:
            self.call_from_thread(self._apply_window, key, result)
        except RuntimeError:
            pass  # the app is gone

    def _apply_window(self, key: tuple[str, str, float], result: Any) -> None:
        self._window_busy = False
        try:
            charts = self.main.query_one(ChartsPane)
        except NoMatches:
            return
        if isinstance(result, str):  # try again after the window's refresh time, live points meanwhile
            self.notify(f"cannot read the chart's window: {result}", severity="error", timeout=10)
            result = StoredWindow(read_at=time.monotonic(), until=float("-inf"))
        charts.stored[key] = result
        self._rendered = -1

    # -- keys ---------------------------------------------------------------------------------

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen())

    def action_focus_pane(self, index: int) -> None:
        widget = (TargetsTable, ChartsPane, IncidentsTable, CostsPane)[index]
        self.main.query_one(widget).focus()

    def action_maximize(self) -> None:
        screen = self.screen
        if screen.maximized is not None:
            screen.minimize()
        elif screen.focused is not None:
            screen.maximize(screen.focused)

    def action_metric(self, step: int) -> None:
        charts = self.main.query_one(ChartsPane)
        charts.metric = METRICS[(METRICS.index(charts.metric) + step) % len(METRICS)]
        self._rendered = -1
        self._tick()

    def action_zoom(self, step: int) -> None:
        window = self.main.query_one(ChartsPane).zoom(step)
        self._rendered = -1
        self._tick()
        self.notify(f"chart: {window.label}", timeout=1.5)

    def action_filter(self) -> None:
        box = self.main.query_one("#filter", Input)
        box.display = True
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.main.query_one(TargetsTable).filter_text = event.value
            self._rendered = -1
            self._tick()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            if not event.value:
                event.input.display = False
            self.main.query_one(TargetsTable).focus()

    def on_key(self, event: Any) -> None:
        box = self.main.query_one("#filter", Input)
        if event.key == "escape" and box.has_focus:
            box.value = ""
            box.display = False
            self.main.query_one(TargetsTable).focus()
            event.stop()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if isinstance(event.data_table, TargetsTable) and event.row_key is not None:
            charts = self.main.query_one(ChartsPane)
            if charts.selected != event.row_key.value:
                charts.selected = str(event.row_key.value)
                self._rendered = -1

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on an incident: its target's chart of its biggest change, zoomed to it."""
        if isinstance(event.data_table, IncidentsTable) and event.row_key is not None:
            incident = event.data_table.by_key.get(str(event.row_key.value))
            if incident is None:
                return
            metrics = sorted(incident.metrics.values(), key=lambda m: -abs(m.effect))
            charts = self.main.query_one(ChartsPane)
            charts.selected = incident.target
            charts.metric = metrics[0].metric if metrics else charts.metric
            charts.zoom_to(self.state, incident.start_ts)
            if self.screen.maximized is not None:
                self.screen.minimize()
            self._rendered = -1
            charts.focus()
            self._tick()

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
        self.push_screen(FiringsScreen(title, [(clock(ts), *rest) for ts, *rest in rows]))

    def on_charts_pane_resized(self, message: ChartsPane.Resized) -> None:
        self._rendered = -1
        self.call_after_refresh(self._tick)  # once the new size is laid out

    def on_charts_pane_selected(self, message: ChartsPane.Selected) -> None:
        table = self.main.query_one(TargetsTable)
        try:
            table.move_cursor(row=table.get_row_index(message.target))
        except Exception:
            pass
        self._rendered = -1
        self._tick()

    def action_rebaseline(self) -> None:
        target = self.main.query_one(ChartsPane).selected or self.main.query_one(TargetsTable).selected_target()
        if target is None:
            self.notify("no target selected", severity="warning")
            return
        n = self.settings.spc.baseline_samples

        def done(yes: bool | None) -> None:
            if yes:
                keys = self.monitor_thread.call(self.monitor.rebaseline, target)
                self.notify(f"{target}: {len(keys)} charts start a new baseline ({n} good samples each)")
                self._rendered = -1
                self._tick()

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
            folder.mkdir(parents=True, exist_ok=True)
            count = write_csv(self.settings.db_path, out)
        except Exception as exc:
            self.call_from_thread(self.notify, f"export failed: {exc}", severity="error", timeout=10)
            return
        self.last_export = out
        self.call_from_thread(self.notify, f"exported {count} samples to {out}", title="CSV export", timeout=10)


def _read_history(
    store: Any, targets: list[str]
) -> tuple[dict[tuple[str, str], list[tuple[float, float]]], list[Any], list[Any]]:
    """The last points of each chart, the recent rule firings and the latest incidents, so a
    restart does not open on empty charts and an empty Incidents pane (index reads: fast on a
    file of millions of samples)."""
    from .state import HISTORY, MAX_INCIDENTS

    series: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for name in targets:
        for metric in METRICS:
            ts, values = store.metric_series(name, metric, limit=HISTORY)
            if len(ts):
                series[(name, metric)] = list(zip(ts.tolist(), values.tolist(), strict=True))
    return series, store.violations(limit=HISTORY), store.incidents(limit=MAX_INCIDENTS)


def _fit_path(path: str, width: int) -> str:
    """The data file's path in ``width`` characters: ~ for the home folder, then the middle
    elided, keeping the file name (what tells demo.db from samples.db)."""
    home = str(Path.home())
    if path.startswith(home + os.sep):
        path = "~" + path[len(home):]
    if len(path) <= width:
        return path
    name = Path(path).name
    head = max(0, width - len(name) - 2)
    return f"{path[:head]}…/{name}" if head else "…" + path[-(width - 1):]


def _theme_named(wanted: str, themes: dict[str, Any]) -> str | None:
    """``[tui] theme`` may give the full name (llmscope-light) or the file's short one (light)."""
    for name in (wanted, f"llmscope-{wanted}"):
        if name in themes:
            return name
    return None

