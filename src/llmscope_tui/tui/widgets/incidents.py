"""Incidents pane: one row per incident (DESIGN 6b), newest first.

Who and when come first and the change last, so a narrow pane cuts only the tail of the words.
The rule firings behind an incident are one level down: Enter charts the incident, `d` lists
its firings.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message

from llmscope_tui.durations import format_duration
from llmscope_tui.incidents import Incident

from ..chartrender import clock
from ..state import ViewState
from .cells import TABLE_KEYS, ColumnScroll, cursor_row_key, update_in_place

COLUMNS = (
    ("state", "State"),
    ("target", "Target"),
    ("since", "Since"),
    ("for", "For"),
    ("change", "Change"),
    ("rules", "Rules"),
)
SEVERITY_STYLE = {"critical": "bold red", "warning": "bold yellow", "info": "cyan"}


def target_label(incident: Incident) -> str:
    """The target, and how far the change reached when it was not the target alone."""
    if incident.scope == "all":
        return f"{incident.target} · all targets"
    if incident.scope.startswith("provider:"):
        return f"{incident.target} · all {incident.scope.split(':', 1)[1]}"
    return incident.target


#: Short metric names for the pane's narrow Change column.
SHORT = {"ttft_ms": "TTFT", "latency_ms": "lat", "itl_ms": "ITL", "tps": "tok/s"}


def change_label(incident: Incident) -> str:
    """``TTFT +82%, lat +64%, down: rate_limit``: the biggest change first, compact."""
    parts = [
        f"{SHORT.get(m.metric, m.metric)} {m.effect * 100:+.0f}%"
        for m in sorted(incident.metrics.values(), key=lambda m: -abs(m.effect))
    ]
    if incident.down:
        parts.append(f"down: {incident.error_kind or 'errors'}")
    elif incident.error_kind:
        parts.append(f"errors: {incident.error_kind}")
    return ", ".join(parts) or "-"


class IncidentsTable(ColumnScroll):
    BINDINGS: ClassVar[list[BindingType]] = [
        *TABLE_KEYS,
        Binding("d", "details", "Firings"),
    ]

    class Details(Message):
        """`d` on a row: show the rule firings of that incident."""

        def __init__(self, incident: Incident) -> None:
            super().__init__()
            self.incident = incident

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="row", **kwargs)
        self._rendered_version = -1
        self._open: list[str] = []
        self.by_key: dict[str, Incident] = {}

    def on_mount(self) -> None:
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def refresh_rows(self, state: ViewState, now: float | None = None) -> None:
        """Rebuild when an incident opened, changed or closed (rare; newest first); otherwise
        only the open incidents' durations move."""
        now = time.time() if now is None else now
        if state.incidents_version != self._rendered_version:
            self._rendered_version = state.incidents_version
            self._rebuild(state, now)
            return
        for key in self._open:
            incident = self.by_key.get(key)
            if incident is not None:
                update_in_place(self, key, "for", format_duration(incident.duration(now)))

    def _rebuild(self, state: ViewState, now: float) -> None:
        keep = self.selected_incident()
        self.clear()
        self.by_key = {}
        self._open = []
        for incident in sorted(state.incidents.values(), key=lambda i: (i.opened_ts, i.id), reverse=True):
            key = str(incident.id)
            self.by_key[key] = incident
            if incident.open:
                self._open.append(key)
            style = SEVERITY_STYLE[incident.severity] if incident.open else "dim"
            word = "● open" if incident.open else "○ closed"
            self.add_row(
                Text(word, style=style),
                target_label(incident),
                clock(incident.start_ts, now),
                format_duration(incident.duration(now)),
                change_label(incident),
                ",".join(map(str, sorted(incident.rules))) or "-",
                key=key,
            )
        if keep is not None and str(keep.id) in self.by_key:
            self.move_cursor(row=self.get_row_index(str(keep.id)))

    def selected_incident(self) -> Incident | None:
        key = cursor_row_key(self)
        return None if key is None else self.by_key.get(key)

    def action_details(self) -> None:
        incident = self.selected_incident()
        if incident is not None:
            self.post_message(self.Details(incident))
