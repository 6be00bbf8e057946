"""Modal screens: the help overlay, an incident's rule firings and the confirm dialog."""

from __future__ import annotations

from typing import Any, ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Static

#: (keys, what they do) - the help overlay and docs/tui.md list the same keys.
KEY_HELP: tuple[tuple[str, str], ...] = (
    ("?", "this help (Esc closes it)"),
    ("1 2 3 4", "focus Targets, Charts, Incidents, Costs"),
    ("Tab / Shift+Tab", "next / previous pane (focused pane: heavy border)"),
    ("↑ ↓  j k", "move in a list; in Charts: pick the target"),
    ("← →  h l", "scroll a table sideways, a column at a time"),
    ("Enter", "Incidents: chart that incident's target and metric, zoomed to it"),
    ("d", "Incidents: the Nelson rule firings behind that incident"),
    ("c / C", "chart metric: next / previous (TTFT, latency, ITL, tok/s)"),
    ("v", "distribution: charted target's TTFT/latency, p50/p95/p99"),
    ("+ / -", "chart zoom in / out: 50 … 600 points, then 1 h … 7 days"),
    ("s", "Targets: sort by status/name/TTFT/latency/tok/s/errors/cost"),
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


def modal_footer() -> Footer:
    """A modal's own footer: its keys only (Textual leaves the main screen's bindings out of a
    modal's), drawn over the main screen's footer, whose keys do nothing here."""
    return Footer(compact=True, show_command_palette=False)


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "close", "Close"),
    ]

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=False, pad_edge=False, expand=False)
        table.add_column(style="bold", no_wrap=True)
        table.add_column()
        for keys, text in KEY_HELP:
            table.add_row(keys, text)
        box = Vertical(id="help-box")
        box.border_title = "Keys"  # in the border: the whole list fits 24 rows with the footer
        with box:
            yield Static(table, id="help-table")
        yield modal_footer()

    def action_close(self) -> None:
        self.dismiss(None)


class FiringsScreen(ModalScreen[None]):
    """The evidence one level below an incident: the rule firings on its target's charts since
    it began, newest first (what the TUI holds in memory: the last 600 points per chart)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,d,q", "close", "Close")]

    def __init__(self, title: str, rows: list[tuple[str, str, str, str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.title_text = title
        self.rows = rows

    def compose(self) -> ComposeResult:
        table = Table(box=None, pad_edge=False, expand=False)
        for name in ("time", "metric", "value", "rule"):
            table.add_column(name, no_wrap=name != "rule", justify="right" if name == "value" else "left")
        for row in self.rows[:200]:
            table.add_row(*row)
        if not self.rows:
            table.add_row("-", "-", "-", "no rule fired in the points held in memory")
        with Vertical(id="help-box"):
            yield Static(self.title_text, id="help-title", markup=False)
            with VerticalScroll(id="firings-scroll"):
                yield Static(table, id="help-table")
            yield Static("↑ ↓ PgUp PgDn scroll · Esc closes", id="confirm-keys")
        yield modal_footer()

    def on_mount(self) -> None:
        self.query_one("#firings-scroll", VerticalScroll).focus()

    def action_close(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question: two buttons for the mouse, keys for the keyboard.

    y answers yes, n and Esc answer no, wherever the focus is. Enter presses the highlighted
    (focused) button and nothing else, so it never means yes on "No"; "No" is focused first,
    so an Enter pressed out of habit does not start anything. Tab and the arrow keys move
    between the buttons.
    """

    DEFAULT_CSS = """
    ConfirmScreen #confirm-buttons {
        height: auto;
        width: 100%;
        margin-top: 1;
        align-horizontal: center;
    }
    ConfirmScreen #confirm-buttons Button {
        margin: 0 2;
        min-width: 12;
    }
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
        Binding("left", "focus_button('yes')", "Yes button", show=False),
        Binding("right", "focus_button('no')", "No button", show=False),
    ]

    def __init__(self, question: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.question = question
        self._answered = False

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm-box"):
            yield Static(self.question, id="confirm-question", markup=False)
            with Horizontal(id="confirm-buttons"):
                yield Button("Yes (y)", id="yes", variant="warning")
                yield Button("No (n)", id="no", variant="primary")
            yield Static("y: yes   n / Esc: no   Enter: the highlighted button", id="confirm-keys")
        yield modal_footer()

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.action_answer(event.button.id == "yes")

    def action_focus_button(self, button_id: str) -> None:
        self.query_one(f"#{button_id}", Button).focus()

    def action_answer(self, yes: bool) -> None:
        if self._answered:  # one answer, whatever else was already queued
            return
        self._answered = True
        self.dismiss(yes)
