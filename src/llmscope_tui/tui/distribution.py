"""The distribution view (`v`): a histogram of the selected target's TTFT or latency over a
window, with p50 / p95 / p99 drawn as vertical lines and their values written out.

The figures are the Targets table's and ``report``'s: the same store read (the target's
successful samples since the window's start) and the same percentile arithmetic
(rollups.metric_stats). The store is read in a thread worker; plotext lays out the bins, axes
and ticks, drawn without colour and then tinted with the chart's theme colours, so each line
keeps its own glyph (``┃`` p50, ``┊`` p95, ``║`` p99) under NO_COLOR.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widget import Widget
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from llmscope_tui.rollups import WINDOWS, MetricStats, metric_stats

from .chartrender import clock, spark_bounds
from .screens import modal_footer
from .state import METRIC_LABEL
from .themes import ChartColors
from .widgets.targets import ms

#: The metrics a histogram in milliseconds is drawn for; any other chart metric falls back to
#: the first (ITL is a per-sample mean and tok/s has no milliseconds).
HIST_METRICS: tuple[str, ...] = ("ttft_ms", "latency_ms")
#: The windows `w` steps through: the Targets table's (1h) first, then report's others.
WINDOW_ORDER: tuple[str, ...] = tuple(WINDOWS)
#: percentile -> (plotext line style, the glyph it draws): one glyph each, none of the frame's.
MARKS: dict[str, tuple[str, str]] = {"p50": ("heavy", "┃"), "p95": ("dotted", "┊"), "p99": ("double", "║")}
BAR = "█"
#: Bins at most, and at least when there are enough distinct values.
MAX_BINS, MIN_BINS = 50, 5
#: The smallest plot worth drawing (frame, ticks and a few rows of bars).
MIN_PLOT_W, MIN_PLOT_H = 30, 6


def hist_metric(chart_metric: str) -> str:
    """The metric the view shows for the chart's: TTFT or latency, else TTFT."""
    return chart_metric if chart_metric in HIST_METRICS else HIST_METRICS[0]


@dataclass(frozen=True, slots=True)
class Distribution:
    """One target's metric over one window, as read from the data file."""

    target: str
    metric: str
    window: str
    values: np.ndarray
    stats: MetricStats | None
    #: the drawn range's top: Tukey's far-out fence (the sparklines' scale) but never below
    #: p99, so one outlier does not squeeze the bars into a column; what lies above is counted
    upper: float
    read_at: float  # wall clock

    @property
    def above(self) -> int:
        """Samples beyond the drawn range (said in words under the plot)."""
        return int(np.count_nonzero(self.values > self.upper))


def read_distribution(
    db_path: Path | str, target: str, metric: str, window: str, now: float | None = None
) -> Distribution:
    """Blocking (a thread worker's job): the target's successful values of ``metric`` since
    the window's start, what rollups() reads for the Targets table and report."""
    import plotext  # noqa: F401 (imported here, off the UI thread, for render_histogram)

    from llmscope_tui.store import open_readonly

    now_s = time.time() if now is None else now
    values = np.empty(0)
    if Path(db_path).exists():
        with open_readonly(db_path) as store:
            _, values = store.metric_series(target, metric, since=now_s - WINDOWS[window])
    stats = metric_stats(values)
    upper = math.inf
    if stats is not None:
        fence = spark_bounds(values.tolist())[1]
        upper = min(float(values.max()), max(fence, stats.p99))
    return Distribution(target, metric, window, values, stats, upper, now_s)


def nice_ticks(low: float, high: float, most: int) -> list[float]:
    """At most ``most`` round tick positions (1, 2 or 5 times a power of ten apart) in
    [low, high]: plotext's own labels turn to scientific notation (``2.2e2``)."""
    span = high - low
    if span <= 0 or most < 2:
        return [low]
    raw = span / (most - 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(low / step) * step
    return [first + i * step for i in range(int((high - first) // step) + 1)]


def _label(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 10 or value == int(value) else f"{value:.1f}"


def render_histogram(dist: Distribution, width: int, height: int, colors: ChartColors) -> Text:
    """The histogram at ``width`` x ``height`` cells; the bars in the points' colour, the
    percentile lines in the center, ±2σ and limit colours (the glyph alone tells them apart)."""
    import plotext  # 0.2-0.4 s to import: paid by the first read's worker, not at start-up

    stats = dist.stats
    if stats is None or width < MIN_PLOT_W or height < MIN_PLOT_H:
        return Text("")
    values = dist.values[dist.values <= dist.upper]
    low, high = float(values.min()), float(dist.upper)
    bins = max(1, min(MAX_BINS, (width - 8) // 2, max(MIN_BINS, int(math.sqrt(values.size)) + 1)))
    counts, edges = np.histogram(values, bins=bins, range=(low, high) if high > low else None)
    centers = ((edges[:-1] + edges[1:]) / 2).tolist()
    top = int(counts.max())
    fig = plotext.figure  # plotext has one figure: drawn on the UI thread only, start to end
    fig.clear()
    plotext.terminal.limit(False, False)
    fig.plot_size(width, height)
    fig.theme("clear")
    fig.draw(fig.bar(centers, counts.tolist(), width=1, marker=BAR))
    for name in ("p99", "p95", "p50"):  # sharing a column, the lower percentile's glyph shows
        where = getattr(stats, name)
        style, _ = MARKS[name]
        fig.draw(fig.segment((where, where), (0, top), marker=plotext.line(orientation=1, style=style)))
    fig.legend(False)  # its box would hide bars: the legend line above the plot has the key
    fig.ruler("x").lim(float(edges[0]), float(edges[-1]))
    xs = nice_ticks(float(edges[0]), float(edges[-1]), max(2, width // 10))
    fig.ruler("x").ticks(xs, labels=[_label(x) for x in xs])
    ys = [y for y in nice_ticks(0, top, max(2, height // 4)) if y == int(y)]
    fig.ruler("y").ticks(ys, labels=[f"{y:,.0f}" for y in ys])
    text = Text(fig.build().string(colorless=True).rstrip("\n"), no_wrap=True)
    text.highlight_regex(f"{BAR}+", colors.points)
    for name, style in (("p50", colors.center), ("p95", colors.zone2), ("p99", colors.limit)):
        text.highlight_regex(MARKS[name][1], style)
    return text


def legend(dist: Distribution) -> str:
    """``┃ p50 242 ms  ┊ p95 479 ms  ║ p99 626 ms``: the values the lines mark, whole ms as in
    the Targets table."""
    stats = dist.stats
    if stats is None:
        return ""
    return "   ".join(f"{MARKS[name][1]} {name} {ms(getattr(stats, name))} ms" for name in ("p50", "p95", "p99"))


def title(dist: Distribution) -> str:
    """``an-haiku · TTFT ms · last 1h · 1,234 samples · at 10:02:03``."""
    n = dist.stats.n if dist.stats is not None else 0
    return f"{heading(dist.target, dist.metric, dist.window)} · {n:,} samples · at {clock(dist.read_at)}"


def heading(target: str, metric: str, window: str) -> str:
    return f"{target} · {METRIC_LABEL.get(metric, metric)} · last {window}"


class HistogramPlot(Widget):
    """The plot, drawn at whatever size the layout gives it."""

    def __init__(self, colors: ChartColors, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.chart_colors = colors
        self.dist: Distribution | None = None
        self._cache: tuple[tuple[Any, ...], Text] | None = None

    def show(self, dist: Distribution) -> None:
        self.dist = dist
        self.refresh()

    def render(self) -> Text:
        if self.dist is None:
            return Text("")
        key = (id(self.dist), self.size.width, self.size.height)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, render_histogram(self.dist, self.size.width, self.size.height, self.chart_colors))
        return self._cache[1]


class DistributionScreen(ModalScreen[None]):
    """Modal: the histogram of one target; `c` switches TTFT / latency, `w` the window, `r`
    reads again. Probing and the panes below go on; what is shown is as of its read."""

    DEFAULT_CSS = """
    DistributionScreen { align: center middle; }
    DistributionScreen #dist-box {
        width: 100%; height: 100%;
        border: heavy $accent; background: $surface; padding: 0 1;
        border-title-style: bold; border-title-color: $foreground;
    }
    DistributionScreen #dist-title { height: 1; text-style: bold; }
    DistributionScreen #dist-legend { height: 1; }
    DistributionScreen #dist-plot { height: 1fr; }
    DistributionScreen #dist-note { height: auto; color: $foreground-muted; }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,v", "close", "Close"),
        Binding("c", "metric", "TTFT/latency"),
        Binding("w", "window", "Window"),
        Binding("r", "reread", "Refresh"),
    ]

    def __init__(self, db_path: Path | str, target: str, chart_metric: str, colors: ChartColors, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.db_path = db_path
        self.target = target
        self.metric = hist_metric(chart_metric)
        self.window = WINDOW_ORDER[0]
        self.chart_colors = colors
        self.dist: Distribution | None = None

    def compose(self) -> ComposeResult:
        box = Vertical(id="dist-box")
        box.border_title = "Distribution"
        with box:
            yield Static(heading(self.target, self.metric, self.window), id="dist-title", markup=False)
            yield Static("", id="dist-legend", markup=False)
            yield HistogramPlot(self.chart_colors, id="dist-plot")
            yield Static("reading the data file…", id="dist-note", markup=False)
        yield modal_footer()

    def on_mount(self) -> None:
        self.action_reread()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_metric(self) -> None:
        self.metric = HIST_METRICS[(HIST_METRICS.index(self.metric) + 1) % len(HIST_METRICS)]
        self.action_reread()

    def action_window(self) -> None:
        self.window = WINDOW_ORDER[(WINDOW_ORDER.index(self.window) + 1) % len(WINDOW_ORDER)]
        self.action_reread()

    def action_reread(self) -> None:
        """Read in a thread; a newer read replaces an older one still running (its result is
        dropped when it no longer matches the metric and window asked for)."""
        self.query_one("#dist-title", Static).update(heading(self.target, self.metric, self.window))
        read = partial(read_distribution, self.db_path, self.target, self.metric, self.window)
        self.run_worker(read, thread=True, group="distribution", name="distribution-read", exit_on_error=False)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "distribution":
            return
        if event.state == WorkerState.ERROR:  # a locked or damaged file: say so, keep the screen
            self._note(f"cannot read the data file: {event.worker.error}")
        elif event.state == WorkerState.SUCCESS:
            dist = event.worker.result
            if isinstance(dist, Distribution) and (dist.metric, dist.window) == (self.metric, self.window):
                self.show(dist)

    def show(self, dist: Distribution) -> None:
        self.dist = dist
        self.query_one("#dist-title", Static).update(title(dist))
        self.query_one("#dist-legend", Static).update(legend(dist))
        plot = self.query_one(HistogramPlot)
        plot.display = dist.stats is not None
        if dist.stats is None:
            self._note(f"no successful samples yet in the last {dist.window} (w: a longer window)")
            return
        plot.show(dist)
        above = dist.above
        self._note(f"{above:,} above {ms(dist.upper)} ms not drawn (max {ms(float(dist.values.max()))} ms)" if above else "")

    def _note(self, text: str) -> None:
        """The line under the plot, hidden when there is nothing to say (the plot takes the row)."""
        note = self.query_one("#dist-note", Static)
        note.update(text)
        note.display = bool(text)
