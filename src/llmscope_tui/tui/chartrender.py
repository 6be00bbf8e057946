"""Text renderings of the control chart and the sparklines (Rich Text, no Textual widgets).

Every line of the chart has its own glyph and its name written at the right edge, and rule
firings are drawn as ✖, so the chart reads the same without colour (NO_COLOR, monochrome).
"""

from __future__ import annotations

import math
import time
from collections.abc import Collection, Mapping, Sequence

from rich.text import Text

from llmscope_tui.spc import Limits

from .themes import ChartColors

SPARK = "▁▂▃▄▅▆▇█"
POINT, FIRING = "•", "✖"


def fmt_value(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    if abs(value) >= 10000:
        return f"{value / 1000:.0f}k"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def sparkline(values: Sequence[float], width: int) -> str:
    """The last ``width`` values as block characters scaled to their own min..max."""
    if width <= 0:
        return ""
    values = list(values)[-width:]
    if not values:
        return " " * width
    lo, hi = min(values), max(values)
    span = hi - lo
    if span <= 0:
        chars = SPARK[len(SPARK) // 2] * len(values)
    else:
        chars = "".join(SPARK[min(len(SPARK) - 1, int((v - lo) / span * (len(SPARK) - 1) + 0.5))] for v in values)
    return chars.rjust(width)


def clock(ts: float, now: float | None = None) -> str:
    """Local time of day; with the date too when it is not today (a week-long chart, an
    episode restored from before a restart)."""
    local = time.localtime(ts)
    today = time.localtime(time.time() if now is None else now)
    if (local.tm_year, local.tm_yday) == (today.tm_year, today.tm_yday):
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%m-%d %H:%M", local)


Point = tuple[float, float]


def _columns(
    points: Sequence[Point],
    firings: Collection[float] | Mapping[float, float],
    plot_w: int,
    window: int | None,
    span: tuple[float, float] | None,
) -> tuple[list[list[Point]], set[float], str, str]:
    """Spread the points over the plot's columns: one point a column, right-aligned (the last
    ``window`` points); the same squeezed into equal runs when there are more than columns; or,
    with ``span``, by time, so a quiet hour is a gap. Firings known only by their time and value
    (a long window read from the store) join the column they fall in."""
    columns: list[list[Point]] = [[] for _ in range(plot_w)]
    extra = firings.items() if isinstance(firings, Mapping) else ()
    if span is not None:
        start, end = span
        scale = plot_w / max(end - start, 1e-9)
        for ts, value in (*points, *extra):
            if start <= ts <= end:
                columns[min(plot_w - 1, int((ts - start) * scale))].append((ts, value))
        return columns, set(firings), clock(start), clock(end)
    shown = list(points)[-window:] if window else list(points)[-plot_w:]
    if not shown:
        return columns, set(), "", ""
    n = len(shown)
    if n <= plot_w:
        for i, p in enumerate(shown):
            columns[plot_w - n + i].append(p)
    else:
        for c in range(plot_w):
            columns[c].extend(shown[c * n // plot_w : (c + 1) * n // plot_w])
    return columns, set(firings), clock(shown[0][0]), clock(shown[-1][0])


def _pick(column: list[Point], fired: set[float], center: float | None) -> tuple[Point, bool]:
    """The point a column shows: a rule firing if it has one, else its point furthest from the
    center (its largest before limits exist), so squeezing never hides an outlier."""
    def distance(p: Point) -> float:
        return abs(p[1] - center) if center is not None else p[1]

    hits = [p for p in column if p[0] in fired]
    if hits:
        return max(hits, key=distance), True
    return max(column, key=distance), False


def control_chart(
    points: Sequence[Point],
    firings: Collection[float] | Mapping[float, float],
    limits: Limits | None,
    width: int,
    height: int,
    colors: ChartColors,
    window: int | None = None,
    span: tuple[float, float] | None = None,
) -> Text:
    """An individuals chart, newest at the right.

    ``points`` are (ts, value) oldest first; ``firings`` the ts of points where a rule fired
    (or ts -> value, for firings whose points were squeezed out). ``window``: the last N points;
    ``span``: (start, end) times instead, columns proportional to time.
    Lines: UCL/LCL ═, ±2σ ╌, ±1σ ┈, center ─ (each named at the right edge).
    """
    left, right = 8, 5  # y labels, line names
    plot_w = max(4, width - left - right)
    plot_h = max(3, height - 1)
    center = limits.center if limits is not None else None
    columns, fired, first, last = _columns(points, firings, plot_w, window, span)
    picked = [(c, *_pick(column, fired, center)) for c, column in enumerate(columns) if column]
    if not picked:
        return Text("no successful samples in this window for this metric", style="italic")
    values = [p[1] for _, p, _ in picked]
    lines: list[tuple[float, str, str, str]] = []  # (y, glyph, name, colour)
    if limits is not None:
        lines = [
            (limits.ucl, "═", "UCL", colors.limit),
            (limits.upper2, "╌", "+2σ", colors.zone2),
            (limits.upper1, "┈", "+1σ", colors.zone1),
            (limits.center, "─", "CL", colors.center),
            (limits.lower1, "┈", "-1σ", colors.zone1),
            (limits.lower2, "╌", "-2σ", colors.zone2),
            (limits.lcl, "═", "LCL", colors.limit),
        ]
    finite = [y for y, *_ in lines if math.isfinite(y)]
    lo, hi = min(values + finite), max(values + finite)
    if hi - lo <= 0:
        lo, hi = lo - 1.0, hi + 1.0
    pad = (hi - lo) * 0.04
    lo, hi = lo - pad, hi + pad

    def row_of(y: float) -> int:
        return min(plot_h - 1, max(0, round((hi - y) / (hi - lo) * (plot_h - 1))))

    grid: list[list[tuple[str, str]]] = [[(" ", "")] * plot_w for _ in range(plot_h)]
    names: list[tuple[str, str]] = [("", "")] * plot_h
    # when lines share a row (points far outside squeeze the band), the control limits win,
    # then the center, then the 2 sigma and 1 sigma lines
    priority = {"UCL": 0, "LCL": 0, "CL": 1, "+2σ": 2, "-2σ": 2, "+1σ": 3, "-1σ": 3}
    for y, glyph, name, colour in sorted(lines, key=lambda line: -priority[line[2]]):
        if not math.isfinite(y):
            continue
        r = row_of(y)
        grid[r] = [(glyph, colour)] * plot_w
        names[r] = ("LIM" if {names[r][0], name} == {"UCL", "LCL"} else name, colour)
    for c, (_, value), hit in picked:
        grid[row_of(value)][c] = (FIRING, f"bold {colors.violation}") if hit else (POINT, colors.points)
    labelled = {row_of(y): y for y, *_ in lines if math.isfinite(y)}
    labelled.setdefault(0, hi)
    labelled.setdefault(plot_h - 1, lo)

    text = Text(no_wrap=True, overflow="crop")
    for r in range(plot_h):
        label = fmt_value(labelled[r]) if r in labelled else ""
        text.append(f"{label:>{left - 1}} ", style="dim")
        text.append("│", style="dim")
        run_style = ""
        run: list[str] = []
        for char, style in grid[r]:
            if style != run_style and run:
                text.append("".join(run), style=run_style)
                run = []
            run_style = style
            run.append(char)
        if run:
            text.append("".join(run), style=run_style)
        name, colour = names[r]
        text.append(f" {name:<{right - 1}}"[:right], style=colour)
        text.append("\n")
    start = 0 if span is not None else picked[0][0]
    axis = " " * left + " " * start + first
    gap = left + plot_w - len(axis) - len(last) + 1
    axis = axis + " " * max(1, gap) + last if gap > 1 else " " * left + last.rjust(plot_w + 1)
    text.append(axis, style="dim")
    return text
