"""Costs pane: cards (today, this month, projected month-end, probe overhead) and budget bars
with their numbers written on them; bars turn warning at 80 % and critical at 100 %, and say so
in words as well as colour."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.widgets import Static

from llmscope_tui.costs import format_usd

from .visibility import DrawnWhenShown

BAR_STYLE = {"ok": "reverse green", "warning": "reverse yellow", "critical": "reverse bold red"}


@dataclass(slots=True)
class CostData:
    """What the slow store read found (all optional until the first read)."""

    summary: Any = None
    budgets: list[Any] = field(default_factory=list)
    overhead_day: float | None = None
    overhead_month: float | None = None
    unpriced_targets: list[str] = field(default_factory=list)
    recommendations: list[str] = field(default_factory=list)
    error: str | None = None
    #: spend the live events brought since that read (the Targets pane adds it too: the card's
    #: today is their sum, not a figure up to half a minute old)
    live: float = 0.0
    #: the same, by provider (the "by provider this month" line adds it like the cards)
    live_by_provider: dict[str, float] = field(default_factory=dict)


def budget_bar(status: Any, width: int) -> Text:
    """One budget as a bar: the filled part in reverse video, the numbers on top of it."""
    pct = status.fraction * 100
    state = status.state.upper()
    label = f" {status.name}: {format_usd(status.spent)} of {format_usd(status.limit)} per {status.period} · {pct:.0f}% {state} "
    width = max(width, len(label))
    filled = min(width, round(width * min(status.fraction, 1.0)))
    body = label.ljust(width)
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(body[:filled], style=BAR_STYLE.get(status.state, "reverse"))
    text.append(body[filled:], style="on default" if status.state == "ok" else "")
    return text


def render_costs(data: CostData, width: int) -> Text:
    text = Text()
    if data.summary is None:
        text.append("reading spend from the data file…" if data.error is None else f"cost data unavailable: {data.error}", style="italic")
        return text
    s = data.summary
    cards = [
        ("today", format_usd(s.today + data.live)),
        ("this month", format_usd(s.month + data.live)),
        # spend since the read adds to the spent-so-far part of the projection: never below the month
        ("projected month-end", format_usd(s.projected_month_end + data.live)),
        ("probe overhead", "-" if data.overhead_day is None else f"{format_usd(data.overhead_day)}/day"),
    ]
    # four cards a line, else two, else one: as many as fit whole (a figure is never cut short)
    needed = max(len(f"{title}: {value}") for title, value in cards) + 1
    per_line = next((n for n in (4, 2) if width >= n * needed), 1)
    card_w = max(needed, width // per_line)
    line = Text()
    for i, (title, value) in enumerate(cards):
        cell = Text(f"{title}: ", style="dim")
        cell.append(value, style="bold")
        cell.pad_right(max(0, card_w - 1 - cell.cell_len))
        line.append_text(cell)
        line.append(" ")
        if (i + 1) % per_line == 0 and i < len(cards) - 1:
            line.append("\n")
    text.append_text(line)
    by_provider = dict(s.by_provider)
    for provider, amount in data.live_by_provider.items():
        by_provider[provider] = by_provider.get(provider, 0.0) + amount
    if by_provider:
        text.append("\nby provider this month: ", style="dim")
        text.append(", ".join(f"{k} {format_usd(v)}" for k, v in sorted(by_provider.items())))
    if s.unpriced:
        text.append("\nunpriced (no cost recorded): ", style="dim")
        text.append(", ".join(s.unpriced))
    if data.budgets:
        text.append("\n")
        for status in data.budgets:
            text.append("\n")
            text.append_text(budget_bar(status, max(20, width - 2)))
    else:
        text.append("\nno budgets configured ([[budgets]] in the config file)", style="dim")
    for rec in data.recommendations[:2]:
        tip = f"↳ {rec}"
        text.append("\n" + (tip if len(tip) <= width - 2 else tip[: max(10, width - 3)] + "…"), style="dim")
    return text


class CostsPane(VerticalScroll, DrawnWhenShown, can_focus=True):
    ALLOW_MAXIMIZE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "scroll_down", "Down", show=False),
        Binding("k", "scroll_up", "Up", show=False),
    ]

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data = CostData()
        self._shown: Text | None = None
        self._shown_lines = -1

    def compose(self) -> ComposeResult:
        yield Static(id="costs-body")

    def on_resize(self, event: Any) -> None:
        """The cards and tips are laid out for the width: again at a new one."""
        self.render_data()

    def add_live(self, by_provider: dict[str, float]) -> None:
        """The live events' spend since the last store read, by provider: the cards are redrawn
        (when shown) only when it moved."""
        if by_provider != self.data.live_by_provider:
            self.data.live_by_provider = dict(by_provider)
            self.data.live = sum(by_provider.values())
            self.stale = True

    def render_data(self, data: CostData | None = None) -> None:
        """Draw the cards; the same text again costs nothing, and only a change in the number of
        lines asks for a layout pass (which repaints the whole screen)."""
        if data is not None:
            self.data = data
        text = render_costs(self.data, max(30, self.size.width - 2))
        if text == self._shown:
            return
        lines = len(text.plain.split("\n"))
        self.query_one("#costs-body", Static).update(text, layout=lines != self._shown_lines)
        self._shown, self._shown_lines = text, lines
