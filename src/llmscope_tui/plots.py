"""`llmscope-tui report --plot`: the report's numbers as terminal plots (plotext), no TUI needed.

Per target, TTFT p50 and p95 over the report window in time buckets; then spend per UTC day
over the last SPEND_DAYS days as bars. The figures come from the same store reads and the same
percentile arithmetic as the text report (rollups.metric_stats), so plot and table agree.
Plain output (no color, ASCII frame) when asked: pipes, files and NO_COLOR terminals.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import plotext

from llmscope_tui.costs import period_bounds
from llmscope_tui.rollups import WINDOWS, metric_stats, rollups

#: Buckets per report window: 5 minutes over 1h, an hour over 24h, 6 hours over 7d.
BUCKETS: dict[str, int] = {"1h": 12, "24h": 24, "7d": 28}
#: Days of spend plotted, today included.
SPEND_DAYS = 7
#: The smallest panel worth drawing (frame, title, ticks and a few rows of plot).
MIN_PANEL_W, MIN_PANEL_H = 40, 10
#: Box-drawing characters of plotext's frame, legend and ticks, as ASCII.
_ASCII = str.maketrans({"─": "-", "│": "|", "┌": "+", "┐": "+", "└": "+", "┘": "+",
                        "┤": "+", "├": "+", "┬": "+", "┴": "+", "┼": "+"})


@dataclass(frozen=True, slots=True)
class TtftSeries:
    """One target's TTFT percentiles per bucket; buckets without a successful sample are left out."""

    target: str
    starts: list[float]  # bucket start, epoch seconds
    p50: list[float]
    p95: list[float]


def ttft_series(store: Any, window: str = "24h", now: float | None = None) -> list[TtftSeries]:
    """Per target with probes in the window (the text report's rows), TTFT p50/p95 per bucket."""
    now_s = time.time() if now is None else now
    since = now_s - WINDOWS[window]
    step = WINDOWS[window] / BUCKETS[window]
    out = []
    for rollup in rollups(store, window, "target", now=now_s):
        ts, values = store.metric_series(rollup.key, "ttft_ms", since=since, until=now_s)
        index = np.minimum(((ts - since) // step).astype(np.int64), BUCKETS[window] - 1)
        series = TtftSeries(rollup.key, [], [], [])
        for bucket in np.unique(index):
            stats = metric_stats(values[index == bucket])
            if stats is not None:
                series.starts.append(since + float(bucket) * step)
                series.p50.append(stats.p50)
                series.p95.append(stats.p95)
        out.append(series)
    return out


def spend_days(store: Any, now: float | None = None, days: int = SPEND_DAYS) -> dict[str, float]:
    """Spend per UTC day over the last ``days`` days, today included, 0.0 for a day with none."""
    today = period_bounds("day", datetime.fromtimestamp(time.time() if now is None else now, UTC))[0]
    first = today - timedelta(days=days - 1)
    spent = store.spend_by_day(since=first.timestamp())
    return {(d := (first + timedelta(days=i)).strftime("%Y-%m-%d")): spent.get(d, 0.0) for i in range(days)}


def parse_size(text: str) -> tuple[int, int]:
    """'WxH' as two integers, each at least the smallest panel; ValueError otherwise."""
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        raise ValueError(f"expected WIDTHxHEIGHT, e.g. 100x40, got {text!r}")
    width, height = int(w), int(h)
    if width < MIN_PANEL_W or height < MIN_PANEL_H:
        raise ValueError(f"a plot needs at least {MIN_PANEL_W}x{MIN_PANEL_H}, got {text!r}")
    return width, height


def _time_ticks(start: float, end: float, window: str, width: int) -> tuple[list[float], list[str]]:
    """Evenly spaced UTC time labels that fit the panel's width."""
    fmt = "%H:%M" if window == "1h" else "%m-%d %H:%M"
    where = np.linspace(start, end, max(2, width // (len(fmt) + 12)))
    return [float(t) for t in where], [datetime.fromtimestamp(t, UTC).strftime(fmt) for t in where]


def _title(target: str, width: int) -> str:
    """The panel's title with the marker key, short enough for the panel (plotext drops a
    title wider than its panel): the long key, else the short one, else a shortened name."""
    for key in (": TTFT ms (* p50, + p95)", ": TTFT (*p50 +p95)"):
        if len(target) + len(key) <= width - 2:
            return target + key
    return target[: max(1, width - 2 - len(key) - 1)] + "~" + key


def _grid(panels: int, width: int, height: int) -> tuple[int, int, int]:
    """(columns, rows, panels drawn): one column while the panels fit, more when they do not."""
    max_cols = max(1, width // MIN_PANEL_W)
    max_rows = height // MIN_PANEL_H
    if panels == 0 or max_rows == 0:
        return 1, 0, 0
    cols = min(max_cols, math.ceil(panels / max_rows))
    rows = min(max_rows, math.ceil(panels / cols))
    return cols, rows, min(panels, cols * rows)


def _build(fig: Any, plain: bool) -> list[str]:
    text = fig.build().string(colorless=plain)
    if plain:
        text = text.translate(_ASCII)
    return [line.rstrip() for line in text.rstrip("\n").split("\n")]


def _figure(width: int, height: int, plain: bool) -> Any:
    fig = plotext.figure
    fig.clear()
    plotext.terminal.limit(False, False)
    fig.plot_size(width, height)
    fig.theme("clear" if plain else "default")
    return fig


def render_plots(
    store: Any,
    window: str = "24h",
    size: tuple[int, int] = (80, 24),
    plain: bool = True,
    now: float | None = None,
) -> str:
    """The plots of `report --plot`, at most ``size`` (columns, lines) in all: the targets' TTFT
    panels in a grid (one column while they fit), the spend bars across the full width below,
    and a line naming how many targets did not fit, if any."""
    now_s = time.time() if now is None else now
    series = ttft_series(store, window, now_s)
    spend = spend_days(store, now_s)
    if not series and not any(spend.values()):
        return f"plot: no probe samples in the last {window} and no spend in the last {SPEND_DAYS} days\n"
    width, height = max(MIN_PANEL_W, size[0]), max(MIN_PANEL_H, size[1])
    spend_h = max(MIN_PANEL_H, height // (len(series) + 1))
    cols, rows, drawn = _grid(len(series), width, height - spend_h)
    if drawn < len(series):  # a line under the plots says what was left out
        cols, rows, drawn = _grid(len(series), width, height - spend_h - 1)
    lines: list[str] = []
    if drawn:
        fig = _figure(width, height - spend_h - (drawn < len(series)), plain)
        fig.subplots(rows, cols)
        start, panel_w = now_s - WINDOWS[window], width // cols
        cells = [(r, c) for r in range(1, rows + 1) for c in range(1, cols + 1)]
        for (r, c), one in zip(cells, series[:drawn], strict=False):
            panel = fig.subplot(r, c)
            panel.draw(panel.signal(one.starts, one.p50, marker="*").label("p50"))
            panel.draw(panel.signal(one.starts, one.p95, marker="+").label("p95"))
            panel.legend(False)  # its box hides points and vanishes from a small panel: the title has the key
            panel.title(_title(one.target, panel_w))
            panel.ruler("x").lim(start, now_s)
            panel.ruler("x").ticks(*_time_ticks(start, now_s, window, panel_w))
        lines += _build(fig, plain)
    fig = _figure(width, spend_h if drawn else height - (drawn < len(series)), plain)
    fig.draw(fig.bar([d[5:] for d in spend], list(spend.values()), marker="#"))
    fig.title(f"spend per UTC day, USD (last {SPEND_DAYS} days)")
    lines += _build(fig, plain)
    if drawn < len(series):
        lines.append(f"({len(series) - drawn} more targets not plotted: a larger --plot-size shows them)")
    return "\n".join(lines) + "\n"
