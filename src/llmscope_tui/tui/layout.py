"""Where the panes go for a terminal size: a pure plan (:func:`plan_layout`) and the few
lines that apply it to the screen (:class:`PaneLayout`).

Two arrangements, chosen by size, never by scrolling the screen:

- **grid** (wide and tall enough): Targets across the top, Charts | Incidents beside each
  other, Costs across the bottom; every pane on screen at once.
- **stack** (80x24 and anything that cannot hold the grid): Targets on top, and under it ONE
  of Charts, Incidents and Costs, switched with 2/3/4 (like k9s's views or btop's boxes). The
  Targets table takes what is left after the control chart's 8 plot rows, in one-line rows
  when its two-line rows do not fit, and scrolls inside itself (targets that are not `up`
  sort first, so they are the ones shown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from rich.text import Text

if TYPE_CHECKING:
    from textual.screen import Screen

#: Plot rows the selected target's control chart keeps at any size (issue: at least 8).
CHART_PLOT_ROWS = 8
#: The Charts pane around those rows: its border (2), the chart's title (1), its time axis (1).
CHARTS_MIN = CHART_PLOT_ROWS + 4
#: Status line and footer under the body.
CHROME_ROWS = 2
#: The Costs pane's usual height in the grid (cards, providers, budgets, two tips, border).
COSTS_ROWS = 10
#: The narrowest screen that holds Charts and Incidents side by side with every column.
GRID_MIN_WIDTH = 120
#: The table's one-line layout with every column needs about this many columns.
FULL_ROWS_MIN_WIDTH = 112

Rows = Literal["full", "two", "one"]
VIEWS = ("charts", "incidents", "costs")


@dataclass(frozen=True, slots=True)
class Plan:
    """What fits: the arrangement, the Targets table's row style and its pane's height."""

    mode: Literal["grid", "stack"]
    rows: Rows
    targets_height: int


def plan_layout(width: int, height: int, targets: int, banner: bool) -> Plan:
    """The arrangement for a ``width`` x ``height`` terminal showing ``targets`` rows.

    The control chart's :data:`CHART_PLOT_ROWS` come first; the Targets table takes the rest
    (at least one row), two lines a row in the stack only when every target fits that way."""
    body = max(0, height - CHROME_ROWS - (1 if banner else 0))
    n = max(1, targets)
    full_width = width >= FULL_ROWS_MIN_WIDTH
    if width >= GRID_MIN_WIDTH and body >= 3 + n + COSTS_ROWS + CHARTS_MIN:
        return Plan("grid", "full", 3 + n)
    room = max(4, body - CHARTS_MIN)  # border 2, header 1, one row at least
    if full_width:
        return Plan("stack", "full", min(room, 3 + n))
    if 4 + 2 * n <= room:  # border 2, header 2, two lines a target
        return Plan("stack", "two", 4 + 2 * n)
    return Plan("stack", "one", min(room, 3 + n))


class PaneLayout:
    """Applies a :class:`Plan` to the main screen: CSS classes for the arrangement and for the
    view shown in the stack, and the Targets pane's height."""

    def __init__(self) -> None:
        self.screen: Screen[object] | None = None  # the main screen, once mounted
        self.view = "charts"
        self.plan: Plan | None = None

    def apply(self, plan: Plan) -> bool:
        """Set the arrangement; True when it changed (the panes then redraw at their sizes)."""
        screen = self.screen
        if screen is None or plan == self.plan:
            return False
        self.plan = plan
        screen.set_class(plan.mode == "stack", "-stack")
        screen.set_class(plan.mode == "grid", "-grid")
        self.show(self.view)
        screen.query_one("#targets-pane").styles.max_height = plan.targets_height
        return True

    @property
    def stacked(self) -> bool:
        return self.plan is not None and self.plan.mode == "stack"

    def show(self, view: str) -> bool:
        """Make ``view`` the one under Targets in the stack; True when it was hidden."""
        hidden = self.stacked and view != self.view
        self.view = view
        if self.screen is not None:
            for name in VIEWS:
                self.screen.set_class(name == view, f"-show-{name}")
        return hidden

    def caption(self, open_incidents: int) -> None:
        """In the stack, the shown view's bottom border is a tab strip naming the keys of the
        others (and how many incidents are open, so a hidden pane still says it matters)."""
        if self.screen is None:
            return
        for view in VIEWS:
            pane = self.screen.query_one(f"#{view}-pane")
            strip = switcher(view, open_incidents) if self.stacked and view == self.view else ""
            if str(pane.border_subtitle or "") != str(strip):
                pane.border_subtitle = strip


def switcher(shown: str, open_incidents: int) -> Text:
    """``[2 Charts] · 3 Incidents (1 open) · 4 Costs``, the shown view marked."""
    labels = {"charts": "2 Charts", "incidents": f"3 Incidents ({open_incidents} open)", "costs": "4 Costs"}
    strip = Text()
    for i, view in enumerate(VIEWS):
        if i:
            strip.append(" · ")
        strip.append(f"[{labels[view]}]" if view == shown else labels[view], style="bold" if view == shown else "")
    return strip
