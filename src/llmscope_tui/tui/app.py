"""The Textual face: runs the monitor in the same process and shows its events.

The monitor probes on an event loop of its own in a thread (monitor_thread.py), so composing
the screen never delays a probe's timestamps. Event flow: the monitor calls our subscriber on
its thread; the subscriber only appends to a deque. A timer (``fps`` per second) drains the
deque into the ViewState and, unless the display is paused, updates the panes in place (one
pass a second at most): bridge.py. Store reads (percentiles, spend, budgets) run in a
thread worker every few seconds and never overlap: store_reads.py. The keys: bindings.py.

This module holds the App itself: the layout, start-up, themes and the way out (quit, SIGHUP,
SIGTERM, the exit watchdog).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from functools import partial
from pathlib import Path
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container, Horizontal, Vertical
from textual.widgets import Footer, Input, Static

from llmscope_tui.config import Settings
from llmscope_tui.monitor import Monitor
from llmscope_tui.redaction import scrub
from llmscope_tui.viewer import FileViewer

from .bindings import KeyActions
from .bridge import Bridge
from .layout import PaneLayout, plan_layout
from .monitor_thread import MonitorThread
from .state import ViewState
from .store_reads import StoreReads
from .themes import (
    DEFAULT_THEME,
    AppVariables,
    ChartColors,
    LoadedTheme,
    load_themes,
    theme_named,
    theme_problem,
)
from .widgets import ChartsPane, CostsPane, IncidentsTable, TargetsTable

#: Once the data is safe, how long an exit may take before the process ends itself.
QUIT_WATCHDOG_S = 10.0
SIGNAL_WATCHDOG_S = 3.0
#: How long a probe in flight at quit may finish before it is cancelled (stored as `cancelled`):
#: a person quitting does not wait out a slow provider. A second q or signal cancels at once.
QUIT_GRACE_S = 0.1
PANES = ("targets-pane", "charts-pane", "incidents-pane", "costs-pane")


class Pane(Vertical):
    """A bordered, titled, maximisable pane."""

    ALLOW_MAXIMIZE = True


class LLMScopeApp(AppVariables, KeyActions):
    # Textual maps Ctrl+C to a "press ctrl+q" notice; here it quits, as the README says (priority:
    # the filter box's copy binding does not swallow it).
    BINDINGS: ClassVar[list[BindingType]] = [Binding("ctrl+c", "quit", "Quit", show=False, priority=True)]
    CSS_PATH = "app.tcss"
    TITLE = "llmscope-tui"

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
        collector's way (see :meth:`StoreReads._freeze_startup_objects`). Tests leave both off:
        they act on the whole test process."""
        super().__init__()
        self.exit_watchdog = exit_watchdog
        self.freeze_gc = freeze_gc
        self.settings = settings
        self.fps = max(0.2, min(float(fps), 30.0))
        self.store_every_s = store_every_s
        self.shutdown_timeout_s = shutdown_timeout_s
        self.export_dir = export_dir
        self.monitor = monitor or Monitor(settings)
        #: the banner of a read-only viewer of a file another monitor holds (viewer.py), or None
        self.viewing = self.monitor.banner if isinstance(self.monitor, FileViewer) else None
        self.state = ViewState(
            demo=settings.demo,
            db=str(settings.db_path),
            config=str(settings.config_file) if settings.config_file else None,
        )
        for target in settings.targets:
            self.state.target(target.name).configure(target.provider, target.model, target.disabled_reason)
        self.bridge = Bridge(self)
        self.panes = PaneLayout()
        self.reads = StoreReads(self)
        self.monitor.subscribe(self.bridge.events.append)  # called on the monitor's thread: append only
        self.paused = False
        self._monitor_done = asyncio.Event()
        self.quitting = False
        self._watchdog: threading.Timer | None = None
        self._watchdog_due = float("inf")
        self.themes: dict[str, LoadedTheme] = {}
        self.last_export: Path | None = None
        self.exit_code = 0

    # -- layout -------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        if self.settings.demo or self.viewing:
            yield Static(self.viewing or "DEMO: simulated provider", id="banner", markup=False)
        with Container(id="body"):
            with Pane(id="targets-pane", classes="pane"):
                yield Input(placeholder="filter targets by name (Enter keeps, Esc clears)", id="filter")
                yield TargetsTable(id="targets")
            with Horizontal(id="middle"):
                with Pane(id="charts-pane", classes="pane"):
                    yield ChartsPane(id="charts")
                with Pane(id="incidents-pane", classes="pane"):
                    yield IncidentsTable(id="incidents")
            with Pane(id="costs-pane", classes="pane"):
                yield CostsPane(id="costs")
        yield Static(id="status", markup=False)  # paths and errors: never markup
        # fits 80 columns: the rest of the keys (r, t, +/-, 1-4, Ctrl+P palette) are in the ? help
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.main = self.screen  # panes are looked up here even while a modal screen is on top
        self._load_themes()
        titles = ("1 Targets", "2 Charts", "3 Incidents", "4 Costs")
        for pane_id, title in zip(PANES, titles, strict=True):
            self.main.query_one(f"#{pane_id}").border_title = title
        self.main.query_one("#filter", Input).display = False
        self.panes.screen = self.main
        self.fit_layout()
        self.monitor_thread = MonitorThread(self.monitor, asyncio.get_running_loop(), self._monitor_ended)
        self.monitor_thread.start()
        self.set_interval(1.0 / self.fps, self.bridge.tick, name="refresh")
        self.set_interval(self.store_every_s, self.reads.read_soon, name="store")
        self.set_timer(0.05, self.reads.read_soon)  # the history: charts fill at once after a restart
        self.main.query_one(TargetsTable).focus()
        for warning in self.settings.warnings:  # said on stderr too, but the screen covers that
            self.notify(warning, title="config", severity="warning", timeout=20)
        self._install_signals()
        self.bridge.tick()

    def on_resize(self, event: object) -> None:
        self.fit_layout()

    def fit_layout(self) -> None:
        """The arrangement for this size (layout.py): the panes fit, the screen never scrolls."""
        if self.panes.screen is None:
            return  # not mounted yet
        plan = plan_layout(self.size.width, self.size.height, len(self.state.targets), bool(self.settings.demo or self.viewing))
        self.main.query_one(TargetsTable).fit_rows(plan.rows)
        if self.panes.apply(plan):
            self.bridge.invalidate()

    # -- themes -------------------------------------------------------------------------------

    def _load_themes(self) -> None:
        loaded = load_themes()
        for name, error in loaded.errors:
            self.notify(f"theme {name!r} failed to load: {error}", title="theme", severity="error", timeout=10)
        for name, theme in loaded.themes.items():
            problem = theme_problem(self, theme.theme)
            if problem is not None:
                self.notify(f"theme {name!r} cannot be used: {problem}", title="theme", severity="error", timeout=10)
                continue
            self.register_theme(theme.theme)
            self.themes[name] = theme
        wanted = self.settings.tui.theme
        start = theme_named(wanted, self.themes) if wanted else DEFAULT_THEME
        if wanted and start is None:
            known = ", ".join(sorted(self.themes))
            where = f"{self.settings.config_file}: [tui] theme" if self.settings.config_file else "[tui] theme"
            self.notify(f"{where}: no theme {wanted!r} (have: {known}); using the default", severity="error", timeout=10)
            start = DEFAULT_THEME
        if start in self.themes:
            self.theme = start
            self._apply_chart_colors()

    def _apply_chart_colors(self) -> None:
        loaded = self.themes.get(self.theme)
        self.main.query_one(ChartsPane).chart_colors = loaded.chart if loaded else ChartColors()
        self.bridge.invalidate()

    def watch_theme(self, theme: str) -> None:
        """The charts' line colours follow the theme (``t``, the palette's theme picker). The
        themes are registered in on_mount, once the panes exist: before that, nothing to paint."""
        if self.themes:
            self._apply_chart_colors()

    # -- the monitor --------------------------------------------------------------------------

    def _monitor_ended(self, error: BaseException | None) -> None:
        """The monitor's thread finished (on our loop). A failure is shown, not raised: the UI
        stays up to say what happened."""
        self._monitor_done.set()
        if error is not None and not isinstance(error, (KeyboardInterrupt, SystemExit)):
            self.state.last_error = shown = scrub(f"the monitor stopped: {error}")
            self.state.stopped = "failed"
            self.notify(shown, severity="error", timeout=30)

    def _install_signals(self) -> None:
        """SIGHUP (terminal gone, SSH dropped) and SIGTERM: stop probing and exit.

        A plain signal handler, not the event loop's: it runs in the main thread whatever the
        loop or Textual's message queue are doing (an exit already under way no longer reads
        the queue, and a loop busy rendering reads it late), so a stop is always honoured."""
        loop = asyncio.get_running_loop()
        for name in ("SIGHUP", "SIGTERM"):
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            try:
                loop.remove_signal_handler(signum)  # the web driver's (an exit with no data safety)
                signal.signal(signum, partial(self._signal_received, loop, name))
            except (NotImplementedError, RuntimeError, ValueError):
                pass

    def _signal_received(self, loop: asyncio.AbstractEventLoop, name: str, *_: object) -> None:
        """In the main thread, at once: the monitor is told to stop and a watchdog bounds the
        whole exit; then the orderly exit runs on the UI's loop."""
        self.monitor_thread.stop(f"signal {name}", grace_s=QUIT_GRACE_S)
        self._arm_watchdog(self.shutdown_timeout_s + SIGNAL_WATCHDOG_S)
        try:
            loop.call_soon_threadsafe(partial(self.call_next, self._on_signal, name))
        except RuntimeError:
            pass  # the loop has closed: the watchdog ends the process

    def _remove_signals(self) -> None:
        """From now on a signal ends the process at once (the data is safe)."""
        for name in ("SIGHUP", "SIGTERM"):
            signum = getattr(signal, name, None)
            if signum is not None:
                try:
                    signal.signal(signum, signal.SIG_DFL)
                except (ValueError, OSError):
                    pass

    async def on_exit_app(self) -> None:
        """Textual's own way out (in a browser: the tab closed, or serve asked the app to quit):
        the monitor stops with the data safe, as with q, within the watchdog's bound."""
        await self._stop_monitor_on_the_way_out()

    async def on_unmount(self) -> None:
        """Shutdown without an exit message (an embedding host or a test's run_test): the monitor
        still stops and its thread ends, so no probe loop outlives the app. After q it has
        already stopped and this returns at once."""
        await self._stop_monitor_on_the_way_out()
        thread = getattr(self, "monitor_thread", None)
        if thread is not None:
            await asyncio.to_thread(thread.join, self.shutdown_timeout_s)

    async def _stop_monitor_on_the_way_out(self) -> None:
        thread = getattr(self, "monitor_thread", None)
        if thread is None:
            return  # not started: nothing to stop
        if not self._monitor_done.is_set():
            if not self.quitting:
                self.quitting = True
                thread.stop("exit", grace_s=QUIT_GRACE_S)
            self._arm_watchdog(self.shutdown_timeout_s + SIGNAL_WATCHDOG_S)
            try:
                await asyncio.wait_for(asyncio.shield(self._monitor_done.wait()), self.shutdown_timeout_s)
            except TimeoutError:
                pass
        self._remove_signals()  # the handlers name this app: none left behind once it is gone

    async def _on_signal(self, name: str) -> None:
        """The terminal went away (SIGHUP) or we were told to stop (SIGTERM): stop probing with
        the data safe on disk, then exit, with a short watchdog (see :meth:`_stop_and_exit`)."""
        await self._stop_and_exit(f"signal {name}", watchdog_s=SIGNAL_WATCHDOG_S)

    async def _stop_and_exit(self, reason: str, watchdog_s: float = QUIT_WATCHDOG_S) -> None:
        """Stop the monitor (in-flight probes get QUIT_GRACE_S, the store closes), then exit.

        Restoring a terminal that hung up can block Textual's exit for ever (its writer queue
        never drains), and by then our signal handlers are gone. So once the store is closed a
        watchdog ends the process if the exit stalls: no orphan left after an SSH drop, however
        the quit began (q, then the terminal vanished; or the signal itself)."""
        if self.quitting:  # a second q or signal: leave as soon as the data is safe
            watchdog_s = min(watchdog_s, SIGNAL_WATCHDOG_S)
            self.monitor_thread.stop(reason, grace_s=0.0)
        else:
            self.quitting = True
            self.state.stopped = "stopping…"
            self.bridge.render_status()
            self.monitor_thread.stop(reason, grace_s=QUIT_GRACE_S)
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
