"""Violations pane: SPC episodes, newest first."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from ..chartrender import clock
from ..state import METRIC_LABEL, ViewState
from .cells import update_in_place

#: the long rule meaning comes last, so a narrow pane cuts only words, never who or when
COLUMNS = (
    ("state", "State"),
    ("target", "Target"),
    ("metric", "Metric"),
    ("rule", "Rule"),
    ("first", "First"),
    ("last", "Last"),
    ("count", "Count"),
    ("meaning", "Meaning"),
)


class ViolationsTable(DataTable):
    BINDINGS = [
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("h", "scroll_left", "Left", show=False),
        Binding("l", "scroll_right", "Right", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self._cells: dict[tuple[str, str], str] = {}
        self.episode_keys: dict[str, tuple[str, str]] = {}
        self._starts: dict[tuple[str, ...], float] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def refresh_rows(self, state: ViewState) -> None:
        present = {str(k.value) for k in self.rows}
        added = False
        for key, episode in state.episodes.items():
            cells = {
                "state": Text("● open", style="bold red") if episode.open else Text("○ closed", style="dim"),
                "rule": str(episode.rule),
                "meaning": episode.text,
                "target": episode.target,
                "metric": METRIC_LABEL.get(episode.metric, episode.metric),
                "first": clock(episode.start_ts),
                "last": clock(episode.last_ts),
                "count": str(episode.count),
            }
            row = {column: cells[column] for column, _ in COLUMNS}
            if key not in present:
                self.add_row(*row.values(), key=key)
                self._starts[(row["target"], row["metric"], row["rule"], row["first"])] = episode.start_ts
                self.episode_keys[key] = (episode.target, episode.metric)
                for column, value in row.items():
                    self._cells[(key, column)] = str(value)
                added = True
                continue
            for column, value in row.items():
                if self._cells.get((key, column)) != str(value):
                    self._cells[(key, column)] = str(value)
                    update_in_place(self, key, column, value)
        if added:
            starts = self._starts
            # newest first; DataTable.sort hands the key the listed cells, which identify the episode
            self.sort("target", "metric", "rule", "first", key=lambda vals: starts.get(tuple(map(str, vals)), 0.0), reverse=True)
