"""The control chart's axis, the sparklines' scale and the chart title's fit, as a user reads them."""

from __future__ import annotations

import pytest
from rich.text import Text

from llmscope_tui.spc import Limits
from llmscope_tui.tui.chartrender import (
    CLIPPED_HIGH,
    SPARK,
    control_chart,
    fmt_value,
    spark_bounds,
    spark_text,
    sparkline,
)
from llmscope_tui.tui.themes import ChartColors
from llmscope_tui.tui.widgets.charts import ZOOMS, chart_title

# CL 326, sigma 66.7: UCL 526, and points far above squeeze the band onto a few rows
LIMITS = Limits(126.0, 192.7, 259.3, 326.0, 392.7, 459.3, 526.0)
BY_NAME = {
    "UCL": LIMITS.ucl, "+2σ": LIMITS.upper2, "+1σ": LIMITS.upper1, "CL": LIMITS.center,
    "-1σ": LIMITS.lower1, "-2σ": LIMITS.lower2, "LCL": LIMITS.lcl, "LIM": LIMITS.ucl,
}


def _rows(text: Text) -> list[tuple[str, str, str]]:
    """(axis label, plot, line name) of each plot row."""
    rows = []
    for line in text.plain.splitlines()[:-1]:  # the last line is the time axis
        label, _, rest = line.partition("│")
        rows.append((label.strip(), rest[:-5], rest[-5:].strip()))
    return rows


@pytest.mark.parametrize("plot_rows", [4, 5, 6, 7, 8])
@pytest.mark.parametrize("outlier", [900.0, 2600.0, 12000.0])
def test_each_labelled_row_names_the_line_drawn_on_it_with_its_value(plot_rows: int, outlier: float) -> None:
    points = [(float(i), 326.0 + (i % 5) * 20) for i in range(40)]
    points[30] = (30.0, outlier)
    text = control_chart(points, {30.0}, LIMITS, 70, plot_rows + 1, ChartColors())
    rows = _rows(text)
    assert len(rows) == plot_rows
    named = [(label, plot, name) for label, plot, name in rows if name]
    assert any(name in ("UCL", "LIM") for *_, name in named)  # the limits always show
    glyph = {"UCL": "═", "LCL": "═", "LIM": "═", "+2σ": "╌", "-2σ": "╌", "+1σ": "┈", "-1σ": "┈", "CL": "─"}
    for label, plot, name in named:
        assert label == fmt_value(BY_NAME[name]), (label, name, text.plain)
        assert glyph[name] in plot  # the row draws the line its label names
    # and the title's figures are the axis's: UCL 526, never another line's value beside ═══ UCL
    assert all(label != "393" for label, _, name in named if name == "UCL")


def test_rows_with_one_line_keep_their_own_values() -> None:
    points = [(float(i), 326.0 + (i % 5) * 20) for i in range(40)]
    rows = _rows(control_chart(points, set(), LIMITS, 70, 16, ChartColors()))
    names = {name: label for label, _, name in rows if name}
    assert set(names) == {"UCL", "+2σ", "+1σ", "CL", "-1σ", "-2σ", "LCL"}
    assert all(label == fmt_value(BY_NAME[name]) for name, label in names.items())


def _heights(chars: str) -> set[int]:
    return {SPARK.index(c) for c in chars if c in SPARK}


def test_one_outlier_does_not_flatten_a_sparkline_without_limits() -> None:
    values = [100.0 + (i % 6) * 4 for i in range(40)]
    values[25] = 1000.0  # one 10x outlier
    chars = sparkline(values, 40, spark_bounds(values))
    assert chars[25] == CLIPPED_HIGH and chars.count(CLIPPED_HIGH) == 1
    assert len(_heights(chars)) >= 5  # the rest keeps its shape
    assert len(_heights(sparkline(values, 40))) <= 2  # unclipped, as it was: flat


def test_a_sparkline_clips_to_the_charts_limits_and_marks_the_point() -> None:
    values = [300.0 + (i % 6) * 20 for i in range(30)]
    values[-3] = 3260.0
    text = spark_text(values, 30, LIMITS, ChartColors())
    assert text.plain[-3] == CLIPPED_HIGH and len(_heights(text.plain)) >= 5
    styles = [str(span.style) for span in text.spans if span.start == 27]
    assert any("bright_red" in s for s in styles)  # in the violation colour too
    # a whole window outside the limits (a shift) is all marked, not scaled into a flat line
    assert set(sparkline([900.0] * 5, 5, (LIMITS.lcl, LIMITS.ucl))) == {CLIPPED_HIGH}
    assert len(sparkline([1, 2, 3], 10)) == 10


@pytest.mark.parametrize("zoom", ZOOMS, ids=[z.label for z in ZOOMS])
@pytest.mark.parametrize("reading", [False, True])
def test_the_chart_title_keeps_the_windows_unit_at_80_columns(zoom: object, reading: bool) -> None:
    phase = Text("✖ rule 6")
    for width in (80, 78, 60):
        title = chart_title("anthropic/claude-haiku · TTFT ms", LIMITS, phase, zoom, reading, width)  # type: ignore[arg-type]
        assert len(title.plain) <= width, title.plain
        assert zoom.short in title.plain or zoom.label in title.plain  # type: ignore[attr-defined]
        assert f"UCL {fmt_value(LIMITS.ucl)}" in title.plain
    wide = chart_title("a · TTFT ms", LIMITS, phase, ZOOMS[-1], False, 200)
    assert "last 7 days" in wide.plain and "rule fired" in wide.plain
