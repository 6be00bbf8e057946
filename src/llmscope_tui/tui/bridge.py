"""From the monitor's events to the screen: the ViewState, the toasts, the panes, the status line.

The monitor calls the subscriber (:attr:`Bridge.events`'s ``append``) on its own thread; the
subscriber only appends. The app's refresh timer calls :meth:`Bridge.tick`, which drains the
events into the ViewState on the UI's loop and, unless the display is paused, redraws what
changed: one pass a second at most, so the terminal gets one compact update a second however
many samples arrive.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual.css.query import NoMatches
from textual.notifications import SeverityLevel
from textual.widgets import Static

from llmscope_tui.demo.timeline import event_words

from .state import METRIC_LABEL
from .widgets import ChartsPane, CostsPane, IncidentsTable, TargetsTable
from .widgets.visibility import drawn_if_shown

if TYPE_CHECKING:
    from .app import LLMScopeApp

TOAST_EVERY_S = 3.0
#: How long the latest alert stays in the Targets pane's border.
FLASH_S = 30.0
SLOW_PANES_EVERY_S = 1.0
#: An alert's severity -> the toast's.
TOAST_SEVERITY: dict[str, SeverityLevel] = {"critical": "error", "warning": "warning", "info": "information"}
FLASH_STYLE: dict[SeverityLevel, str] = {"error": "bold reverse red", "warning": "bold reverse yellow", "information": "bold reverse"}


class Bridge:
    """Applies the monitor's events to the app's ViewState and draws it into the panes."""

    def __init__(self, app: LLMScopeApp) -> None:
        self.app = app
        self.state = app.state
        self.settings = app.settings
        self.events: deque[dict[str, Any]] = deque()
        #: The ViewState version last drawn; -1: draw everything at the next tick.
        self.rendered = -1
        self._last_slow = -1e9
        self._last_status = -1e9
        self._status_line = self._banner_line = ""
        self._pending_alerts: list[dict[str, Any]] = []
        self._last_toast = -1e9
        #: the latest alert, shown in the Targets pane's bottom border until _flash_until
        self.flash = Text()
        self._flash_until = 0.0
        self._drew_data = False  # a pass has drawn a probe's result
        self._changed = False  # see changed()

    def invalidate(self) -> None:
        """The view changed (a key, a resize, new data from the file): the next tick redraws
        every pane at once instead of waiting for its once-a-second pass."""
        self.rendered = -1

    def changed(self) -> None:
        """Something the panes show changed outside the events (a store read's percentiles):
        drawn at the next once-a-second pass, without a pass of its own."""
        self._changed = True

    def redraw(self) -> None:
        """Redraw every pane now."""
        self.rendered = -1
        self.tick()

    def tick(self) -> None:
        events = self.events
        alerts: list[dict[str, Any]] = []
        while events:
            event = events.popleft()
            self.state.apply(event)
            if event.get("event") == "alert":
                alerts.append(event)
        self._pending_alerts.extend(alerts)
        now = time.monotonic()
        if self.flash and now >= self._flash_until:
            self.flash = Text()
            self._set_flash("")
        if self._pending_alerts and not self.app.paused and now - self._last_toast >= TOAST_EVERY_S:
            self._last_toast = now
            self._announce(self._pending_alerts)
            self._pending_alerts = []
        try:
            if not self.app.paused and (self.state.version != self.rendered or self._changed):
                self._render_panes()
            if now - self._last_status >= SLOW_PANES_EVERY_S:  # its counts move with every sample
                self.render_status()
        except NoMatches:  # the screen is being torn down (exit)
            pass

    def _announce(self, alerts: list[dict[str, Any]]) -> None:
        """Incidents and budget thresholds (the alerts: never single rule firings), at most one
        message every few seconds, held while the display is paused. Written in the Targets
        pane's bottom border, not a toast: a toast covered the chart and the status counts at
        80x24, and the border moves nothing on the screen."""
        incidents = [a for a in alerts if a.get("kind") == "incident"]
        others = [a for a in alerts if a.get("kind") != "incident"]
        if len(incidents) == 1:
            a = incidents[0]
            self._flash(f"incident: {a['text']}", TOAST_SEVERITY.get(a["severity"], "warning"))
        elif incidents:
            names = sorted({str(a["target"]) for a in incidents})
            more = f" and {len(names) - 3} more" if len(names) > 3 else ""
            worst: SeverityLevel = "error" if any(a["severity"] == "critical" for a in incidents) else "warning"
            self._flash(f"{len(incidents)} incident changes: {', '.join(names[:3])}{more} (3 lists them)", worst)
        if others:
            texts = [str(a.get("text") or "budget threshold crossed") for a in others[-2:]]
            self._flash(f"budget: {'; '.join(texts)}", "warning", keep=bool(incidents))
        opened = any((a.get("details") or {}).get("state") != "closed" for a in incidents)
        if self.settings.alerts.bell and (opened or others):
            self.app.bell()

    def _flash(self, text: str, severity: SeverityLevel, keep: bool = False) -> None:
        """The latest alert in the Targets pane's bottom border, stamped, for FLASH_S; with
        ``keep``, added after the one set in this same pass."""
        stamp = time.strftime("%H:%M:%S")
        line = f"{self.flash.plain} · {text}" if keep and self.flash else f" {stamp} {text} "
        self.flash = Text(line, style=FLASH_STYLE[severity], no_wrap=True, overflow="ellipsis")
        self._flash_until = time.monotonic() + FLASH_S
        self._set_flash(self.flash)

    def _set_flash(self, text: Text | str) -> None:
        try:
            pane = self.app.main.query_one("#targets-pane")
        except NoMatches:
            return
        pane.border_subtitle = text

    def _render_panes(self) -> None:
        """Everything that changed, in one pass at most once a second (or every frame when
        ``fps`` < 1), so the terminal gets one compact update a second however many samples
        arrive; a key that changes the view forces a pass at once. A pane off the screen (not
        displayed, or another one maximised) is skipped and drawn when it is shown again
        (widgets/visibility.py)."""
        # the first probe's figures are drawn at once, not up to a second later (time to data)
        force = self.rendered == -1 or (self.state.samples > 0 and not self._drew_data)
        self._drew_data = self._drew_data or self.state.samples > 0
        now = time.monotonic()
        if not force and now - self._last_slow < SLOW_PANES_EVERY_S:
            return
        self._last_slow = now
        app, main, reads = self.app, self.app.main, self.app.reads
        targets = main.query_one(TargetsTable)
        charts = main.query_one(ChartsPane)
        incidents = main.query_one(IncidentsTable)
        costs = main.query_one(CostsPane)
        app.fit_layout()  # a target may have come (ingest): the table's height follows
        if drawn_if_shown(targets):
            targets.refresh_rows(self.state, reads.stats, reads.cost_today)
        else:  # off the screen: only the order the charts follow
            targets.measure(self.state, reads.cost_today)
        if charts.selected is None:
            charts.selected = targets.selected_target()
        if drawn_if_shown(charts):
            charts.render_state(self.state, app.monitor, force=force, order=targets.order)
            reads.read_window_soon(charts)
        if drawn_if_shown(incidents):
            incidents.refresh_rows(self.state, now=app.monitor.wall_clock())
        live: dict[str, float] = {}
        for view in self.state.targets.values():
            if view.cost_live:
                live[view.provider] = live.get(view.provider, 0.0) + view.cost_live
        costs.add_live(live)
        if costs.stale and drawn_if_shown(costs):  # its data comes from the store reads
            costs.render_data(reads.cost_data)
        open_now = self.state.open_incidents
        self._set_title("#incidents-pane", f"3 Incidents · {open_now} open · {len(self.state.incidents)}")
        self._set_title("#charts-pane", f"2 Charts · {METRIC_LABEL[charts.metric]}")
        app.panes.caption(open_now)
        self.rendered = self.state.version
        self._changed = False
        self.render_status()

    def _set_title(self, selector: str, title: str) -> None:
        pane = self.app.main.query_one(selector)
        if pane.border_title != title:
            pane.border_title = title

    def render_status(self) -> None:
        self._last_status = time.monotonic()
        s = self.state
        width = self.app.size.width
        narrow = width < 120
        source = "DEMO" if s.demo else (f"config {_fit_path(s.config, 40)}" if s.config else "no config file (keys from environment)")
        parts = [
            ("PAUSED" if narrow else "PAUSED (p resumes; probing continues)") if self.app.paused else ("VIEWER" if self.app.viewing else "LIVE"),
            source,
            f"{self.state.probes_per_s():.1f} probes/s",
            f"{s.samples} samples",
            f"{s.errors} {'err' if narrow else 'errors'}",
            f"{s.open_incidents} {'incid.' if narrow else 'open incidents'}",
        ]
        if s.clock:
            parts.insert(3, f"{s.clock} clock")
        saturated = getattr(self.app.monitor, "reads_on_loop", None)  # a viewer has none
        if saturated is not None and saturated():
            parts.insert(3, "loop saturated")  # timings may read late (docs/performance.md)
        if s.stopped:
            parts.insert(1, f"monitor {s.stopped}")
        room = width - 2 - len(" · ".join(parts)) - len(" · data ")
        # the least needed parts give way to the data file's name, in this order
        for optional in (f"{s.samples} samples", f"{s.clock} clock"):
            if room >= 16 or not narrow:
                break
            if optional in parts:
                parts.remove(optional)
                room += len(f" · {optional}")
        line = " · ".join(parts) + f" · data {_fit_path(str(s.db), max(12, room))}"
        if line != self._status_line:  # an unchanged line costs no repaint
            self._status_line = line
            # one line, always: no layout pass (which would repaint the whole screen every second)
            self.app.main.query_one("#status", Static).update(line, layout=False)
        banner = None
        if self.settings.demo:
            banner = "DEMO: simulated provider (no config file and no provider keys)"
            # what runs now (the demo's latest event, its countdown kept current), first: 80
            # columns must show the target
            incident = event_words(s.demo_event, time.time()) if s.demo_event else None
            if incident:
                banner = f"DEMO · scripted now: {incident}"
        if self.app.viewing:  # first: the reason keys that change the monitor do nothing here
            banner = self.app.viewing if banner is None else f"{self.app.viewing} · {banner}"
        if banner is not None and banner != self._banner_line:
            self._banner_line = banner
            self.app.main.query_one("#banner", Static).update(banner, layout=False)  # one line


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
