"""Turning an observation into a usage record, in the reporter's thread.

What the bytes mean is read by the same wire readers the probe uses (llmscope_tui.wire), so
each protocol is read in one place; this module only feeds them the kept bytes and turns what
they found into the fields of docs/ingest.md.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from llmscope_tui.client.observe import Chunk, Observation
from llmscope_tui.model import ErrorKind
from llmscope_tui.wire.base import FrameInfo, FrameReader, MalformedFrame, StreamState
from llmscope_tui.wire.errors import classify_status
from llmscope_tui.wire.framing import Frame, NDJSONDecoder, SSEDecoder

#: Request bodies larger than this are searched for the model name, not parsed.
_PARSE_REQUEST_LIMIT = 8 * 1024 * 1024
log = logging.getLogger("llmscope_tui.client")
_MODEL_IN_BODY = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')


@dataclass(slots=True)
class _Reading:
    """What the readers found in one response, with the stamps of the first and last content."""

    state: StreamState = field(default_factory=StreamState)
    first_ns: int | None = None
    last_ns: int | None = None
    content: bool = False
    done: bool = False
    error: ErrorKind | None = None
    body_error_type: str | None = None  # the provider's error type in a whole (non-2xx) body

    def take(self, info: FrameInfo, arrived_ns: int | None) -> None:
        if info.content:
            self.content = True
            if arrived_ns is not None:
                if self.first_ns is None:
                    self.first_ns = arrived_ns
                self.last_ns = arrived_ns
        self.done = self.done or info.done
        if info.error is not None:
            self.error = info.error[0]

    def frame(self, reader: FrameReader, frame: Frame) -> None:
        try:
            info = reader.read_frame(frame.event, frame.data, self.state)
        except MalformedFrame:
            return  # the app got it unchanged; it only tells us nothing
        self.take(info, frame.arrived_ns)


class _Zlib:
    def __init__(self, wbits: int) -> None:
        self._wbits = wbits
        self._obj = zlib.decompressobj(wbits)
        self._first = True

    def decode(self, data: bytes) -> bytes:
        try:
            out = self._obj.decompress(data)
        except zlib.error:
            if not (self._first and self._wbits == zlib.MAX_WBITS):
                raise
            self._obj = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as some servers send
            out = self._obj.decompress(data)
        self._first = False
        return out


def _decompressor(encoding: str) -> Any:
    """An object with decode(bytes) -> bytes for the response's Content-Encoding, or None."""
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return _Zlib(zlib.MAX_WBITS)
    from httpx._decoders import SUPPORTED_DECODERS  # br / zstd, when their packages are installed

    return SUPPORTED_DECODERS[encoding]()  # KeyError / ImportError: give up on the body


def _read_stream(obs: Observation, framing: str, reading: _Reading) -> None:
    reader = obs.route.reader
    decoder = SSEDecoder() if framing == "sse" else NDJSONDecoder()
    inflate = _decompressor(obs.content_encoding)
    last_ns = obs.t_close_ns

    def feed(chunks: Iterable[Chunk]) -> None:
        nonlocal last_ns
        for chunk, arrived_ns in chunks:
            data = inflate.decode(chunk) if inflate is not None else chunk
            last_ns = arrived_ns
            for frame in decoder.feed(data, arrived_ns):
                reading.frame(reader, frame)

    feed(obs.head)
    if obs.tail and not obs.gap:
        feed(obs.tail)
    elif obs.tail and inflate is None:
        # Bytes are missing between head and tail: restart at the first frame boundary in the tail.
        rest = _after_first_boundary(obs.tail, framing)
        if rest is not None:
            decoder = SSEDecoder() if framing == "sse" else NDJSONDecoder()
            feed(rest)
    # A frame completed only at the end came in the last chunk read: it carries that stamp.
    for frame in decoder.close(last_ns):
        reading.frame(reader, frame)


def _after_first_boundary(tail: Iterable[Chunk], framing: str) -> list[Chunk] | None:
    chunks = list(tail)
    joined = b"".join(chunk for chunk, _ in chunks)
    boundary = b"\n\n" if framing == "sse" else b"\n"
    cut = joined.find(boundary)
    if framing == "sse":
        crlf = joined.find(b"\r\n\r\n")
        if crlf != -1 and (cut == -1 or crlf < cut):
            cut, boundary = crlf, b"\r\n\r\n"
    if cut == -1:
        return None
    skip = cut + len(boundary)
    rest: list[Chunk] = []
    for chunk, arrived_ns in chunks:
        if skip >= len(chunk):
            skip -= len(chunk)
            continue
        rest.append((chunk[skip:], arrived_ns))
        skip = 0
    return rest


def _read_body(obs: Observation, reading: _Reading) -> None:
    """A whole JSON body (a call made without streaming): usage, model, no time to first token."""
    inflate = _decompressor(obs.content_encoding)
    raw = b"".join(chunk for chunk, _ in obs.head)
    obj = json.loads(inflate.decode(raw) if inflate is not None else raw)
    reader = obs.route.reader
    if not 200 <= obs.status < 300:
        reading.body_error_type = reader.error_type(obj)[0]
    reading.take(reader.read_object(obj, None, reading.state), None)


def _request_model(body: bytes | None) -> str | None:
    if not body:
        return None
    if len(body) <= _PARSE_REQUEST_LIMIT:
        try:
            obj = json.loads(body)
        except ValueError:
            obj = None
        if isinstance(obj, dict):
            model = obj.get("model")
            return model if isinstance(model, str) else None
    match = _MODEL_IN_BODY.search(body)
    return match.group(1).decode("utf-8", "replace") if match else None


def clean(text: str, limit: int) -> str:
    """Text without control or format characters, bounded (it goes into logs and the UI)."""
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf")).strip()
    return text[:limit]


def _framing(content_type: str) -> str:
    if "event-stream" in content_type:
        return "sse"
    if "ndjson" in content_type or "jsonl" in content_type:
        return "ndjson"
    return "json"


def summarize(obs: Observation, project: str | None) -> dict[str, Any]:
    """The ingest record of one observed call (docs/ingest.md fields)."""
    route = obs.route
    reading = _Reading()
    framing = _framing(obs.content_type)
    streamed = framing != "json"
    if not obs.body_dropped and (obs.head or obs.tail):
        try:
            if streamed:
                _read_stream(obs, framing, reading)
            elif not obs.gap and not obs.tail:
                _read_body(obs, reading)
        except Exception:  # an unreadable body of any kind: the call is reported without it
            log.debug("llmscope client: unreadable %s body", route.fmt, exc_info=True)

    model = reading.state.model or route.url_model
    if model is None:
        try:
            model = _request_model(obs.request_body)
        except Exception:  # noqa: BLE001 - a request body we cannot read only hides the model
            model = None
    obs.request_body = None
    model = clean(model, 200) if model else ""

    record: dict[str, Any] = {
        "provider": route.provider,
        "model": model or "unknown",
        "http_status": obs.status,
    }
    error_kind = _error_kind(obs, reading, streamed)
    record["ok"] = error_kind is None
    if error_kind is not None:
        record["error_kind"] = error_kind
    if project:
        record["project"] = project
    if obs.request_id:
        request_id = clean(obs.request_id, 200)
        if request_id:
            record["request_id"] = request_id
    record.update(_timings(obs, reading, streamed))
    record.update(_tokens(reading.state))
    return record


def _error_kind(obs: Observation, reading: _Reading, streamed: bool) -> str | None:
    if not 200 <= obs.status < 300:
        return str(classify_status(obs.status, reading.body_error_type))
    if obs.exc_kind is not None:
        return obs.exc_kind
    if reading.error is not None:
        return str(reading.error)
    if streamed and not reading.done and not obs.exhausted and not obs.body_dropped:
        return str(ErrorKind.CANCELLED)  # the app stopped reading before the end
    if streamed and reading.done and not reading.content and not reading.state.usage.tokens_out and not obs.gap:
        return str(ErrorKind.EMPTY_RESPONSE)
    return None


def _timings(obs: Observation, reading: _Reading, streamed: bool) -> dict[str, float]:
    start_ns = obs.start_ns if obs.elapsed_ns is None else obs.t_close_ns - obs.elapsed_ns
    out = {"ts": round(obs.wall_close - (obs.t_close_ns - start_ns) / 1e9, 6)}
    if streamed and reading.first_ns is not None and reading.last_ns is not None:
        ttft = max(0.0, (reading.first_ns - start_ns) / 1e6)
        out["ttft_ms"] = round(ttft, 3)
        out["latency_ms"] = round(max(ttft, (reading.last_ns - start_ns) / 1e6), 3)
    else:
        out["latency_ms"] = round(max(0.0, (obs.t_close_ns - start_ns) / 1e6), 3)
    return out


def _tokens(state: StreamState) -> dict[str, int]:
    u = state.usage
    out: dict[str, int] = {}
    if u.tokens_in is not None:
        out["tokens_in"] = u.tokens_in
        if u.tokens_cached is not None and u.tokens_cached <= u.tokens_in:
            out["tokens_cached"] = u.tokens_cached
        # only when some were written: the app's other calls never carry a field that an
        # older ingest endpoint would refuse
        written = u.tokens_cache_write
        if written and written + out.get("tokens_cached", 0) <= u.tokens_in:
            out["tokens_cache_write"] = written
    if u.tokens_out is not None:
        out["tokens_out"] = u.tokens_out
        if u.tokens_reasoning is not None and u.tokens_reasoning <= u.tokens_out:
            out["tokens_reasoning"] = u.tokens_reasoning
    return out
