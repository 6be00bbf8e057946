"""Cell updates that keep a DataTable cheap to refresh."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey

#: The keys every table pane takes: vim-style moves, and sideways a column at a time (a row
#: cursor's own left/right moved one character a press).
TABLE_KEYS: list[Binding] = [
    Binding("j", "cursor_down", "Down", show=False),
    Binding("k", "cursor_up", "Up", show=False),
    Binding("h,left", "scroll_column(-1)", "Left", show=False),
    Binding("l,right", "scroll_column(1)", "Right", show=False),
]


class ColumnScroll(DataTable):
    """A table that scrolls sideways by whole columns (the TABLE_KEYS' h/l and arrows)."""

    def action_scroll_column(self, step: int) -> None:
        """Scroll so that the next (step 1) or previous (-1) column starts at the left edge."""
        stops, x = [], 0
        for column in self.ordered_columns:
            stops.append(x)
            x += column.get_render_width(self)
        now, end = round(self.scroll_x), round(self.max_scroll_x)
        if step > 0:
            target = next((s for s in stops if s > now), end)
        else:
            target = next((s for s in reversed(stops) if s < now), 0)
        self.scroll_to(x=min(target, end), animate=False)


def cell_width(value: Any) -> int:
    """Columns the value needs: its widest line."""
    plain = value.plain if isinstance(value, Text) else str(value)
    return max((cell_len(line) for line in plain.split("\n")), default=0)


def update_in_place(table: DataTable, row: str, column: str, value: Any) -> None:
    """Update one cell; ask the table to re-measure the column only when the value is wider
    than the column is now. (Re-measuring on every update makes Textual measure the whole column
    whenever a value gets narrower: most of a live table's refresh cost.)"""
    grow = cell_width(value) > table.columns[ColumnKey(column)].content_width
    table.update_cell(row, column, value, update_width=grow)


def right(value: str | Text) -> Text:
    """A cell right-aligned: figures in a column line up on their last digit."""
    text = value.copy() if isinstance(value, Text) else Text(value)
    text.justify = "right"
    return text


def cursor_row_key(table: DataTable) -> str | None:
    """The key of the row under the table's cursor, or None when there is none."""
    if not table.row_count:
        return None
    try:
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
    except CellDoesNotExist:
        return None
    return str(key.value) if key is not None else None

