"""Targets pane: one row per target, updated in place cell by cell."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets.data_table import ColumnKey

from llmscope_tui.costs import usd_column

from ..chartrender import fmt_value
from ..state import STATUS, ViewState
from .cells import TABLE_KEYS, ColumnScroll, cell_width, cursor_row_key, right, update_in_place

COLUMNS: tuple[tuple[str, str], ...] = (
    ("status", "Status"),
    ("target", "Target"),
    ("ttft", "TTFT ms"),
    ("ttft_p", "p50/p95"),
    ("latency", "Lat. ms"),
    ("latency_p", "p50/p95"),
    ("tps", "tok/s"),
    ("err", "Err"),
    ("incident", "Incident"),
    ("cost", "Cost today"),
)
#: Narrower than the full row (about 105 columns with short names; layout.py chooses), the
#: table goes compact, so that every column fits 80 columns without scrolling sideways: two
#: lines a row (the p50/p95 under the last value) when the height allows, else one line with
#: the last value only and the last error's short name in the Status column.
COMPACT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("status", "Status\nlast error"),
    ("target", "Target"),
    ("ttft", "TTFT ms\np50/p95"),
    ("latency", "Lat. ms\np50/p95"),
    ("tps", "tok/s\nErr"),
    ("cost", "Cost today\nIncident"),
)
ONE_LINE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("status", "Status"),
    ("target", "Target"),
    ("ttft", "TTFT ms"),
    ("latency", "Lat. ms"),
    ("tps", "tok/s"),
    ("err", "Err"),
    ("cost", "Cost today"),
)
LAYOUTS: dict[str, tuple[tuple[str, str], ...]] = {"full": COLUMNS, "two": COMPACT_COLUMNS, "one": ONE_LINE_COLUMNS}
#: error kinds in ten columns at most, for the one-line Status cell (DESIGN 5 names in full
#: everywhere else: the two-line rows, the log, the Incidents pane)
SHORT_ERROR = {
    "timeout_connect": "t/o conn.", "timeout_first_token": "t/o TTFT", "timeout_total": "t/o total",
    "rate_limit": "rate limit", "server_error": "5xx", "client_error": "4xx",
    "stream_error": "stream err", "empty_response": "empty",
}


@dataclass(frozen=True, slots=True)
class SortOrder:
    """One order the `s` key steps through: what it sorts on, which way, and the arrow its
    column header shows (▼ the biggest or worst first, ▲ the smallest first)."""

    column: str  # a key of TargetsTable._numbers, or "target" (the name)
    label: str
    descending: bool

    @property
    def arrow(self) -> str:
        return "▼" if self.descending else "▲"


#: The orders `s` cycles through, the first one at start. Ties (and targets without the
#: figure yet, which go last) keep the configuration's order.
SORTS: tuple[SortOrder, ...] = (
    SortOrder("status", "status (not up first)", descending=True),
    SortOrder("target", "name", descending=False),
    SortOrder("ttft", "TTFT (slowest first)", descending=True),
    SortOrder("latency", "latency (slowest first)", descending=True),
    SortOrder("tps", "tok/s (slowest first)", descending=False),
    SortOrder("err", "error rate (highest first)", descending=True),
    SortOrder("cost", "cost today (highest first)", descending=True),
)
#: where each sort's arrow goes in the compact layout: (column, header line)
COMPACT_ARROW = {"status": ("status", 0), "target": ("target", 0), "ttft": ("ttft", 0),
                 "latency": ("latency", 0), "tps": ("tps", 0), "err": ("tps", 1), "cost": ("cost", 0)}
#: the columns whose figures are right-aligned (their headers too)
NUMERIC = frozenset({"ttft", "ttft_p", "latency", "latency_p", "tps", "err", "cost"})
#: status -> rank for the status sort: the bigger, the sooner it shows
STATUS_ORDER = {"down": 4, "degraded": 3, "waiting": 2, "up": 1, "disabled": 0}
STATUS_STYLE = {"up": "green", "degraded": "yellow", "down": "bold red", "waiting": "dim", "disabled": "dim"}


class TargetsTable(ColumnScroll):
    """DataTable of targets; vim keys; `s` steps through :data:`SORTS`. The table's order is
    the order of every target list (:attr:`order`: the Charts pane's sparklines follow it), and
    the cursor stays on its target when the rows move."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *TABLE_KEYS,
        Binding("s", "cycle_sort", "Sort"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.filter_text = ""
        self.sort_index = 0
        #: every target (the filtered-out ones too) in the table's order
        self.order: list[str] = []
        self.state_names: list[str] = []
        self._numbers: dict[str, dict[str, float]] = {}
        self._cells: dict[tuple[str, str], Any] = {}
        #: the row layout (layout.py's choice): "full" one-line rows with every column, "two"
        #: compact two-line rows, "one" compact one-line rows
        self.row_layout = "full"
        self._reselect: str | None = None

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        self.header_height = 2 if self.row_layout == "two" else 1
        for key, label in LAYOUTS[self.row_layout]:
            self.add_column(self._header(key, label), key=key)

    def _header(self, key: str, label: str) -> Text:
        """A column's header: right-aligned over figures, with the sort's arrow on its line."""
        sort = SORTS[self.sort_index]
        lines = label.split("\n")
        column, line = COMPACT_ARROW[sort.column] if self.row_layout == "two" else (sort.column, 0)
        if key == column:
            lines[line] += f" {sort.arrow}"
        return Text("\n".join(lines), justify="right" if key in NUMERIC else "left")

    def _fit_columns(self) -> None:
        """Columns as wide as what they hold now: a long error kind that has gone gives its
        room back (Textual's columns only ever grow), so the picture depends on the figures
        shown, not on what was shown before."""
        narrower = False
        for key, column in self.columns.items():
            width = max(
                [cell_width(column.label), *(cell_width(self.get_cell(row, key)) for row in self.rows)]
            )
            if width < column.content_width:
                column.content_width = width
                narrower = True
        if narrower:
            self._require_update_dimensions = True  # Textual re-measures the widths when idle
            self.refresh()

    def _relabel(self) -> None:
        """New headers after the sort changed: the arrow moves to the sorted column."""
        for key, label in LAYOUTS[self.row_layout]:
            column = self.columns[ColumnKey(key)]
            column.label = self._header(key, label)
            column.content_width = max(column.content_width, cell_width(column.label))
        self._require_update_dimensions = True  # Textual re-measures the widths when idle
        self._clear_caches()
        self.refresh()

    def fit_rows(self, layout: str) -> None:
        """Switch the row layout (see :data:`LAYOUTS`); rows come back on the next refresh, the
        cursor stays on its target."""
        if layout == self.row_layout:
            return
        selected = self.selected_target()
        self.row_layout = layout
        self.clear(columns=True)
        self._cells.clear()
        self._add_columns()
        self._reselect = selected

    @property
    def sort_label(self) -> str:
        return SORTS[self.sort_index].label

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self._relabel()
        self._sort(self.state_names)
        self.post_message(self.Sorted())
        self.app.notify(f"targets sorted by {self.sort_label}", timeout=2)

    class Sorted(Message):
        """The order changed by a key: the other panes follow it."""

    def sorted_names(self, names: list[str]) -> list[str]:
        """``names`` (in configuration order) in the current sort's order; ties and missing
        figures keep the configuration's order, missing figures last."""
        sort = SORTS[self.sort_index]
        if sort.column == "target":
            return sorted(names, key=str.casefold)
        sign = -1.0 if sort.descending else 1.0

        def key(name: str) -> tuple[bool, float]:
            value = self._numbers.get(name, {}).get(sort.column, math.nan)
            return (math.isnan(value), 0.0 if math.isnan(value) else sign * value)

        return sorted(names, key=key)  # stable: ties stay in configuration order

    def _sort(self, names: list[str]) -> None:
        """Put the rows in the sort's order (only when it differs: a sort repaints the whole
        table) with the cursor on the target it was on."""
        self.order = self.sorted_names(names)
        rank = {name: i for i, name in enumerate(self.order)}
        shown = [str(row.key.value) for row in self.ordered_rows]
        if shown == sorted(shown, key=rank.__getitem__):
            return
        selected = self.selected_target()
        self.sort("target", key=rank.__getitem__)  # the target column holds the name
        if selected is not None:
            self.move_cursor(row=self.get_row_index(selected))

    def measure(self, state: ViewState, cost_today: dict[str, float]) -> dict[str, float]:
        """The figures the sort uses and the table's order (:attr:`order`, which the Charts
        pane follows), without touching a cell: all a table off the screen needs. Returns each
        target's cost today."""
        self.state_names = list(state.targets)
        costs = {name: cost_today.get(name, 0.0) + state.targets[name].cost_live for name in state.targets}
        for name, view in state.targets.items():
            err = view.error_rate
            incident = state.open_incident(name)
            self._numbers[name] = {
                "status": STATUS_ORDER[view.status(incident)],
                "ttft": _number(view.last.get("ttft_ms")),
                "latency": _number(view.last.get("latency_ms")),
                "tps": _number(view.last.get("tps")),
                "err": _number(err),
                "cost": costs[name],
            }
        self.order = self.sorted_names(self.state_names)
        return costs

    def refresh_rows(self, state: ViewState, stats: dict[str, Any], cost_today: dict[str, float]) -> None:
        """Add rows for new targets, update changed cells only, drop filtered-out rows, keep the
        rows in the sort's order."""
        costs = self.measure(state, cost_today)
        wanted = [n for n in state.targets if self.filter_text.lower() in n.lower()]
        present = {str(k.value) for k in self.rows}
        for name in present - set(wanted):
            self.remove_row(name)
            self._cells = {k: v for k, v in self._cells.items() if k[0] != name}
        cost_cells = dict(zip(wanted, usd_column(costs[n] for n in wanted), strict=True))
        for name in (n for n in self.order if n in cost_cells):  # new rows come in order
            row = self._row(state, name, stats.get(name), cost_cells[name])
            if name not in present:
                self.add_row(*row.values(), key=name, height=2 if self.row_layout == "two" else 1)
                for column, value in row.items():
                    self._cells[(name, column)] = _plain(value)
                continue
            for column, value in row.items():
                plain = _plain(value)
                if self._cells.get((name, column)) != plain:
                    self._cells[(name, column)] = plain
                    update_in_place(self, name, column, value)
        self._fit_columns()
        self._sort(self.state_names)
        reselect, self._reselect = self._reselect, None
        if reselect is not None and reselect in wanted:
            self.move_cursor(row=self.get_row_index(reselect))

    def _row(self, state: ViewState, name: str, rollup: Any, cost: str) -> dict[str, Any]:
        """One target's cells: figures right-aligned, ms as integers, tok/s to three
        significant digits, the column's costs to one number of decimals."""
        view = state.targets[name]
        incident = state.open_incident(name)
        status = view.status(incident)
        symbol, word = STATUS[status]
        err = view.error_rate
        status_text = Text(f"{symbol} {word}", style=STATUS_STYLE[status])
        failed = view.last_error is not None
        ttft = Text(view.last_error or "", style="italic") if failed else ms(view.last.get("ttft_ms"))
        row: dict[str, Any] = {
            "status": status_text,
            "target": name,
            "ttft": right(ttft),
            "ttft_p": right(_pair(rollup, "ttft_ms")),
            "latency": right("-" if failed else ms(view.last.get("latency_ms"))),
            "latency_p": right(_pair(rollup, "latency_ms")),
            "tps": right(fmt_value(view.last.get("tps"))),
            "err": right("-" if err is None else f"{err * 100:.0f}%"),
            "incident": _incident(incident),
            "cost": right(cost),
        }
        if self.row_layout == "full":
            return row
        if self.row_layout == "one":  # the last error's short name stands in for the status word
            if failed:
                kind = str(view.last_error)
                status_text = Text(f"{symbol} {SHORT_ERROR.get(kind, kind)[:10]}", style=STATUS_STYLE[status])
            return {"status": status_text, "target": name, "ttft": right(ms(view.last.get("ttft_ms")) if not failed else "-"),
                    "latency": row["latency"], "tps": row["tps"], "err": row["err"], "cost": row["cost"]}
        # two lines a cell: every column fits 80 columns
        error = Text(view.last_error or "", style="italic")
        return {
            "status": Text.assemble(status_text, "\n", error),
            "target": name,
            "ttft": right(Text.assemble("-" if failed else ms(view.last.get("ttft_ms")), "\n", Text(row["ttft_p"].plain, style="dim"))),
            "latency": right(Text.assemble(row["latency"], "\n", Text(row["latency_p"].plain, style="dim"))),
            "tps": right(Text.assemble(row["tps"], "\n", row["err"])),
            "cost": right(Text.assemble(row["cost"], "\n", row["incident"])),
        }

    def selected_target(self) -> str | None:
        return cursor_row_key(self)


def ms(value: float | None) -> str:
    """Milliseconds as a whole number: a tenth of a millisecond tells a person nothing here."""
    return "-" if value is None or not math.isfinite(value) else f"{value:.0f}"


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _plain(value: Any) -> Any:
    """What a cell shows, to compare with what it showed: text, styles and alignment (cheaper
    than building its markup, and it runs for every cell every second)."""
    if isinstance(value, Text):
        return (value.plain, value.style, value.justify, tuple(value.spans))
    return str(value)


def _pair(rollup: Any, metric: str) -> str:
    stats = rollup.metrics.get(metric) if rollup is not None else None
    return "-" if stats is None else f"{ms(stats.p50)}/{ms(stats.p95)}"


def _incident(incident: Any) -> str:
    """The open incident's biggest change (``TTFT +82 %``), ``down``, or ``-``."""
    if incident is None:
        return "-"
    if incident.down:
        return "down"
    if incident.metrics:
        return max(incident.metrics.values(), key=lambda m: abs(m.effect)).label().replace(" %", "%")
    return incident.error_kind or "open"
