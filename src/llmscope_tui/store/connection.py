"""Per-thread read-only connections, and the small SQL pieces every query is built from.

Every read goes through a read-only connection of its own (one per thread), so a slow query
never blocks a commit (WAL) and concurrent reads never share a cursor.
"""

from __future__ import annotations

import itertools
import operator
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmscope_tui.store.schema import (
    LATER_SAMPLE_COLUMNS,
    SCHEMA_VERSION,
    StoreError,
    as_store_error,
    close_quietly,
    closed_error,
    connect_reader,
    newer_schema,
    reader_uri,
)


def conjunction(conditions: Iterable[tuple[str, Sequence[Any]]]) -> tuple[str, list[Any]]:
    """(" WHERE a AND b", params) from (clause, its params) pairs; ("", []) when there are none."""
    clauses: list[str] = []
    params: list[Any] = []
    for clause, values in conditions:
        clauses.append(clause)
        params.extend(values)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def where(
    target: str | None = None,
    since: float | None = None,
    until: float | None = None,
    source: str | None = None,
    **equal: Any,
) -> tuple[str, list[Any]]:
    """The usual filter: this target, the half-open window [since, until), this source, and
    ``column=value`` for each of ``equal``; a None leaves its filter out."""
    conditions = [
        ("target = ?", target),
        ("ts >= ?", None if since is None else float(since)),
        ("ts < ?", None if until is None else float(until)),
        ("source = ?", source),
        *((f"{column} = ?", value) for column, value in equal.items()),
    ]
    return conjunction((clause, [value]) for clause, value in conditions if value is not None)


def check_limit(limit: int | None) -> int | None:
    if limit is None:
        return None
    limit = operator.index(limit)
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    return limit


class _ThreadToken:
    """Lives in one thread's local storage; its death tells the reader the thread is gone."""


def _forget_reader(readers: dict[int, sqlite3.Connection], lock: threading.Lock, key: int) -> None:
    with lock:
        conn = readers.pop(key, None)
    if conn is not None:
        close_quietly(conn)


class ReadConnections:
    """A data file's read side: one read-only connection per thread, opened on first use and
    kept, and the query helpers on top of it (every sqlite error becomes a StoreError)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self._uri = reader_uri(self.path)
        self._local = threading.local()
        self._readers: dict[int, sqlite3.Connection] = {}  # every open reader, to close them all
        self._readers_lock = threading.Lock()
        self._reads_closed = False
        self._absent: dict[str, str] | None = None  # later sample columns this file lacks

    def column_sql(self, name: str) -> str:
        """A sample column as SQL: its name, or the value it reads as in a file older than it."""
        if self._absent is None:
            have = {row[1] for row in self._query("PRAGMA table_info(samples)")}
            self._absent = {c: v for c, v in LATER_SAMPLE_COLUMNS.items() if c not in have}
        value = self._absent.get(name)
        return name if value is None else value

    def sample_columns(self, names: Sequence[str]) -> str:
        """A select list of sample columns that also reads a file not yet migrated (read-only)."""
        return ", ".join(
            name if (sql := self.column_sql(name)) == name else f"{sql} AS {name}" for name in names
        )

    def _open_reader(self) -> sqlite3.Connection:
        return connect_reader(self.path, self._uri)

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection, opened on first use."""
        if self._reads_closed:
            raise closed_error(self.path)
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._readers_lock:
            if self._reads_closed:
                raise closed_error(self.path)
            conn = self._open_reader()
            # When the thread ends its thread-local token dies and the connection is forgotten.
            token = _ThreadToken()
            self._readers[id(token)] = conn
            weakref.finalize(token, _forget_reader, self._readers, self._readers_lock, id(token))
            self._local.conn = conn
            self._local.token = token
        return conn

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._reader().execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise as_store_error(self.path, exc) from exc

    def _query_flat(self, sql: str, params: Sequence[Any]) -> np.ndarray:
        """Every value of every row, in order, as one float64 array built straight from the
        cursor (no per-row Python tuples kept): the fast path for chart reads."""
        try:
            cursor = self._reader().execute(sql, params)
            return np.fromiter(itertools.chain.from_iterable(cursor), dtype=np.float64)
        except sqlite3.DatabaseError as exc:
            raise as_store_error(self.path, exc) from exc

    def _query_ordered(
        self, select: str, table: str, where: str, params: list[Any], limit: int | None
    ) -> list[tuple[Any, ...]]:
        """Rows oldest first (by ts, id); with ``limit``, the newest ``limit`` of them."""
        if limit is None:
            return self._query(f"SELECT {select} FROM {table}{where} ORDER BY ts, id", params)
        rows = self._query(
            f"SELECT {select} FROM {table}{where} ORDER BY ts DESC, id DESC LIMIT ?",
            [*params, limit],
        )
        rows.reverse()
        return rows

    def _close_readers(self) -> None:
        with self._readers_lock:
            self._reads_closed = True
            readers = list(self._readers.values())
            self._readers.clear()
        for conn in readers:
            close_quietly(conn)

    def _check_schema(self) -> None:
        """Refuse files this version cannot read: not a data file, or from a newer version."""
        version = self._query("PRAGMA user_version")[0][0]
        if version > SCHEMA_VERSION:
            raise newer_schema(self.path, version)
        has_samples = self._query(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'samples'"
        )
        if version == 0 or not has_samples:
            raise StoreError(
                f"{self.path} is not an llmscope-tui data file (it has no samples table)"
            )

    def close(self) -> None:
        """Close this reader's connections (idempotent)."""
        self._close_readers()
