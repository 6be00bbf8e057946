"""The reporter: a bounded queue the app's thread appends to, and one daemon thread that turns
observations into records (summary.py) and posts them in batches (delivery.py).

The app's thread only takes a short lock; nothing here raises into the app.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import threading
import time
import weakref
from collections import deque
from typing import Any, Self
from urllib.parse import urlsplit

from llmscope_tui.client import summary
from llmscope_tui.client.delivery import Delivery
from llmscope_tui.client.flavour import package_of
from llmscope_tui.client.observe import Observation, observed_stream
from llmscope_tui.client.routing import route

log = logging.getLogger("llmscope_tui.client")

DEFAULT_ENDPOINT = "http://127.0.0.1:8787/v1/events"
API_KEY_ENV = "LLMSCOPE_API_KEY"
#: Bytes held by observations waiting for the worker, over all of them; beyond it, new
#: observations are reported without tokens rather than holding more memory.
MAX_HELD_BYTES = 64 * 1024 * 1024


class Reporter:
    """Queues usage records and posts them in batches from a daemon thread.

    Made by :func:`instrument`; use :meth:`flush` to wait for delivery, :meth:`close` at exit
    (also registered with :mod:`atexit`). ``stats`` counts what happened. No method raises.
    """

    def __init__(
        self,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        api_key: str | None = None,
        project: str | None = None,
        provider: str | None = None,
        batch_size: int = 50,
        flush_interval_s: float = 2.0,
        max_queue: int = 10_000,
        send_timeout_s: float = 2.0,
        exit_timeout_s: float = 1.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        if project is not None:
            project = project.strip()
            if not project or len(project) > 100 or summary.clean(project, 100) != project:
                raise ValueError("project must be 1-100 characters without control characters")
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be an http(s) URL, got {endpoint!r}")
        self.endpoint = endpoint
        self.project = project
        self.provider = provider
        self.batch_size = int(batch_size)
        self.flush_interval_s = float(flush_interval_s)
        self.max_queue = int(max_queue)
        self.send_timeout_s = float(send_timeout_s)
        self.exit_timeout_s = float(exit_timeout_s)
        self._api_key = api_key if api_key is not None else (os.environ.get(API_KEY_ENV) or None)
        self._hooks: list[tuple[weakref.ref[Any], Any]] = []
        #: Counters: records sent, dropped (queue full, refused by the endpoint, or given up at close).
        self.sent = 0
        self.dropped = 0
        self._init_state()
        self._closed = False
        atexit.register(self._at_exit)
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(ref))
        self._start_thread()

    def __repr__(self) -> str:  # never shows the key
        return f"Reporter(endpoint={self.endpoint!r}, project={self.project!r}, sent={self.sent})"

    @property
    def send_failures(self) -> int:
        """Sends the endpoint did not take because it was away (each retry counts)."""
        return self._delivery.send_failures

    @property
    def last_error(self) -> str | None:
        """The last problem met (None once a send succeeds); never holds the key."""
        return self._delivery.last_error

    def _init_state(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._items: deque[Any] = deque()  # observations and records, not yet looked at
        self._pending: deque[dict[str, Any]] = deque()  # records waiting to be sent
        self._pending_since = 0.0
        self._held = 0
        self._enqueued = 0
        self._finished = 0
        self._flushers = 0
        self._stopping = False
        self._stop_deadline = 0.0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._delivery = Delivery(self.endpoint, self._api_key, self.send_timeout_s)

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._run, name="llmscope-client-reporter", daemon=True)
        self._thread = thread
        thread.start()

    # -- the app side (never raises, never blocks beyond a short lock) ------------------------------

    def _on_response(self, response: Any, is_async: bool) -> None:
        """The hook's work, for an httpx or httpx2 Response whose body the app has yet to read."""
        try:
            if self._closed:
                return
            found = route(response.request.url, self.provider)
            if found is None or 300 <= response.status_code < 400:
                return
            obs = Observation(found, response, self._submit)
            if response.is_closed:  # a body given in memory (mock transports): already read
                obs.content_encoding = ""  # response.content is decoded
                obs.add(response.content)
                obs.exhausted = True
                obs.finish(time.perf_counter_ns())
                return
            package = package_of(response, "Response") or "httpx"
            response.stream = observed_stream(package, response.stream, obs, is_async)
        except Exception as exc:  # noqa: BLE001 - nothing raises into the app
            self._note_error("could not observe a response", exc)

    def _submit(self, obs: Observation) -> None:
        self._put(obs, obs.held_bytes)

    def report(self, **fields: Any) -> None:
        """Queue one record by hand (same fields as the endpoint takes); project is added if set."""
        try:
            record = dict(fields)
            if self.project and "project" not in record and "tag" not in record:
                record["project"] = self.project
            self._put(record, 0)
        except Exception as exc:  # noqa: BLE001 - nothing raises into the app
            self._note_error("could not queue a record", exc)

    def _put(self, item: Any, held: int) -> None:
        with self._cond:
            if self._closed and self._stopping:
                self.dropped += 1
                return
            if os.getpid() != self._pid:  # pragma: no cover - a fork not seen by the at-fork hook
                return
            if held and self._held + held > MAX_HELD_BYTES and isinstance(item, Observation):
                item.drop_body()
                held = 0
            if len(self._items) + len(self._pending) >= self.max_queue:
                if self._pending:  # records waiting to be sent are the oldest
                    self._pending.popleft()
                else:
                    old = self._items.popleft()
                    self._held -= old.held_bytes if isinstance(old, Observation) else 0
                self.dropped += 1
                self._finished += 1
            self._items.append(item)
            self._held += held
            self._enqueued += 1
            self._cond.notify_all()
            thread = None
            if self._thread is None:  # the first record after a fork
                thread = self._thread = threading.Thread(
                    target=self._run, name="llmscope-client-reporter", daemon=True
                )
        if thread is not None:
            thread.start()

    def _note_error(self, what: str, exc: Exception) -> None:
        with contextlib.suppress(Exception):
            self._delivery.last_error = what
            log.debug("llmscope client: %s", what, exc_info=exc)

    # -- control ------------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        with self._cond:
            queued = self._enqueued - self._finished
        return {"sent": self.sent, "dropped": self.dropped, "queued": queued, "send_failures": self.send_failures}

    def flush(self, timeout: float = 5.0) -> bool:
        """Send what is queued now; True when all of it was delivered (or dropped) within timeout."""
        try:
            with self._cond:
                goal = self._enqueued
                if self._finished >= goal:
                    return True
                self._flushers += 1
                self._cond.notify_all()
                try:
                    return self._cond.wait_for(lambda: self._finished >= goal, timeout)
                finally:
                    self._flushers -= 1
        except Exception:  # noqa: BLE001 - pragma: no cover - nothing raises into the app
            return False

    def close(self, timeout: float = 2.0) -> None:
        """Stop observing, send what is queued (waiting at most ``timeout``), stop the thread."""
        with contextlib.suppress(Exception):
            if self._closed and self._stopping:
                return
            self._closed = True
            for client_ref, hook in self._hooks:
                client = client_ref()
                if client is not None:
                    with contextlib.suppress(Exception):
                        client.event_hooks["response"].remove(hook)
            self._hooks = []
            with self._cond:
                self._stopping = True
                self._stop_deadline = time.monotonic() + max(0.0, timeout)
                self._cond.notify_all()
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, timeout) + 0.1)
            atexit.unregister(self._at_exit)

    def _at_exit(self) -> None:
        self.close(self.exit_timeout_s)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the worker thread --------------------------------------------------------------------------

    def _run(self) -> None:
        """Parse observations into records, then post records in batches; exit when closed."""
        try:
            while True:
                with self._cond:
                    self._wait_for_work()
                    stopping = self._stopping
                self._absorb()
                while (batch := self._next_batch()) is not None:
                    delivered = self._delivery.deliver(batch, self._before_retry)
                    with self._cond:
                        if delivered:
                            self.sent += len(batch)
                        else:
                            self.dropped += len(batch)
                        self._pending_since = time.monotonic()
                        self._finished += len(batch)
                        self._cond.notify_all()
                if stopping:
                    with self._cond:
                        if self._items:
                            continue
                        self._give_up_pending()  # all sent, or out of time
                        return
        except Exception as exc:  # noqa: BLE001 - pragma: no cover - a bug must not take the app down
            self._note_error("the reporter thread failed", exc)
        finally:
            self._delivery.close()

    def _wait_for_work(self) -> None:
        """Until there are observations, records due to be sent, or a close (lock held)."""
        while not self._items and not self._stopping:
            now = time.monotonic()
            if not self._pending:
                self._cond.wait(5.0)
                continue
            urgent = self._flushers > 0 or len(self._pending) >= self.batch_size
            due = now if urgent else self._pending_since + self.flush_interval_s
            if due <= now:
                return
            self._cond.wait(due - now)

    def _absorb(self) -> None:
        """Turn the observations queued so far into records waiting to be sent."""
        with self._cond:
            items = list(self._items)
            self._items.clear()
            self._held = 0
        records: list[dict[str, Any]] = []
        for item in items:
            if isinstance(item, Observation):
                try:
                    records.append(summary.summarize(item, self.project))
                except Exception:  # noqa: BLE001 - a bug reading one call loses that call only
                    self._finish(1)
            else:
                records.append(item)
        if records:
            with self._cond:
                if not self._pending:
                    self._pending_since = time.monotonic()
                self._pending.extend(records)
                self._trim()

    def _next_batch(self) -> list[dict[str, Any]] | None:
        """The next batch due to be sent, or None (nothing due, or closing and out of time)."""
        with self._cond:
            now = time.monotonic()
            stopping = self._stopping
            if stopping and now >= self._stop_deadline:
                return None
            pending = len(self._pending)
            urgent = self._flushers > 0 or stopping or pending >= self.batch_size
            if not pending or (not urgent and now - self._pending_since < self.flush_interval_s):
                return None
            return [self._pending.popleft() for _ in range(min(self.batch_size, pending))]

    def _before_retry(self) -> bool:
        """Between retries of a batch: keep reading new observations; stop when closed and late."""
        self._absorb()
        with self._cond:
            return not (self._stopping and time.monotonic() >= self._stop_deadline)

    def _give_up_pending(self) -> None:
        """Count what is left as dropped (lock held)."""
        left = len(self._pending)
        self._pending.clear()
        self.dropped += left
        self._finished += left
        self._cond.notify_all()

    def _trim(self) -> None:
        """Drop the oldest records beyond max_queue (call with the lock held)."""
        over = min(len(self._pending), len(self._items) + len(self._pending) - self.max_queue)
        if over > 0:
            for _ in range(over):
                self._pending.popleft()
            self.dropped += over
            self._finished += over
            self._cond.notify_all()

    def _finish(self, count: int) -> None:
        with self._cond:
            self._finished += count
            self._cond.notify_all()


def _after_fork(ref: weakref.ref[Reporter]) -> None:
    reporter = ref()
    if reporter is None:
        return
    with contextlib.suppress(Exception):  # the child starts empty: the parent's queue and thread are the parent's
        reporter._init_state()
        reporter._thread = None
        if reporter._closed:
            reporter._stopping = True
