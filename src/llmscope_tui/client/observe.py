"""Observing a response as the app reads it: byte references with arrival stamps, and its end.

The app's thread only stamps a clock and keeps references here; reading what the bytes meant
happens later in the reporter's thread (summary.py). Nothing here raises into the app. A
response of httpx or of httpx2 (flavour.py) gets a pass-through stream of its own package's
base class, since each package checks that a response's stream is one of its own.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx

from llmscope_tui.client import flavour
from llmscope_tui.client.routing import Route
from llmscope_tui.wire.base import request_id
from llmscope_tui.wire.errors import classify_exception

#: Of each response, the first HEAD_BYTES and the last TAIL_BYTES are kept for parsing.
HEAD_BYTES = 4 * 1024 * 1024
TAIL_BYTES = 256 * 1024

#: A chunk of the body and the perf_counter_ns stamp of when the app read it.
Chunk = tuple[bytes, int]


class Observation:
    """What passed by for one response: chunk references with arrival stamps, and how it ended."""

    __slots__ = (
        "body_dropped",
        "content_encoding",
        "content_type",
        "elapsed_ns",
        "exc_kind",
        "exhausted",
        "finished",
        "gap",
        "head",
        "head_bytes",
        "on_finish",
        "request_body",
        "request_id",
        "response_ref",
        "route",
        "start_ns",
        "status",
        "t_close_ns",
        "tail",
        "tail_bytes",
        "wall_close",
    )

    def __init__(self, route: Route, response: Any, on_finish: Callable[[Observation], None]) -> None:
        """``response``: an httpx or httpx2 Response, its body not read yet (or already in memory)."""
        self.on_finish = on_finish
        self.route = route
        self.status = response.status_code
        headers = response.headers
        self.content_type = headers.get("content-type", "").lower()
        self.content_encoding = headers.get("content-encoding", "").strip().lower()
        self.request_id = request_id(headers)
        self.request_body: bytes | None = None
        if route.url_model is None:
            try:
                self.request_body = response.request.content  # already in memory for SDK calls
            except Exception:  # noqa: BLE001 - RequestNotRead (httpx's or httpx2's): a streaming
                self.request_body = None  # request body, so the model must come from the response
        self.response_ref: weakref.ref[Any] | None = weakref.ref(response)
        self.start_ns = time.perf_counter_ns()
        self.head: list[Chunk] = []
        self.head_bytes = 0
        self.tail: deque[Chunk] = deque()
        self.tail_bytes = 0
        self.gap = False  # bytes were dropped between head and tail
        self.exhausted = False
        self.exc_kind: str | None = None
        self.finished = False
        self.elapsed_ns: int | None = None
        self.t_close_ns = 0
        self.wall_close = 0.0
        self.body_dropped = False

    def add(self, chunk: bytes) -> None:
        """Keep a reference to a chunk the app just read (the head, then a rolling tail)."""
        with contextlib.suppress(Exception):  # nothing raises into the app
            now = time.perf_counter_ns()
            size = len(chunk)
            if not self.tail and self.head_bytes + size <= HEAD_BYTES:
                self.head.append((chunk, now))
                self.head_bytes += size
                return
            self.tail.append((chunk, now))
            self.tail_bytes += size
            while self.tail_bytes > TAIL_BYTES and len(self.tail) > 1:
                dropped, _ = self.tail.popleft()
                self.tail_bytes -= len(dropped)
                self.gap = True

    @contextlib.contextmanager
    def reading(self) -> Iterator[None]:
        """Around the app's read of the body (sync or async): read to the end -> exhausted; an
        error -> failed and re-raised; the app walking away (GeneratorExit) -> neither."""
        try:
            yield
        except GeneratorExit:
            raise
        except BaseException as exc:
            self.fail(exc)
            raise
        self.exhausted = True

    def fail(self, exc: BaseException) -> None:
        with contextlib.suppress(Exception):  # nothing raises into the app
            if self.exc_kind is None:
                self.exc_kind = str(classify_exception(exc)) if isinstance(exc, Exception) else "cancelled"

    def finish(self, t_close_ns: int) -> None:
        """The app closed the response: stamp it and hand the observation to the reporter."""
        if self.finished:
            return
        self.finished = True
        with contextlib.suppress(Exception):  # nothing raises into the app
            self.t_close_ns = t_close_ns
            self.wall_close = time.time() - (time.perf_counter_ns() - t_close_ns) / 1e9
            response = self.response_ref() if self.response_ref is not None else None
            if response is not None:
                try:
                    self.elapsed_ns = round(response.elapsed.total_seconds() * 1e9)
                except RuntimeError:  # elapsed is only set by httpx's own stream wrapper
                    self.elapsed_ns = None
            self.response_ref = None
            self.on_finish(self)

    @property
    def held_bytes(self) -> int:
        return self.head_bytes + self.tail_bytes + (len(self.request_body) if self.request_body else 0)

    def drop_body(self) -> None:
        """Forget the bytes (over the memory bound): the call is reported without tokens."""
        self.head, self.tail = [], deque()
        self.head_bytes = self.tail_bytes = 0
        self.request_body = None
        self.body_dropped = True


class _SyncPassThrough:
    """Passes the inner stream's chunks through unchanged, showing each to the observation."""

    def __init__(self, inner: Any, obs: Observation) -> None:
        self._inner = inner
        self._obs = obs

    def __iter__(self) -> Iterator[bytes]:
        with self._obs.reading():
            for chunk in self._inner:
                self._obs.add(chunk)
                yield chunk

    @property
    def elapsed(self) -> Any:
        """The inner stream's: httpx2's Response.elapsed is read from its stream."""
        return getattr(self._inner, "elapsed", None)

    def close(self) -> None:
        t_close = time.perf_counter_ns()
        try:
            self._inner.close()
        finally:
            self._obs.finish(t_close)


class _AsyncPassThrough:
    """The async twin of :class:`_SyncPassThrough`; it awaits nothing of its own."""

    def __init__(self, inner: Any, obs: Observation) -> None:
        self._inner = inner
        self._obs = obs

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with self._obs.reading():
            async for chunk in self._inner:
                self._obs.add(chunk)
                yield chunk

    @property
    def elapsed(self) -> Any:
        """The inner stream's: httpx2's Response.elapsed is read from its stream."""
        return getattr(self._inner, "elapsed", None)

    async def aclose(self) -> None:
        t_close = time.perf_counter_ns()
        try:
            await self._inner.aclose()
        finally:
            self._obs.finish(t_close)


class SyncObserved(_SyncPassThrough, httpx.SyncByteStream):
    """The pass-through for an httpx response read synchronously."""


class AsyncObserved(_AsyncPassThrough, httpx.AsyncByteStream):
    """The pass-through for an httpx response read asynchronously."""


#: package -> (sync, async) pass-through classes; httpx2's are made on its first response.
_STREAM_CLASSES: dict[str, tuple[type[Any], type[Any]]] = {"httpx": (SyncObserved, AsyncObserved)}


def observed_stream(package: str, inner: Any, obs: Observation, is_async: bool) -> Any:
    """A pass-through of ``inner`` that is an instance of ``package``'s (httpx or httpx2) own
    SyncByteStream / AsyncByteStream, as that package's Response requires."""
    classes = _STREAM_CLASSES.get(package)
    if classes is None:
        mod = flavour.module(package)
        classes = (
            type("SyncObserved", (_SyncPassThrough, mod.SyncByteStream), {"__module__": __name__}),
            type("AsyncObserved", (_AsyncPassThrough, mod.AsyncByteStream), {"__module__": __name__}),
        )
        _STREAM_CLASSES[package] = classes
    return classes[1 if is_async else 0](inner, obs)
