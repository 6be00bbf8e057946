"""Text renderings of the control chart and the sparklines (Rich Text, no Textual widgets).

Every line of the chart has its own glyph and its name written at the right edge, and rule
firings are drawn as ✖, so the chart reads the same without colour (NO_COLOR, monochrome).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

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


def _clock(ts: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts))


def _buckets(
    points: list[tuple[float, float]], firings: set[float], columns: int, limits: Limits | None
) -> tuple[list[tuple[float, float]], set[float]]:
    """Squeeze points into ``columns`` buckets: each keeps the point furthest from the center
    (or the largest before limits exist); a bucket with any rule firing is marked as firing."""
    center = limits.center if limits is not None else None
    out: list[tuple[float, float]] = []
    fired: set[float] = set()
    n = len(points)
    for c in range(columns):
        bucket = points[c * n // columns : (c + 1) * n // columns]
        if not bucket:
            continue
        pick = max(bucket, key=lambda p: abs(p[1] - center) if center is not None else p[1])
        hit = next((p for p in bucket if p[0] in firings), None)
        if hit is not None:
            pick = hit
            fired.add(hit[0])
        out.append(pick)
    return out, fired


def control_chart(
    points: Sequence[tuple[float, float]],
    firings: set[float],
    limits: Limits | None,
    width: int,
    height: int,
    colors: ChartColors,
    window: int | None = None,
) -> Text:
    """An individuals chart: newest point at the right, one column per point.

    ``points`` are (ts, value) oldest first; ``firings`` the ts of points where a rule fired.
    Lines: UCL/LCL ═, ±2σ ╌, ±1σ ┈, center ─ (each named at the right edge).
    """
    left, right = 8, 5  # y labels, line names
    plot_w = max(4, width - left - right)
    plot_h = max(3, height - 1)
    shown = list(points)[-window:] if window else list(points)[-plot_w:]
    if not shown:
        return Text("no successful samples yet for this metric", style="italic")
    if len(shown) > plot_w:  # zoomed out: one column per bucket, its most extreme point
        shown, firings = _buckets(shown, firings, plot_w, limits)
    values = [v for _, v in shown]
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
    start = plot_w - len(shown)
    for i, (ts, value) in enumerate(shown):
        r = row_of(value)
        grid[r][start + i] = (FIRING, f"bold {colors.violation}") if ts in firings else (POINT, colors.points)
    labelled = {row_of(y): y for y, *_ in lines if math.isfinite(y)}
    labelled.setdefault(0, hi)
    labelled.setdefault(plot_h - 1, lo)

    text = Text(no_wrap=True, overflow="crop")
    for r in range(plot_h):
        label = fmt_value(labelled[r]) if r in labelled else ""
        text.append(f"{label:>{left - 1}} ", style="dim")
        text.append("│", style="dim")
        run_style, run = "", []
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
    first, last = _clock(shown[0][0]), _clock(shown[-1][0])
    axis = " " * left + " " * start + first
    gap = left + plot_w - len(axis) - len(last) + 1
    axis = axis + " " * max(1, gap) + last if gap > 1 else " " * left + last.rjust(plot_w + 1)
    text.append(axis, style="dim")
    return text
