"""StoreReader: every query on a data file, safe from any thread; open_readonly for tools."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from llmscope_tui.store.records import RecordQueries
from llmscope_tui.store.samples import SampleQueries
from llmscope_tui.store.schema import StoreError


class StoreReader(SampleQueries, RecordQueries):
    """Read-only queries on a data file; safe from any thread.

    Each thread gets its own read-only connection, opened on first use and kept, so a read
    never waits for the writer (WAL) and concurrent reads never share a cursor.
    """

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_readonly(path: Path | str) -> StoreReader:
    """Open an existing data file for reading only: no migrations, no writer thread.

    For ``export`` and other tools that run while another llmscope-tui process writes the same
    file. A missing file, a file that is not a data file, or one from a newer version raises
    StoreError.
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise StoreError(f"no data file at {p}")
    if p.is_dir():
        raise StoreError(f"{p} is a directory, not a data file")
    reader = StoreReader(p)
    try:
        reader._check_schema()
    except BaseException:
        reader.close()
        raise
    return reader
