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


CLIPPED_HIGH, CLIPPED_LOW = "▲", "▼"


def spark_bounds(values: Sequence[float], limits: Limits | None = None) -> tuple[float, float]:
    """The range a sparkline is scaled to, so one outlier does not flatten the rest: the
    chart's control limits when it has them, else Tukey's far-out fences (quartiles ∓ 3 IQR).
    Percentiles such as p1-p99 would not do: in fewer than ~100 points p99 lies near the
    outlier itself."""
    if limits is not None and math.isfinite(limits.lcl) and math.isfinite(limits.ucl):
        return limits.lcl, limits.ucl
    ordered = sorted(values)
    if len(ordered) < 4:
        return -math.inf, math.inf
    q1, q3 = ordered[len(ordered) // 4], ordered[(3 * len(ordered)) // 4]
    iqr = q3 - q1
    if iqr <= 0:
        return -math.inf, math.inf
    return q1 - 3 * iqr, q3 + 3 * iqr


def sparkline(values: Sequence[float], width: int, bounds: tuple[float, float] | None = None) -> str:
    """The last ``width`` values as block characters scaled to the min..max of those inside
    ``bounds``; a value outside them is drawn as ▲ / ▼ (clipped), so it stays visible without
    squeezing the others onto one glyph."""
    if width <= 0:
        return ""
    values = list(values)[-width:]
    if not values:
        return " " * width
    low, high = bounds if bounds is not None else (-math.inf, math.inf)
    inside = [v for v in values if low <= v <= high]
    if not inside:  # every point outside the limits: a shift, all of it marked
        return "".join(CLIPPED_HIGH if v > high else CLIPPED_LOW for v in values).rjust(width)
    lo, hi = min(inside), max(inside)
    span = hi - lo
    top = len(SPARK) - 1
    chars = []
    for v in values:
        if v > high:
            chars.append(CLIPPED_HIGH)
        elif v < low:
            chars.append(CLIPPED_LOW)
        elif span <= 0:
            chars.append(SPARK[len(SPARK) // 2])
        else:
            chars.append(SPARK[min(top, int((v - lo) / span * top + 0.5))])
    return "".join(chars).rjust(width)


def spark_text(values: Sequence[float], width: int, limits: Limits | None, colors: ChartColors) -> Text:
    """:func:`sparkline` scaled by :func:`spark_bounds`, its clipped points in the violation
    colour (the glyph alone says it without colour)."""
    chars = sparkline(values, width, spark_bounds(list(values)[-width:], limits))
    text = Text(chars, style=colors.points)
    for i, char in enumerate(chars):
        if char in (CLIPPED_HIGH, CLIPPED_LOW):
            text.stylize(f"bold {colors.violation}", i, i + 1)
    return text


def clock(ts: float, now: float | None = None) -> str:
    """Local time of day; with the date too when it is not today (a week-long chart, an
    episode restored from before a restart)."""
    local = time.localtime(ts)
    today = time.localtime(time.time() if now is None else now)
    if (local.tm_year, local.tm_yday) == (today.tm_year, today.tm_yday):
        return time.strftime("%H:%M:%S", local)
    return time.strftime("%m-%d %H:%M", local)


Point = tuple[float, float]
#: Which line owns a row that several fall on (lower wins): drawing and axis labels share it.
LINE_PRIORITY = {"UCL": 0, "LCL": 0, "CL": 1, "+2σ": 2, "-2σ": 2, "+1σ": 3, "-1σ": 3}


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
    labelled: dict[int, float] = {}
    # when lines share a row (points far outside squeeze the band), one line owns the row: the
    # control limits first, then the center, then 2 sigma, then 1 sigma; the row's glyph, name
    # and axis value are all that line's, so the axis never contradicts the title
    for y, glyph, name, colour in sorted(lines, key=lambda line: LINE_PRIORITY[line[2]]):
        if not math.isfinite(y):
            continue
        r = row_of(y)
        if r in labelled:
            if {names[r][0], name} == {"UCL", "LCL"}:
                names[r] = ("LIM", colour)  # both limits on one row: drawn once, named both
            continue
        grid[r] = [(glyph, colour)] * plot_w
        names[r] = (name, colour)
        labelled[r] = y
    for c, (_, value), hit in picked:
        grid[row_of(value)][c] = (FIRING, f"bold {colors.violation}") if hit else (POINT, colors.points)
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
