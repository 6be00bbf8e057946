"""What we serve: the ingest endpoint, Prometheus /metrics and a health check, on one app per listener.

The ingest routes call ``sink(samples)`` (the monitor's :meth:`~llmscope_tui.monitor.Monitor.ingest`)
on the server's event loop, which is the monitor's loop, so the sink needs no locking.
"""

from __future__ import annotations

import gzip
import hmac
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import anyio
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder

from llmscope_tui.ingest import (
    API_KEY_ENV,
    EVENTS_PATH,
    HEALTH_PATH,
    MAX_RECORDS,
    BodyError,
    parse_body,
)
from llmscope_tui.model import Sample
from llmscope_tui.server.app import (
    ASGIApp,
    HTTPError,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    endpoint,
    not_found,
    router,
)

METRICS_PATH = "/metrics"
HEALTHZ_PATH = "/healthz"

Sink = Callable[[list[Sample]], None]


class IngestRoutes:
    """``POST /v1/events`` and ``GET /v1/health``: auth, content type, records, then the sink.

    ``sink(samples)`` is called once per accepted request with every record of it (all or nothing).
    """

    def __init__(
        self,
        sink: Sink,
        *,
        api_key: str | None = None,
        max_records: int = MAX_RECORDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sink = sink
        self.max_records = max_records
        self.clock = clock
        self._key = api_key.encode("utf-8") if api_key else None
        #: Counters (plain integers): records taken, requests refused.
        self.accepted = 0
        self.refused = 0

    def __repr__(self) -> str:  # never shows the key
        return f"IngestRoutes(auth={'on' if self._key else 'off'}, accepted={self.accepted})"

    @property
    def auth_required(self) -> bool:
        return self._key is not None

    async def health(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise HTTPError(405, f"use GET {HEALTH_PATH}", {"allow": "GET, HEAD"})
        return Response.json({"status": "ok", "auth": self._key is not None})

    async def events(self, request: Request) -> Response:
        if request.method != "POST":
            raise HTTPError(405, f"use POST {EVENTS_PATH}", {"allow": "POST"})
        try:
            self._authorize(request)
            self._check_content_type(request)
        except HTTPError:
            self.refused += 1
            raise
        try:
            samples = parse_body(request.body, now=self.clock(), max_records=self.max_records)
        except BodyError as exc:
            self.refused += 1
            error: dict[str, Any] = {"code": exc.status, "message": exc.message}
            if exc.errors:
                error["errors"] = exc.errors
            return Response.json({"error": error}, exc.status)
        self.sink(samples)
        self.accepted += len(samples)
        return Response.json({"accepted": len(samples)}, 202)

    def _authorize(self, request: Request) -> None:
        if self._key is None:
            return
        given = request.header("authorization") or ""
        scheme, _, token = given.strip().partition(" ")
        # Header bytes were decoded as latin-1: encoding back gives the bytes sent.
        presented = token.strip().encode("latin-1", "replace") if scheme.lower() == "bearer" else b""
        # compare_digest runs in time independent of where the strings differ.
        if not hmac.compare_digest(presented, self._key):
            raise HTTPError(
                401,
                f"missing or wrong API key: send 'Authorization: Bearer <key>' with the value of {API_KEY_ENV}",
                {"www-authenticate": 'Bearer realm="llmscope-tui"'},
            )

    @staticmethod
    def _check_content_type(request: Request) -> None:
        given = request.header("content-type") or ""
        media = given.split(";", 1)[0].strip().lower()
        if media != "application/json":
            shown = repr(given[:80]) if given else "none"
            raise HTTPError(415, f"expected Content-Type: application/json, got {shown}")


async def healthz(request: Request) -> Response:
    """Liveness for a supervisor or a load balancer: 200 while the server answers."""
    if request.method not in ("GET", "HEAD"):
        raise HTTPError(405, f"use GET {HEALTHZ_PATH}", {"allow": "GET, HEAD"})
    return Response.json({"status": "ok"})


def render_metrics(
    registry: CollectorRegistry, accept: str, accept_encoding: str, query: str
) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """One scrape's headers and body, as prometheus_client's own server makes them: text 0.0.4
    or OpenMetrics as the Accept header asks, ``name[]`` filters, gzip when accepted."""
    encoder, content_type = choose_encoder(accept)
    names = parse_qs(query).get("name[]")
    output = encoder(registry.restricted_registry(names) if names else registry)
    headers = [(b"content-type", content_type.encode())]
    if "gzip" in (part.split(";")[0].strip() for part in accept_encoding.split(",")):
        output = gzip.compress(output)
        headers.append((b"content-encoding", b"gzip"))
    return headers, output


def metrics_app(registry: CollectorRegistry) -> ASGIApp:
    """/metrics, methods answered as prometheus_client's own server does. A scrape is made in a
    worker thread: 7-20 ms of collecting and formatting for 20 targets that would otherwise sit
    on the monitor's event loop, in front of the stamps of the probes in flight."""
    allow = [(b"allow", b"OPTIONS,GET")]

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if method == "GET" and scope["path"] != "/favicon.ico":
            asked = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
            query = scope.get("query_string", b"").decode("latin-1")
            head, body = await anyio.to_thread.run_sync(
                render_metrics, registry, asked.get("accept", ""), asked.get("accept-encoding", ""), query
            )
            await send({"type": "http.response.start", "status": 200, "headers": head})
            await send({"type": "http.response.body", "body": body})
            return
        status, headers, body = 200, allow, b""
        if method not in ("GET", "OPTIONS"):
            status, body = 405, f"# HTTP 405 Method Not Allowed: {method}; use OPTIONS or GET\n".encode()
        elif method == "GET":  # /favicon.ico: empty, for browsers
            headers = []
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def build_app(
    *,
    ingest: IngestRoutes | None = None,
    registry: CollectorRegistry | None = None,
    max_body_bytes: int,
    body_timeout_s: float,
    max_head_bytes: int = 16 * 1024,
) -> ASGIApp:
    """One listener's app: the ingest routes and/or /metrics, and /healthz.

    A listener without ingest answers any other GET with the metrics, as prometheus_client's
    server did; one with ingest answers 404 naming the ingest route.
    """

    def wrap(handler: Callable[[Request], Any]) -> ASGIApp:
        return endpoint(handler, max_body_bytes=max_body_bytes, body_timeout_s=body_timeout_s)

    routes: dict[str, ASGIApp] = {HEALTHZ_PATH: wrap(healthz)}
    fallback = not_found("not found")
    if registry is not None:
        routes[METRICS_PATH] = fallback = metrics_app(registry)
    if ingest is not None:
        routes[EVENTS_PATH] = wrap(ingest.events)
        routes[HEALTH_PATH] = wrap(ingest.health)
        fallback = not_found(f"not found; records go to POST {EVENTS_PATH}")
    return router(routes, fallback, max_head_bytes=max_head_bytes)


__all__ = ["HEALTHZ_PATH", "METRICS_PATH", "IngestRoutes", "build_app", "healthz", "metrics_app"]
