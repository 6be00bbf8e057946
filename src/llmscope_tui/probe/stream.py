"""One probe: send one streamed request, stamp bytes as they arrive, turn the outcome into a Sample.

Timing (DESIGN 4): t0 comes from httpcore's trace extension, the moment the connection starts
to open (new connection) or the request headers start to be written (pooled connection), so
pool waits and request building are not counted. Arrival times are the kernel's receive stamps
of the read that completed each network chunk (probe/netclock.py), or perf_counter_ns as the
chunk is handed over where there are none; either way before any parsing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from llmscope_tui.model import ErrorKind, Sample, Target
from llmscope_tui.probe.netclock import arrival_ns
from llmscope_tui.wire import PROTOCOLS
from llmscope_tui.wire.base import MalformedFrame, StreamState
from llmscope_tui.wire.errors import (
    classify_exception,
    classify_status,
    parse_retry_after,
    redact,
    short,
)
from llmscope_tui.wire.framing import NDJSONDecoder, SSEDecoder

_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "apim-request-id", "x-goog-request-id", "cf-ray")
_ERROR_BODY_LIMIT = 8192


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Connect, first-token and whole-request limits, in seconds."""

    connect_s: float = 10.0
    first_token_s: float = 20.0
    total_s: float = 30.0


class _Trace:
    """Collects the httpcore trace stamps one request needs."""

    __slots__ = ("connect_done_ns", "connect_start_ns", "connected", "headers_start_ns")

    def __init__(self) -> None:
        self.connect_start_ns: int | None = None
        self.connect_done_ns: int | None = None
        self.headers_start_ns: int | None = None
        self.connected = False

    async def __call__(self, name: str, info: dict[str, Any]) -> None:
        now = time.perf_counter_ns()
        if name.endswith("connect_tcp.started"):
            self.connect_start_ns = now
        elif name.endswith(("connect_tcp.complete", "start_tls.complete")):
            self.connect_done_ns = now
        elif name.endswith("send_request_headers.started"):
            self.headers_start_ns = now
            self.connected = True

    @property
    def t0_ns(self) -> int | None:
        return self.connect_start_ns if self.connect_start_ns is not None else self.headers_start_ns

    @property
    def connect_ms(self) -> float | None:
        if self.connect_start_ns is None:
            return 0.0 if self.headers_start_ns is not None else None
        if self.connect_done_ns is None:
            return None
        return (self.connect_done_ns - self.connect_start_ns) / 1e6


class _Outcome:
    """Mutable result of reading one stream."""

    __slots__ = ("done", "error", "first_ns", "last_ns", "message", "pieces", "request_id", "retry_after", "status")

    def __init__(self) -> None:
        self.first_ns: int | None = None
        self.last_ns: int | None = None
        self.pieces = 0
        self.done = False
        self.error: ErrorKind | None = None
        self.message: str | None = None
        self.status: int | None = None
        self.retry_after: float | None = None
        self.request_id: str | None = None


def _ms(a: int, b: int) -> float:
    return (b - a) / 1e6


async def probe_once(
    client: httpx.AsyncClient,
    target: Target,
    api_key: str | None,
    timeouts: Timeouts,
    *,
    wall_clock: Callable[[], float] = time.time,
) -> Sample:
    """Run one streamed request against target and return its sample. Never raises for a
    server's behaviour; only cancellation from outside propagates."""
    protocol = PROTOCOLS[target.protocol]
    spec = protocol.build_request(target, api_key)
    trace = _Trace()
    out = _Outcome()
    state = StreamState()
    secrets = (api_key,) if api_key else ()
    start_wall, start_ns = wall_clock(), time.perf_counter_ns()
    now = anyio.current_time()
    first_deadline = now + min(timeouts.first_token_s, timeouts.total_s)
    total_deadline = now + timeouts.total_s

    with anyio.CancelScope(deadline=first_deadline) as scope:
        try:
            async with client.stream(
                spec.method,
                spec.url,
                headers=spec.headers,
                content=json.dumps(spec.body).encode(),
                extensions={"trace": trace},
            ) as response:
                out.status = response.status_code
                out.request_id = next(
                    (response.headers[h] for h in _REQUEST_ID_HEADERS if h in response.headers), None
                )
                if not 200 <= response.status_code < 300:
                    await _read_error(response, protocol, out, secrets)
                else:
                    await _read_stream(response, protocol, state, out, scope, total_deadline)
        except MalformedFrame as exc:
            out.error, out.message = ErrorKind.MALFORMED, short(str(exc))
        except (httpx.HTTPError, OSError, UnicodeDecodeError) as exc:
            if out.error is None:
                out.error = classify_exception(exc)
                out.message = short(redact(f"{type(exc).__name__}: {exc}", secrets)) or type(exc).__name__
    if scope.cancelled_caught and out.error is None:
        if not trace.connected:
            out.error, out.message = ErrorKind.TIMEOUT_CONNECT, f"no connection within {timeouts.connect_s:g}s"
        elif out.first_ns is None and first_deadline < total_deadline:
            out.error = ErrorKind.TIMEOUT_FIRST_TOKEN
            out.message = f"no token within {timeouts.first_token_s:g}s"
        else:
            out.error, out.message = ErrorKind.TIMEOUT_TOTAL, f"not finished within {timeouts.total_s:g}s"
    return _build_sample(target, trace, out, state, start_wall, start_ns)


async def _read_stream(
    response: httpx.Response,
    protocol: Any,
    state: StreamState,
    out: _Outcome,
    scope: anyio.CancelScope,
    total_deadline: float,
) -> None:
    decoder = SSEDecoder() if protocol.framing == "sse" else NDJSONDecoder()

    read_frame = protocol.read_frame  # raises MalformedFrame for a frame of the wrong shape
    network_stream = response.extensions.get("network_stream")
    async for chunk in response.aiter_raw():
        arrived = arrival_ns(network_stream) or time.perf_counter_ns()
        for frame in decoder.feed(chunk, arrived):
            info = read_frame(frame.event, frame.data, state)
            if info.content:
                if out.first_ns is None:
                    out.first_ns = frame.arrived_ns
                    scope.deadline = total_deadline
                out.last_ns = frame.arrived_ns
                out.pieces += info.pieces
            if info.error is not None:
                out.error, out.message = info.error[0], short(info.error[1])
                return
            if info.done:
                out.done = True
    for frame in decoder.close(time.perf_counter_ns()):
        info = read_frame(frame.event, frame.data, state)
        if info.error is not None:
            out.error, out.message = info.error[0], short(info.error[1])
            return
        out.done = out.done or info.done


async def _read_error(response: httpx.Response, protocol: Any, out: _Outcome, secrets: tuple[str, ...]) -> None:
    body = b""
    try:
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) >= _ERROR_BODY_LIMIT:
                break
    except httpx.HTTPError:
        pass
    text = body.decode("utf-8", errors="replace")
    try:
        err_type, message = protocol.error_type(json.loads(text))
    except ValueError:
        err_type, message = None, text or response.reason_phrase
    out.error = classify_status(response.status_code, err_type)
    out.message = short(redact(f"HTTP {response.status_code}: {message}", secrets))
    if out.error is ErrorKind.RATE_LIMIT or "retry-after" in response.headers:
        out.retry_after = parse_retry_after(response.headers.get("retry-after"))


def _build_sample(
    target: Target, trace: _Trace, out: _Outcome, state: StreamState, start_wall: float, start_ns: int
) -> Sample:
    t0 = trace.t0_ns if trace.t0_ns is not None else start_ns
    sample = Sample.of(
        target,
        start_wall + (t0 - start_ns) / 1e9,
        http_status=out.status,
        connect_ms=trace.connect_ms,
        request_id=out.request_id,
        retry_after_s=out.retry_after,
    )
    usage = state.usage
    sample.tokens_in, sample.tokens_cached, sample.tokens_reasoning = (
        usage.tokens_in,
        usage.tokens_cached,
        usage.tokens_reasoning,
    )
    sample.tokens_out = usage.tokens_out
    if out.first_ns is not None and out.last_ns is not None:
        sample.ttft_ms = _ms(t0, out.first_ns)
        sample.latency_ms = _ms(t0, out.last_ns)
        if sample.tokens_out is None or sample.tokens_out < out.pieces:
            # no usage, or a stream cut off before the final count (Anthropic's message_start
            # says 1): the chunks we saw are the better count
            sample.tokens_out = out.pieces
            sample.tokens_estimated = 1
        if sample.tokens_in is None:
            sample.tokens_in = max(1, math.ceil(len(target.prompt) / 4))
            sample.tokens_estimated = 1
        span_ms = sample.latency_ms - sample.ttft_ms
        if sample.tokens_out > 1 and span_ms > 0:
            sample.itl_ms = span_ms / (sample.tokens_out - 1)
            sample.tps = (sample.tokens_out - 1) / (span_ms / 1000)
    if out.error is None and out.status is not None and 200 <= out.status < 300:
        if out.first_ns is None:
            out.error, out.message = ErrorKind.EMPTY_RESPONSE, "the stream ended without any output"
        elif not out.done:
            out.error, out.message = ErrorKind.STREAM_ERROR, "the stream ended before its end marker"
    elif out.error is None:
        out.error, out.message = ErrorKind.NETWORK, "no response"
    sample.ok = int(out.error is None)
    sample.error_kind = None if out.error is None else str(out.error)
    sample.error_message = out.message
    return sample
