"""Panes that are not on screen are not redrawn, and are redrawn as soon as they are.

A pane can be off the screen for many reasons: `display: none` in a narrow layout, another pane
maximised, a container hiding it. Whatever the reason, :func:`shown` reads it from the styles
and the screen; a skipped pane is marked stale, and when Textual lays it out again (its Show
event) it posts :class:`PaneShown`, which redraws it at once.
So the refresh costs nothing for what nobody sees, and nothing shown is ever out of date.
"""

from __future__ import annotations

from typing import Any

from textual.dom import NoScreen
from textual.message import Message
from textual.widget import Widget


class PaneShown(Message):
    """A pane skipped while it was off the screen is on it again: draw it now."""

    def __init__(self, pane: Widget) -> None:
        super().__init__()
        self.pane = pane


class DrawnWhenShown(Widget):
    """A pane the refresh skips while it is off the screen (see :func:`drawn_if_shown`). Put it
    after the Textual base (``class Pane(DataTable, DrawnWhenShown)``): Textual takes CSS and
    component classes from the first base only."""

    #: a refresh skipped this pane while it was off the screen
    stale: bool = False

    def on_show(self, event: Any) -> None:
        if self.stale:
            self.post_message(PaneShown(self))


def shown(widget: Widget) -> bool:
    """Whether ``widget`` is part of the screen's picture: it and every container above it are
    displayed and visible, and no other widget is maximised. Read from the styles, so it holds
    before the first layout too and whatever set them (CSS, a breakpoint class, code)."""
    node: Any = widget
    while node is not None and isinstance(node, Widget):
        if not node.display or not node.visible:
            return False
        node = node.parent
    try:
        maximized = widget.screen.maximized
    except NoScreen:  # not mounted yet, or torn down: nothing hides it then
        return True
    if maximized is None or maximized is widget:
        return True
    return maximized in widget.ancestors or widget in maximized.ancestors


def drawn_if_shown(pane: DrawnWhenShown) -> bool:
    """Whether to draw ``pane`` now (see :func:`shown`). When not, it is marked stale: it is
    drawn when Textual shows it again."""
    if shown(pane):
        pane.stale = False
        return True
    pane.stale = True
    return False
