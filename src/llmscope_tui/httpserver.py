"""A small asyncio HTTP/1.1 server core on h11, for the demo provider (and the tests' fake upstreams).

What llmscope-tui itself serves (ingest, /metrics, /healthz) runs on llmscope_tui.server (uvicorn);
this module stays only until the demo moves to that stack too.

It is deliberately small: one coroutine per connection, keep-alive, bodies read whole (bounded by
``max_body_bytes``) before the handler runs, and two kinds of response. ``Response`` is sent in
one write with a Content-Length; ``StreamingResponse`` is sent with chunked transfer encoding and
every chunk is written and drained as soon as the handler's iterator yields it (TCP_NODELAY is on),
so a client stamping arrival times sees the server's pacing, not a buffer's.

Errors never kill the server: a malformed request gets 400 (or 431 for oversized headers) and the
connection is closed; a body over the limit gets 413; an exception in the handler gets 500 and the
connection stays usable; an exception inside a stream after the headers went out aborts that one
connection (the client sees a truncated chunked body, which is the honest signal).

``ThreadedServer`` runs one in a background thread with its own event loop, so what it serves is
not perturbed by whatever the caller's loop is doing.

Nothing here knows about LLMs or about Textual.
"""

from __future__ import annotations

import asyncio
import email.utils
import http
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, unquote

import h11

__all__ = [
    "Handler",
    "HTTPError",
    "LoopbackHTTPServer",
    "Request",
    "Response",
    "StreamingResponse",
    "ThreadedServer",
]

log = logging.getLogger(__name__)
# A library must not print through logging's last-resort handler (it would scribble over a TUI);
# records still propagate to whatever the application configured.
log.addHandler(logging.NullHandler())

HeadersLike: TypeAlias = Mapping[str, str] | Iterable[tuple[str, str]]

_READ_SIZE = 65536
#: After refusing a body (413) we keep reading and discarding for a short while before closing,
#: so the client finishes writing and reads our answer instead of getting a connection reset.
_LINGER_SECONDS = 2.0
_LINGER_MAX_BYTES = 64 * 1024 * 1024


class HTTPError(Exception):
    """Raise from a handler (or from ``Request.json()``) to answer with this status and message."""

    def __init__(self, status: int, message: str = "", headers: HeadersLike = ()) -> None:
        super().__init__(message or _reason(status))
        self.status = status
        self.message = message or _reason(status)
        self.headers = headers

    def to_response(self) -> Response:
        return Response.json({"error": {"code": self.status, "message": self.message}}, self.status, self.headers)


@dataclass(slots=True)
class Request:
    """One request, body read in full. Header names are lower-case; repeated headers are joined with ', '."""

    method: str
    target: str  # the raw request target, e.g. "/v1beta/models/m:streamGenerateContent?alt=sse"
    path: str  # percent-decoded path, no query
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes = b""
    http_version: str = "1.1"
    client: tuple[str, int] | None = None

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body parsed as JSON; raises HTTPError(400) when it is empty or not JSON."""
        if not self.body:
            raise HTTPError(400, "request body is empty; expected JSON")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, f"request body is not valid JSON: {exc}") from None


@dataclass(slots=True)
class Response:
    """A complete response, sent with a Content-Length."""

    status: int = 200
    headers: HeadersLike = ()
    body: bytes | str = b""

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: HeadersLike = ()) -> Response:
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        return cls(status, [("content-type", "application/json"), *_header_items(headers)], body)

    @classmethod
    def text(
        cls, text: str, status: int = 200, headers: HeadersLike = (), content_type: str = "text/plain; charset=utf-8"
    ) -> Response:
        return cls(status, [("content-type", content_type), *_header_items(headers)], text.encode())


class StreamingResponse:
    """A response whose body comes from an async iterator of bytes, sent chunked, each chunk flushed at once.

    The headers go out before the first chunk is awaited. If the iterator raises after that, the
    connection is aborted (the client sees an incomplete body). The iterator is always closed
    (``aclose()``) when the response ends, the client goes away or the server stops, so an async
    generator's ``finally`` runs.
    """

    __slots__ = ("status", "headers", "chunks")

    def __init__(self, status: int = 200, headers: HeadersLike = (), chunks: AsyncIterable[bytes] | None = None):
        if chunks is None:
            raise TypeError("StreamingResponse needs chunks (an async iterable of bytes)")
        self.status = status
        self.headers = headers
        self.chunks = chunks

    def __repr__(self) -> str:
        return f"StreamingResponse(status={self.status!r})"


Handler: TypeAlias = Callable[[Request], Awaitable[Response | StreamingResponse]]


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return ""


def _header_items(headers: HeadersLike) -> list[tuple[str, str]]:
    if isinstance(headers, Mapping):
        return list(headers.items())
    return list(headers)


class _DateCache:
    """RFC 7231 Date header value, formatted at most once a second."""

    __slots__ = ("_second", "_value")

    def __init__(self) -> None:
        self._second = -1
        self._value = b""

    def get(self) -> bytes:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second = second
            self._value = email.utils.formatdate(now, usegmt=True).encode()
        return self._value


_DATE = _DateCache()


class LoopbackHTTPServer:
    """An asyncio HTTP/1.1 server calling ``handler(request)`` for every request.

    ``await start()`` binds (port 0 picks a free port), ``await stop()`` closes the listener and
    every connection, cancelling in-flight handlers and streams. Also an async context manager.
    """

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_bytes: int = 1_000_000,
        *,
        idle_timeout: float = 75.0,
        max_header_bytes: int = 16 * 1024,
        server_header: str = "llmscope-tui",
    ) -> None:
        self.handler = handler
        self.host = host
        self.max_body_bytes = max_body_bytes
        self.idle_timeout = idle_timeout
        self.max_header_bytes = max_header_bytes
        self._server_header = server_header.encode()
        self._requested_port = port
        self._port: int | None = None
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        #: Counters, for tests and diagnostics (bounded: plain integers).
        self.requests_served = 0
        self.handler_errors = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> LoopbackHTTPServer:
        if self._server is not None:
            raise RuntimeError("server already started")
        self._server = await asyncio.start_server(self._on_connection, self.host, self._requested_port)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.close()
        tasks = list(self._connections)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        try:
            await asyncio.wait_for(server.wait_closed(), 5.0)
        except TimeoutError:  # pragma: no cover - wait_closed only waits for connections we cancelled
            log.warning("HTTP server on port %s did not close within 5 s", self._port)

    async def __aenter__(self) -> LoopbackHTTPServer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def base_url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def open_connections(self) -> int:
        return len(self._connections)

    # -- per connection --------------------------------------------------------------------------

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            sock = writer.get_extra_info("socket")
            if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
                try:
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                except OSError:  # pragma: no cover
                    pass
            await _Connection(self, reader, writer).run()
        except asyncio.CancelledError:
            # Only stop() cancels connections. End normally: asyncio's stream machinery calls
            # task.exception() on this task and would log a cancelled one as an error.
            pass
        except (ConnectionError, TimeoutError):
            pass
        except OSError as exc:  # pragma: no cover - platform-specific socket errors
            log.debug("connection error: %r", exc)
        except Exception:  # pragma: no cover - a bug in this module; keep serving others
            log.exception("unexpected error on an HTTP connection")
        finally:
            self._connections.discard(task)
            transport = writer.transport
            if not transport.is_closing():
                transport.close()


class _Connection:
    __slots__ = ("server", "reader", "writer", "conn", "client")

    def __init__(self, server: LoopbackHTTPServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.conn = h11.Connection(h11.SERVER, max_incomplete_event_size=server.max_header_bytes)
        peer = writer.get_extra_info("peername")
        self.client = (peer[0], peer[1]) if isinstance(peer, tuple) and len(peer) >= 2 else None

    async def _next_event(self) -> Any:
        conn = self.conn
        while True:
            event = conn.next_event()
            if event is not h11.NEED_DATA:
                return event
            if conn.they_are_waiting_for_100_continue:
                self.writer.write(conn.send(h11.InformationalResponse(status_code=100, headers=[])))
            async with asyncio.timeout(self.server.idle_timeout):
                data = await self.reader.read(_READ_SIZE)
            conn.receive_data(data)

    async def run(self) -> None:
        conn = self.conn
        while True:
            try:
                event = await self._next_event()
            except h11.RemoteProtocolError as exc:
                await self._send_error(exc.error_status_hint, f"malformed request: {exc}")
                return
            if isinstance(event, h11.ConnectionClosed):
                return
            if not isinstance(event, h11.Request):  # pragma: no cover - h11 yields a Request first
                return
            keep_alive = await self._serve(event)
            if not keep_alive or conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
                return
            conn.start_next_cycle()

    async def _serve(self, event: h11.Request) -> bool:
        """Answer one request; True when the connection may carry another."""
        server = self.server
        headers: dict[str, str] = {}
        content_length: int | None = None
        head_bytes = len(event.target)
        for raw_name, raw_value in event.headers:
            head_bytes += len(raw_name) + len(raw_value) + 4
            name = raw_name.decode("ascii", "replace")  # h11 lower-cases names
            value = raw_value.decode("latin-1")
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
            if raw_name == b"content-length":
                content_length = int(raw_value)  # h11 validated it
        if head_bytes > server.max_header_bytes:
            # h11 only bounds an *incomplete* head; a complete one that arrived in one read is checked here.
            await self._send_error(431, f"request head exceeds {server.max_header_bytes} bytes")
            await self._linger()
            return False
        if content_length is not None and content_length > server.max_body_bytes:
            await self._send_error(413, f"request body exceeds {server.max_body_bytes} bytes")
            await self._linger()
            return False

        body = bytearray()
        try:
            while True:
                part = await self._next_event()
                if isinstance(part, h11.Data):
                    body += part.data
                    if len(body) > server.max_body_bytes:
                        await self._send_error(413, f"request body exceeds {server.max_body_bytes} bytes")
                        await self._linger()
                        return False
                elif isinstance(part, h11.EndOfMessage):
                    break
                else:  # ConnectionClosed mid-body
                    return False
        except h11.RemoteProtocolError as exc:
            await self._send_error(exc.error_status_hint, f"malformed request body: {exc}")
            return False

        target = event.target.decode("latin-1")
        raw_path, _, raw_query = target.partition("?")
        request = Request(
            method=event.method.decode("ascii", "replace"),
            target=target,
            path=unquote(raw_path),
            query=dict(parse_qsl(raw_query, keep_blank_values=True)) if raw_query else {},
            headers=headers,
            body=bytes(body),
            http_version=event.http_version.decode("ascii", "replace"),
            client=self.client,
        )
        server.requests_served += 1
        try:
            response = await server.handler(request)
            if not isinstance(response, (Response, StreamingResponse)):
                raise TypeError(f"handler returned {type(response).__name__}, not a Response")
        except HTTPError as exc:
            response = exc.to_response()
        except Exception:
            server.handler_errors += 1
            log.exception("HTTP handler failed on %s %s", request.method, request.path)
            response = HTTPError(500, "internal server error").to_response()

        head_only = request.method == "HEAD"
        if isinstance(response, Response):
            return await self._send_full(response, head_only)
        return await self._send_stream(response, head_only)

    def _response_headers(self, headers: HeadersLike, content_length: int | None) -> list[tuple[bytes, bytes]]:
        out: list[tuple[bytes, bytes]] = []
        has_date = has_server = False
        for name, value in _header_items(headers):
            lname = name.lower()
            if content_length is not None and lname == "content-length":
                continue
            has_date = has_date or lname == "date"
            has_server = has_server or lname == "server"
            out.append((name.encode("latin-1"), str(value).encode("latin-1")))
        if not has_date:
            out.append((b"date", _DATE.get()))
        if not has_server:
            out.append((b"server", self.server._server_header))
        if content_length is not None:
            out.append((b"content-length", str(content_length).encode()))
        return out

    async def _send_full(self, response: Response, head_only: bool = False) -> bool:
        conn = self.conn
        body = response.body.encode() if isinstance(response.body, str) else bytes(response.body)
        try:
            head = h11.Response(
                status_code=response.status,
                headers=self._response_headers(response.headers, len(body)),
                reason=_reason(response.status),
            )
            data = conn.send(head)
        except h11.LocalProtocolError:
            self.server.handler_errors += 1
            log.exception("handler produced an invalid response")
            return await self._send_full(HTTPError(500, "invalid response").to_response())
        if body and not head_only:
            data += conn.send(h11.Data(data=body))
        data += conn.send(h11.EndOfMessage())
        self.writer.write(data)
        await self.writer.drain()
        return conn.our_state is h11.DONE

    async def _send_stream(self, response: StreamingResponse, head_only: bool = False) -> bool:
        conn = self.conn
        writer = self.writer
        chunks = response.chunks
        try:
            try:
                head = h11.Response(
                    status_code=response.status,
                    headers=self._response_headers(response.headers, None),
                    reason=_reason(response.status),
                )
                writer.write(conn.send(head))
            except h11.LocalProtocolError:
                self.server.handler_errors += 1
                log.exception("handler produced an invalid streaming response")
                return await self._send_full(HTTPError(500, "invalid response").to_response())
            await writer.drain()
            if not head_only:
                try:
                    async for chunk in chunks:
                        if chunk:
                            writer.write(conn.send(h11.Data(data=chunk)))
                            await writer.drain()
                except (ConnectionError, OSError):
                    raise
                except Exception:
                    self.server.handler_errors += 1
                    log.exception("HTTP stream failed mid-body; aborting the connection")
                    writer.transport.abort()
                    return False
            writer.write(conn.send(h11.EndOfMessage()))
            await writer.drain()
            return conn.our_state is h11.DONE
        finally:
            aclose = getattr(chunks, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except Exception:  # pragma: no cover - a generator failing in its finally
                    log.exception("closing a response stream failed")

    async def _send_error(self, status: int, message: str) -> None:
        conn = self.conn
        if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
            return
        body = json.dumps({"error": {"code": status, "message": message}}).encode()
        headers = self._response_headers([("content-type", "application/json"), ("connection", "close")], len(body))
        try:
            data = conn.send(h11.Response(status_code=status, headers=headers, reason=_reason(status)))
            data += conn.send(h11.Data(data=body))
            data += conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:  # pragma: no cover
            return
        self.writer.write(data)
        await self.writer.drain()

    async def _linger(self) -> None:
        """Half-close, then read and discard what the client still sends, briefly and boundedly."""
        writer, reader = self.writer, self.reader
        try:
            if writer.can_write_eof():
                writer.write_eof()
        except OSError:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _LINGER_SECONDS
        discarded = 0
        while discarded < _LINGER_MAX_BYTES:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            try:
                async with asyncio.timeout(remaining):
                    data = await reader.read(_READ_SIZE)
            except (TimeoutError, OSError):
                return
            if not data:
                return
            discarded += len(data)


class ThreadedServer:
    """A ``LoopbackHTTPServer`` running in a background thread with its own event loop.

    ``start()`` returns once the port is bound (and raises what binding raised); ``stop()`` stops
    the server, ends the loop and joins the thread. Also a context manager. The handler runs in
    the server's thread and loop, never in the caller's.
    """

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_bytes: int = 1_000_000,
        *,
        name: str = "llmscope-http",
        **server_options: Any,
    ) -> None:
        self._handler = handler
        self._host = host
        self._port_requested = port
        self._max_body_bytes = max_body_bytes
        self._options = server_options
        self._name = name
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._server: LoopbackHTTPServer | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def start(self, timeout: float = 10.0) -> ThreadedServer:
        with self._lock:
            if self._thread is not None:
                raise RuntimeError("server already started")
            self._ready.clear()
            self._error = None
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise TimeoutError(f"HTTP server thread did not start within {timeout} s")
        if self._error is not None:
            error = self._error
            self._thread.join(timeout)
            with self._lock:
                self._thread = None
            raise error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            thread, loop, stop_event = self._thread, self._loop, self._stop_event
            self._thread = None
        if thread is None:
            return
        if loop is None or stop_event is None:  # stop() racing a start() that has not finished
            self._ready.wait(timeout)
            loop, stop_event = self._loop, self._stop_event
        if loop is not None and stop_event is not None:
            try:
                loop.call_soon_threadsafe(stop_event.set)
            except RuntimeError:  # loop already closed: the thread is on its way out
                pass
        thread.join(timeout)
        if thread.is_alive():  # pragma: no cover - would mean a handler ignores cancellation
            raise RuntimeError(f"HTTP server thread {thread.name!r} did not stop within {timeout} s")

    def __enter__(self) -> ThreadedServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    @property
    def server(self) -> LoopbackHTTPServer:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def base_url(self) -> str:
        return self.server.base_url

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # pragma: no cover - surfaced through start()
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
            else:
                log.exception("HTTP server thread failed")

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        server = LoopbackHTTPServer(
            self._handler, self._host, self._port_requested, self._max_body_bytes, **self._options
        )
        try:
            await server.start()
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self._server = server
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            await server.stop()
