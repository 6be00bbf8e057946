"""FlatPool plans the pool as httpcore does, without asking every idle connection on every request."""

from __future__ import annotations

import random
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import httpcore
import pytest

from llmscope_tui.probe.offloop import peek_readable as _readable
from llmscope_tui.probe.pool import FlatPool, skip_sniffio_search, use_flat_pool
from llmscope_tui.probe.scheduler import make_client
from llmscope_tui.probe.stream import Timeouts

ORIGINS = [httpcore.URL(f"http://{host}:80/").origin for host in ("a", "b")]


@dataclass(eq=False)
class Conn:
    """A pooled connection reduced to the state the pool plans with."""

    name: str
    origin: httpcore.Origin
    closed: bool = False
    expired: bool = False
    idle: bool = True
    checks: int = 0

    def is_closed(self) -> bool:
        return self.closed

    def has_expired(self) -> bool:
        self.checks += 1
        return self.expired

    def is_idle(self) -> bool:
        return self.idle

    def is_available(self) -> bool:
        return self.idle

    def can_handle_request(self, origin: httpcore.Origin) -> bool:
        return origin == self.origin


def _pool(kind: type[httpcore.AsyncConnectionPool], seed: int) -> tuple[httpcore.AsyncConnectionPool, list]:
    rng = random.Random(seed)

    class Pool(kind):  # type: ignore[valid-type, misc]
        def create_connection(self, origin: httpcore.Origin) -> Conn:  # type: ignore[override]
            created.append(Conn(f"new{len(created)}", origin, idle=False))
            return created[-1]

    created: list[Conn] = []
    pool = Pool(max_connections=rng.randint(1, 8), max_keepalive_connections=rng.randint(0, 8))
    for i in range(rng.randint(0, 8)):
        pool._connections.append(
            Conn(f"c{i}", rng.choice(ORIGINS), closed=rng.random() < 0.2, expired=rng.random() < 0.3,
                 idle=rng.random() < 0.6)
        )
    requests = []
    for _ in range(rng.randint(0, 4)):
        request = httpcore._async.connection_pool.AsyncPoolRequest(
            httpcore.Request("GET", f"http://{rng.choice('ab')}/")
        )
        pool._requests.append(request)
        requests.append(request)
    return pool, requests


def _plan(kind: type[httpcore.AsyncConnectionPool], seed: int) -> tuple[list[str], list[str], list[str | None]]:
    pool, requests = _pool(kind, seed)
    closing = pool._assign_requests_to_connections()
    assigned = [r.connection.name if r.connection is not None else None for r in requests]  # type: ignore[attr-defined]
    return [c.name for c in closing], [c.name for c in pool._connections], assigned  # type: ignore[attr-defined]


@pytest.fixture(autouse=True)
def _as_if_on_asyncio() -> Iterator[None]:
    """These tests call the pool's planning directly, outside a loop. Where sniffio is installed
    (the openai and anthropic SDKs bring it), httpcore asks it which async library runs, and
    outside a loop it knows none; the probe always plans on asyncio's loop, so say that."""
    try:
        import sniffio
    except ImportError:
        yield
        return
    token = sniffio.current_async_library_cvar.set("asyncio")
    try:
        yield
    finally:
        sniffio.current_async_library_cvar.reset(token)


def _shared(plan: tuple[list[str], list[str], list[str | None]]) -> bool:
    """httpcore gave one existing connection to several queued requests, or closed one it gave
    to a request (to make room for the next)."""
    closing, _, assigned = plan
    old = [name for name in assigned if name is not None and not name.startswith("new")]
    return len(old) != len(set(old)) or bool(set(closing) & set(old))


@pytest.mark.parametrize("seed", range(400))
def test_flat_pool_makes_httpcores_decisions(seed: int) -> None:
    """Same connections closed, kept and given to each queued request, in the same order,
    except that an idle connection goes to one of the requests waiting for it (below)."""
    flat, core = _plan(FlatPool, seed), _plan(httpcore.AsyncConnectionPool, seed)
    if not _shared(core):
        assert flat == core
        return
    # httpcore gives an idle connection to every request waiting for one (and may close it to
    # make room for the next); the first to start takes it and each other finds it busy or
    # closed (ConnectionNotAvailable), queues again and replans the pool. FlatPool gives it to
    # the first of them only, never closes it, and plans the others at once.
    closing, _, assigned = flat
    old = [name for name in assigned if name is not None and not name.startswith("new")]
    assert len(old) == len(set(old))
    assert not set(closing) & set(assigned)
    for name in set(core[2]) - set(core[0]) - {None}:  # (httpcore may close what it hands out)
        if not name.startswith("new"):
            assert assigned[core[2].index(name)] == name


def test_some_random_pools_have_a_connection_wanted_by_two_requests() -> None:
    shared = sum(_shared(_plan(httpcore.AsyncConnectionPool, seed)) for seed in range(400))
    assert 20 < shared < 380


def _idle_pool(kind: type[httpcore.AsyncConnectionPool], n: int) -> httpcore.AsyncConnectionPool:
    pool = kind(max_connections=n + 1, max_keepalive_connections=n + 1)
    pool._connections.extend(Conn(f"c{i}", ORIGINS[0]) for i in range(n))
    return pool


def _request(pool: httpcore.AsyncConnectionPool) -> object:
    request = httpcore._async.connection_pool.AsyncPoolRequest(httpcore.Request("GET", "http://a/"))
    pool._requests.append(request)
    return request


def test_a_request_asks_one_idle_connection_not_all() -> None:
    """httpcore asks each of 64 idle connections whether the server closed it (a system call
    each) for every request; FlatPool asks the one it hands out, and all at most every SWEEP_S."""
    plain, flat = _idle_pool(httpcore.AsyncConnectionPool, 64), _idle_pool(FlatPool, 64)
    for pool in (plain, flat):
        pool._assign_requests_to_connections()  # FlatPool's first call is a sweep
        for conn in pool._connections:
            conn.checks = 0  # type: ignore[attr-defined]
        _request(pool)
        pool._assign_requests_to_connections()
    assert sum(c.checks for c in plain._connections) == 64  # type: ignore[attr-defined]
    assert sum(c.checks for c in flat._connections) == 1  # type: ignore[attr-defined]


def test_an_expired_idle_connection_is_never_handed_out_between_sweeps() -> None:
    pool = _idle_pool(FlatPool, 3)
    pool._assign_requests_to_connections()  # the sweep: all fine then
    first = pool._connections[0]
    first.expired = True  # type: ignore[attr-defined]  # the server closed it since
    request = _request(pool)
    closing = pool._assign_requests_to_connections()
    assert closing == [first]
    assert first not in pool._connections
    assert request.connection is pool._connections[0]  # type: ignore[attr-defined]


def test_make_client_plans_with_flat_pool() -> None:
    client = make_client(4, Timeouts())
    assert type(client._transport._pool) is FlatPool  # type: ignore[attr-defined]
    assert use_flat_pool(client) is False  # already flat: left alone


@pytest.fixture
def no_sniffio(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """sniffio made uninstalled, and a record of every time the import system searched for it."""
    searched: list[str] = []

    class Spy:
        @staticmethod
        def find_spec(name: str, path: object = None, target: object = None) -> None:
            if name == "sniffio":
                searched.append(name)

    monkeypatch.delitem(sys.modules, "sniffio", raising=False)
    monkeypatch.setattr(sys, "meta_path", [Spy(), *(f for f in sys.meta_path if "Path" not in repr(f))])
    yield searched


def test_httpcore_no_longer_searches_for_a_missing_sniffio(no_sniffio: list[str]) -> None:
    """httpcore imports sniffio for every lock and event it makes; not installed, each import
    searched sys.path again. After skip_sniffio_search it fails at once, as it did before."""
    skip_sniffio_search()
    searches = len(no_sniffio)
    for _ in range(5):
        assert httpcore._synchronization.current_async_library() == "asyncio"
    assert len(no_sniffio) == searches == 1


def test_readable_is_a_peek_that_takes_nothing() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        ours.setblocking(False)
        assert _readable(ours) is False
        theirs.sendall(b"x")
        assert _readable(ours) is True
        assert ours.recv(10) == b"x"  # the peek left the byte where it was
        theirs.close()
        assert _readable(ours) is True  # the server closed: readable, and the read says b""
    assert _readable(ours) is True  # closed on our side too


def test_a_closed_connection_waits_for_the_sweep_and_is_never_handed_out() -> None:
    pool = _idle_pool(FlatPool, 3)
    pool._assign_requests_to_connections()  # the sweep
    first = pool._connections[0]
    first.closed = True  # type: ignore[attr-defined]
    first.idle = False  # type: ignore[attr-defined]  # a closed connection is not available
    request = _request(pool)
    assert pool._assign_requests_to_connections() == []
    assert request.connection is pool._connections[1]  # type: ignore[attr-defined]
    pool._swept_at = float("-inf")  # type: ignore[attr-defined]  # SWEEP_S later
    pool._assign_requests_to_connections()
    assert first not in pool._connections


def test_an_idle_connection_goes_to_one_waiting_request() -> None:
    """Two requests arrive before the first starts on the one idle connection: the second gets a
    new connection, not the same one (with httpcore it would find it busy, queue again and
    replan the pool; 3-4 times a probe with 64 in flight)."""
    pool = _idle_pool(FlatPool, 1)
    first, second = _request(pool), _request(pool)
    pool._assign_requests_to_connections()
    assert first.connection is pool._connections[0]  # type: ignore[attr-defined]
    assert second.connection is not None and second.connection is not first.connection  # type: ignore[attr-defined]


@pytest.mark.parametrize("how", ["started and finished", "gave up before starting"])
def test_a_connection_is_given_again_once_its_request_is_gone(how: str) -> None:
    pool = _idle_pool(FlatPool, 1)
    conn = pool._connections[0]
    first = _request(pool)
    pool._assign_requests_to_connections()
    assert first.connection is conn  # type: ignore[attr-defined]
    if how == "started and finished":
        conn.idle = False  # type: ignore[attr-defined]
        pool._assign_requests_to_connections()  # another request came or went meanwhile
        conn.idle = True  # type: ignore[attr-defined]
    pool._requests.remove(first)  # type: ignore[arg-type]  # as httpcore does when it ends
    second = _request(pool)
    pool._assign_requests_to_connections()
    assert second.connection is conn  # type: ignore[attr-defined]
    assert len(pool._connections) == 1


def test_a_full_pool_keeps_the_connection_it_gave_and_the_next_request_waits() -> None:
    """httpcore would close the idle connection it had just given to the first request, to make
    room for the second: both would then fail on it and queue again."""
    pool = FlatPool(max_connections=1, max_keepalive_connections=1)
    pool._connections.append(Conn("c0", ORIGINS[0]))
    first = _request(pool)
    other = httpcore._async.connection_pool.AsyncPoolRequest(httpcore.Request("GET", "http://b/"))
    pool._requests.append(other)
    assert pool._assign_requests_to_connections() == []
    assert first.connection is pool._connections[0]  # type: ignore[attr-defined]
    assert other.connection is None  # it waits for a connection to free up
