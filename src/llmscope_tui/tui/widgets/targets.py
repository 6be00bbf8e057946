"""Targets pane: one row per target, updated in place cell by cell."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType

from llmscope_tui.costs import format_usd

from ..chartrender import fmt_value
from ..state import STATUS, ViewState
from .cells import TABLE_KEYS, ColumnScroll, cursor_row_key, update_in_place

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
#: Under this many columns the table goes compact (the one-line layout needs about 105 with
#: short target names): two lines a row, the p50/p95 under the last value, short headers, so
#: that every column fits 80 columns without scrolling sideways.
COMPACT_BELOW = 112
COMPACT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("status", "Status\nlast error"),
    ("target", "Target"),
    ("ttft", "TTFT ms\np50/p95"),
    ("latency", "Lat. ms\np50/p95"),
    ("tps", "tok/s\nErr"),
    ("cost", "Cost today\nIncident"),
)
#: sort keys the `s` key cycles through: (column, label)
SORTS: tuple[tuple[str, str], ...] = (
    ("target", "name"),
    ("status", "status"),
    ("ttft", "TTFT"),
    ("latency", "latency"),
    ("tps", "tok/s"),
    ("err", "error rate"),
    ("cost", "cost today"),
)
STATUS_ORDER = {"down": 0, "degraded": 1, "waiting": 2, "up": 3, "disabled": 4}
STATUS_STYLE = {"up": "green", "degraded": "yellow", "down": "bold red", "waiting": "dim", "disabled": "dim"}


class TargetsTable(ColumnScroll):
    """DataTable of targets; vim keys; `s` cycles the sort column."""

    BINDINGS: ClassVar[list[BindingType]] = [
        *TABLE_KEYS,
        Binding("s", "cycle_sort", "Sort"),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.filter_text = ""
        self.sort_index = 0
        self._numbers: dict[str, dict[str, float]] = {}
        self._cells: dict[tuple[str, str], Any] = {}
        self.compact = False
        self._reselect: str | None = None

    def on_mount(self) -> None:
        self._add_columns()

    def _add_columns(self) -> None:
        self.header_height = 2 if self.compact else 1
        for key, label in COMPACT_COLUMNS if self.compact else COLUMNS:
            self.add_column(label, key=key)

    def fit_width(self, width: int) -> None:
        """Switch between the one-line and the compact two-line layout for this screen width;
        rows come back on the next refresh, the cursor stays on its target."""
        compact = width < COMPACT_BELOW
        if compact == self.compact:
            return
        selected = self.selected_target()
        self.compact = compact
        self.clear(columns=True)
        self._cells.clear()
        self._add_columns()
        self._reselect = selected

    @property
    def sort_label(self) -> str:
        return SORTS[self.sort_index][1]

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self._sort()
        self.app.notify(f"targets sorted by {self.sort_label}", timeout=2)

    def _sort(self) -> None:
        column = SORTS[self.sort_index][0]
        if column == "target":
            self.sort("target", key=lambda vals: str(vals[0]))
            return
        reverse = column in ("ttft", "latency", "err", "cost")
        self.sort("target", key=lambda vals: (self._numbers.get(str(vals[0]), {}).get(column, float("-inf") if reverse else float("inf"))), reverse=reverse)

    def refresh_rows(self, state: ViewState, stats: dict[str, Any], cost_today: dict[str, float]) -> None:
        """Add rows for new targets, update changed cells only, drop filtered-out rows."""
        wanted = [n for n in state.targets if self.filter_text.lower() in n.lower()]
        present = {str(k.value) for k in self.rows}
        for name in present - set(wanted):
            self.remove_row(name)
            self._cells = {k: v for k, v in self._cells.items() if k[0] != name}
        added = False
        for name in wanted:
            view = state.targets[name]
            incident = state.open_incident(name)
            status = view.status(incident)
            symbol, word = STATUS[status]
            rollup = stats.get(name)
            cost = cost_today.get(name, 0.0) + view.cost_live
            err = view.error_rate
            self._numbers[name] = {
                "status": STATUS_ORDER[status],
                "ttft": view.last.get("ttft_ms") or float("nan"),
                "latency": view.last.get("latency_ms") or float("nan"),
                "tps": view.last.get("tps") or float("nan"),
                "err": err if err is not None else -1.0,
                "cost": cost,
            }
            status_text = Text(f"{symbol} {word}", style=STATUS_STYLE[status])
            row: dict[str, Any] = {
                "status": status_text,
                "target": name,
                "ttft": fmt_value(view.last.get("ttft_ms")) if view.last_error is None else Text(view.last_error, style="italic"),
                "ttft_p": _pair(rollup, "ttft_ms"),
                "latency": fmt_value(view.last.get("latency_ms")) if view.last_error is None else "-",
                "latency_p": _pair(rollup, "latency_ms"),
                "tps": fmt_value(view.last.get("tps")),
                "err": "-" if err is None else f"{err * 100:.0f}%",
                "incident": _incident(incident),
                "cost": format_usd(cost),
            }
            if self.compact:  # two lines a cell: every column fits 80 columns
                error = Text(view.last_error or "", style="italic")
                last_ttft = fmt_value(view.last.get("ttft_ms")) if view.last_error is None else "-"
                row = {
                    "status": Text.assemble(status_text, "\n", error),
                    "target": name,
                    "ttft": Text.assemble(last_ttft, "\n", Text(row["ttft_p"], style="dim")),
                    "latency": Text.assemble(row["latency"], "\n", Text(row["latency_p"], style="dim")),
                    "tps": Text.assemble(row["tps"], "\n", row["err"]),
                    "cost": Text.assemble(row["cost"], "\n", row["incident"]),
                }
            if name not in present:
                self.add_row(*row.values(), key=name, height=2 if self.compact else 1)
                for column, value in row.items():
                    self._cells[(name, column)] = str(value)
                added = True
                continue
            for column, value in row.items():
                plain = str(value) if not isinstance(value, Text) else value.markup
                if self._cells.get((name, column)) != plain:
                    self._cells[(name, column)] = plain
                    update_in_place(self, name, column, value)
        if added or self.sort_index:
            self._sort()
        reselect, self._reselect = self._reselect, None
        if reselect is not None and reselect in wanted:
            self.move_cursor(row=self.get_row_index(reselect))

    def selected_target(self) -> str | None:
        return cursor_row_key(self)


def _pair(rollup: Any, metric: str) -> str:
    stats = rollup.metrics.get(metric) if rollup is not None else None
    return "-" if stats is None else f"{fmt_value(stats.p50)}/{fmt_value(stats.p95)}"


def _incident(incident: Any) -> str:
    """The open incident's biggest change (``TTFT +82 %``), ``down``, or ``-``."""
    if incident is None:
        return "-"
    if incident.down:
        return "down"
    if incident.metrics:
        return max(incident.metrics.values(), key=lambda m: abs(m.effect)).label().replace(" %", "%")
    return incident.error_kind or "open"
