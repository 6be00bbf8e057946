"""One probe: send one streamed request, stamp bytes as they arrive, turn the outcome into a Sample.

Timing (DESIGN 4): on a pooled connection t0 is the kernel's stamp of the request leaving
(probe/netclock.py: SO_TIMESTAMPING's send stamp of the send() carrying it), so neither pool
waits, request building nor a late event loop count; without one, httpcore's trace extension's
moment the request headers start to be written. On a new connection t0 is when the connect
starts (trace extension, user space: the kernel stamps no SYN), so set-up is in that sample's
TTFT and connect_ms says how much. Arrival times are the kernel's receive stamps
of the read that completed each network chunk (probe/netclock.py), or perf_counter_ns as the
chunk is handed over where there are none; either way before any parsing.
"""

from __future__ import annotations

import json
import logging
import math
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from llmscope_tui.model import ErrorKind, Sample, Target
from llmscope_tui.probe.netclock import arrival_ns, first_token_read, sent_ns
from llmscope_tui.redaction import remember, scrub
from llmscope_tui.wire import PROTOCOLS
from llmscope_tui.wire.base import SHAPE_ERRORS, FrameInfo, MalformedFrame, StreamState, request_id
from llmscope_tui.wire.errors import (
    classify_exception,
    classify_status,
    error_text,
    parse_retry_after,
)
from llmscope_tui.wire.framing import Frame, NDJSONDecoder, SSEDecoder

_ERROR_BODY_LIMIT = 8192
#: how far a kernel send stamp may read before the headers started to be written (clock mapping)
_T0_SLACK_NS = 1_000_000
log = logging.getLogger(__name__)
#: Targets already noted in the log as answering a streamed request with one JSON body.
_NOTED_WHOLE_BODY: set[str] = set()


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Connect, first-token and whole-request limits, in seconds."""

    connect_s: float = 10.0
    first_token_s: float = 20.0
    total_s: float = 30.0


class _Trace:
    """Collects the httpcore trace stamps one request needs."""

    __slots__ = ("connect_done_ns", "connect_start_ns", "connected", "headers_start_ns", "sent_ns")

    def __init__(self) -> None:
        self.connect_start_ns: int | None = None
        self.connect_done_ns: int | None = None
        self.headers_start_ns: int | None = None
        self.sent_ns: int | None = None  # the kernel's send stamp of the request, when it came
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
        if self.connect_start_ns is not None:
            return self.connect_start_ns
        if self.kernel_t0:
            return self.sent_ns
        return self.headers_start_ns

    @property
    def kernel_t0(self) -> bool:
        """t0 is the kernel's send stamp: a pooled connection, a stamp that came, and one that
        is not before the headers started to be written (the wall clock stepped)."""
        return (
            self.connect_start_ns is None
            and self.sent_ns is not None
            and self.headers_start_ns is not None
            and self.sent_ns >= self.headers_start_ns - _T0_SLACK_NS
        )

    @property
    def connect_ms(self) -> float | None:
        if self.connect_start_ns is None:
            return 0.0 if self.headers_start_ns is not None else None
        if self.connect_done_ns is None:
            return None
        return (self.connect_done_ns - self.connect_start_ns) / 1e6


class _Outcome:
    """Mutable result of reading one stream."""

    __slots__ = (
        "done", "error", "first_ns", "last_ns", "message", "pieces", "reasoning", "request_id",
        "retry_after", "status", "whole_body",
    )  # fmt: skip

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
        self.reasoning = False  # a reasoning delta arrived (the reasoning was not hidden)
        self.whole_body = False  # one JSON body answered the streamed request


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
    remember(api_key)  # whatever comes back, this key is redacted from it
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
                trace.sent_ns = sent_ns(response.extensions.get("network_stream"))
                out.status = response.status_code
                out.request_id = request_id(response.headers)
                if not 200 <= response.status_code < 300:
                    await _read_error(response, protocol, out)
                else:
                    await _read_stream(response, protocol, state, out, scope, total_deadline)
        except MalformedFrame as exc:
            out.error, out.message = ErrorKind.MALFORMED, error_text(str(exc))
        except (httpx.HTTPError, OSError, UnicodeDecodeError) as exc:
            if out.error is None:
                out.error = classify_exception(exc)
                out.message = error_text(f"{type(exc).__name__}: {exc}") or type(exc).__name__
        except Exception as exc:  # noqa: BLE001 - a bug of ours: a sample, not the provider's fault
            out.error, out.message = ErrorKind.INTERNAL, internal_error(target.name, exc)
    if out.whole_body and target.name not in _NOTED_WHOLE_BODY:
        _NOTED_WHOLE_BODY.add(target.name)
        log.warning(
            "%s: the server answered a streamed request with one JSON body (it ignores "
            "stream: true); its samples time the whole body: TTFT = latency, no ITL or tps",
            target.name,
        )
    if scope.cancelled_caught and out.error is None:
        if not trace.connected:
            out.error, out.message = ErrorKind.TIMEOUT_CONNECT, f"no connection within {timeouts.connect_s:g}s"
        elif out.first_ns is None and first_deadline < total_deadline:
            out.error = ErrorKind.TIMEOUT_FIRST_TOKEN
            out.message = f"no token within {timeouts.first_token_s:g}s"
        else:
            out.error, out.message = ErrorKind.TIMEOUT_TOTAL, f"not finished within {timeouts.total_s:g}s"
    return _build_sample(target, trace, out, state, start_wall, start_ns)


def internal_error(target_name: str, exc: BaseException) -> str:
    """Log the traceback of a bug of ours while probing (the logger's file, not the screen) and
    return the one line a person sees; both redacted, since an exception may quote a key."""
    trace = scrub("".join(traceback.format_exception(exc))).rstrip()
    log.error("probe of %s failed unexpectedly (a bug of llmscope-tui):\n%s", target_name, trace)
    return error_text(f"internal error while probing: {type(exc).__name__}: {exc}")


def _json_body(response: httpx.Response) -> bool:
    """The server answered with one JSON document, not a stream (it ignored `stream: true`)."""
    media = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    return media == "application/json"


async def _read_stream(
    response: httpx.Response,
    protocol: Any,
    state: StreamState,
    out: _Outcome,
    scope: anyio.CancelScope,
    total_deadline: float,
) -> None:
    decoder = SSEDecoder() if protocol.framing == "sse" else NDJSONDecoder()

    def take(frames: list[Frame]) -> bool:
        """Read frames into out; True when an error ended the stream."""
        for frame in frames:
            info = protocol.read_frame(frame.event, frame.data, state)  # MalformedFrame: wrong shape
            if info.content:
                if out.first_ns is None:
                    out.first_ns = frame.arrived_ns
                    scope.deadline = total_deadline
                    first_token_read(network_stream)
                out.last_ns = frame.arrived_ns
                out.pieces += info.pieces
            out.reasoning = out.reasoning or info.reasoning
            if info.error is not None:
                out.error, out.message = info.error[0], error_text(info.error[1])
                return True
            out.done = out.done or info.done
        return False

    network_stream = response.extensions.get("network_stream")  # kernel stamps (netclock.py)

    def stamp() -> int:
        return arrival_ns(network_stream) or time.perf_counter_ns()

    if _json_body(response):
        chunks = [(chunk, stamp()) async for chunk in response.aiter_raw()]
        if _read_whole(b"".join(chunk for chunk, _ in chunks), chunks, protocol, state, out):
            return
        for chunk, arrived in chunks:  # not one document after all (NDJSON labelled JSON)
            if take(decoder.feed(chunk, arrived)):
                return
    else:
        async for chunk in response.aiter_raw():
            if take(decoder.feed(chunk, stamp())):
                return
    take(decoder.close(time.perf_counter_ns()))


def _read_whole(
    body: bytes, chunks: list[tuple[bytes, int]], protocol: Any, state: StreamState, out: _Outcome
) -> bool:
    """A whole JSON body answering a streamed request: its first token is the whole body, so
    TTFT = latency = the arrival of its last byte. False when it is not one JSON document."""
    try:
        obj = json.loads(body)
    except ValueError:
        return False
    try:
        info: FrameInfo = protocol.read_object(obj, None, state)
    except SHAPE_ERRORS as exc:
        raise MalformedFrame(f"unexpected body shape ({type(exc).__name__}): {body[:80]!r}") from exc
    out.whole_body = out.done = True
    if info.error is not None:
        out.error, out.message = info.error[0], error_text(info.error[1])
    elif info.content:
        out.first_ns = out.last_ns = chunks[-1][1]
        out.pieces = info.pieces
    return True


async def _read_error(response: httpx.Response, protocol: Any, out: _Outcome) -> None:
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
    out.message = error_text(f"HTTP {response.status_code}: {message}")
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
    sample.tokens_cache_write = usage.tokens_cache_write or 0
    if out.first_ns is not None and out.last_ns is not None:
        sample.ttft_ms = _ms(t0, out.first_ns)
        sample.latency_ms = _ms(t0, out.last_ns)
        if sample.tokens_out is None:
            # DESIGN 4: the server's count stands whenever it gave one; only without usage
            # (or a stream cut off before it) are the chunks counted
            sample.tokens_out = out.pieces
            sample.tokens_estimated = 1
        if sample.tokens_in is None:
            sample.tokens_in = max(1, math.ceil(len(target.prompt) / 4))
            sample.tokens_estimated = 1
        streamed = sample.tokens_out
        if sample.tokens_reasoning and not out.reasoning:
            # hidden reasoning was generated before the first visible token: not streamed
            streamed = max(0, streamed - sample.tokens_reasoning)
        span_ms = sample.latency_ms - sample.ttft_ms
        if streamed > 1 and span_ms > 0:
            sample.itl_ms = span_ms / (streamed - 1)
            sample.tps = (streamed - 1) / (span_ms / 1000)
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
