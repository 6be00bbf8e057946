"""The batched writer: a queue any thread appends to, one thread that commits it in batches.

* The probe loop runs on an event loop that must never wait for the disk, so queueing only
  appends to an in-memory deque. ONE writer thread owns the write connection and commits
  batches (one transaction, ``executemany``): SQLite has one writer at a time anyway, and a
  transaction per sample would cap the rate at a few hundred per second on a slow disk.
* A failed write (disk full, the file locked by someone's open transaction) must not lose data:
  the batch stays in memory and is retried with backoff until it lands; ``on_error`` hears about
  it once per failure streak, as one line a person can act on.
* A record sqlite refuses (a bad value, a constraint) is dropped with a report, never retried:
  holding it would block the file for good.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from llmscope_tui.store.batch import (
    DATA_ERRORS,
    Batch,
    Call,
    Op,
    ViolationItem,
    dropped_line,
    plural,
)
from llmscope_tui.store.schema import StoreError, close_quietly, closed_error

log = logging.getLogger(__name__)

#: How long a call on the writer thread (purge_older_than) waits for it before giving up.
CALL_TIMEOUT_S = 60.0

_T = TypeVar("_T")


class BatchWriter:
    """The writing half of SampleStore: queue, writer thread, retries, flush accounting.

    The queue holds sample rows (tuples), lists of them, ViolationItem, Op and Call; the
    subclass says what an Op does (``_apply``) and owns the connection's opening.
    """

    #: First and longest pause between retries of a failed write (doubling in between).
    retry_initial_s: float = 0.05
    retry_max_s: float = 2.0

    path: Path
    batch_size: int
    flush_interval_s: float
    on_error: Callable[[str], None] | None
    last_error: str | None

    def _start_writer(self, conn: sqlite3.Connection) -> None:
        """Take over the write connection and start the writer thread."""
        self._conn = conn
        # Queue state. _lock guards the counters and the closing flag; the deque itself is
        # appended to under it (so counters and order agree) and popped by the writer only.
        self._queue: deque[Any] = deque()
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._wake = threading.Event()
        #: queued items that wake the writer: 1 while it waits for work; while it gathers a
        #: batch, the room left in it (a sample more wakes it only to fill the batch, since the
        #: window's end wakes it anyway: a wake per probe was 4 % of the probe loop's CPU)
        self._room = 1
        self._abandon = threading.Event()
        self._urgent = False
        self._stopping = False
        self._closing = False
        self._writer_done = False
        self._enqueued = 0  # records (samples + violations + baseline changes) ever queued
        self._written = 0  # of those, how many are on disk (or were dropped as unstorable)
        self._enqueued_samples = 0
        self._written_samples = 0
        #: samples given up at close (the data file stayed unwritable): a run then exits 1
        self.unsaved_samples = 0
        name = f"llmscope-store-writer:{self.path.name}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _apply(self, conn: sqlite3.Connection, op: Op) -> None:
        raise NotImplementedError

    # -- any thread: queue, call, flush, stop ---------------------------------------------------

    def _enqueue(self, item: Any, records: int, samples: int, *, urgent: bool = False) -> None:
        with self._lock:
            if self._closing:
                raise closed_error(self.path)
            self._enqueued += records
            self._enqueued_samples += samples
            self._queue.append(item)
            if urgent:
                self._urgent = True
            wake = urgent or type(item) is not tuple or len(self._queue) >= self._room
        if wake and not self._wake.is_set():
            self._wake.set()

    def _call(
        self, fn: Callable[[sqlite3.Connection], _T], what: str, timeout: float | None = None
    ) -> _T:
        """Run fn(write connection) on the writer thread after everything queued; wait for it."""
        timeout = CALL_TIMEOUT_S if timeout is None else timeout
        call = Call(fn)
        self._enqueue(call, 0, 0, urgent=True)
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
        return call.result

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

    def _request_stop(self) -> bool:
        """Refuse new records and tell the thread to write what is queued, then stop; True the
        first time only."""
        with self._lock:
            first = not self._closing
            self._closing = True
            self._stopping = True
            self._urgent = True
        self._wake.set()
        return first

    def _join_writer(self, timeout: float) -> None:
        """Wait ``timeout`` for the thread to finish; then abandon what it still holds."""
        if self._thread is not threading.current_thread():
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._abandon.set()
                self._thread.join(5.0)

    # -- the writer thread ---------------------------------------------------------------------

    def _report(self, message: str) -> None:
        log.warning("%s", message)
        if self.on_error is not None:
            try:
                self.on_error(message)
            except Exception:  # a broken callback must not stop the writer
                log.exception("store on_error callback failed")

    def _unsaved(self) -> tuple[int, int]:
        """(samples, other records) queued or held, not on disk; the caller holds _lock."""
        samples = self._enqueued_samples - self._written_samples
        return samples, self._enqueued - self._written - samples

    def _take_urgent(self) -> bool:
        with self._lock:
            urgent, self._urgent = self._urgent, False
        return urgent

    def _drain(self, batch: Batch) -> None:
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
            elif kind is ViolationItem:
                batch.violations.append(item.row)
            elif kind is Op:
                # Strict queue order: nothing queued after a baseline change joins its batch
                # (they are rare, so sealing costs nothing).
                batch.ops.append(item)
                batch.sealed = True
            else:
                batch.call = item
                batch.sealed = True

    def _collect(self) -> Batch | None:
        """Wait for work, then gather up to batch_size records or until flush_interval_s passes."""
        wake = self._wake
        self._room = 1  # set before looking at the queue: an append after the look wakes us
        while not self._queue:
            if self._stopping:
                return None
            wake.wait()
            wake.clear()
        urgent = self._take_urgent()
        batch = Batch()
        self._drain(batch)
        deadline = time.monotonic() + self.flush_interval_s
        while (
            batch.size < self.batch_size and not batch.sealed and not urgent and not self._stopping
        ):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self._room = self.batch_size - batch.size
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
        # A bug: say so rather than die silently.
        except BaseException as exc:  # noqa: BLE001  # pragma: no cover
            self._report(f"the writer for {self.path} stopped: {type(exc).__name__}: {exc}")
            self._give_up(None)
        finally:
            try:
                self._conn.execute("PRAGMA optimize")
                # Every sample into the data file itself and an empty -wal: a copy or backup of
                # the file alone then holds everything (idle readers do not block this).
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error:
                pass
            close_quietly(self._conn)
            with self._cond:
                self._writer_done = True
                self._cond.notify_all()

    def _give_up(self, batch: Batch | None) -> None:
        """At close, after retries ran out: say how much could not be saved."""
        with self._lock:
            self._closing = True
            samples, others = self._unsaved()
            calls = [item for item in self._queue if type(item) is Call]
            self._queue.clear()
        if batch is not None and batch.call is not None:
            calls.append(batch.call)
        for call in calls:
            with call.lock:
                call.error = StoreError(f"the data file {self.path} was closed")
                call.done.set()
        self.unsaved_samples = samples
        if samples or others:
            extra = f" and {plural(others, 'other record')}" if others else ""
            verb = "was" if samples + others == 1 else "were"
            self._report(
                f"cannot write to {self.path}: {self.last_error or 'closed'}; "
                f"{plural(samples, 'sample')}{extra} {verb} not saved"
            )

    def _run_call(self, call: Call) -> None:
        with call.lock:
            if call.cancelled:
                return
            call.started = True
        try:
            call.result = call.fn(self._conn)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who raises it
            call.error = exc
        finally:
            call.done.set()

    def _write_until_done(self, batch: Batch) -> bool:
        """Commit the batch, retrying with backoff until it works; False if close() gave up."""
        if batch.size == 0:
            return True
        for line in batch.prepare(self.path):
            self._report(line)
        delay = self.retry_initial_s
        failing = False
        careful = False
        while True:
            try:
                self._write(batch, careful=careful)
                break
            except DATA_ERRORS as exc:  # one bad record must not take the batch down: go one by one
                if not careful:
                    careful = True
                    continue
                # Not transient, and not any one record's fault: holding it would block the file.
                self._report(dropped_line(plural(batch.size, "record"), self.path, [str(exc)]))
                batch.drop_all()
                break
            # sqlite3.OperationalError and friends (locked, disk full): transient, so retry.
            except Exception as exc:  # noqa: BLE001
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
            samples, others = self._unsaved()
        extra = f" (and {plural(others, 'other record')})" if others else ""
        return (
            f"cannot write samples to {self.path}: {error}; "
            f"{plural(samples, 'sample')}{extra} held in memory, retrying"
        )

    def _write(self, batch: Batch, *, careful: bool = False) -> None:
        """One transaction for the batch (see Batch.write); reports the records it dropped."""
        for line in batch.write(self._conn, self._apply, self.path, careful=careful):
            self._report(line)
