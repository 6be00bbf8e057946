"""The data file: SQLite in WAL mode, versioned schema, a batched background writer, queries.

Why it is built this way:

* The probe loop runs on an event loop that must never wait for the disk, so :meth:`SampleStore.add`
  only appends to an in-memory queue. ONE writer thread owns the write connection and commits
  batches (one transaction, ``executemany``): SQLite has one writer at a time anyway, and a
  transaction per sample would cap the rate at a few hundred per second on a slow disk.
* WAL mode lets readers (the TUI, ``llmscope-tui export`` in another process, a ``sqlite3``
  shell) read while the writer writes. Every read goes through a read-only connection of its
  own (one per thread), so a slow query never blocks a commit and a reader can never write.
* A failed write (disk full, the file locked by someone's open transaction) must not lose data:
  the batch stays in memory and is retried with backoff until it lands; ``on_error`` hears about
  it once per failure streak, as one line a person can act on.
* The schema is versioned with ``PRAGMA user_version`` and an ordered list of forward
  migrations, so a file written by an older llmscope-tui is upgraded in place and a file written
  by a newer one is refused with a clear message instead of being damaged.

Problems a user must fix (a missing, corrupt or too-new file) raise :class:`StoreError` with
one line naming the file. Times are UTC epoch seconds; windows are half-open ``[since, until)``.
"""

from __future__ import annotations

import atexit
import functools
import itertools
import json
import logging
import math
import operator
import sqlite3
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from llmscope_tui.incidents.model import Incident
from llmscope_tui.model import EXTRA_SAMPLE_FIELDS, SAMPLE_FIELDS, Sample, Violation

__all__ = [
    "ALL_SAMPLE_COLUMNS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "SampleStore",
    "StoreError",
    "StoreReader",
    "open_readonly",
]

log = logging.getLogger(__name__)

#: Columns of the samples table besides ``id``, in the order rows are written and read.
ALL_SAMPLE_COLUMNS: tuple[str, ...] = SAMPLE_FIELDS + EXTRA_SAMPLE_FIELDS
VIOLATION_COLUMNS: tuple[str, ...] = ("target", "metric", "rule", "ts", "value", "z", "center", "sigma")
INCIDENT_COLUMNS: tuple[str, ...] = (
    "id",
    "target",
    "provider",
    "scope",
    "severity",
    "start_ts",
    "opened_ts",
    "updated_ts",
    "closed_ts",
    "resolution",
    "error_kind",
    "down",
    "peak_z",
    "metrics",
    "rules",
)
BASELINE_COLUMNS: tuple[str, ...] = (
    "id",
    "target",
    "metric",
    "created_ts",
    "center",
    "sigma",
    "n",
    "transform",
    "window_start",
    "window_end",
    "active",
)

_NULL_SENTINEL = -1.0e300

#: The charted metrics, in the order of the covering index.
METRIC_COLUMNS: tuple[str, ...] = ("ttft_ms", "latency_ms", "itl_ms", "tps")

#: Numeric sample columns that metric_series() can read.
SERIES_COLUMNS: frozenset[str] = frozenset(
    {
        "connect_ms",
        "ttft_ms",
        "latency_ms",
        "itl_ms",
        "tps",
        "tokens_in",
        "tokens_out",
        "tokens_cached",
        "tokens_reasoning",
        "cost_usd",
        "retry_after_s",
        "http_status",
    }
)

BUSY_TIMEOUT_S = 5.0
#: How long purge_older_than() waits for the writer thread before giving up.
CALL_TIMEOUT_S = 60.0
#: How long close() keeps retrying a failing write before it gives up on what is still held.
CLOSE_TIMEOUT_S = 10.0


class StoreError(Exception):
    """A problem with the data file that the user must fix, said in one line naming the file."""


# --------------------------------------------------------------------------------------------
# Schema and migrations
# --------------------------------------------------------------------------------------------

Migration = Callable[[sqlite3.Connection], None] | Sequence[str]

# Migration 1 is frozen: never edit it once released. A change of the schema (say a new Sample
# field) is a new migration appended to MIGRATIONS; test_store checks the columns still match.
_MIGRATION_1: tuple[str, ...] = (
    """CREATE TABLE samples (
        id INTEGER PRIMARY KEY,
        ts REAL NOT NULL,
        target TEXT NOT NULL,
        provider TEXT,
        model TEXT,
        ok INTEGER,
        error_kind TEXT,
        http_status INTEGER,
        connect_ms REAL,
        ttft_ms REAL,
        latency_ms REAL,
        itl_ms REAL,
        tps REAL,
        tokens_in INTEGER,
        tokens_out INTEGER,
        tokens_cached INTEGER,
        tokens_reasoning INTEGER,
        tokens_estimated INTEGER,
        cost_usd REAL,
        request_id TEXT,
        source TEXT,
        retry_after_s REAL,
        error_message TEXT
    )""",
    # "This target, this time window". id is spelled out so that ORDER BY ts, id (a stable
    # order for equal timestamps) comes straight from the index, without a sort. The charted
    # metrics ride along so that metric_series() (every chart redraw) reads only the index,
    # never the table: a target's rows lie one per page among the other targets' rows, and
    # fetching a week of them from the table costs ~4x more than walking the index.
    "CREATE INDEX samples_target_ts ON samples (target, ts, id, ok, ttft_ms, latency_ms, itl_ms, tps)",
    "CREATE INDEX samples_ts ON samples (ts)",
    """CREATE TABLE violations (
        id INTEGER PRIMARY KEY,
        target TEXT NOT NULL,
        metric TEXT NOT NULL,
        rule INTEGER NOT NULL,
        ts REAL NOT NULL,
        value REAL,
        z REAL,
        center REAL,
        sigma REAL
    )""",
    "CREATE INDEX violations_target_metric_ts ON violations (target, metric, ts)",
    "CREATE INDEX violations_ts ON violations (ts)",
    """CREATE TABLE baselines (
        id INTEGER PRIMARY KEY,
        target TEXT NOT NULL,
        metric TEXT NOT NULL,
        created_ts REAL NOT NULL,
        center REAL NOT NULL,
        sigma REAL NOT NULL,
        n INTEGER,
        transform TEXT NOT NULL DEFAULT 'none',
        window_start REAL,
        window_end REAL,
        active INTEGER NOT NULL DEFAULT 1
    )""",
    # At most one active baseline per chart, enforced by the file itself.
    "CREATE UNIQUE INDEX baselines_active ON baselines (target, metric) WHERE active = 1",
)

# Migration 2: incidents (DESIGN 6b), one row per incident, rewritten as it opens, grows and
# closes; metrics and rules are JSON (a list of {metric, effect, baseline, current}; rule numbers).
_MIGRATION_2: tuple[str, ...] = (
    """CREATE TABLE incidents (
        id INTEGER PRIMARY KEY,
        target TEXT NOT NULL,
        provider TEXT,
        scope TEXT NOT NULL DEFAULT 'target',
        severity TEXT,
        start_ts REAL NOT NULL,
        opened_ts REAL NOT NULL,
        updated_ts REAL,
        closed_ts REAL,
        resolution TEXT,
        error_kind TEXT,
        down INTEGER NOT NULL DEFAULT 0,
        peak_z REAL,
        metrics TEXT NOT NULL DEFAULT '[]',
        rules TEXT NOT NULL DEFAULT '[]'
    )""",
    "CREATE INDEX incidents_opened ON incidents (opened_ts)",
    "CREATE INDEX incidents_open ON incidents (target) WHERE closed_ts IS NULL",
)

#: Forward migrations, in order: MIGRATIONS[i] takes a file from user_version i to i + 1.
MIGRATIONS: list[Migration] = [_MIGRATION_1, _MIGRATION_2]
SCHEMA_VERSION = len(MIGRATIONS)


def _newer_schema(path: Path, version: int) -> StoreError:
    return StoreError(
        f"{path} was written by a newer llmscope-tui (data file schema {version}, this version "
        f"knows up to {SCHEMA_VERSION}); upgrade llmscope-tui or choose another data file"
    )


def _migrate(conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration]) -> None:
    """Bring the file to the newest schema, one migration per transaction.

    The version is read again inside each write transaction, so two processes opening a new file
    at once do not both apply the same migration.
    """
    known = len(migrations)
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > known:
                raise _newer_schema(path, version)
            if version == known:
                conn.execute("COMMIT")
                return
            migration = migrations[version]
            if callable(migration):
                migration(conn)
            else:
                for statement in migration:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
            log.info("data file %s migrated to schema %d", path, version + 1)
        except BaseException:
            _rollback(conn)
            raise


def _rollback(conn: sqlite3.Connection) -> None:
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


def _as_store_error(path: Path, exc: BaseException) -> StoreError:
    """Say what is wrong with the file in one line (sqlite's own words, plus the path)."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, sqlite3.DatabaseError) and (
        "not a database" in message or "malformed" in message or "encrypted" in message
    ):
        return StoreError(
            f"{path} is not a usable llmscope-tui data file ({message}); move it aside or choose another data file"
        )
    return StoreError(f"cannot use data file {path}: {message}")


# --------------------------------------------------------------------------------------------
# Value hygiene
# --------------------------------------------------------------------------------------------

_sample_getter = operator.attrgetter(*ALL_SAMPLE_COLUMNS)
_SAMPLE_DATACLASS_ORDER = tuple(f.name for f in fields(Sample)) == ALL_SAMPLE_COLUMNS

_INT, _REAL, _TEXT = int, float, str
_SAMPLE_KINDS: tuple[type, ...] = (
    _REAL,  # ts
    _TEXT,  # target
    _TEXT,  # provider
    _TEXT,  # model
    _INT,  # ok
    _TEXT,  # error_kind
    _INT,  # http_status
    _REAL,  # connect_ms
    _REAL,  # ttft_ms
    _REAL,  # latency_ms
    _REAL,  # itl_ms
    _REAL,  # tps
    _INT,  # tokens_in
    _INT,  # tokens_out
    _INT,  # tokens_cached
    _INT,  # tokens_reasoning
    _INT,  # tokens_estimated
    _REAL,  # cost_usd
    _TEXT,  # request_id
    _TEXT,  # source
    _REAL,  # retry_after_s
    _TEXT,  # error_message
)
_VIOLATION_KINDS: tuple[type, ...] = (_TEXT, _TEXT, _INT, _REAL, _REAL, _REAL, _REAL, _REAL)
_KIND_WORD = {_INT: "an integer", _REAL: "a number", _TEXT: "text"}
_SAMPLE_KIND_BY_NAME: dict[str, type] = dict(zip(ALL_SAMPLE_COLUMNS, _SAMPLE_KINDS, strict=True))
_GROUP_COLUMNS = frozenset({"target", "provider", "model", "source"})


def _plain(row: tuple[Any, ...], kinds: tuple[type, ...], required: int) -> bool:
    """True when every value already has its column's type (int allowed for REAL) and the
    required leading columns are present: the fast path, ~1 us per sample on the writer thread."""
    for value, kind in zip(row, kinds):
        if value is not None and type(value) is not kind and not (kind is _REAL and type(value) is int):
            return False
    for i in range(required):
        value = row[i]
        # None, NaN (sqlite would store NULL and refuse the row) or an infinite time
        if value is None or (type(value) is float and not math.isfinite(value)):
            return False
    return True


def _coerce(
    row: tuple[Any, ...], kinds: tuple[type, ...], names: tuple[str, ...], required: int, blanked: list[str]
) -> tuple[Any, ...]:
    """Plain Python values for sqlite, column by column.

    Needed because sqlite3 stores a numpy.int64 as an 8-byte BLOB without complaint, keeps a
    non-numeric string in a REAL column, and a bad value found at commit time would fail the
    whole batch. An optional value that cannot be converted (or NaN/inf in an integer column)
    is stored as NULL and described in ``blanked``, so the sample itself is kept; a missing
    or unusable required value (ts, target) raises ValueError.
    """
    out: list[Any] = []
    for i, (value, kind) in enumerate(zip(row, kinds, strict=True)):
        if value is not None and type(value) is not kind:
            try:
                if kind is _INT:
                    try:
                        value = operator.index(value)  # int subclasses, numpy integers, bool
                    except TypeError:
                        number = float(value)
                        value = int(number) if math.isfinite(number) else None
                elif kind is _REAL:
                    value = float(value)
                else:
                    value = str(value)
            except (TypeError, ValueError, OverflowError):
                problem = f"{names[i]}={value!r} is not {_KIND_WORD[kind]}"
                if i < required:
                    raise ValueError(problem) from None
                blanked.append(problem)
                value = None
        if i < required and (value is None or (type(value) is float and not math.isfinite(value))):
            raise ValueError(f"{names[i]} is required, got {value!r}")
        out.append(value)
    return tuple(out)


def _prepare(
    rows: list[tuple[Any, ...]], kinds: tuple[type, ...], names: tuple[str, ...], required: int
) -> tuple[list[tuple[Any, ...]], list[str], list[str]]:
    """(rows fit to store, why rows were dropped, which values were blanked).

    Rows that are already plain (the normal case) pass untouched.
    """
    if all(_plain(row, kinds, required) for row in rows):
        return rows, [], []
    out: list[tuple[Any, ...]] = []
    dropped: list[str] = []
    blanked: list[str] = []
    for row in rows:
        try:
            out.append(_coerce(row, kinds, names, required, blanked))
        except ValueError as exc:
            dropped.append(str(exc))
    return out, dropped, blanked


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


def _where(
    target: str | None = None,
    since: float | None = None,
    until: float | None = None,
    source: str | None = None,
) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if target is not None:
        clauses.append("target = ?")
        params.append(target)
    if since is not None:
        clauses.append("ts >= ?")
        params.append(float(since))
    if until is not None:
        clauses.append("ts < ?")
        params.append(float(until))
    if source is not None:
        clauses.append("source = ?")
        params.append(source)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _check_limit(limit: int | None) -> int | None:
    if limit is None:
        return None
    limit = operator.index(limit)
    if limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    return limit


def _to_sample(row: tuple[Any, ...]) -> Sample:
    if _SAMPLE_DATACLASS_ORDER:
        return Sample(*row)
    return Sample(**dict(zip(ALL_SAMPLE_COLUMNS, row, strict=True)))


_EMPTY = np.empty(0, dtype=np.float64)


def _to_incident(row: tuple[Any, ...]) -> Incident:
    data = dict(zip(INCIDENT_COLUMNS, row, strict=True))
    try:
        data["metrics"] = json.loads(data["metrics"] or "[]")
        data["rules"] = json.loads(data["rules"] or "[]")
    except ValueError:
        data["metrics"], data["rules"] = [], []
    return Incident.from_event(data)


def _incident_row(incident: Incident) -> tuple[Any, ...]:
    return (
        int(incident.id),
        incident.target,
        incident.provider,
        incident.scope,
        incident.severity,
        float(incident.start_ts),
        float(incident.opened_ts),
        incident.updated_ts,
        incident.closed_ts,
        incident.resolution,
        incident.error_kind,
        int(incident.down),
        float(incident.peak_z),
        json.dumps([m.as_dict() for m in incident.metrics.values()]),
        json.dumps(sorted(incident.rules)),
    )


class _ThreadToken:
    """Lives in one thread's local storage; its death tells the reader the thread is gone."""


def _forget_reader(readers: dict[int, sqlite3.Connection], lock: threading.Lock, key: int) -> None:
    with lock:
        conn = readers.pop(key, None)
    if conn is not None:
        try:
            conn.close()
        except sqlite3.Error:  # pragma: no cover
            pass


class StoreReader:
    """Read-only queries on a data file; safe from any thread.

    Each thread gets its own read-only connection, opened on first use and kept, so a read
    never waits for the writer (WAL) and concurrent reads never share a cursor.
    """

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path).expanduser()
        self._uri = self.path.resolve().as_uri() + "?mode=ro"
        self._local = threading.local()
        self._readers: dict[int, sqlite3.Connection] = {}  # every open reader, to close them all
        self._readers_lock = threading.Lock()
        self._reads_closed = False

    # -- connections ----------------------------------------------------------------------

    def _open_reader(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(
                self._uri, uri=True, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise _as_store_error(self.path, exc) from exc
        try:
            conn.execute("PRAGMA query_only = 1")
        except sqlite3.Error as exc:
            conn.close()
            raise _as_store_error(self.path, exc) from exc
        return conn

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection, opened on first use."""
        if self._reads_closed:
            raise StoreError(f"the data file {self.path} is closed")
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with self._readers_lock:
            if self._reads_closed:
                raise StoreError(f"the data file {self.path} is closed")
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
            raise _as_store_error(self.path, exc) from exc

    def _close_readers(self) -> None:
        with self._readers_lock:
            self._reads_closed = True
            readers = list(self._readers.values())
            self._readers.clear()
        for conn in readers:
            try:
                conn.close()
            except sqlite3.Error:  # pragma: no cover - closing is best effort
                pass

    def _check_schema(self) -> None:
        """Refuse files this version cannot read: not a data file, or from a newer version."""
        version = self._query("PRAGMA user_version")[0][0]
        if version > SCHEMA_VERSION:
            raise _newer_schema(self.path, version)
        has_samples = self._query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'samples'")
        if version == 0 or not has_samples:
            raise StoreError(f"{self.path} is not an llmscope-tui data file (it has no samples table)")

    def close(self) -> None:
        """Close this reader's connections (idempotent)."""
        self._close_readers()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- samples ---------------------------------------------------------------------------

    def samples(
        self,
        target: str | None = None,
        since: float | None = None,
        until: float | None = None,
        source: str | None = None,
        limit: int | None = None,
    ) -> list[Sample]:
        """Samples in [since, until), oldest first; with ``limit``, the newest ``limit`` of them."""
        limit = _check_limit(limit)
        where, params = _where(target, since, until, source)
        cols = ", ".join(ALL_SAMPLE_COLUMNS)
        if limit is None:
            rows = self._query(f"SELECT {cols} FROM samples{where} ORDER BY ts, id", params)
        else:
            rows = self._query(f"SELECT {cols} FROM samples{where} ORDER BY ts DESC, id DESC LIMIT ?", [*params, limit])
            rows.reverse()
        return [_to_sample(row) for row in rows]

    def iter_rows(
        self, target: str | None = None, since: float | None = None, until: float | None = None
    ) -> Iterator[tuple[Any, ...]]:
        """Rows in SAMPLE_FIELDS order, oldest first, streamed (constant memory, for export).

        Uses a connection of its own for the whole iteration, so the rows are one consistent
        snapshot even while a writer adds more; close the generator early to release it.
        """
        where, params = _where(target, since, until)
        sql = f"SELECT {', '.join(SAMPLE_FIELDS)} FROM samples{where} ORDER BY ts, id"
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
            raise _as_store_error(self.path, exc) from exc
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

        With ``limit``, the LAST ``limit`` points. For the charted metrics (ttft_ms, latency_ms,
        itl_ms, tps) the query is answered from the samples_target_ts index alone and the arrays
        are built straight from the cursor, so a week of one target (40k points) comes back in
        ~20 ms from a file of 10 million samples (bench/bench_store.py).
        """
        metric = str(metric)
        target = str(target)
        if metric not in SERIES_COLUMNS:
            raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(SERIES_COLUMNS)}")
        limit = _check_limit(limit)
        where, params = _where(target, since, until)
        sql = f"SELECT ts, {metric} FROM samples{where} AND ok = 1 AND {metric} IS NOT NULL ORDER BY ts"
        if limit is not None:
            sql += " DESC, id DESC LIMIT ?"
            params.append(limit)
        else:
            sql += ", id"
        try:
            cursor = self._reader().execute(sql, params)
            flat = np.fromiter(itertools.chain.from_iterable(cursor), dtype=np.float64)
        except sqlite3.DatabaseError as exc:
            raise _as_store_error(self.path, exc) from exc
        if flat.size == 0:
            return _EMPTY.copy(), _EMPTY.copy()
        pairs = flat.reshape(-1, 2)
        if limit is not None:
            pairs = pairs[::-1]
        return np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])

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
        metric = str(metric)
        if metric not in SERIES_COLUMNS:
            raise ValueError(f"unknown metric {metric!r}; expected one of {sorted(SERIES_COLUMNS)}")
        buckets = max(1, operator.index(buckets))
        width = max((float(until) - float(since)) / buckets, 1e-9)
        where, params = _where(str(target), since, until)
        distance = f"abs({metric} - ?)" if center is not None else metric
        sql = (
            f"SELECT CAST((ts - ?) / ? AS INTEGER) AS b, ts, {metric}, max({distance})"
            f" FROM samples{where} AND ok = 1 AND {metric} IS NOT NULL GROUP BY b ORDER BY b"
        )
        head: list[Any] = [float(since), width] + ([float(center)] if center is not None else [])
        try:
            rows = self._reader().execute(sql, [*head, *params]).fetchall()
        except sqlite3.DatabaseError as exc:
            raise _as_store_error(self.path, exc) from exc
        if not rows:
            return _EMPTY.copy(), _EMPTY.copy()
        pairs = np.array([(row[1], row[2]) for row in rows], dtype=np.float64)
        return np.ascontiguousarray(pairs[:, 0]), np.ascontiguousarray(pairs[:, 1])

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
        where, params = _where(target, since)
        return int(self._query(f"SELECT count(*) FROM samples{where}", params)[0][0])

    def latest(self, target: str) -> Sample | None:
        """The target's newest sample, or None."""
        rows = self.samples(target, limit=1)
        return rows[0] if rows else None

    # -- violations and baselines ------------------------------------------------------------

    def violations(
        self,
        target: str | None = None,
        metric: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[Violation]:
        """Rule firings, oldest first (newest last); with ``limit``, the newest ``limit``."""
        limit = _check_limit(limit)
        where, params = _where(target, since)
        if metric is not None:
            where += (" AND " if where else " WHERE ") + "metric = ?"
            params.append(str(metric))
        cols = ", ".join(VIOLATION_COLUMNS)
        if limit is None:
            rows = self._query(f"SELECT {cols} FROM violations{where} ORDER BY ts, id", params)
        else:
            rows = self._query(
                f"SELECT {cols} FROM violations{where} ORDER BY ts DESC, id DESC LIMIT ?", [*params, limit]
            )
            rows.reverse()
        return [Violation(*row) for row in rows]

    # -- incidents ---------------------------------------------------------------------------

    def incidents(
        self,
        target: str | None = None,
        since: float | None = None,
        limit: int | None = None,
        *,
        open_only: bool = False,
    ) -> list[Incident]:
        """Incidents that were open at or after ``since`` (all when None), oldest first; with
        ``limit``, the newest ``limit`` of them."""
        limit = _check_limit(limit)
        where, params = _where(None if target is None else str(target))
        clauses = [where.removeprefix(" WHERE ")] if where else []
        if since is not None:
            clauses.append("(closed_ts IS NULL OR closed_ts >= ?)")
            params.append(float(since))
        if open_only:
            clauses.append("closed_ts IS NULL")
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        sql = f"SELECT {', '.join(INCIDENT_COLUMNS)} FROM incidents{where} ORDER BY opened_ts DESC, id DESC"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._query(sql, params)
        rows.reverse()
        return [_to_incident(row) for row in rows]

    def max_incident_id(self) -> int:
        return int(self._query("SELECT coalesce(max(id), 0) FROM incidents")[0][0])

    def probe_history(
        self, target: str, since: float | None = None, limit: int | None = None, *, newest: bool = False
    ) -> list[tuple[float, bool, str | None, dict[str, float | None]]]:
        """The target's probes as (ts, ok, error_kind, {metric: value}), oldest first: the first
        ``limit`` from ``since`` on, or the last ``limit`` with ``newest`` (for replays)."""
        limit = _check_limit(limit)
        where, params = _where(target, since, None, "probe")
        sql = f"SELECT ts, ok, error_kind, {', '.join(METRIC_COLUMNS)} FROM samples{where} ORDER BY ts"
        sql += " DESC, id DESC" if newest else ", id"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        rows = self._query(sql, params)
        if newest:
            rows.reverse()
        return [
            (float(r[0]), bool(r[1]), r[2], dict(zip(METRIC_COLUMNS, r[3:], strict=True))) for r in rows
        ]

    # -- spend and usage (costs, budgets, reports) ----------------------------------------------

    def spend(
        self,
        since: float | None = None,
        until: float | None = None,
        *,
        target: str | None = None,
        provider: str | None = None,
        source: str | None = None,
    ) -> float:
        """Dollars spent (sum of cost_usd; unpriced samples count 0) in [since, until) and scope."""
        where, params = _where(target, since, until, source)
        if provider is not None:
            where += (" AND " if where else " WHERE ") + "provider = ?"
            params.append(provider)
        return float(self._query(f"SELECT total(cost_usd) FROM samples{where}", params)[0][0])

    def spend_by(self, column: str, since: float | None = None, until: float | None = None) -> dict[str, float]:
        """Dollars spent per target, provider, model or source (every group seen, 0.0 if unpriced)."""
        if column not in _GROUP_COLUMNS:
            raise ValueError(f"cannot group spend by {column!r}; expected one of {sorted(_GROUP_COLUMNS)}")
        where, params = _where(None, since, until)
        rows = self._query(
            f"SELECT {column}, total(cost_usd) FROM samples{where} GROUP BY {column} ORDER BY {column}", params
        )
        return {key: float(total) for key, total in rows if key is not None}

    def usage_by_model(
        self, since: float | None = None, until: float | None = None
    ) -> list[tuple[str, str, int, int, int]]:
        """(provider, model, tokens_in, tokens_out, tokens_cached) summed per model, sorted."""
        where, params = _where(None, since, until)
        rows = self._query(
            "SELECT provider, model, total(tokens_in), total(tokens_out), total(tokens_cached) "
            f"FROM samples{where} GROUP BY provider, model ORDER BY provider, model",
            params,
        )
        return [(p, m, int(tin), int(tout), int(cached)) for p, m, tin, tout, cached in rows]

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
        unknown = [n for n in names if n not in _SAMPLE_KIND_BY_NAME]
        if unknown or not names:
            raise ValueError(f"unknown sample columns {unknown!r}; expected names from {list(ALL_SAMPLE_COLUMNS)}")
        where, params = _where(target, since, until, source)
        rows = self._query(f"SELECT {', '.join(names)} FROM samples{where} ORDER BY ts, id", params)
        cols = list(zip(*rows, strict=True)) if rows else [() for _ in names]
        out: dict[str, np.ndarray] = {}
        for name, values in zip(names, cols, strict=True):
            kind = _SAMPLE_KIND_BY_NAME[name]
            if kind is _TEXT:
                arr = np.empty(len(values), dtype=object)
                arr[:] = values
            elif kind is _INT and None not in values:
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
        where, params = _where(None, since, until)
        where = where.replace(" WHERE ", " AND ", 1) if where else ""
        out: list[tuple[str, str, int, str | None, int]] = []
        for target in self.targets():
            latest = self._query(
                "SELECT provider, source FROM samples WHERE target = ? ORDER BY ts DESC LIMIT 1", [target]
            )
            if not latest or (source is not None and latest[0][1] != source):
                continue
            provider = latest[0][0]
            scope = f"FROM samples WHERE target = ?{where}"
            ok = self._query(f"SELECT count(*) {scope} AND ok = 1", [target, *params])[0][0]
            if ok:
                out.append((target, provider, 1, None, ok))
            for kind, n in self._query(
                f"SELECT error_kind, count(*) {scope} AND ok = 0 GROUP BY error_kind", [target, *params]
            ):
                out.append((target, provider, 0, kind, n))
        return out

    def metric_table(
        self, target: str, since: float | None = None, until: float | None = None
    ) -> dict[str, np.ndarray]:
        """The four charted metrics of the target's successful samples, as float64 arrays (NaN
        where a sample has no value). Reads only the covering (target, ts, ...) index."""
        where, params = _where(target, since, until)
        # NULL comes back as a sentinel so rows flatten in C (itertools), then becomes NaN in numpy
        picked = ", ".join(f"coalesce({name}, {_NULL_SENTINEL!r})" for name in METRIC_COLUMNS)
        sql = f"SELECT {picked} FROM samples{where} AND ok = 1"
        try:
            cursor = self._reader().execute(sql, params)
            flat = np.fromiter(itertools.chain.from_iterable(cursor), dtype=np.float64)
        except sqlite3.DatabaseError as exc:
            raise _as_store_error(self.path, exc) from exc
        flat[flat == _NULL_SENTINEL] = np.nan
        table = flat.reshape(-1, len(METRIC_COLUMNS))
        return {name: np.ascontiguousarray(table[:, i]) for i, name in enumerate(METRIC_COLUMNS)}

    def active_baselines(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The frozen SPC baselines in force, by (target, metric), as column -> value dicts."""
        rows = self._query(f"SELECT {', '.join(BASELINE_COLUMNS)} FROM baselines WHERE active = 1 ORDER BY id")
        return {(row[1], row[2]): dict(zip(BASELINE_COLUMNS, row, strict=True)) for row in rows}

    def baselines(self, target: str | None = None, metric: str | None = None) -> list[dict[str, Any]]:
        """Every baseline ever saved (active or not), oldest first: the history of limits."""
        clauses, params = [], []
        if target is not None:
            clauses.append("target = ?")
            params.append(target)
        if metric is not None:
            clauses.append("metric = ?")
            params.append(str(metric))
        where = " WHERE " + " AND ".join(clauses) if clauses else ""
        rows = self._query(f"SELECT {', '.join(BASELINE_COLUMNS)} FROM baselines{where} ORDER BY id", params)
        return [dict(zip(BASELINE_COLUMNS, row, strict=True)) for row in rows]


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


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


class _ViolationItem:
    __slots__ = ("row",)

    def __init__(self, row: tuple[Any, ...]) -> None:
        self.row = row


class _Op:
    """A baseline or incident change, applied by the writer in queue order (after the samples
    before it)."""

    __slots__ = ("kind", "params")

    def __init__(self, kind: str, params: tuple[Any, ...]) -> None:
        self.kind = kind  # "save", "clear", "incident" or "close_incidents"
        self.params = params


_T = TypeVar("_T")


class _Call:
    """A synchronous request to the writer thread (purge), run after everything queued before it."""

    __slots__ = ("fn", "done", "lock", "started", "cancelled", "result", "error")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.started = False
        self.cancelled = False
        self.result: Any = None
        self.error: BaseException | None = None


class _Batch:
    __slots__ = ("samples", "violations", "ops", "call", "sealed", "dropped", "dropped_samples")

    def __init__(self) -> None:
        self.samples: list[tuple[Any, ...]] = []
        self.violations: list[tuple[Any, ...]] = []
        self.ops: list[_Op] = []
        self.call: _Call | None = None
        self.sealed = False  # a baseline change or a call ends the batch: later items wait
        self.dropped = 0  # records found unstorable (they count as done for flush())
        self.dropped_samples = 0

    @property
    def size(self) -> int:
        return len(self.samples) + len(self.violations) + len(self.ops)


_DATA_ERRORS = (
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
    OverflowError,
    TypeError,
    ValueError,
)

_INSERT_SAMPLE = (
    f"INSERT INTO samples ({', '.join(ALL_SAMPLE_COLUMNS)}) VALUES ({', '.join('?' * len(ALL_SAMPLE_COLUMNS))})"
)
_INSERT_VIOLATION = (
    f"INSERT INTO violations ({', '.join(VIOLATION_COLUMNS)}) VALUES ({', '.join('?' * len(VIOLATION_COLUMNS))})"
)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _close_at_exit(ref: weakref.ReferenceType[SampleStore]) -> None:
    store = ref()
    if store is not None:
        store.close()


class SampleStore(StoreReader):
    """The data file, opened for writing: migrations, the batched writer thread, queries.

    ``add``/``add_many``/``add_violation``/``save_baseline``/``clear_baselines`` never block:
    they queue, and the writer thread commits in order. ``flush`` waits for what was queued
    before it; ``close`` flushes and stops (also run at interpreter exit).

    ``on_error`` is called from the writer thread with one human line, once per failure streak
    (not per retry); a face that must act on its own thread has to hand the line over.
    """

    #: First and longest pause between retries of a failed write (doubling in between).
    retry_initial_s: float = 0.05
    retry_max_s: float = 2.0

    def __init__(
        self,
        path: Path | str,
        *,
        batch_size: int = 1000,
        flush_interval_s: float = 0.1,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(path)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if flush_interval_s < 0:
            raise ValueError(f"flush_interval_s must be >= 0, got {flush_interval_s}")
        self.batch_size = int(batch_size)
        self.flush_interval_s = float(flush_interval_s)
        self.on_error = on_error
        self.last_error: str | None = None

        self._conn = self._open_writer()
        try:
            _migrate(self._conn, self.path, MIGRATIONS)
            self._next_baseline_id = int(
                self._conn.execute("SELECT coalesce(max(id), 0) FROM baselines").fetchone()[0]
            )
        except StoreError:
            self._conn.close()
            raise
        except sqlite3.Error as exc:
            self._conn.close()
            raise _as_store_error(self.path, exc) from exc

        # Queue state. _lock guards the counters and the closing flag; the deque itself is
        # appended to under it (so counters and order agree) and popped by the writer only.
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._abandon = threading.Event()
        self._urgent = False
        self._stopping = False
        self._closing = False
        self._writer_done = False
        self._enqueued = 0  # records (samples + violations + baseline changes) ever queued
        self._written = 0  # of those, how many are on disk (or were dropped as unstorable)
        self._enqueued_samples = 0
        self._written_samples = 0

        self._thread = threading.Thread(target=self._run, name=f"llmscope-store-writer:{self.path.name}", daemon=True)
        self._thread.start()
        self._atexit = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._atexit)

    def _open_writer(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder for data file {self.path}: {exc.strerror or exc}") from exc
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory, not a data file")
        try:
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise _as_store_error(self.path, exc) from exc
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("data file %s: WAL mode not available (journal_mode=%s)", self.path, mode)
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        except sqlite3.Error as exc:
            conn.close()
            raise _as_store_error(self.path, exc) from exc
        return conn

    # -- queueing (any thread, never blocks on the disk) ----------------------------------------

    def _enqueue(self, item: Any, records: int, samples: int) -> None:
        with self._lock:
            if self._closing:
                raise StoreError(f"the data file {self.path} is closed")
            self._enqueued += records
            self._enqueued_samples += samples
            self._queue.append(item)
        if not self._wake.is_set():
            self._wake.set()

    def add(self, sample: Sample) -> None:
        """Queue one sample for the writer (a snapshot of its values now)."""
        self._enqueue(_sample_getter(sample), 1, 1)

    def add_many(self, samples: Iterable[Sample]) -> None:
        """Queue many samples at once (cheaper than add() in a loop)."""
        rows = [_sample_getter(s) for s in samples]
        step = self.batch_size
        for i in range(0, len(rows), step):
            chunk = rows[i : i + step]
            self._enqueue(chunk, len(chunk), len(chunk))

    def add_violation(self, violation: Violation) -> None:
        """Queue one rule firing."""
        row = tuple(getattr(violation, name) for name in VIOLATION_COLUMNS)
        self._enqueue(_ViolationItem(row), 1, 0)

    def save_baseline(
        self,
        target: str,
        metric: str,
        center: float,
        sigma: float,
        n: int | None,
        transform: str | None,
        window_start: float | None,
        window_end: float | None,
        created_ts: float | None = None,
    ) -> int:
        """Queue a new active baseline for target + metric (the previous one is deactivated).

        Does not block: the writer applies it after every sample queued before it, in the same
        transaction as them. Returns the id the row will have. Call flush() before reading it back.
        """
        params = (
            str(target),
            str(metric),
            float(time.time() if created_ts is None else created_ts),
            float(center),
            float(sigma),
            None if n is None else int(n),
            str(transform or "none"),
            None if window_start is None else float(window_start),
            None if window_end is None else float(window_end),
        )
        with self._lock:
            self._next_baseline_id += 1
            baseline_id = self._next_baseline_id
        self._enqueue(_Op("save", (baseline_id, *params)), 1, 0)
        return baseline_id

    def clear_baselines(self, target: str | None = None) -> None:
        """Queue: deactivate every active baseline (or one target's); history rows are kept."""
        self._enqueue(_Op("clear", (None if target is None else str(target),)), 1, 0)

    def save_incident(self, incident: Incident) -> None:
        """Queue the incident as it is now (a new row, or the row of that id rewritten)."""
        self._enqueue(_Op("incident", _incident_row(incident)), 1, 0)

    def close_incidents(self, target: str | None, ts: float, resolution: str) -> None:
        """Queue: close the open incidents of one target (or all), e.g. on an offline rebaseline."""
        self._enqueue(_Op("close_incidents", (None if target is None else str(target), float(ts), resolution)), 1, 0)

    def purge_older_than(self, days: float, now: float | None = None) -> int:
        """Delete samples and violations older than ``days``; returns the rows deleted.

        Runs on the writer thread, after what is already queued, so it never races a batch.
        Blocks the caller (call it from a worker thread, not the event loop).
        """
        if not days > 0:
            raise ValueError(f"days must be a positive number, got {days!r}")
        cutoff = (time.time() if now is None else float(now)) - float(days) * 86400.0

        def purge(conn: sqlite3.Connection) -> int:
            conn.execute("BEGIN IMMEDIATE")
            try:
                removed = conn.execute("DELETE FROM samples WHERE ts < ?", (cutoff,)).rowcount
                removed += conn.execute("DELETE FROM violations WHERE ts < ?", (cutoff,)).rowcount
                conn.execute("COMMIT")
            except BaseException:
                _rollback(conn)
                raise
            return removed

        return self._call(purge, "retention purge")

    def _call(self, fn: Callable[[sqlite3.Connection], _T], what: str, timeout: float | None = None) -> _T:
        """Run fn(write connection) on the writer thread after everything queued; wait for it."""
        timeout = CALL_TIMEOUT_S if timeout is None else timeout
        call = _Call(fn)
        with self._lock:
            if self._closing:
                raise StoreError(f"the data file {self.path} is closed")
            self._queue.append(call)
            self._urgent = True
        self._wake.set()
        if not call.done.wait(timeout):
            with call.lock:
                if not call.started:
                    call.cancelled = True
                    raise StoreError(
                        f"{what} on {self.path} timed out after {timeout:g} s: "
                        f"{self.last_error or 'the writer is busy'}"
                    )
            call.done.wait()
        if call.error is not None:
            if isinstance(call.error, sqlite3.Error):
                raise StoreError(f"{what} on {self.path} failed: {call.error}") from call.error
            raise call.error
        return call.result  # type: ignore[no-any-return]

    # -- flush and close -------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Records (samples, violations, baseline changes) queued or held, not yet on disk."""
        with self._lock:
            return self._enqueued - self._written

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything queued before this call is on disk; False on timeout.

        Also False when the store was closed with records it could not write.
        """
        with self._cond:
            goal = self._enqueued
            if self._written >= goal:
                return True
            self._urgent = True
            self._wake.set()
            self._cond.wait_for(lambda: self._written >= goal or self._writer_done, timeout)
            return self._written >= goal

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Write everything queued, stop the writer thread and close the file (idempotent).

        If writes keep failing for ``timeout`` seconds, what is still held is given up and
        on_error says how many samples were not saved.
        """
        with self._lock:
            first = not self._closing
            self._closing = True
            self._stopping = True
            self._urgent = True
        self._wake.set()
        if first:
            atexit.unregister(self._atexit)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._abandon.set()
                self._thread.join(5.0)
        self._close_readers()

    def __enter__(self) -> SampleStore:
        return self

    # -- the writer thread ---------------------------------------------------------------------

    def _report(self, message: str) -> None:
        log.warning("%s", message)
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:  # a broken callback must not stop the writer
                log.exception("store on_error callback failed")

    def _take_urgent(self) -> bool:
        with self._lock:
            urgent, self._urgent = self._urgent, False
        return urgent

    def _drain(self, batch: _Batch) -> None:
        queue = self._queue
        limit = self.batch_size
        while not batch.sealed:
            size = batch.size
            if size >= limit or not queue:
                return
            item = queue[0]
            kind = type(item)
            if kind is list and size and size + len(item) > limit:
                return
            queue.popleft()
            if kind is tuple:
                batch.samples.append(item)
            elif kind is list:
                batch.samples.extend(item)
            elif kind is _ViolationItem:
                batch.violations.append(item.row)
            elif kind is _Op:
                # Strict queue order: nothing queued after a baseline change joins its batch
                # (they are rare, so sealing costs nothing).
                batch.ops.append(item)
                batch.sealed = True
            else:
                batch.call = item
                batch.sealed = True

    def _collect(self) -> _Batch | None:
        """Wait for work, then gather up to batch_size records or until flush_interval_s passes."""
        wake = self._wake
        while not self._queue:
            if self._stopping:
                return None
            wake.wait()
            wake.clear()
        urgent = self._take_urgent()
        batch = _Batch()
        self._drain(batch)
        deadline = time.monotonic() + self.flush_interval_s
        while batch.size < self.batch_size and not batch.sealed and not urgent and not self._stopping:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            wake.wait(remaining)
            wake.clear()
            urgent = self._take_urgent()
            self._drain(batch)
        return batch

    def _run(self) -> None:
        try:
            while True:
                batch = self._collect()
                if batch is None:
                    break
                if not self._write_until_done(batch):
                    self._give_up(batch)
                    break
                if batch.call is not None:
                    self._run_call(batch.call)
        except BaseException as exc:  # pragma: no cover - a bug; say so rather than die silently
            self._report(f"the writer for {self.path} stopped: {type(exc).__name__}: {exc}")
            self._give_up(None)
        finally:
            try:
                self._conn.execute("PRAGMA optimize")
            except sqlite3.Error:
                pass
            try:
                self._conn.close()
            except sqlite3.Error:  # pragma: no cover
                pass
            with self._cond:
                self._writer_done = True
                self._cond.notify_all()

    def _give_up(self, batch: _Batch | None) -> None:
        """At close, after retries ran out: say how much could not be saved."""
        with self._lock:
            self._closing = True
            samples = self._enqueued_samples - self._written_samples
            others = self._enqueued - self._written - samples
            calls = [item for item in self._queue if type(item) is _Call]
            self._queue.clear()
        if batch is not None and batch.call is not None:
            calls.append(batch.call)
        for call in calls:
            with call.lock:
                call.error = StoreError(f"the data file {self.path} was closed")
                call.done.set()
        if samples or others:
            extra = f" and {_plural(others, 'other record')}" if others else ""
            verb = "was" if samples + others == 1 else "were"
            self._report(
                f"cannot write to {self.path}: {self.last_error or 'closed'}; "
                f"{_plural(samples, 'sample')}{extra} {verb} not saved"
            )

    def _run_call(self, call: _Call) -> None:
        with call.lock:
            if call.cancelled:
                return
            call.started = True
        try:
            call.result = call.fn(self._conn)
        except BaseException as exc:
            call.error = exc
        finally:
            call.done.set()

    def _write_until_done(self, batch: _Batch) -> bool:
        """Commit the batch, retrying with backoff until it works; False if close() gave up."""
        if batch.size == 0:
            return True
        self._prepare_batch(batch)
        delay = self.retry_initial_s
        failing = False
        careful = False
        while True:
            try:
                self._write(batch, careful=careful)
                break
            except _DATA_ERRORS as exc:  # one bad record must not take the batch down: go one by one
                if not careful:
                    careful = True
                    continue
                # Not transient, and not any one record's fault: holding it would block the file.
                self._report(f"dropped {_plural(batch.size, 'record')} that cannot be stored in {self.path}: {exc}")
                batch.dropped += batch.size
                batch.dropped_samples += len(batch.samples)
                batch.samples, batch.violations, batch.ops = [], [], []
                break
            except Exception as exc:  # sqlite3.OperationalError and friends: transient, retry
                message = str(exc) or type(exc).__name__
                self.last_error = message
                if not failing:
                    failing = True
                    self._report(self._held_message(message))
                if self._abandon.wait(delay):
                    return False
                delay = min(delay * 2, self.retry_max_s)
        if failing:
            log.info("data file %s is writable again; held records written", self.path)
            self.last_error = None
        with self._cond:
            self._written += batch.size + batch.dropped
            self._written_samples += len(batch.samples) + batch.dropped_samples
            self._cond.notify_all()
        return True

    def _held_message(self, error: str) -> str:
        with self._lock:
            samples = self._enqueued_samples - self._written_samples
            others = self._enqueued - self._written - samples
        extra = f" (and {_plural(others, 'other record')})" if others else ""
        return (
            f"cannot write samples to {self.path}: {error}; "
            f"{_plural(samples, 'sample')}{extra} held in memory, retrying"
        )

    def _prepare_batch(self, batch: _Batch) -> None:
        """Coerce odd values (numpy numbers, enums, bools); drop and report what cannot be stored."""
        samples, bad_samples, blanked_s = _prepare(batch.samples, _SAMPLE_KINDS, ALL_SAMPLE_COLUMNS, 2)
        violations, bad_violations, blanked_v = _prepare(batch.violations, _VIOLATION_KINDS, VIOLATION_COLUMNS, 4)
        if blanked_s or blanked_v:
            problems = "; ".join(dict.fromkeys(blanked_s + blanked_v))
            self._report(f"values that cannot be stored in {self.path} were left empty: {problems}")
        if bad_samples or bad_violations:
            batch.dropped_samples = len(bad_samples)
            batch.dropped = len(bad_samples) + len(bad_violations)
            batch.samples = samples
            batch.violations = violations
            problems = "; ".join(dict.fromkeys(bad_samples + bad_violations))
            what = _plural(len(bad_samples), "sample") if not bad_violations else _plural(batch.dropped, "record")
            self._report(f"dropped {what} that cannot be stored in {self.path}: {problems}")
        elif blanked_s or blanked_v:
            batch.samples = samples
            batch.violations = violations

    def _write(self, batch: _Batch, *, careful: bool = False) -> None:
        """One transaction: the batch's samples, violations and baseline changes.

        ``careful``: after a data error (a constraint, a value sqlite refuses), write record by
        record under savepoints and drop, with a report, only the records that fail.
        """
        conn = self._conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if not careful:
                if batch.samples:
                    conn.executemany(_INSERT_SAMPLE, batch.samples)
                if batch.violations:
                    conn.executemany(_INSERT_VIOLATION, batch.violations)
                for op in batch.ops:
                    self._apply(conn, op)
            else:
                problems: list[str] = []
                bad_samples = self._each(conn, batch.samples, lambda r: conn.execute(_INSERT_SAMPLE, r), problems)
                bad_violations = self._each(
                    conn, batch.violations, lambda r: conn.execute(_INSERT_VIOLATION, r), problems
                )
                bad_ops = self._each(conn, batch.ops, lambda op: self._apply(conn, op), problems)
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
        if careful and problems:
            batch.samples = [r for i, r in enumerate(batch.samples) if i not in bad_samples]
            batch.violations = [r for i, r in enumerate(batch.violations) if i not in bad_violations]
            batch.ops = [op for i, op in enumerate(batch.ops) if i not in bad_ops]
            dropped = len(bad_samples) + len(bad_violations) + len(bad_ops)
            batch.dropped += dropped
            batch.dropped_samples += len(bad_samples)
            text = "; ".join(dict.fromkeys(problems))
            self._report(f"dropped {_plural(dropped, 'record')} that cannot be stored in {self.path}: {text}")

    @staticmethod
    def _each(conn: sqlite3.Connection, items: list[Any], write: Callable[[Any], Any], problems: list[str]) -> set[int]:
        bad: set[int] = set()
        for i, item in enumerate(items):
            conn.execute("SAVEPOINT record")
            try:
                write(item)
            except _DATA_ERRORS as exc:
                conn.execute("ROLLBACK TO record")
                bad.add(i)
                problems.append(str(exc))
            conn.execute("RELEASE record")
        return bad

    def _apply(self, conn: sqlite3.Connection, op: _Op) -> None:
        if op.kind == "incident":
            columns = ", ".join(INCIDENT_COLUMNS)
            updates = ", ".join(f"{c} = excluded.{c}" for c in INCIDENT_COLUMNS[1:])
            conn.execute(
                f"INSERT INTO incidents ({columns}) VALUES ({', '.join('?' * len(INCIDENT_COLUMNS))})"
                f" ON CONFLICT(id) DO UPDATE SET {updates}",
                op.params,
            )
            return
        if op.kind == "close_incidents":
            target, ts, resolution = op.params
            where = "closed_ts IS NULL" + ("" if target is None else " AND target = ?")
            conn.execute(
                f"UPDATE incidents SET closed_ts = ?, resolution = ?, updated_ts = ? WHERE {where}",
                (ts, resolution, ts, *([] if target is None else [target])),
            )
            return
        if op.kind == "clear":
            (target,) = op.params
            if target is None:
                conn.execute("UPDATE baselines SET active = 0 WHERE active = 1")
            else:
                conn.execute("UPDATE baselines SET active = 0 WHERE active = 1 AND target = ?", (target,))
            return
        baseline_id, target, metric, *rest = op.params
        conn.execute(
            "UPDATE baselines SET active = 0 WHERE active = 1 AND target = ? AND metric = ?", (target, metric)
        )
        columns = "target, metric, created_ts, center, sigma, n, transform, window_start, window_end, active"
        values = (target, metric, *rest, 1)
        taken = conn.execute("SELECT 1 FROM baselines WHERE id = ?", (baseline_id,)).fetchone()
        if taken:  # another process wrote this id meanwhile: let sqlite pick one
            conn.execute(f"INSERT INTO baselines ({columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", values)
        else:
            conn.execute(
                f"INSERT INTO baselines (id, {columns}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (baseline_id, *values),
            )
