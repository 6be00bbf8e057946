"""Cell updates that keep a DataTable cheap to refresh."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.cache import LRUCache
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, ColumnKey

from .visibility import DrawnWhenShown

#: The keys every table pane takes: vim-style moves, and sideways a column at a time (a row
#: cursor's own left/right moved one character a press).
TABLE_KEYS: list[Binding] = [
    Binding("j", "cursor_down", "Down", show=False),
    Binding("k", "cursor_up", "Up", show=False),
    Binding("h,left", "scroll_column(-1)", "Left", show=False),
    Binding("l,right", "scroll_column(1)", "Right", show=False),
]


class ColumnScroll(DataTable, DrawnWhenShown):
    """A table that scrolls sideways by whole columns (the TABLE_KEYS' h/l and arrows), and
    renders a cell (or a header) again only when it changed.

    Textual's DataTable keys its cell cache on a table-wide update count, so one updated cell
    renders every cell of the table again through Rich: with a live table, where a few cells
    of each row change every second, that was most of the UI's CPU. Here a body cell's
    rendering is kept while its value is the same object (an update always stores a new one),
    at the same place, width, height and style; whatever else changes the picture (a theme,
    the component styles) empties the cache.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cell_lines: LRUCache[tuple[Any, ...], tuple[Any, list[list[Segment]]]] = LRUCache(4096)

    def _render_cell(
        self,
        row_index: int,
        column_index: int,
        base_style: Style,
        width: int,
        cursor: bool = False,
        hover: bool = False,
    ) -> list[list[Segment]]:
        column_key = self._column_locations.get_key(column_index) if column_index >= 0 else None
        column = self.columns.get(column_key) if column_key is not None else None
        row_key = self._header_row_key if row_index < 0 else self._row_locations.get_key(row_index)
        row = self.rows.get(row_key) if row_index >= 0 and row_key is not None else None
        if column_key is None or column is None or row_key is None or (row_index >= 0 and row is None):
            # row labels (none here), or a cell Textual is about to find missing: its own way
            return super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        value: Any
        if row is None:  # the header: its label is the value
            height, value = self.header_height, column.label
        else:
            height, value = row.height, self._data.get(row_key, {}).get(column_key)
        key = (
            row_key, column_key, row_index, column_index, width, height, base_style, cursor, hover,
            self._show_hover_cursor, self.show_cursor, self._pseudo_class_state, self.cell_padding,
            self.fixed_rows, self.fixed_columns,
        )
        cached = self._cell_lines.get(key)
        if cached is not None and cached[0] is value:
            return cached[1]
        lines = super()._render_cell(row_index, column_index, base_style, width, cursor, hover)
        self._cell_lines[key] = (value, lines)  # the value is kept: its id cannot be reused
        return lines

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._cell_lines.clear()  # a theme or CSS change: every cell looks different

    def _clear_caches(self) -> None:
        super()._clear_caches()
        self._cell_lines.clear()

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

