"""The data file: SQLite in WAL mode, versioned schema, a batched background writer, queries.

One job a module:

* ``schema``: tables, forward migrations, connections and their pragmas, StoreError.
* ``rows``: rows <-> Sample/Violation/Incident, and the value hygiene done before a write.
* ``connection``: per-thread read-only connections and the SQL filters every query uses.
* ``samples``, ``records``: the queries (samples and chart series; violations, incidents,
  baselines and spend); ``reader`` joins them into StoreReader and opens files read-only.
* ``batch``, ``writer``: what the writer queue holds, and the thread that commits it in
  batches, holds a failing write in memory and retries it.
* ``sample_store``: SampleStore, the file opened for writing (and reading).

WAL mode lets readers (the TUI, ``llmscope-tui export`` in another process, a ``sqlite3``
shell) read while the writer writes. Problems a user must fix (a missing, corrupt or too-new
file) raise :class:`StoreError` with one line naming the file. Times are UTC epoch seconds;
windows are half-open ``[since, until)``.
"""

from __future__ import annotations

from llmscope_tui.store.reader import StoreReader, open_readonly
from llmscope_tui.store.sample_store import SampleStore
from llmscope_tui.store.schema import (
    ALL_SAMPLE_COLUMNS,
    MIGRATIONS,
    SCHEMA_VERSION,
    StoreError,
    check_writable,
)

__all__ = [
    "ALL_SAMPLE_COLUMNS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SampleStore",
    "StoreError",
    "StoreReader",
    "check_writable",
    "open_readonly",
]
