"""uvicorn, in-process: our ASGI app on sockets we bind, in our event loop (or a thread's own).

Why uvicorn: it brings HTTP/1.1 parsing (h11), keep-alive with a timeout, a bound on the request
head (``h11_max_incomplete_event_size``), a connection limit answered with 503
(``limit_concurrency``) and a bounded graceful shutdown, none of which we keep writing.

What we add, and why:
- We bind the sockets ourselves (:func:`bind`): a taken port is reported before the run starts,
  in one line, and uvicorn's own bind path would ``sys.exit`` instead.
- uvicorn's ``capture_signals`` is switched off: the face that runs us owns SIGINT/SIGTERM
  (headless stops probing on the first signal and at once on the second).
- A deadline for every request head (:class:`_Protocol`): uvicorn arms its keep-alive timer
  only after a response, and any byte disarms it, so a connection that sends nothing or one
  header byte at a time (slowloris) would be held forever. bench/bench_ingest.py measures it.
- ``limit_max_requests`` is not used: it ends the server after N requests (worker recycling).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self

import anyio
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from llmscope_tui.server.app import ASGIApp

# uvicorn logs through "uvicorn.error"; without a handler of its own a warning (a malformed
# request) would reach Python's last-resort handler and scribble over a TUI. Records still
# propagate to whatever the application configured.
logging.getLogger("uvicorn").addHandler(logging.NullHandler())


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may hold; the defaults are documented in docs/ingest.md."""

    max_body_bytes: int = 1_000_000
    #: Request line + headers (h11's bound on an incomplete head; over it: 400).
    max_head_bytes: int = 16 * 1024
    #: A connection must deliver a complete request head this long after it opens or after its
    #: last response; otherwise it is closed.
    head_timeout_s: float = 10.0
    #: An idle kept-alive connection is closed after this long (above httpx's 5 s pool expiry,
    #: so a client never reuses a connection we are closing).
    keep_alive_s: float = 15.0
    #: The body must arrive within this long after the head (408 otherwise).
    body_timeout_s: float = 30.0
    #: Open connections at which a new request is answered 503 instead of served.
    max_connections: int = 256
    #: Connections past max_connections that may still hear that 503; beyond them a new
    #: connection is closed as soon as it opens (a flood of silent connections must not take
    #: the process's file descriptors from its probes for the head timeout).
    overflow_connections: int = 32
    #: On stop, in-flight requests get this long to finish.
    shutdown_timeout_s: float = 2.0


def bind(host: str, port: int, backlog: int = 128) -> list[socket.socket]:
    """Listening sockets for every address of ``host`` ("" = all interfaces), bound now.

    Raises OSError (a taken port, an unknown host) with nothing left open.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys((i[0], i[1], i[2], "", i[4]) for i in infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and hasattr(socket, "IPPROTO_IPV6"):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def base_url(host: str, port: int) -> str:
    """``http://host:port`` a client on this machine can use (wildcard binds become loopback)."""
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request head (see the module docstring)."""

    head_timeout_s = 10.0
    max_open = 256 + 32
    _head_deadline: asyncio.TimerHandle | None = None

    def _arm_head_deadline(self) -> None:
        self._cancel_head_deadline()
        self._head_deadline = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def _cancel_head_deadline(self) -> None:
        if self._head_deadline is not None:
            self._head_deadline.cancel()
            self._head_deadline = None

    def _head_timed_out(self) -> None:
        self._head_deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.server_state.connections) > self.max_open:
            transport.close()  # the cap: closed at once, not held until its head deadline
            return
        self._arm_head_deadline()

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a complete head arrived and its request started
            self._cancel_head_deadline()

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self._arm_head_deadline()  # before super(): it may start a pipelined request
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_deadline()
        super().connection_lost(exc)


class _Server(uvicorn.Server):
    """uvicorn's server without its signal handlers, telling when it listens."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()


class HTTPServer:
    """One uvicorn server for ``app`` on bound ``sockets``, in the caller's asyncio loop.

    ``await start()`` serves, ``await stop()`` stops (in-flight requests get
    ``limits.shutdown_timeout_s``) and closes the sockets; ``serve()`` does both in a task group.
    """

    def __init__(self, app: ASGIApp, sockets: list[socket.socket], limits: Limits = Limits()) -> None:
        self.sockets = sockets
        self.limits = limits
        self._port = int(sockets[0].getsockname()[1])  # kept: the URL stays readable after close
        protocol = type(
            "Protocol",
            (_Protocol,),
            {"head_timeout_s": limits.head_timeout_s, "max_open": limits.max_connections + limits.overflow_connections},
        )
        self.config = uvicorn.Config(
            app,
            http=protocol,
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            proxy_headers=False,
            server_header=False,
            headers=[("server", "llmscope-tui")],
            limit_concurrency=limits.max_connections,
            timeout_keep_alive=limits.keep_alive_s,  # type: ignore[arg-type]  # a float works
            timeout_graceful_shutdown=limits.shutdown_timeout_s,  # type: ignore[arg-type]
            h11_max_incomplete_event_size=limits.max_head_bytes,
        )
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        if self._task is not None:
            raise RuntimeError("server already started")
        server = self._server = _Server(self.config)
        self._task = asyncio.create_task(server.serve(sockets=self.sockets), name="llmscope-http")
        ready = asyncio.create_task(server.ready.wait())
        await asyncio.wait((self._task, ready), return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        if self._task.done():
            self._task.result()  # startup failed: raise what it raised

    async def stop(self) -> None:
        task, server = self._task, self._server
        self._task = None
        if task is None or server is None:
            self.close()
            return
        server.should_exit = True
        with anyio.CancelScope(shield=True):
            await asyncio.wait((task,))
        self.close()

    def close(self) -> None:
        """Close the sockets of a server that never started (stop() does it otherwise)."""
        for sock in self.sockets:
            sock.close()

    async def serve(self, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve until cancelled (for ``task_group.start``)."""
        try:
            await self.start()
            task_status.started()
            await anyio.sleep_forever()
        finally:
            await self.stop()


class ThreadedHTTPServer:
    """An :class:`HTTPServer` in a thread with its own event loop, for a caller without a loop
    (or one whose pace the server must not follow). ``start()`` binds and returns once serving;
    ``stop()`` stops, joins the thread and may be followed by another ``start()``."""

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        limits: Limits = Limits(),
        *,
        name: str = "llmscope-http",
    ) -> None:
        self.app, self.host, self.requested_port, self.limits, self.name = app, host, port, limits, name
        self._server: HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.port

    @property
    def base_url(self) -> str:
        return base_url(self.host, self.port)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._server is not None

    def start(self, timeout: float = 10.0) -> Self:
        """Bind (raises OSError when the port is taken) and serve from a new thread."""
        if self._thread is not None:
            raise RuntimeError("server already started")
        self._server = HTTPServer(self.app, bind(self.host, self.requested_port), self.limits)
        ready = threading.Event()
        self._thread = threading.Thread(target=asyncio.run, args=(self._serve(ready),), name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(timeout):
            self.stop()
            raise TimeoutError(f"HTTP server thread did not start within {timeout} s")
        if self._error is not None:
            error, self._error = self._error, None
            self.stop()
            raise error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        self._thread = None
        if thread is not None and loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop already closed
                loop.call_soon_threadsafe(stop.set)
            thread.join(timeout)
        if self._server is not None:
            self._server.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _serve(self, ready: threading.Event) -> None:
        assert self._server is not None
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        try:
            await self._server.start()
        except BaseException as exc:  # noqa: BLE001 - handed to start(), in the caller's thread
            self._error = exc
            return
        finally:
            ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._server.stop()
