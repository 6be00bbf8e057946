"""SampleStore: the data file opened for writing (migrations, the writer thread) and reading.

Every change is a record queued for the writer thread, never a write on the caller's thread;
what each baseline or incident change does to the tables is spelled out in ``_apply`` below.
"""

from __future__ import annotations

import atexit
import functools
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterable
from pathlib import Path

from llmscope_tui.incidents.model import Incident
from llmscope_tui.model import Sample, Violation
from llmscope_tui.redaction import scrub_sample
from llmscope_tui.store.batch import Op, ViolationItem
from llmscope_tui.store.reader import StoreReader
from llmscope_tui.store.rows import (
    incident_row,
    insert_sql,
    sample_row,
    text_or_none,
    violation_row,
)
from llmscope_tui.store.schema import (
    BASELINE_COLUMNS,
    INCIDENT_COLUMNS,
    MIGRATIONS,
    StoreError,
    as_store_error,
    connect_writer,
    immediate,
    migrate,
)
from llmscope_tui.store.writer import BatchWriter

#: How long close() keeps retrying a failing write before it gives up on what is still held.
CLOSE_TIMEOUT_S = 10.0

_UPSERT_INCIDENT = (
    insert_sql("incidents", INCIDENT_COLUMNS)
    + " ON CONFLICT(id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in INCIDENT_COLUMNS[1:])
)
_INSERT_BASELINE = insert_sql("baselines", BASELINE_COLUMNS)
_INSERT_BASELINE_ANY_ID = insert_sql("baselines", BASELINE_COLUMNS[1:])


def _close_at_exit(ref: weakref.ReferenceType[SampleStore]) -> None:
    store = ref()
    if store is not None:
        store.close()


class SampleStore(StoreReader, BatchWriter):
    """The data file, opened for writing: migrations, the batched writer thread, queries.

    ``add``/``add_many``/``add_violation``/``save_baseline``/``clear_baselines`` never block:
    they queue, and the writer thread commits in order. ``flush`` waits for what was queued
    before it; ``close`` flushes and stops (also run at interpreter exit).

    ``on_error`` is called from the writer thread with one human line, once per failure streak
    (not per retry); a face that must act on its own thread has to hand the line over.
    """

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

        conn = connect_writer(self.path)
        try:
            migrate(conn, self.path, MIGRATIONS)
            self._next_baseline_id = int(
                conn.execute("SELECT coalesce(max(id), 0) FROM baselines").fetchone()[0]
            )
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as exc:
            conn.close()
            raise as_store_error(self.path, exc) from exc
        self._start_writer(conn)
        self._atexit = functools.partial(_close_at_exit, weakref.ref(self))
        atexit.register(self._atexit)

    # -- queueing (any thread, never blocks on the disk) ----------------------------------------

    def add(self, sample: Sample) -> None:
        """Queue one sample for the writer (a snapshot of its values now), keys redacted from its
        text first: the last guard before the disk (a lookup when it was scrubbed already)."""
        scrub_sample(sample)
        self._enqueue(sample_row(sample), 1, 1)

    def add_many(self, samples: Iterable[Sample]) -> None:
        """Queue many samples at once (cheaper than add() in a loop)."""
        rows = []
        for sample in samples:
            scrub_sample(sample)
            rows.append(sample_row(sample))
        step = self.batch_size
        for i in range(0, len(rows), step):
            chunk = rows[i : i + step]
            self._enqueue(chunk, len(chunk), len(chunk))

    def add_violation(self, violation: Violation) -> None:
        """Queue one rule firing."""
        self._enqueue(ViolationItem(violation_row(violation)), 1, 0)

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
        self._enqueue(Op("save", (baseline_id, *params)), 1, 0)
        return baseline_id

    def clear_baselines(self, target: str | None = None) -> None:
        """Queue: deactivate every active baseline (or one target's); history rows are kept."""
        self._enqueue(Op("clear", (text_or_none(target),)), 1, 0)

    def save_incident(self, incident: Incident) -> None:
        """Queue the incident as it is now (a new row, or the row of that id rewritten)."""
        self._enqueue(Op("incident", incident_row(incident)), 1, 0)

    def close_incidents(self, target: str | None, ts: float, resolution: str) -> None:
        """Queue: close the open incidents of one target (or all), e.g. on an offline rebaseline."""
        self._enqueue(Op("close_incidents", (text_or_none(target), float(ts), resolution)), 1, 0)

    def purge_older_than(self, days: float, now: float | None = None) -> int:
        """Delete samples and violations older than ``days``; returns the rows deleted.

        Runs on the writer thread, after what is already queued, so it never races a batch.
        Blocks the caller (call it from a worker thread, not the event loop).
        """
        if not days > 0:
            raise ValueError(f"days must be a positive number, got {days!r}")
        cutoff = (time.time() if now is None else float(now)) - float(days) * 86400.0

        def purge(conn: sqlite3.Connection) -> int:
            with immediate(conn):
                removed: int = conn.execute("DELETE FROM samples WHERE ts < ?", (cutoff,)).rowcount
                removed += conn.execute("DELETE FROM violations WHERE ts < ?", (cutoff,)).rowcount
            return removed

        return self._call(purge, "retention purge")

    # -- close -----------------------------------------------------------------------------------

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Write everything queued, stop the writer thread and close the file (idempotent).

        If writes keep failing for ``timeout`` seconds, what is still held is given up and
        on_error says how many samples were not saved.
        """
        if self._request_stop():
            atexit.unregister(self._atexit)
        self._join_writer(timeout)
        self._close_readers()

    # -- on the writer thread: what each queued change does -------------------------------------

    def _apply(self, conn: sqlite3.Connection, op: Op) -> None:
        if op.kind == "incident":
            conn.execute(_UPSERT_INCIDENT, op.params)
        elif op.kind == "close_incidents":
            target, ts, resolution = op.params
            where = "closed_ts IS NULL" + ("" if target is None else " AND target = ?")
            conn.execute(
                f"UPDATE incidents SET closed_ts = ?, resolution = ?, updated_ts = ? WHERE {where}",
                (ts, resolution, ts, *([] if target is None else [target])),
            )
        elif op.kind == "clear":
            (target,) = op.params
            if target is None:
                conn.execute("UPDATE baselines SET active = 0 WHERE active = 1")
            else:
                conn.execute(
                    "UPDATE baselines SET active = 0 WHERE active = 1 AND target = ?", (target,)
                )
        else:
            self._save_baseline(conn, *op.params)

    @staticmethod
    def _save_baseline(
        conn: sqlite3.Connection, baseline_id: int, target: str, metric: str, *rest: object
    ) -> None:
        conn.execute(
            "UPDATE baselines SET active = 0 WHERE active = 1 AND target = ? AND metric = ?",
            (target, metric),
        )
        values = (target, metric, *rest, 1)
        taken = conn.execute("SELECT 1 FROM baselines WHERE id = ?", (baseline_id,)).fetchone()
        if taken:  # another process wrote this id meanwhile: let sqlite pick one
            conn.execute(_INSERT_BASELINE_ANY_ID, values)
        else:
            conn.execute(_INSERT_BASELINE, (baseline_id, *values))
