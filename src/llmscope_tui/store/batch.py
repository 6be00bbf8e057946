"""What the writer queue holds, and one batch of it committed as one transaction.

A batch is written with ``executemany`` (the fast path). If sqlite refuses a record (a bad
value, a constraint), the batch is written again record by record under savepoints, and only
the records that fail are dropped, with a report: one bad record never costs the others.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llmscope_tui.store.rows import (
    INSERT_SAMPLE,
    INSERT_VIOLATION,
    SAMPLE_KINDS,
    VIOLATION_KINDS,
    prepare,
)
from llmscope_tui.store.schema import ALL_SAMPLE_COLUMNS, VIOLATION_COLUMNS, immediate

#: Errors that are some record's fault, not the disk's: retrying would never help.
DATA_ERRORS = (
    sqlite3.InterfaceError,
    sqlite3.ProgrammingError,
    sqlite3.IntegrityError,
    sqlite3.DataError,
    OverflowError,
    TypeError,
    ValueError,
)


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def dropped_line(what: str, path: Path, problems: list[str]) -> str:
    """The one line that says which records were given up and why (each reason once)."""
    return f"dropped {what} that cannot be stored in {path}: {'; '.join(dict.fromkeys(problems))}"


class ViolationItem:
    __slots__ = ("row",)

    def __init__(self, row: tuple[Any, ...]) -> None:
        self.row = row


class Op:
    """A baseline or incident change, applied by the writer in queue order (after the samples
    before it)."""

    __slots__ = ("kind", "params")

    def __init__(self, kind: str, params: tuple[Any, ...]) -> None:
        self.kind = kind  # "save", "clear", "incident" or "close_incidents"
        self.params = params


Apply = Callable[[sqlite3.Connection, Op], None]


class Call:
    """A synchronous request to the writer thread (purge), run after everything queued before it."""

    __slots__ = ("cancelled", "done", "error", "fn", "lock", "result", "started")

    def __init__(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        self.fn = fn
        self.done = threading.Event()
        self.lock = threading.Lock()
        self.started = False
        self.cancelled = False
        self.result: Any = None
        self.error: BaseException | None = None


class Batch:
    """Records taken off the queue together, written in one transaction."""

    __slots__ = ("call", "dropped", "dropped_samples", "ops", "samples", "sealed", "violations")

    def __init__(self) -> None:
        self.samples: list[tuple[Any, ...]] = []
        self.violations: list[tuple[Any, ...]] = []
        self.ops: list[Op] = []
        self.call: Call | None = None
        self.sealed = False  # a baseline change or a call ends the batch: later items wait
        self.dropped = 0  # records found unstorable (they count as done for flush())
        self.dropped_samples = 0

    @property
    def size(self) -> int:
        return len(self.samples) + len(self.violations) + len(self.ops)

    def drop_all(self) -> None:
        self.dropped += self.size
        self.dropped_samples += len(self.samples)
        self.samples, self.violations, self.ops = [], [], []

    def prepare(self, path: Path) -> list[str]:
        """Coerce odd values (numpy numbers, enums, bools) and drop what cannot be stored;
        returns the lines to report."""
        samples, bad_samples, blanked_s = prepare(self.samples, SAMPLE_KINDS, ALL_SAMPLE_COLUMNS, 2)
        violations, bad_violations, blanked_v = prepare(
            self.violations, VIOLATION_KINDS, VIOLATION_COLUMNS, 4
        )
        self.samples, self.violations = samples, violations
        reports: list[str] = []
        if blanked_s or blanked_v:
            problems = "; ".join(dict.fromkeys(blanked_s + blanked_v))
            reports.append(f"values that cannot be stored in {path} were left empty: {problems}")
        if bad_samples or bad_violations:
            self.dropped_samples = len(bad_samples)
            self.dropped = len(bad_samples) + len(bad_violations)
            what = (
                plural(self.dropped, "record")
                if bad_violations
                else plural(len(bad_samples), "sample")
            )
            reports.append(dropped_line(what, path, bad_samples + bad_violations))
        return reports

    def write(
        self, conn: sqlite3.Connection, apply: Apply, path: Path, *, careful: bool
    ) -> list[str]:
        """One transaction: the samples, violations and baseline/incident changes.

        ``careful``: after a data error, write record by record under savepoints and drop, with
        a line to report, only the records that fail.
        """
        with immediate(conn):
            if not careful:
                if self.samples:
                    conn.executemany(INSERT_SAMPLE, self.samples)
                if self.violations:
                    conn.executemany(INSERT_VIOLATION, self.violations)
                for op in self.ops:
                    apply(conn, op)
                return []
            problems: list[str] = []
            bad_samples = _each(
                conn, self.samples, lambda r: conn.execute(INSERT_SAMPLE, r), problems
            )
            bad_violations = _each(
                conn, self.violations, lambda r: conn.execute(INSERT_VIOLATION, r), problems
            )
            bad_ops = _each(conn, self.ops, lambda op: apply(conn, op), problems)
        if not problems:
            return []
        self.samples = [r for i, r in enumerate(self.samples) if i not in bad_samples]
        self.violations = [r for i, r in enumerate(self.violations) if i not in bad_violations]
        self.ops = [op for i, op in enumerate(self.ops) if i not in bad_ops]
        dropped = len(bad_samples) + len(bad_violations) + len(bad_ops)
        self.dropped += dropped
        self.dropped_samples += len(bad_samples)
        return [dropped_line(plural(dropped, "record"), path, problems)]


def _each(
    conn: sqlite3.Connection, items: list[Any], write: Callable[[Any], Any], problems: list[str]
) -> set[int]:
    """Write items one by one, each under a savepoint; the indexes of those sqlite refused."""
    bad: set[int] = set()
    for i, item in enumerate(items):
        conn.execute("SAVEPOINT record")
        try:
            write(item)
        except DATA_ERRORS as exc:
            conn.execute("ROLLBACK TO record")
            bad.add(i)
            problems.append(str(exc))
        conn.execute("RELEASE record")
    return bad
