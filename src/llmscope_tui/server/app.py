"""The few ASGI pieces our endpoints need: a request read whole (bounded), JSON answers, a router.

Why no framework: three routes (ingest, /metrics, health) need a body limit, a JSON error shape
and exact-path routing; that is this page. uvicorn (:mod:`.run`) brings the HTTP parsing,
keep-alive and connection limits. Every error answer has one shape,
``{"error": {"code": N, "message": "..."}}``, as the endpoint always answered.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterable, Awaitable, Callable, Iterable, Mapping, MutableMapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import anyio

log = logging.getLogger(__name__)
log.addHandler(logging.NullHandler())

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = Mapping[str, str] | Iterable[tuple[str, str]]


def _items(headers: Headers) -> list[tuple[str, str]]:
    return list(headers.items() if isinstance(headers, Mapping) else headers)


def _encode(headers: Headers) -> list[tuple[bytes, bytes]]:
    items = headers.items() if isinstance(headers, Mapping) else headers
    return [(name.lower().encode("latin-1"), str(value).encode("latin-1")) for name, value in items]


class HTTPError(Exception):
    """Raise from a handler to answer with this status, message and extra headers."""

    def __init__(self, status: int, message: str = "", headers: Headers = ()) -> None:
        self.status = status
        self.message = message or HTTPStatus(status).phrase
        self.headers = headers
        super().__init__(self.message)

    def response(self) -> Response:
        return Response.json({"error": {"code": self.status, "message": self.message}}, self.status, self.headers)


@dataclass(slots=True)
class Response:
    """A complete response, sent with a Content-Length."""

    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Headers = ()) -> Response:
        body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
        return cls(status, body, [("content-type", "application/json"), *_items(headers)])

    @classmethod
    def text(
        cls, text: str, status: int = 200, headers: Headers = (), content_type: str = "text/plain; charset=utf-8"
    ) -> Response:
        return cls(status, text.encode(), [("content-type", content_type), *_items(headers)])

    async def __call__(self, send: Send, receive: Receive | None = None) -> None:
        head = [(b"content-length", str(len(self.body)).encode()), *_encode(self.headers)]
        await send({"type": "http.response.start", "status": self.status, "headers": head})
        await send({"type": "http.response.body", "body": self.body})


class StreamingResponse:
    """A body from an async iterator of bytes, sent chunked, each chunk written as it is yielded.

    The iterator is closed (``aclose()``) when the response ends, the client goes away or the
    server stops, so an async generator's ``finally`` runs. If it raises after the headers went
    out, the connection is closed: the client sees a truncated body, the honest signal.
    """

    def __init__(self, status: int = 200, headers: Headers = (), chunks: AsyncIterable[bytes] | None = None) -> None:
        if chunks is None:
            raise TypeError("StreamingResponse needs chunks (an async iterable of bytes)")
        self.status, self.headers, self.chunks = status, headers, chunks

    async def __call__(self, send: Send, receive: Receive | None = None) -> None:
        await send({"type": "http.response.start", "status": self.status, "headers": _encode(self.headers)})
        try:
            async with anyio.create_task_group() as tg:
                if receive is not None:
                    tg.start_soon(_cancel_on_disconnect, receive, tg.cancel_scope)
                async for chunk in self.chunks:
                    if chunk:
                        await send({"type": "http.response.body", "body": chunk, "more_body": True})
                await send({"type": "http.response.body", "body": b""})
                tg.cancel_scope.cancel()
        finally:
            aclose = getattr(self.chunks, "aclose", None)
            if aclose is not None:
                with anyio.CancelScope(shield=True):
                    await aclose()


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    """Stop a stream whose client went away (uvicorn drops what is sent to a closed connection)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


@dataclass(slots=True)
class Request:
    """One request, body read in full. Header names are lower-case; repeats are joined with ', '."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""
    query: dict[str, str] = field(default_factory=dict)

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body parsed as JSON; HTTPError(400) when it is empty or not JSON."""
        if not self.body:
            raise HTTPError(400, "request body is empty; expected JSON")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, f"request body is not valid JSON: {exc}") from None


def _headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope.get("headers", ()):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


class _Disconnected(Exception):
    """The client went away before its body arrived: nobody is left to answer."""


async def _read_body(headers: Mapping[str, str], receive: Receive, limit: int, timeout_s: float) -> bytes:
    """The whole body, refused (413) past ``limit`` bytes and (408) when it trickles in too slowly."""
    too_big = HTTPError(413, f"request body exceeds {limit} bytes")
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_big
    body = bytearray()
    with anyio.move_on_after(timeout_s) as scope:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            body += message.get("body", b"")
            if len(body) > limit:
                raise too_big
            if not message.get("more_body", False):
                return bytes(body)
    assert scope.cancel_called
    raise HTTPError(408, f"request body not received within {timeout_s:g} s")


Handler = Callable[[Request], Awaitable[Response | StreamingResponse]]


def endpoint(handler: Handler, *, max_body_bytes: int, body_timeout_s: float) -> ASGIApp:
    """An ASGI app calling ``handler(request)`` with the body read; errors answered as JSON."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        try:
            body = await _read_body(headers, receive, max_body_bytes, body_timeout_s)
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
            response: Response | StreamingResponse = await handler(
                Request(scope["method"], scope["path"], headers, body, query)
            )
        except HTTPError as exc:
            response = exc.response()
        except _Disconnected:
            return
        except Exception:
            log.exception("HTTP handler failed on %s %s", scope["method"], scope["path"])
            response = HTTPError(500, "internal server error").response()
        await response(send, receive)

    return app


def router(routes: Mapping[str, ASGIApp], fallback: ASGIApp, *, max_head_bytes: int = 16 * 1024) -> ASGIApp:
    """Exact-path routing (a trailing slash is ignored); any other path goes to ``fallback``.

    A head over ``max_head_bytes`` is answered 431: h11 (under uvicorn) bounds only a head that
    arrives in pieces, not one that arrives whole in a single read.
    """
    table = dict(routes)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan is off and websockets are not served
            return
        head = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        head += sum(len(name) + len(value) + 4 for name, value in scope.get("headers", ()))
        if head > max_head_bytes:
            await HTTPError(431, f"request head exceeds {max_head_bytes} bytes").response()(send)
            return
        path = scope["path"].rstrip("/") or "/"
        await table.get(path, fallback)(scope, receive, send)

    return app


def not_found(message: str) -> ASGIApp:
    """A fallback answering 404 with ``message``."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await HTTPError(404, message).response()(send)

    return app
