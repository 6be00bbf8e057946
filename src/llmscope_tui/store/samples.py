"""Reads of the samples table: rows, chart series and per-target rollups.

Chart reads (metric_series, metric_extremes, metric_table) are answered from the covering
(target, ts, id, ok, ttft_ms, latency_ms, itl_ms, tps) index alone and built into numpy arrays
straight from the cursor, so a week of one target comes back in tens of milliseconds from a
file of 10 million samples (bench/bench_store.py).
"""

from __future__ import annotations

import operator
import sqlite3
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from llmscope_tui.model import SAMPLE_FIELDS, Sample
from llmscope_tui.store.connection import ReadConnections, check_limit, where
from llmscope_tui.store.rows import (
    INT,
    SAMPLE_KIND_BY_NAME,
    SERIES_COLUMNS,
    TEXT,
    to_sample,
)
from llmscope_tui.store.schema import ALL_SAMPLE_COLUMNS, METRIC_COLUMNS, as_store_error

_NULL_SENTINEL = -1.0e300
_EMPTY = np.empty(0, dtype=np.float64)


def _series_column(metric: str) -> str:
    metric = str(metric)
    if metric not in SERIES_COLUMNS:
        raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(SERIES_COLUMNS)}")
    return metric


def _ts_and_values(pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ts, values) as two contiguous arrays from an (n, 2) array of pairs."""
    if pairs.size == 0:
        return _EMPTY.copy(), _EMPTY.copy()
    return np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])


class SampleQueries(ReadConnections):
    """Samples as rows, arrays and counts; every window is half-open [since, until)."""

    def samples(
        self,
        target: str | None = None,
        since: float | None = None,
        until: float | None = None,
        source: str | None = None,
        limit: int | None = None,
    ) -> list[Sample]:
        """Samples in [since, until), oldest first; with ``limit``, the newest ``limit`` of them."""
        limit = check_limit(limit)
        where_sql, params = where(target, since, until, source)
        rows = self._query_ordered(
            self.sample_columns(ALL_SAMPLE_COLUMNS), "samples", where_sql, params, limit
        )
        return [to_sample(row) for row in rows]

    def samples_after(self, after_id: int, limit: int = 10_000) -> tuple[int, list[Sample]]:
        """Samples stored after row ``after_id``, in the order they were written, and the last
        row id read: what a viewer of a file another process writes has not seen yet (a probe
        is written when it ends, so its ``ts`` can be older than rows before it)."""
        rows = self._query(
            f"SELECT id, {self.sample_columns(ALL_SAMPLE_COLUMNS)} FROM samples WHERE id > ? ORDER BY id LIMIT ?",
            [after_id, check_limit(limit)],
        )
        last = int(rows[-1][0]) if rows else after_id
        return last, [to_sample(row[1:]) for row in rows]

    def last_sample_id(self) -> int:
        return int(self._query("SELECT COALESCE(MAX(id), 0) FROM samples")[0][0])

    def iter_rows(
        self, target: str | None = None, since: float | None = None, until: float | None = None
    ) -> Iterator[tuple[Any, ...]]:
        """Rows in SAMPLE_FIELDS order, oldest first, streamed (constant memory, for export).

        Uses a connection of its own for the whole iteration, so the rows are one consistent
        snapshot even while a writer adds more; close the generator early to release it.
        """
        where_sql, params = where(target, since, until)
        sql = f"SELECT {self.sample_columns(SAMPLE_FIELDS)} FROM samples{where_sql} ORDER BY ts, id"
        conn = self._open_reader()
        try:
            cursor = conn.execute(sql, params)
            cursor.arraysize = 2000
            while True:
                chunk = cursor.fetchmany()
                if not chunk:
                    break
                yield from chunk
        except sqlite3.DatabaseError as exc:
            raise as_store_error(self.path, exc) from exc
        finally:
            conn.close()

    def metric_series(
        self,
        target: str,
        metric: str,
        since: float | None = None,
        until: float | None = None,
        limit: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ts, values) of the target's successful samples that have this metric, oldest first.

        With ``limit``, the LAST ``limit`` points. For the charted metrics the query reads the
        index alone (~20 ms for a week of one target in a file of 10 million samples).
        """
        metric = _series_column(metric)
        target = str(target)
        limit = check_limit(limit)
        where_sql, params = where(target, since, until)
        sql = (
            f"SELECT ts, {metric} FROM samples{where_sql}"
            f" AND ok = 1 AND {metric} IS NOT NULL ORDER BY ts"
        )
        if limit is not None:
            sql += " DESC, id DESC LIMIT ?"
            params.append(limit)
        else:
            sql += ", id"
        pairs = self._query_flat(sql, params).reshape(-1, 2)
        return _ts_and_values(pairs if limit is None else pairs[::-1])

    def metric_extremes(
        self,
        target: str,
        metric: str,
        since: float,
        until: float,
        buckets: int,
        center: float | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """A long window squeezed to at most ``buckets`` points for a chart, oldest first.

        The window is cut into equal time buckets and each non-empty one keeps its point
        furthest from ``center`` (its largest value when there is no center yet), so an outlier
        is never averaged away. SQLite does the grouping from the index (a bare column next to
        max() comes from the row that has the max), so a week at one probe a second (600k
        points) never reaches Python as rows.
        """
        metric = _series_column(metric)
        buckets = max(1, operator.index(buckets))
        width = max((float(until) - float(since)) / buckets, 1e-9)
        where_sql, params = where(str(target), since, until)
        distance = f"abs({metric} - ?)" if center is not None else metric
        sql = (
            f"SELECT CAST((ts - ?) / ? AS INTEGER) AS b, ts, {metric}, max({distance})"
            f" FROM samples{where_sql} AND ok = 1 AND {metric} IS NOT NULL GROUP BY b ORDER BY b"
        )
        head: list[Any] = [float(since), width] + ([float(center)] if center is not None else [])
        rows = self._query(sql, [*head, *params])
        return _ts_and_values(np.array([(row[1], row[2]) for row in rows], dtype=np.float64))

    def metric_table(
        self, target: str, since: float | None = None, until: float | None = None
    ) -> dict[str, np.ndarray]:
        """The four charted metrics of the target's successful samples, as float64 arrays (NaN
        where a sample has no value). Reads only the covering (target, ts, ...) index."""
        where_sql, params = where(target, since, until)
        # NULL comes back as a sentinel so rows flatten in C (itertools), then becomes NaN in numpy
        picked = ", ".join(f"coalesce({name}, {_NULL_SENTINEL!r})" for name in METRIC_COLUMNS)
        flat = self._query_flat(f"SELECT {picked} FROM samples{where_sql} AND ok = 1", params)
        flat[flat == _NULL_SENTINEL] = np.nan
        table = flat.reshape(-1, len(METRIC_COLUMNS))
        return {name: np.ascontiguousarray(table[:, i]) for i, name in enumerate(METRIC_COLUMNS)}

    def targets(self) -> list[str]:
        """Every target with at least one sample, sorted.

        A skip-scan on the (target, ts) index: one index seek per target instead of a scan of
        every sample, which matters on a file of millions of rows.
        """
        rows = self._query(
            "WITH RECURSIVE t(name) AS ("
            " SELECT (SELECT min(target) FROM samples)"
            " UNION ALL"
            " SELECT (SELECT min(target) FROM samples WHERE target > t.name) FROM t WHERE t.name IS NOT NULL"
            ") SELECT name FROM t WHERE name IS NOT NULL"
        )
        return [row[0] for row in rows]

    def count(self, target: str | None = None, since: float | None = None) -> int:
        """How many samples (of this target, since this time)."""
        where_sql, params = where(target, since)
        return int(self._query(f"SELECT count(*) FROM samples{where_sql}", params)[0][0])

    def latest(self, target: str) -> Sample | None:
        """The target's newest sample, or None."""
        rows = self.samples(target, limit=1)
        return rows[0] if rows else None

    def probe_history(
        self,
        target: str,
        since: float | None = None,
        limit: int | None = None,
        *,
        newest: bool = False,
    ) -> list[tuple[float, bool, str | None, dict[str, float | None]]]:
        """The target's probes as (ts, ok, error_kind, {metric: value}), oldest first: the first
        ``limit`` from ``since`` on, or the last ``limit`` with ``newest`` (for replays)."""
        limit = check_limit(limit)
        where_sql, params = where(target, since, None, "probe")
        metrics = ", ".join(METRIC_COLUMNS)
        sql = f"SELECT ts, ok, error_kind, {metrics} FROM samples{where_sql} ORDER BY ts"
        sql += " DESC, id DESC" if newest else ", id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._query(sql, params)
        if newest:
            rows.reverse()
        return [
            (float(r[0]), bool(r[1]), r[2], dict(zip(METRIC_COLUMNS, r[3:], strict=True)))
            for r in rows
        ]

    def columns(
        self,
        names: Sequence[str],
        since: float | None = None,
        until: float | None = None,
        *,
        target: str | None = None,
        source: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Sample columns as arrays, oldest first, in one read and without Sample objects.

        Text columns are object arrays (None where NULL); REAL columns float64 (NaN where NULL);
        INTEGER columns int64, or float64 with NaN when some value is NULL.
        """
        names = [str(n) for n in names]
        unknown = [n for n in names if n not in SAMPLE_KIND_BY_NAME]
        if unknown or not names:
            raise ValueError(
                f"unknown sample columns {unknown!r}; expected names from {list(ALL_SAMPLE_COLUMNS)}"
            )
        where_sql, params = where(target, since, until, source)
        rows = self._query(
            f"SELECT {self.sample_columns(names)} FROM samples{where_sql} ORDER BY ts, id", params
        )
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        out: dict[str, np.ndarray] = {}
        for name, values in zip(names, cols, strict=True):
            kind = SAMPLE_KIND_BY_NAME[name]
            if kind is TEXT:
                arr = np.empty(len(values), dtype=object)
                arr[:] = values
            elif kind is INT and None not in values:
                arr = np.array(values, dtype=np.int64)
            else:
                arr = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
            out[name] = arr
        return out

    def outcome_counts(
        self, since: float | None = None, until: float | None = None, *, source: str | None = None
    ) -> list[tuple[str, str, int, str | None, int]]:
        """(target, provider, ok, error_kind, count) in [since, until), for rollups.

        Per target through the covering (target, ts, id, ok, ...) index: successes are counted
        in the index alone and only failed rows (few) are looked up for their error kind, so a
        week of a busy file is counted in milliseconds instead of a scan of every row. A
        target's provider and source are those of its latest sample.
        """
        where_sql, params = where(None, since, until)
        window = where_sql.replace(" WHERE ", " AND ", 1)
        out: list[tuple[str, str, int, str | None, int]] = []
        for target in self.targets():
            latest = self._query(
                "SELECT provider, source FROM samples WHERE target = ? ORDER BY ts DESC LIMIT 1",
                [target],
            )
            if not latest or (source is not None and latest[0][1] != source):
                continue
            provider = latest[0][0]
            scope = f"FROM samples WHERE target = ?{window}"
            ok = self._query(f"SELECT count(*) {scope} AND ok = 1", [target, *params])[0][0]
            if ok:
                out.append((target, provider, 1, None, ok))
            for kind, n in self._query(
                f"SELECT error_kind, count(*) {scope} AND ok = 0 GROUP BY error_kind",
                [target, *params],
            ):
                out.append((target, provider, 0, kind, n))
        return out
