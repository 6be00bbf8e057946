"""The data file's shape: tables, forward migrations, connections and their pragmas.

The schema is versioned with ``PRAGMA user_version`` and an ordered list of forward migrations,
so a file written by an older llmscope-tui is upgraded in place and a file written by a newer
one is refused with a clear message instead of being damaged. Problems a user must fix raise
:class:`StoreError` with one line naming the file.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from llmscope_tui.model import EXTRA_SAMPLE_FIELDS, SAMPLE_FIELDS, Metric
from llmscope_tui.paths import private_dir, private_file

log = logging.getLogger(__name__)

#: Columns of the samples table besides ``id``, in the order rows are written and read.
ALL_SAMPLE_COLUMNS: tuple[str, ...] = SAMPLE_FIELDS + EXTRA_SAMPLE_FIELDS
VIOLATION_COLUMNS: tuple[str, ...] = (
    "target",
    "metric",
    "rule",
    "ts",
    "value",
    "z",
    "center",
    "sigma",
)
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
#: The charted metrics, in the order of the covering index.
METRIC_COLUMNS: tuple[str, ...] = tuple(m.value for m in Metric)

BUSY_TIMEOUT_S = 5.0


class StoreError(Exception):
    """A problem with the data file that the user must fix, said in one line naming the file."""


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

# Migration 3: tokens_cache_write (DESIGN 4), input tokens written to the provider's cache.
# ADD COLUMN with a constant default changes only the table's definition, so a data file of
# millions of samples upgrades at once; the old rows read 0 (none reported then) and the column
# sits last in the table (every query names its columns).
_MIGRATION_3: tuple[str, ...] = ("ALTER TABLE samples ADD COLUMN tokens_cache_write INTEGER DEFAULT 0",)

#: Sample columns later migrations added, with the value a file from before them reads as; a
#: read-only open of such a file (export, report, the TUI's reads) never migrates it, so its
#: queries read these values instead (ReadConnections.sample_columns).
LATER_SAMPLE_COLUMNS: dict[str, str] = {"tokens_cache_write": "0"}

#: Forward migrations, in order: MIGRATIONS[i] takes a file from user_version i to i + 1.
MIGRATIONS: list[Migration] = [_MIGRATION_1, _MIGRATION_2, _MIGRATION_3]
SCHEMA_VERSION = len(MIGRATIONS)


def newer_schema(path: Path, version: int) -> StoreError:
    return StoreError(
        f"{path} was written by a newer llmscope-tui (data file schema {version}, this version "
        f"knows up to {SCHEMA_VERSION}); upgrade llmscope-tui or choose another data file"
    )


def closed_error(path: Path) -> StoreError:
    return StoreError(f"the data file {path} is closed")


def as_store_error(path: Path, exc: BaseException) -> StoreError:
    """Say what is wrong with the file in one line (sqlite's own words, plus the path)."""
    message = str(exc) or type(exc).__name__
    if isinstance(exc, sqlite3.DatabaseError) and (
        "not a database" in message or "malformed" in message or "encrypted" in message
    ):
        return StoreError(
            f"{path} is not a usable llmscope-tui data file ({message}); "
            "move it aside or choose another data file"
        )
    return StoreError(f"cannot use data file {path}: {message}")


def rollback(conn: sqlite3.Connection) -> None:
    """Undo the open transaction, if any; a failure here must not hide the error that led here."""
    try:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
    except sqlite3.Error:
        pass


def close_quietly(conn: sqlite3.Connection) -> None:
    """Close a connection on the way out, where a failure to close changes nothing."""
    try:
        conn.close()
    except sqlite3.Error:  # pragma: no cover - closing is best effort
        pass


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction, taken at once (BEGIN IMMEDIATE): committed, or rolled back on any
    error, so a failure never leaves the connection inside a transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        rollback(conn)
        raise


def migrate(conn: sqlite3.Connection, path: Path, migrations: Sequence[Migration]) -> None:
    """Bring the file to the newest schema, one migration per transaction.

    The version is read again inside each write transaction, so two processes opening a new file
    at once do not both apply the same migration.
    """
    known = len(migrations)
    while True:
        with immediate(conn):
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > known:
                raise newer_schema(path, version)
            if version == known:
                return
            migration = migrations[version]
            if callable(migration):
                migration(conn)
            else:
                for statement in migration:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {version + 1}")
        log.info("data file %s migrated to schema %d", path, version + 1)


def _connect(
    path: Path, database: str | Path, setup: Callable[[sqlite3.Connection], object]
) -> sqlite3.Connection:
    """Open (``database`` is a path, or a file: URI) and run ``setup``; any failure is a
    StoreError naming ``path``, and a connection that fails its setup is closed."""
    try:
        conn = sqlite3.connect(
            database,
            uri=isinstance(database, str),
            timeout=BUSY_TIMEOUT_S,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise as_store_error(path, exc) from exc
    try:
        setup(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise as_store_error(path, exc) from exc
    return conn


def check_writable(path: Path) -> None:
    """Raise StoreError (one line) unless the data file can be written: for a face that opens
    the store later, on another thread, where a failure would no longer stop the start."""
    connect_writer(path).close()


def connect_writer(path: Path) -> sqlite3.Connection:
    """The one write connection: WAL (readers never wait for it), synchronous=NORMAL. The file
    (and its folder) are created 0600 (0700); a file that cannot be written is refused here, at
    start, not after the first samples were held in memory and lost."""
    if path.is_dir():
        raise StoreError(f"{path} is a directory, not a data file")
    try:
        private_dir(path.parent)
    except OSError as exc:
        raise StoreError(
            f"cannot create the folder for data file {path}: {exc.strerror or exc}"
        ) from exc
    try:
        private_file(path)
    except OSError as exc:
        raise StoreError(f"cannot write data file {path}: {exc.strerror or exc}") from exc

    def setup(conn: sqlite3.Connection) -> None:
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            log.warning("data file %s: WAL mode not available (journal_mode=%s)", path, mode)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        # a real write (the header's version, unchanged): a read-only file or folder fails now
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute(f"PRAGMA user_version = {int(version)}")

    return _connect(path, path, setup)


def reader_uri(path: Path) -> str:
    return path.resolve().as_uri() + "?mode=ro"


def connect_reader(path: Path, uri: str) -> sqlite3.Connection:
    """A read-only connection to ``uri`` (from reader_uri(path)), so a reader can never write."""
    return _connect(path, uri, lambda conn: conn.execute("PRAGMA query_only = 1"))
