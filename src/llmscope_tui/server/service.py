"""The listeners a run asks for, bound up front and served on one stack.

Why a face composes this instead of the monitor owning it: the monitor is the hub of probes and
events; an HTTP listener is one more face on it (it reads events for /metrics and hands records
to :meth:`Monitor.ingest`). The face binds here before the run, so a taken port is one line and
exit 2 before any probe, and starts serving once the monitor has started (its store is open and
its baselines restored), when records can be taken.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

import anyio
from prometheus_client import CollectorRegistry

from llmscope_tui.ingest import EVENTS_PATH, MAX_RECORDS, IngestOptions, check_bind
from llmscope_tui.server.routes import IngestRoutes, Sink, build_app
from llmscope_tui.server.run import HTTPServer, Limits, base_url, bind


class BindError(Exception):
    """A listener could not be bound: one line for the user ("cannot serve ingest on ...")."""


@dataclass(slots=True)
class _Listener:
    host: str
    port: int
    ingest: IngestRoutes | None = None
    registry: CollectorRegistry | None = None
    server: HTTPServer | None = field(default=None, repr=False)

    @property
    def what(self) -> str:
        return " and ".join(name for name, on in (("ingest", self.ingest), ("metrics", self.registry)) if on)


class Endpoints:
    """Ingest (``--ingest-port``) and/or /metrics (``--metrics-port``), bound on construction.

    Different host:port pairs are two listeners; the same one is one listener serving both.
    Raises :class:`BindError` naming what could not be served, metrics first.
    """

    def __init__(
        self,
        *,
        ingest: IngestOptions | None = None,
        sink: Sink | None = None,
        clock: Callable[[], float] = time.time,
        metrics: tuple[CollectorRegistry, str, int] | None = None,
        limits: Limits | None = None,
    ) -> None:
        limits = self.limits = limits or Limits()
        self.ingest_routes: IngestRoutes | None = None
        self._listeners: list[_Listener] = []
        if metrics is not None:
            registry, host, port = metrics
            self._listeners.append(_Listener(host, port, registry=registry))
        if ingest is not None:
            if sink is None:
                raise ValueError("ingest needs a sink")
            check_bind(ingest.host, ingest.api_key)
            self.ingest_routes = IngestRoutes(sink, api_key=ingest.api_key, clock=clock)
            shared = next((x for x in self._listeners if (x.host, x.port) == (ingest.host, ingest.port) and x.port), None)
            if shared is not None:
                shared.ingest = self.ingest_routes
            else:
                self._listeners.append(_Listener(ingest.host, ingest.port, ingest=self.ingest_routes))
        try:
            for listener in self._listeners:
                try:
                    sockets = bind(listener.host, listener.port)
                except OSError as exc:
                    raise BindError(
                        f"cannot serve {listener.what} on {listener.host}:{listener.port}: {exc.strerror or exc}"
                    ) from None
                app = build_app(
                    ingest=listener.ingest,
                    registry=listener.registry,
                    max_body_bytes=limits.max_body_bytes,
                    body_timeout_s=limits.body_timeout_s,
                    max_head_bytes=limits.max_head_bytes,
                )
                listener.server = HTTPServer(app, sockets, limits)
        except BindError:
            self.close()
            raise

    def _url(self, kind: str) -> str | None:
        for listener in self._listeners:
            if getattr(listener, kind) is not None and listener.server is not None:
                return base_url(listener.host, listener.server.port)
        return None

    @property
    def metrics_port(self) -> int | None:
        listener = next((x for x in self._listeners if x.registry is not None), None)
        return listener.server.port if listener is not None and listener.server is not None else None

    @property
    def metrics_url(self) -> str | None:
        url = self._url("registry")
        return None if url is None else url + "/metrics"

    @property
    def events_url(self) -> str | None:
        url = self._url("ingest")
        return None if url is None else url + EVENTS_PATH

    async def serve(self, ready: anyio.Event | None = None, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Serve every listener until cancelled, starting once ``ready`` is set (if given)."""
        if ready is not None:
            await ready.wait()
        async with anyio.create_task_group() as tg:
            for listener in self._listeners:
                assert listener.server is not None
                await tg.start(listener.server.serve)
            task_status.started()

    def close(self) -> None:
        """Release the sockets (a run that never served)."""
        for listener in self._listeners:
            if listener.server is not None:
                listener.server.close()


class IngestServer:
    """The ingest endpoint alone on its own listener in the caller's loop (tests, benches).

    ``async with IngestServer(sink, port=8787) as server: ...`` or ``await start()`` / ``await stop()``.
    """

    def __init__(
        self,
        sink: Sink,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        max_body_bytes: int = 1_000_000,
        max_records: int = MAX_RECORDS,
        clock: Callable[[], float] = time.time,
        **limits: float,
    ) -> None:
        check_bind(host, api_key)
        self.host = host
        self.requested_port = port
        self.routes = IngestRoutes(sink, api_key=api_key, max_records=max_records, clock=clock)
        self.limits = Limits(max_body_bytes=max_body_bytes, **limits)  # type: ignore[arg-type]
        self._server: HTTPServer | None = None

    def __repr__(self) -> str:  # never shows the key
        state = f"port={self._server.port}" if self._server is not None else "stopped"
        return f"IngestServer(host={self.host!r}, {state}, auth={'on' if self.routes.auth_required else 'off'})"

    @property
    def accepted(self) -> int:
        return self.routes.accepted

    @property
    def refused(self) -> int:
        return self.routes.refused

    async def start(self) -> Self:
        """Bind and serve in the running event loop. Raises OSError if the port is taken."""
        if self._server is not None:
            raise RuntimeError("ingest server already started")
        limits = self.limits
        app = build_app(
            ingest=self.routes,
            max_body_bytes=limits.max_body_bytes,
            body_timeout_s=limits.body_timeout_s,
            max_head_bytes=limits.max_head_bytes,
        )
        server = HTTPServer(app, bind(self.host, self.requested_port), self.limits)
        await server.start()
        self._server = server
        return self

    async def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            await server.stop()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("ingest server not started")
        return self._server.port

    @property
    def base_url(self) -> str:
        return base_url(self.host, self.port)

    @property
    def events_url(self) -> str:
        return self.base_url + EVENTS_PATH
