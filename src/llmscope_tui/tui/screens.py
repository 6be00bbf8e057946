"""Modal screens: the help overlay and the confirm dialog."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

#: (keys, what they do) - the help overlay and docs/tui.md list the same keys.
KEY_HELP: tuple[tuple[str, str], ...] = (
    ("?", "this help (Esc closes it)"),
    ("1 2 3 4", "focus Targets, Charts, Violations, Costs"),
    ("Tab / Shift+Tab", "next / previous pane (focused pane: heavy border)"),
    ("↑ ↓  j k", "move in a list; in Charts: pick the target"),
    ("← →  h l", "scroll a table sideways"),
    ("Enter", "Violations: chart that episode's target and metric"),
    ("c / C", "chart metric: next / previous (TTFT, latency, ITL, tok/s)"),
    ("+ / -", "chart: zoom in / out (last 50 … 600 points, then 1 h, 6 h, 24 h, 7 days)"),
    ("s", "Targets: cycle the sort column"),
    ("/", "filter targets by name (Enter keeps, Esc clears)"),
    ("p", "pause / resume the display (probing continues)"),
    ("r", "refresh now (redraw, re-read spend)"),
    ("b", "rebaseline the selected target (asks first)"),
    ("e", "export a CSV snapshot (the path is shown)"),
    ("t", "next theme"),
    ("m", "maximise the focused pane / restore"),
    ("Ctrl+P", "command palette"),
    ("q", "quit: stop probing cleanly (q again: at once)"),
)


class HelpScreen(ModalScreen[None]):
    BINDINGS = [
        Binding("escape,question_mark,q", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, pad_edge=False, expand=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for keys, text in KEY_HELP:
            table.add_row(keys, text)
        with Vertical(id="help-box"):
            yield Static("Keys", id="help-title")
            yield Static(table, id="help-table")

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.question, id="confirm-question")
            yield Static("y / Enter: yes    n / Esc: no", id="confirm-keys")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
