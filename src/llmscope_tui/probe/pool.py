"""httpcore's per-request bookkeeping made flat, so a probe costs the same with 10 or 1,000 targets.

Profiled with bench/bench_probe.py `targets` (docs/performance.md), three costs of httpx/httpcore
grew with the pool or were paid several times per probe for nothing:

* AsyncConnectionPool re-plans the whole pool whenever a request arrives or a response closes.
  httpcore 1.0 counts every connection again for each idle one (O(pool^2)) and lists every
  available and every idle connection for each queued request: half the probe loop's CPU at
  64 pooled connections. FlatPool makes the same decisions, asking a connection whether the
  server closed it (a system call) when it is about to be reused, and sweeping the pool at
  most once a second.
* httpcore runs ``import sniffio`` for every lock, event and shield it makes (several per
  request). anyio 4 no longer needs sniffio, and without it each of those imports searches
  sys.path again: 12 % of the loop's CPU. skip_sniffio_search records the absence once.
* httpcore gives an idle HTTP/1.1 connection to each request that comes before the one it was
  given to has started on it; each of those then finds it busy, queues again and replans the
  pool: 2.8 times a probe with 10 probes in flight, 3.7 with 64. FlatPool gives an idle
  connection to one request at a time and plans each request once: 17-28 % less CPU a probe,
  and 1,000 targets no longer cost more a probe than 10.
"""

from __future__ import annotations

import importlib.util
import sys
import time

import httpcore
import httpx
from httpcore._async.connection_pool import AsyncPoolRequest
from httpcore._async.interfaces import AsyncConnectionInterface

#: what FlatPool relies on in httpcore's pool; without any of it the client keeps httpcore's own
_POOL_STATE = ("_connections", "_requests", "_max_connections", "_max_keepalive_connections")


class FlatPool(httpcore.AsyncConnectionPool):
    """httpcore's AsyncConnectionPool, planned without visiting every connection each time a
    request comes or goes: the same connections reused, created and closed in the same order
    (httpcore 1.0.9's rules) when it sweeps, which is at most every SWEEP_S or when the pool is
    full or over its keep-alive limit. Between sweeps a connection is asked whether it expired
    (for HTTP/1.1 a system call) only when it is about to be reused, and a closed one waits in
    the list, never handed out, for the next sweep."""

    #: how often every connection is asked whether it closed or expired (monotonic seconds)
    SWEEP_S = 1.0
    _swept_at = float("-inf")

    def _assign_requests_to_connections(self) -> list[AsyncConnectionInterface]:
        closing: list[AsyncConnectionInterface] = []
        pool = self._connections
        now = time.monotonic()
        sweep = (
            now - self._swept_at >= self.SWEEP_S
            or len(pool) >= self._max_connections
            or len(pool) > self._max_keepalive_connections
        )
        if sweep:
            self._swept_at = now
            self._sweep(closing)

        one_each = not getattr(self, "_http2", True)  # HTTP/1.1 only: one request a connection
        # is_queued() inlined: this runs as every request comes and goes, over every request in
        # the pool (64 in flight: 345 method calls a probe, the largest per-probe cost that grew
        # from 10 to 100 targets in bench_probe.py targets)
        for pool_request in [request for request in self._requests if request.connection is None]:
            origin = pool_request.request.url.origin
            reuse = self._reusable(origin, closing, checked=sweep)
            if reuse is None and len(pool) >= self._max_connections:
                if not sweep:  # what is closed or expired makes room first, as in httpcore
                    sweep = True
                    self._sweep(closing)
                    reuse = self._reusable(origin, closing, checked=True)
                if reuse is None and len(pool) >= self._max_connections:
                    idle = next((c for c in pool if c.is_idle() and not self._given(c)), None)
                    if idle is None:
                        continue  # the request waits for a connection to free up
                    pool.remove(idle)
                    closing.append(idle)
            if reuse is None:
                reuse = self.create_connection(origin)
                pool.append(reuse)
            elif one_each:
                self._given_to[reuse] = pool_request
            pool_request.assign_to_connection(reuse)
        return closing

    @property
    def _given_to(self) -> dict[AsyncConnectionInterface, AsyncPoolRequest]:
        """The request each idle connection was last given to, in an HTTP/1.1 pool.

        httpcore gives an idle connection to every request that comes before the first one it
        was given to has started on it (a request takes two turns of the loop to start); all
        but the first then find it busy (ConnectionNotAvailable), queue again and replan the
        pool: 2.8 times a probe with 10 probes in flight, 3.7 with 64 (bench_probe.py targets).
        FlatPool hands such a connection to no other request, so each request is planned once."""
        return self.__dict__.setdefault("_given_to_requests", {})

    def _given(self, connection: AsyncConnectionInterface) -> bool:
        """connection (idle) is given to a request still in the pool that has not started on it:
        a request that started and ended left the pool; one that gave up before it started left
        the pool or was cleared."""
        request = self._given_to.get(connection)
        return request is not None and request.connection is connection and request in self._requests

    def _sweep(self, closing: list[AsyncConnectionInterface]) -> None:
        """httpcore's cleanup pass: drop closed connections, close expired ones and idle ones
        while the pool still holds more connections (idle or not) than max_keepalive ("left"
        counts them as they go)."""
        kept: list[AsyncConnectionInterface] = []
        left = len(self._connections)
        for connection in self._connections:
            if connection.is_closed():
                left -= 1
            elif connection.has_expired() or (
                connection.is_idle() and left > self._max_keepalive_connections
            ):
                left -= 1
                closing.append(connection)
            else:
                kept.append(connection)
        self._connections[:] = kept
        given_to = self._given_to
        for connection in [c for c in given_to if c not in kept]:  # gone: forget their requests
            del given_to[connection]

    def _reusable(
        self, origin: httpcore.Origin, closing: list[AsyncConnectionInterface], *, checked: bool
    ) -> AsyncConnectionInterface | None:
        """The first connection that can take a request to origin now, but not one given to a
        request that has not started on it; one found expired on the way (unless the sweep just
        asked them all) is moved to closing."""
        given_to, requests = self._given_to, self._requests
        while True:
            found = None
            for c in self._connections:
                if c.is_available() and c.can_handle_request(origin):
                    request = given_to.get(c)  # _given(c) inlined: this loop is the hot path
                    if request is None or request.connection is not c or request not in requests:
                        found = c
                        break
            if found is None or checked or not found.has_expired():
                return found
            self._connections.remove(found)
            closing.append(found)


def use_flat_pool(client: httpx.AsyncClient) -> bool:
    """Make client's default transport plan its pool with FlatPool (True), or leave httpcore's
    own where this httpcore's pool is not the one FlatPool was written against (False). httpx
    has no public way to pass a pool, and building one here would copy its TLS, proxy and
    limit settings: the pool httpx built changes class instead (FlatPool adds no state)."""
    skip_sniffio_search()
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    if type(pool) is not httpcore.AsyncConnectionPool or not all(
        hasattr(pool, name) for name in _POOL_STATE
    ):
        return False
    pool.__class__ = FlatPool
    return True


def skip_sniffio_search() -> None:
    """When sniffio is not installed, say so in sys.modules (None there is Python's documented
    "not importable"): every later ``import sniffio`` fails at once, as before, without
    searching sys.path again."""
    if "sniffio" not in sys.modules and importlib.util.find_spec("sniffio") is None:
        sys.modules["sniffio"] = None  # type: ignore[assignment]
