"""The HTTP stack (llmscope_tui.server): listeners, limits, health, and what a slow client can hold."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import AsyncIterator

import anyio
import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter

from llmscope_tui.ingest import IngestOptions
from llmscope_tui.model import Sample
from llmscope_tui.server import (
    BindError,
    Endpoints,
    HTTPServer,
    Limits,
    ThreadedHTTPServer,
    bind,
    build_app,
)
from llmscope_tui.server.app import Request, Response, StreamingResponse, endpoint, router

pytestmark = pytest.mark.anyio

GOOD = {"provider": "openai", "model": "gpt-4o-mini", "tokens_in": 12}
#: Small timeouts so a held connection is cut within a fraction of a second; the tests only
#: wait (up to 10 s) for the cut to happen, they never assert how fast it came.
QUICK = Limits(head_timeout_s=0.2, keep_alive_s=0.2, body_timeout_s=0.2, max_connections=8, overflow_connections=2)


def registry() -> CollectorRegistry:
    r = CollectorRegistry()
    Counter("demo_things", "Things", registry=r).inc()
    return r


@pytest.fixture
async def quick() -> AsyncIterator[tuple[HTTPServer, list[Sample]]]:
    taken: list[Sample] = []
    from llmscope_tui.server import IngestRoutes

    app = build_app(ingest=IngestRoutes(taken.extend), max_body_bytes=1000, body_timeout_s=QUICK.body_timeout_s)
    server = HTTPServer(app, bind("127.0.0.1", 0), QUICK)
    await server.start()
    try:
        yield server, taken
    finally:
        await server.stop()


def _until_closed(sock: socket.socket, trickle: bytes = b"") -> bool:
    """Read (sending ``trickle`` a byte at a time) until the server closes; False after 10 s."""
    sock.settimeout(0.05)
    deadline = time.monotonic() + 10
    for byte in [trickle[i : i + 1] for i in range(len(trickle))] or [b""] * 10**6:
        if time.monotonic() > deadline:
            return False
        try:
            if byte:
                sock.send(byte)
            if sock.recv(65536) == b"":
                return True
        except TimeoutError:
            continue
        except OSError:  # reset or broken pipe: closed too
            return True
    return False


async def test_silent_trickling_and_idle_connections_are_cut(quick: tuple[HTTPServer, list[Sample]]) -> None:
    server, _ = quick
    port = server.port

    def exercise() -> list[bool]:
        silent = socket.create_connection(("127.0.0.1", port))
        trickling = socket.create_connection(("127.0.0.1", port))
        idle = socket.create_connection(("127.0.0.1", port))
        idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        idle.settimeout(5)
        assert idle.recv(65536).startswith(b"HTTP/1.1 200")
        slow_head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 5000
        try:
            return [_until_closed(silent), _until_closed(trickling, slow_head), _until_closed(idle)]
        finally:
            for sock in (silent, trickling, idle):
                sock.close()

    assert await anyio.to_thread.run_sync(exercise) == [True, True, True]


async def test_a_body_that_never_completes_is_408(quick: tuple[HTTPServer, list[Sample]]) -> None:
    server, taken = quick

    def exercise() -> bytes:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{")
            answer = b""
            while data := sock.recv(65536):  # the answer, then the close (the next head never came)
                answer += data
            return answer

    answer = await anyio.to_thread.run_sync(exercise)
    assert answer.startswith(b"HTTP/1.1 408") and b"request body not received within 0.2 s" in answer
    assert taken == []


async def test_limits_head_body_and_connections(quick: tuple[HTTPServer, list[Sample]]) -> None:
    server, taken = quick
    url = f"http://127.0.0.1:{server.port}"
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        big_head = await client.get("/healthz", headers={"x-big": "a" * 40_000})
        big_body = await client.post("/v1/events", content=b"[" + b" " * 2000 + b"]", headers={"content-type": "application/json"})
        fine = await client.post("/v1/events", json=GOOD)
    assert big_head.status_code == 431
    assert big_head.json()["error"]["message"] == "request head exceeds 16384 bytes"
    assert big_body.status_code == 413
    assert big_body.json() == {"error": {"code": 413, "message": "request body exceeds 1000 bytes"}}
    assert fine.status_code == 202 and len(taken) == 1

    def trickled_big_head() -> bytes:  # a head arriving in pieces: h11's bound (under uvicorn)
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ")
            for _ in range(9):  # the 9th piece takes the incomplete head past 16 KiB; nothing after it
                sock.sendall(b"a" * 2000)
            return sock.recv(65536)

    assert (await anyio.to_thread.run_sync(trickled_big_head)).startswith(b"HTTP/1.1 400")

    held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(QUICK.max_connections)]
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            refused = await client.get("/healthz")
        assert refused.status_code == 503  # over max_connections: answered, not queued
    finally:
        for sock in held:
            sock.close()


async def test_a_flood_of_silent_connections_is_capped_at_once() -> None:
    """100 connections that send nothing: past the cap (and its 503 overflow) each is closed as
    it opens, not held until its head deadline (10 s by default; 75 s idle before uvicorn)."""
    app = build_app(ingest=None, max_body_bytes=1000, body_timeout_s=1.0)
    limits = Limits(head_timeout_s=30.0, max_connections=8, overflow_connections=2)
    server = HTTPServer(app, bind("127.0.0.1", 0), limits)
    await server.start()

    def flood() -> tuple[int, int]:
        socks = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(100)]
        try:
            closed: set[int] = set()
            deadline = time.monotonic() + 10  # a busy machine accepts them slowly
            while len(closed) < 90 and time.monotonic() < deadline:
                for i, sock in enumerate(socks):
                    if i in closed:
                        continue
                    sock.settimeout(0.001)
                    try:
                        if sock.recv(1) == b"":
                            closed.add(i)
                    except TimeoutError:
                        pass
                    except OSError:
                        closed.add(i)
            return len(closed), len(socks) - len(closed)
        finally:
            for sock in socks:
                sock.close()

    try:
        closed, open_ = await anyio.to_thread.run_sync(flood)
    finally:
        await server.stop()
    assert open_ == 10 and closed == 90  # 8 + 2 overflow held (until their 30 s deadline)


async def test_a_failing_handler_is_500_and_the_server_keeps_serving() -> None:
    async def boom(request: Request) -> Response:
        raise RuntimeError("handler bug with a secret")

    async def fine(request: Request) -> Response:
        return Response.json({"method": request.method, "body": request.body.decode()})

    app = router(
        {"/boom": endpoint(boom, max_body_bytes=100, body_timeout_s=5), "/fine": endpoint(fine, max_body_bytes=100, body_timeout_s=5)},
        endpoint(fine, max_body_bytes=100, body_timeout_s=5),
    )
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    server = HTTPServer(app, bind("127.0.0.1", 0))
    await server.start()
    try:
        assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before  # ours, not uvicorn's
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}", timeout=5) as client:
            failed = await client.get("/boom")
            after = await client.post("/fine/", content=b"hello")
    finally:
        await server.stop()
    assert failed.status_code == 500 and failed.json()["error"]["message"] == "internal server error"
    assert "secret" not in failed.text
    assert after.json() == {"method": "POST", "body": "hello"}
    assert not server.running
    with pytest.raises(OSError):  # the port is released
        socket.create_connection(("127.0.0.1", server.port), timeout=1).close()


async def test_ingest_and_metrics_on_one_port_or_two() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    shared = Endpoints(
        ingest=IngestOptions(port=port), sink=lambda samples: None, metrics=(registry(), "127.0.0.1", port)
    )
    separate = Endpoints(ingest=IngestOptions(port=0), sink=lambda samples: None, metrics=(registry(), "127.0.0.1", 0))
    assert shared.events_url == f"http://127.0.0.1:{port}/v1/events"
    assert shared.metrics_url == f"http://127.0.0.1:{port}/metrics"
    assert separate.events_url and separate.metrics_url
    assert separate.events_url.rsplit("/", 2)[0] != separate.metrics_url.rsplit("/", 1)[0]
    async with anyio.create_task_group() as tg, httpx.AsyncClient(timeout=5) as client:
        await tg.start(shared.serve)
        await tg.start(separate.serve)
        one = [await client.get(shared.metrics_url), await client.post(shared.events_url, json=GOOD)]
        health = await client.get(f"http://127.0.0.1:{port}/healthz")
        ingest_base = separate.events_url.removesuffix("/v1/events")
        metrics_base = separate.metrics_url.removesuffix("/metrics")
        two = [await client.get(separate.metrics_url), await client.post(separate.events_url, json=GOOD)]
        no_metrics_on_ingest = await client.get(ingest_base + "/metrics")
        any_path_is_metrics = await client.get(metrics_base + "/")  # as prometheus_client's server did
        tg.cancel_scope.cancel()
    assert [r.status_code for r in one + two] == [200, 202, 200, 202]
    assert "demo_things_total 1.0" in one[0].text
    assert health.json() == {"status": "ok"}
    assert no_metrics_on_ingest.status_code == 404
    assert "demo_things_total" in any_path_is_metrics.text


async def test_a_taken_port_is_one_line_and_nothing_stays_bound() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(BindError) as info:
            Endpoints(metrics=(registry(), "127.0.0.1", 0), ingest=IngestOptions(port=port), sink=lambda s: None)
    assert str(info.value).startswith(f"cannot serve ingest on 127.0.0.1:{port}: ")
    assert "\n" not in str(info.value)


def test_a_stream_is_sent_as_it_is_yielded_and_closed_when_the_server_stops() -> None:
    """What the demo provider needs (its port to this stack): each chunk flushed on its own, the
    generator closed on every way out, a handler in a thread of its own."""
    release, closed = threading.Event(), threading.Event()

    async def handler(request: Request) -> Response | StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            try:
                yield b"first\n"
                while not release.is_set():
                    await anyio.sleep(0.002)
                yield b""  # skipped, not an end marker
                yield f"second {request.query['a']}\n".encode()
            finally:
                closed.set()

        if request.path == "/stream":
            return StreamingResponse(200, [("content-type", "text/plain")], chunks())
        return Response.text("hello")

    app = endpoint(handler, max_body_bytes=100, body_timeout_s=5)
    # a short grace on stop: the stream in flight is cut after 0.2 s, not the default 2 s
    with ThreadedHTTPServer(app, limits=Limits(shutdown_timeout_s=0.2), name="stream-test") as server:
        assert server.running
        with httpx.Client(base_url=server.base_url, timeout=5) as client:
            with client.stream("GET", "/stream?a=1") as response:
                assert response.headers["transfer-encoding"] == "chunked"
                parts = response.iter_raw()
                assert next(parts) == b"first\n"  # while the generator is parked
                assert not closed.is_set()
                release.set()
                assert b"".join(parts) == b"second 1\n"
            assert closed.wait(5)
            assert client.get("/plain").text == "hello"  # the connection is still usable
            release.clear()
            closed.clear()
            with client.stream("GET", "/stream?a=2") as response:
                parts = response.iter_raw()
                assert next(parts) == b"first\n"
                stopper = threading.Thread(target=server.stop)
                stopper.start()
                with pytest.raises(httpx.HTTPError):  # the body is cut short
                    b"".join(parts)
                stopper.join(10)
    assert closed.wait(5)  # the generator's finally ran
    assert not server.running


def test_a_threaded_server_on_a_taken_port_raises_and_leaves_no_thread() -> None:
    async def handler(request: Request) -> Response:
        return Response.text("x")

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        clash = ThreadedHTTPServer(endpoint(handler, max_body_bytes=10, body_timeout_s=1), port=taken.getsockname()[1], name="clash")
        with pytest.raises(OSError):
            clash.start()
    assert not clash.running and not any(t.name == "clash" for t in threading.enumerate())
