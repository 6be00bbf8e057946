"""Charts pane: a sparkline per target for the selected metric, and the selected target's full
individuals control chart (center line, UCL/LCL, 1 and 2 sigma zones, rule firings marked)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import Static

from ..chartrender import control_chart, fmt_value, spark_text
from ..layout import CHART_PLOT_ROWS
from ..state import METRIC_LABEL, METRICS, ViewState
from ..themes import ChartColors
from .visibility import DrawnWhenShown


@dataclass(frozen=True, slots=True)
class Zoom:
    """One +/- step of the control chart: the last N points (held in memory) or the last
    ``seconds`` of time (read from the data file, squeezed to the chart's width)."""

    label: str
    points: int | None = None
    seconds: float | None = None
    #: the same with its unit, for a narrow title (``7 d``, never ``last 7``)
    short: str = ""

    @property
    def refresh_s(self) -> float:
        """How stale a stored read may get: newer points come from the live events meanwhile."""
        return min(300.0, max(5.0, (self.seconds or 0.0) / 200))


ZOOMS: tuple[Zoom, ...] = (
    Zoom("last 50 points", points=50, short="50 pts"),
    Zoom("last 100 points", points=100, short="100 pts"),
    Zoom("last 200 points", points=200, short="200 pts"),
    Zoom("last 600 points", points=600, short="600 pts"),
    Zoom("last hour", seconds=3600.0, short="1 h"),
    Zoom("last 6 hours", seconds=6 * 3600.0, short="6 h"),
    Zoom("last 24 hours", seconds=24 * 3600.0, short="24 h"),
    Zoom("last 7 days", seconds=7 * 86400.0, short="7 d"),
)
ZOOM_DEFAULT = 1
#: Time buckets a stored read is squeezed to (more than any terminal is wide).
STORED_BUCKETS = 1000


@dataclass(slots=True)
class StoredWindow:
    """A long window read from the data file: each bucket's most extreme point, and firings."""

    read_at: float  # monotonic
    until: float  # wall time the read ends at; live points after it are added on top
    points: list[tuple[float, float]] = field(default_factory=list)
    firings: dict[float, float] = field(default_factory=dict)


class ChartsPane(DrawnWhenShown, can_focus=True):
    """Focusable: up/down (j/k) pick the target, c / C switch the metric."""

    ALLOW_MAXIMIZE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "move(1)", "Next target", show=False),
        Binding("k,up", "move(-1)", "Previous target", show=False),
    ]

    class Selected(Message):
        def __init__(self, target: str) -> None:
            super().__init__()
            self.target = target

    class Resized(Message):
        """The pane changed size (maximised, restored, the terminal resized): redraw it."""

    def on_resize(self, event: Any) -> None:
        self.post_message(self.Resized())

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metric = METRICS[0]
        self.zoom_index = ZOOM_DEFAULT
        #: (target, metric, seconds) -> what the last store read brought
        self.stored: dict[tuple[str, str, float], StoredWindow] = {}
        self.selected: str | None = None
        self.names: list[str] = []
        self.chart_colors = ChartColors()
        self._signature: tuple[Any, ...] | None = None
        self._spark_lines = -1

    def compose(self) -> ComposeResult:
        yield Static(id="sparks")
        yield Static(id="chart-title")
        yield Static(id="chart")

    @property
    def window(self) -> Zoom:
        return ZOOMS[self.zoom_index]

    def zoom(self, step: int) -> Zoom:
        """step < 0 zooms in (a shorter window), > 0 out; returns the new window."""
        self.zoom_index = max(0, min(len(ZOOMS) - 1, self.zoom_index + step))
        return self.window

    def zoom_to(self, state: ViewState, since: float, now: float | None = None) -> Zoom:
        """The shortest window that shows the selected chart from ``since`` on, with some of the
        time before it for comparison (an incident's chart: its start and what came before)."""
        now = time.time() if now is None else now
        view = state.targets.get(self.selected or "")
        points = view.series.get(self.metric, ()) if view is not None else ()
        after = sum(1 for ts, _ in points if ts >= since)
        held = len(points)
        for index, zoom in enumerate(ZOOMS):
            if zoom.points is not None:
                fits = after * 1.5 <= zoom.points and (held >= zoom.points or held > after)
            else:
                fits = (now - since) * 1.2 <= (zoom.seconds or 0.0)
            if fits:
                self.zoom_index = index
                return zoom
        self.zoom_index = len(ZOOMS) - 1
        return self.window

    def stored_read_due(self, now: float | None = None) -> tuple[str, str, float] | None:
        """The (target, metric, seconds) to read from the data file for a time window, when the
        chart shows one and its last read is missing or older than the window's refresh."""
        seconds = self.window.seconds
        if seconds is None or self.selected is None:
            return None
        key = (self.selected, self.metric, seconds)
        stored = self.stored.get(key)
        now = time.monotonic() if now is None else now
        if stored is None or now - stored.read_at >= self.window.refresh_s:
            return key
        return None

    def action_move(self, step: int) -> None:
        if not self.names:
            return
        index = self.names.index(self.selected) if self.selected in self.names else 0
        self.selected = self.names[(index + step) % len(self.names)]
        self.post_message(self.Selected(self.selected))

    def render_state(self, state: ViewState, monitor: Any, force: bool = False, order: list[str] | None = None) -> None:
        """Redraw the sparklines (in ``order``, the Targets table's, when given), and the control
        chart when what it shows changed (or ``force``)."""
        self.names = [n for n in order if n in state.targets] if order else list(state.targets)
        self.names += [n for n in state.targets if n not in self.names]
        if self.selected not in state.targets:
            self.selected = self.names[0] if self.names else None
        if self._fit_sparks():
            self._render_sparks(state, monitor)
        self._render_chart(state, monitor, force)

    def _fit_sparks(self) -> bool:
        """The sparklines only where the control chart keeps its plot rows under them (at
        80x24 the Targets table beside the cursor says what they would)."""
        sparks = self.query_one("#sparks", Static)
        show = self.size.height - 1 - (len(self.names) + 1) >= CHART_PLOT_ROWS + 1  # title; a blank under them
        if sparks.display != show:
            sparks.display = show
            self._spark_lines = -1
            self.call_after_refresh(self.post_message, self.Resized())  # the chart's new height
        return show

    def _render_sparks(self, state: ViewState, monitor: Any) -> None:
        metric = self.metric
        width = max(20, self.size.width)
        name_w = min(20, max((len(n) for n in self.names), default=6) + 3)
        spark_w = max(8, width - name_w - 26)
        sparks = Text(no_wrap=True, overflow="ellipsis")
        for name in self.names:
            view = state.targets[name]
            values = [v for _, v in view.series.get(metric, ())]
            chart = monitor.charts.chart(name, metric) if monitor is not None else None
            marker = "▶ " if name == self.selected else "  "
            sparks.append(f"{marker}{name[: name_w - 3]:<{name_w - 2}}", style="bold" if name == self.selected else "")
            limits = chart.limits(original_unit=True) if chart is not None else None
            sparks.append(spark_text(values, spark_w, limits, self.chart_colors))
            sparks.append(f" {fmt_value(values[-1]) if values else '-':>6} ")
            sparks.append(_phase(chart, state, name, metric))
            sparks.append("\n")
        # one line per target: the height changes only when the number of targets does
        self.query_one("#sparks", Static).update(sparks, layout=len(self.names) != self._spark_lines)
        self._spark_lines = len(self.names)

    def _render_chart(self, state: ViewState, monitor: Any, force: bool = False) -> None:
        title = self.query_one("#chart-title", Static)
        body = self.query_one("#chart", Static)
        name, metric = self.selected, self.metric
        if name is None:
            title.update("waiting for the first sample…")
            body.update("")
            return
        view = state.targets[name]
        chart = monitor.charts.chart(name, metric) if monitor is not None else None
        series = view.series.get(metric)
        firings_now = view.firings.get(metric)
        zoom = self.window
        stored = self.stored.get((name, metric, zoom.seconds)) if zoom.seconds is not None else None
        signature = (
            name, metric, self.chart_colors, body.size,
            len(series) if series else 0, series[-1][0] if series else None,
            len(firings_now) if firings_now else 0, zoom, None if stored is None else stored.read_at,
            None if chart is None else (chart.phase, chart.progress, chart.center),
        )
        if not force and signature == self._signature:
            return  # nothing it shows has changed: no re-render
        self._signature = signature
        limits = chart.limits(original_unit=True) if chart is not None else None
        heading = chart_title(
            f"{name} · {METRIC_LABEL[metric]}", limits, _phase(chart, state, name, metric), zoom,
            reading=zoom.seconds is not None and stored is None,
            width=title.size.width or self.size.width or 80,
        )
        title.update(heading, layout=False)  # one line, always
        width, height = max(30, body.size.width or self.size.width), max(4, body.size.height or 10)
        if zoom.seconds is None:
            firings = {ts for ts, _, _ in view.firings.get(metric, ())}
            points = list(view.series.get(metric, ()))
            body.update(
                control_chart(points, firings, limits, width, height, self.chart_colors, window=zoom.points),
                layout=False,  # the chart fills a fixed area
            )
            return
        # a time window: the stored read, then the live points that came after it
        until = stored.until if stored is not None else float("-inf")
        points = [*(stored.points if stored else ()), *(p for p in view.series.get(metric, ()) if p[0] > until)]
        marks = dict(stored.firings) if stored else {}
        marks.update((ts, value) for ts, value, _ in view.firings.get(metric, ()) if ts > until)
        now = time.time()
        body.update(
            control_chart(points, marks, limits, width, height, self.chart_colors, span=(now - zoom.seconds, now)),
            layout=False,
        )


def chart_title(head: str, limits: Any, phase: Text, zoom: Zoom, reading: bool, width: int) -> Text:
    """The chart's one-line title fitted to ``width``: the legend goes first, then long wording,
    then the phase (the sparkline beside the name says it too), then the name is cut; the window
    keeps its unit to the end, since a bare ``last 7`` reads as 7 points."""
    lim = ""
    lim_short = ""
    if limits is not None:
        lim = f"  CL {fmt_value(limits.center)}  UCL {fmt_value(limits.ucl)}  LCL {fmt_value(limits.lcl)}"
        lim_short = f" CL {fmt_value(limits.center)} UCL {fmt_value(limits.ucl)} LCL {fmt_value(limits.lcl)}"
    legend = "  • point ✖ rule fired"
    short = zoom.short or zoom.label
    variants = [  # (limits, phase, window, legend), longest first
        (lim, f"  {phase.plain}", f"  {zoom.label}{' (reading the data file…)' if reading else ''}", legend),
        (lim, f"  {phase.plain}", f"  {zoom.label}{' (reading…)' if reading else ''}", ""),
        (lim, f"  {phase.plain}", f"  {short}{' (reading…)' if reading else ''}", ""),
        (lim_short, f" {phase.plain}", f" {short}{'…' if reading else ''}", ""),
        (lim_short, "", f" {short}{'…' if reading else ''}", ""),
    ]
    for lim_part, phase_part, window_part, legend_part in variants:
        if cell_len(f"{head}{lim_part}{phase_part}{window_part}{legend_part}") <= width:
            break
    else:  # still too long: cut the name, never the window
        room = max(1, width - cell_len(lim_part + window_part))
        head = head if cell_len(head) <= room else set_cell_size(head, max(0, room - 1)) + "…"
    heading = Text(no_wrap=True, overflow="ellipsis")
    heading.append(head, style="bold")
    heading.append(lim_part)
    heading.append(f"{phase_part}{window_part}{legend_part}", style="dim")
    return heading


def _phase(chart: Any, state: ViewState, name: str, metric: str) -> Text:
    if chart is None:
        return Text("no live point yet", style="dim")
    if chart.phase == "baseline":
        k, n = chart.progress
        return Text(f"baseline {k}/{n}", style="italic")
    view = state.targets[name]
    firings = view.firings.get(metric)
    last = view.series.get(metric)
    if firings and last and firings[-1][0] == last[-1][0]:
        return Text(f"✖ rule {firings[-1][2]}", style="bold red")
    return Text("in control", style="green")
