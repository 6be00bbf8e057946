"""Cell updates that keep a DataTable cheap to refresh."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import DataTable


def cell_width(value: Any) -> int:
    """Columns the value needs: its widest line."""
    plain = value.plain if isinstance(value, Text) else str(value)
    return max((cell_len(line) for line in plain.split("\n")), default=0)


def update_in_place(table: DataTable, row: str, column: str, value: Any) -> None:
    """Update one cell; ask the table to re-measure the column only when the value is wider
    than the column is now. (Re-measuring on every update makes Textual measure the whole column
    whenever a value gets narrower: most of a live table's refresh cost.)"""
    grow = cell_width(value) > table.columns[column].content_width
    table.update_cell(row, column, value, update_width=grow)
