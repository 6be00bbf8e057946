"""The small HTTP/1.1 server core: responses, streaming, keep-alive, limits, errors, shutdown."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest

from llmscope_tui.httpserver import (
    HTTPError,
    LoopbackHTTPServer,
    Request,
    Response,
    StreamingResponse,
    ThreadedServer,
)

MAX_BODY = 1000


class App:
    """A test handler; the stream waits for a threading.Event the test sets."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.stream_closed = threading.Event()

    async def wait_release(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.release.is_set():
            if time.monotonic() > deadline:
                raise TimeoutError("test never released the stream")
            await asyncio.sleep(0.002)

    async def __call__(self, request: Request) -> Response | StreamingResponse:
        if request.path == "/plain":
            return Response.text("hello")
        if request.path == "/echo":
            return Response.json(
                {
                    "method": request.method,
                    "path": request.path,
                    "query": request.query,
                    "headers": request.headers,
                    "json": request.json() if request.body else None,
                    "port": request.client[1] if request.client else None,
                }
            )
        if request.path == "/boom":
            raise RuntimeError("handler bug")
        if request.path == "/teapot":
            raise HTTPError(418, "short and stout", {"x-kind": "teapot"})
        if request.path == "/stream":
            app = self

            async def chunks():
                try:
                    yield b"first\n"
                    await app.wait_release()
                    yield b""  # empty chunks are skipped, not sent as an end marker
                    yield b"second\n"
                finally:
                    app.stream_closed.set()

            return StreamingResponse(200, {"content-type": "text/plain"}, chunks())
        if request.path == "/stream-fails":

            async def failing():
                yield b"partial\n"
                raise RuntimeError("stream bug")

            return StreamingResponse(200, (), failing())
        return Response.json({"error": "not found"}, 404)


@pytest.fixture
def app() -> App:
    return App()


@pytest.fixture
def server(app: App):
    with ThreadedServer(app, max_body_bytes=MAX_BODY) as srv:
        yield srv


def raw_exchange(port: int, payload: bytes, timeout: float = 3.0) -> bytes:
    """Send raw bytes, read until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        out = b""
        while True:
            data = sock.recv(65536)
            if not data:
                return out
            out += data


def test_plain_and_json_responses(server: ThreadedServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=3) as client:
        r = client.get("/plain")
        assert r.status_code == 200
        assert r.text == "hello"
        assert r.headers["content-length"] == "5"
        assert r.headers["content-type"].startswith("text/plain")
        assert "date" in r.headers

        r = client.post("/echo?a=1&b=two%20words&empty=", json={"x": [1, 2]}, headers={"X-Custom-Thing": "Yes"})
        body = r.json()
        assert body["method"] == "POST"
        assert body["path"] == "/echo"
        assert body["query"] == {"a": "1", "b": "two words", "empty": ""}
        assert body["headers"]["x-custom-thing"] == "Yes"  # names lower-cased, values kept
        assert body["json"] == {"x": [1, 2]}

        r = client.get("/missing")
        assert r.status_code == 404


def test_invalid_json_is_400_and_httperror_is_rendered(server: ThreadedServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=3) as client:
        r = client.post("/echo", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 400
        assert "JSON" in r.json()["error"]["message"]
        r = client.get("/teapot")
        assert r.status_code == 418
        assert r.headers["x-kind"] == "teapot"
        assert r.json()["error"]["message"] == "short and stout"


def test_stream_arrives_before_handler_finishes(server: ThreadedServer, app: App) -> None:
    with httpx.Client(base_url=server.base_url, timeout=5) as client:
        with client.stream("GET", "/stream") as r:
            assert r.status_code == 200
            assert r.headers["transfer-encoding"] == "chunked"
            chunks = r.iter_raw()
            first = next(chunks)
            # The generator is parked until we release it, so this chunk was flushed on its own.
            assert first == b"first\n"
            assert not app.stream_closed.is_set()
            app.release.set()
            rest = b"".join(chunks)
        assert rest == b"second\n"
        assert app.stream_closed.wait(2)
        # The connection is still usable after a streamed response.
        assert client.get("/plain").text == "hello"


def test_keep_alive_reuses_one_connection(server: ThreadedServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=3) as client:
        ports = {client.post("/echo", json={}).json()["port"] for _ in range(5)}
    assert len(ports) == 1

    # Pipelined raw requests on one socket are answered in order.
    two = b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\nGET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    out = raw_exchange(server.port, two)
    assert out.count(b"HTTP/1.1 200") == 2
    assert out.count(b"hello") == 2


def test_body_over_limit_is_413(server: ThreadedServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=5) as client:
        r = client.post("/echo", content=b"x" * (MAX_BODY + 1))
        assert r.status_code == 413
        # A big body sent in full before we answer still gets a clean 413, not a reset.
        r = client.post("/echo", content=b"x" * 3_000_000)
        assert r.status_code == 413

        def chunked_body():
            for _ in range(10):
                yield b"y" * 200

        r = client.post("/echo", content=chunked_body())  # no content-length: counted as it arrives
        assert r.status_code == 413
        # Exactly at the limit is fine.
        r = client.post("/echo", content=b'"' + b"z" * (MAX_BODY - 2) + b'"')
        assert r.status_code == 200


def test_malformed_request_is_400_and_server_survives(server: ThreadedServer) -> None:
    out = raw_exchange(server.port, b"THIS IS NOT HTTP\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    out = raw_exchange(server.port, b"GET /plain HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 400")
    out = raw_exchange(server.port, b"GET /plain HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 40_000 + b"\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 431")
    with httpx.Client(base_url=server.base_url, timeout=3) as client:
        assert client.get("/plain").status_code == 200


def test_expect_100_continue(server: ThreadedServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as sock:
        sock.sendall(
            b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 2\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n"
        )
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100")
        sock.sendall(b"{}")
        out = b""
        while data := sock.recv(65536):
            out += data
    assert out.startswith(b"HTTP/1.1 200")


def test_handler_exception_is_500_and_server_keeps_serving(server: ThreadedServer) -> None:
    with httpx.Client(base_url=server.base_url, timeout=3) as client:
        r = client.get("/boom")
        assert r.status_code == 500
        assert "handler bug" not in r.text  # no internals leak
        assert client.get("/plain").status_code == 200
        # A stream that fails after its headers aborts that connection only.
        with pytest.raises(httpx.RemoteProtocolError):
            with client.stream("GET", "/stream-fails") as r:
                r.read()
        assert client.get("/plain").status_code == 200
    assert server.server.handler_errors == 2


def test_stop_mid_stream_is_clean(app: App) -> None:
    srv = ThreadedServer(app).start()
    thread_name = "llmscope-http"
    port = srv.port
    client = httpx.Client(base_url=srv.base_url, timeout=5)
    try:
        with client.stream("GET", "/stream") as r:
            chunks = r.iter_raw()
            assert next(chunks) == b"first\n"
            started = time.monotonic()
            srv.stop()
            assert time.monotonic() - started < 2.0
            with pytest.raises(httpx.HTTPError):  # the body was cut short
                for _ in chunks:
                    pass
    finally:
        client.close()
    assert app.stream_closed.wait(1)  # the generator's finally ran
    assert not srv.running
    assert not any(t.name == thread_name and t.is_alive() for t in threading.enumerate())
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    srv.stop()  # idempotent


def test_async_context_manager_in_callers_loop() -> None:
    async def handler(request: Request) -> Response:
        return Response.json({"ok": True})

    async def main() -> None:
        async with LoopbackHTTPServer(handler) as server:
            assert server.base_url == f"http://127.0.0.1:{server.port}"
            async with httpx.AsyncClient(base_url=server.base_url) as client:
                results = await asyncio.gather(*[client.get("/") for _ in range(20)])
            assert all(r.json() == {"ok": True} for r in results)
        assert not server.running

    asyncio.run(main())


def test_start_failure_is_raised_and_leaves_no_thread(server: ThreadedServer) -> None:
    async def handler(request: Request) -> Response:
        return Response()

    clash = ThreadedServer(handler, port=server.port, name="llmscope-clash")
    with pytest.raises(OSError):
        clash.start()
    assert not any(t.name == "llmscope-clash" for t in threading.enumerate())
