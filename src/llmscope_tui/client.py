"""Report what an application really spends on LLM calls to a running llmscope-tui.

::

    import httpx, openai
    from llmscope_tui.client import instrument

    http = httpx.Client()
    instrument(http, project="checkout")
    client = openai.OpenAI(http_client=http)

:func:`instrument` adds a response event hook to an ``httpx.Client`` or ``httpx.AsyncClient``
(and so to the openai and anthropic SDKs, which accept one). For every call to a recognised LLM
endpoint -- OpenAI chat completions / completions / responses (and every OpenAI-compatible
server, Azure included), Anthropic messages, Gemini generateContent / streamGenerateContent,
Ollama chat / generate -- it records the provider, the model, the token usage (DESIGN 4
meanings), the latency, the time to first token of a streamed reply, and ok / error kind, and
posts these records in batches to the llmscope-tui ingest endpoint (docs/ingest.md).

How it stays out of the app's way:

* It never consumes a response. The hook only wraps ``response.stream`` with a pass-through
  that hands every byte to the app unchanged, in the same chunks, and keeps a reference to it
  (the first 4 MiB and the last 256 KiB). Whatever the app reads -- a whole JSON body, or an SSE /
  NDJSON stream chunk by chunk -- is observed as it passes; when the app closes the response the
  observation is queued. Streamed replies therefore get real token counts (from the usage
  chunk / ``message_delta`` / ``usageMetadata`` / Ollama's final line) and a time to first token.
* Parsing, and sending, happen in one daemon thread, never in the app's thread or event loop
  (so the same code serves sync and async clients, under asyncio or trio). The app's thread
  only stamps a clock and appends to a bounded queue; when the queue is full the oldest entries
  are dropped and counted.
* Nothing raises into the app: every step of the hook, the stream wrapper and the worker catches
  its own errors. A down, slow or refusing endpoint only means records are retried (bounded) or
  dropped.
* Only counts and timings are sent: never the app's API key, headers, prompt or response text.
  (The request body is looked at, in the worker thread, only to find the ``model`` of a call
  whose response does not say it, e.g. a 429.)

Limits, said plainly: a call that never produced a response (DNS failure, refused connection, a
timeout before the headers) is not reported; a streamed response is reported when the app
closes it (the SDKs do when the stream ends or the ``with`` block exits), and its timings are
when the app *read* the bytes, which is when they arrived unless the app reads slowly; a stream
the app abandons before its end marker is reported as ``cancelled``; a JSON body larger than
4 MiB, or a compressed stream larger than that, is reported without tokens.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import re
import threading
import time
import unicodedata
import weakref
import zlib
from collections import deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from llmscope_tui.wire.errors import classify_exception, classify_status
from llmscope_tui.wire.framing import NDJSONDecoder, SSEDecoder

__all__ = ["DEFAULT_ENDPOINT", "Reporter", "instrument"]

log = logging.getLogger(__name__)
# A library must not print through logging's last-resort handler into the app's stderr.
log.addHandler(logging.NullHandler())

DEFAULT_ENDPOINT = "http://127.0.0.1:8787/v1/events"
API_KEY_ENV = "LLMSCOPE_API_KEY"

#: Of each response, the first HEAD_BYTES and the last TAIL_BYTES are kept for parsing.
HEAD_BYTES = 4 * 1024 * 1024
TAIL_BYTES = 256 * 1024
#: Bytes held by observations waiting for the worker, over all of them; beyond it, new
#: observations are reported without tokens rather than holding more memory.
MAX_HELD_BYTES = 64 * 1024 * 1024
#: Request bodies larger than this are searched for the model name, not parsed.
_PARSE_REQUEST_LIMIT = 8 * 1024 * 1024
_MAX_BACKOFF_S = 30.0

# -- which calls are LLM calls ----------------------------------------------------------------------

_HOSTS = {
    "api.openai.com": "openai",
    "api.anthropic.com": "anthropic",
    "generativelanguage.googleapis.com": "gemini",
    "openrouter.ai": "openrouter",
    "api.groq.com": "groq",
    "api.mistral.ai": "mistral",
    "api.deepseek.com": "deepseek",
    "api.together.xyz": "together",
    "api.together.ai": "together",
    "api.fireworks.ai": "fireworks",
}
_HOST_SUFFIXES = ((".openai.azure.com", "azure"), (".cognitiveservices.azure.com", "azure"))
#: Provider name for an endpoint on a host we do not know (self-hosted, gateways).
_FORMAT_PROVIDER = {
    "openai-chat": "openai-compatible",
    "openai-responses": "openai-compatible",
    "anthropic": "anthropic",
    "gemini": "gemini",
    "ollama": "ollama",
}
_GEMINI_PATH = re.compile(r"/models/([^/:]+):(?:stream)?generateContent$", re.IGNORECASE)
_REQUEST_ID_HEADERS = ("x-request-id", "request-id", "apim-request-id", "x-goog-request-id")
_MODEL_IN_BODY = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')


class _Route:
    __slots__ = ("fmt", "provider", "url_model")

    def __init__(self, fmt: str, provider: str, url_model: str | None) -> None:
        self.fmt = fmt
        self.provider = provider
        self.url_model = url_model


def _route(url: httpx.URL, provider: str | None) -> _Route | None:
    path = url.path.rstrip("/")
    url_model = None
    if path.endswith("/completions"):  # chat/completions and the legacy completions
        fmt = "openai-chat"
    elif path.endswith("/responses"):
        fmt = "openai-responses"
    elif path.endswith("/v1/messages"):
        fmt = "anthropic"
    elif path.endswith("/api/chat") or path.endswith("/api/generate"):
        fmt = "ollama"
    else:
        match = _GEMINI_PATH.search(path)
        if match is None:
            return None
        fmt, url_model = "gemini", match.group(1)
    if provider is None:
        host = (url.host or "").lower()
        provider = _HOSTS.get(host)
        if provider is None:
            provider = next((name for suffix, name in _HOST_SUFFIXES if host.endswith(suffix)), None)
        if provider is None:
            provider = "ollama" if url.port == 11434 else _FORMAT_PROVIDER[fmt]
    return _Route(fmt, provider, url_model)


# -- observing a response as the app reads it -------------------------------------------------------


class _Observation:
    """What passed by for one response: chunk references with arrival stamps, and how it ended."""

    __slots__ = (
        "reporter",
        "route",
        "status",
        "content_type",
        "content_encoding",
        "request_id",
        "request_body",
        "response_ref",
        "wall_start",
        "perf_start",
        "head",
        "head_bytes",
        "tail",
        "tail_bytes",
        "gap",
        "exhausted",
        "exc_kind",
        "finished",
        "elapsed",
        "t_close",
        "wall_close",
        "body_dropped",
    )

    def __init__(self, reporter: Reporter, route: _Route, response: httpx.Response) -> None:
        self.reporter = reporter
        self.route = route
        self.status = response.status_code
        headers = response.headers
        self.content_type = headers.get("content-type", "").lower()
        self.content_encoding = headers.get("content-encoding", "").strip().lower()
        self.request_id = next((headers[h] for h in _REQUEST_ID_HEADERS if h in headers), None)
        self.request_body: bytes | None = None
        if route.url_model is None:
            try:
                self.request_body = response.request.content  # already in memory for SDK calls
            except Exception:  # a streaming request body: the model must come from the response
                self.request_body = None
        self.response_ref = weakref.ref(response)
        self.wall_start = time.time()
        self.perf_start = time.perf_counter()
        self.head: list[tuple[bytes, float]] = []
        self.head_bytes = 0
        self.tail: deque[tuple[bytes, float]] = deque()
        self.tail_bytes = 0
        self.gap = False
        self.exhausted = False
        self.exc_kind: str | None = None
        self.finished = False
        self.elapsed: float | None = None
        self.t_close = 0.0
        self.wall_close = 0.0
        self.body_dropped = False

    def add(self, chunk: bytes) -> None:
        try:
            now = time.perf_counter()
            size = len(chunk)
            if not self.tail and self.head_bytes + size <= HEAD_BYTES:
                self.head.append((chunk, now))
                self.head_bytes += size
                return
            self.tail.append((chunk, now))
            self.tail_bytes += size
            while self.tail_bytes > TAIL_BYTES and len(self.tail) > 1:
                dropped, _ = self.tail.popleft()
                self.tail_bytes -= len(dropped)
                self.gap = True
        except Exception:  # pragma: no cover - never into the app
            pass

    def fail(self, exc: BaseException) -> None:
        try:
            if self.exc_kind is None:
                self.exc_kind = str(classify_exception(exc)) if isinstance(exc, Exception) else "cancelled"
        except Exception:  # pragma: no cover
            pass

    def finish(self, t_close: float) -> None:
        if self.finished:
            return
        self.finished = True
        try:
            self.t_close = t_close
            self.wall_close = time.time() - (time.perf_counter() - t_close)
            response = self.response_ref()
            if response is not None:
                try:
                    self.elapsed = response.elapsed.total_seconds()
                except Exception:  # elapsed is only set by httpx's own stream wrapper
                    self.elapsed = None
            self.response_ref = None  # type: ignore[assignment]
            self.reporter._submit(self)
        except Exception:  # pragma: no cover - never into the app
            pass

    @property
    def held_bytes(self) -> int:
        return self.head_bytes + self.tail_bytes + (len(self.request_body) if self.request_body else 0)

    def drop_body(self) -> None:
        self.head, self.tail = [], deque()
        self.head_bytes = self.tail_bytes = 0
        self.request_body = None
        self.body_dropped = True


class _SyncObserved(httpx.SyncByteStream):
    """Passes the inner stream's chunks through unchanged, showing each to the observation."""

    def __init__(self, inner: Any, obs: _Observation) -> None:
        self._inner = inner
        self._obs = obs

    def __iter__(self) -> Iterator[bytes]:
        obs = self._obs
        try:
            for chunk in self._inner:
                obs.add(chunk)
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            obs.fail(exc)
            raise
        obs.exhausted = True

    def close(self) -> None:
        t_close = time.perf_counter()
        try:
            self._inner.close()
        finally:
            self._obs.finish(t_close)


class _AsyncObserved(httpx.AsyncByteStream):
    """The async twin of :class:`_SyncObserved`; it awaits nothing of its own."""

    def __init__(self, inner: Any, obs: _Observation) -> None:
        self._inner = inner
        self._obs = obs

    async def __aiter__(self) -> Any:
        obs = self._obs
        try:
            async for chunk in self._inner:
                obs.add(chunk)
                yield chunk
        except GeneratorExit:
            raise
        except BaseException as exc:
            obs.fail(exc)
            raise
        obs.exhausted = True

    async def aclose(self) -> None:
        t_close = time.perf_counter()
        try:
            await self._inner.aclose()
        finally:
            self._obs.finish(t_close)


# -- turning an observation into a record (worker thread) ------------------------------------------


class _Acc:
    __slots__ = (
        "model",
        "tokens_in",
        "tokens_out",
        "tokens_cached",
        "tokens_reasoning",
        "first",
        "last",
        "content",
        "done",
        "error",
        "error_type",
    )

    def __init__(self) -> None:
        self.model: str | None = None
        self.tokens_in: int | None = None
        self.tokens_out: int | None = None
        self.tokens_cached: int | None = None
        self.tokens_reasoning: int | None = None
        self.first: float | None = None
        self.last: float | None = None
        self.content = False
        self.done = False
        self.error: str | None = None
        self.error_type: str | None = None

    def saw_content(self, arrived: float | None) -> None:
        self.content = True
        if arrived is not None:
            if self.first is None:
                self.first = arrived
            self.last = arrived

    def set_model(self, value: Any) -> None:
        if isinstance(value, str) and value and self.model is None:
            self.model = value

    def set_error(self, err: Any) -> None:
        kind = None
        if isinstance(err, dict):
            kind = err.get("type") or err.get("code") or err.get("status")
        self.error_type = str(kind) if kind is not None else self.error_type
        self.error = "overloaded" if kind == "overloaded_error" else "stream_error"


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, float) and value.is_integer() and value >= 0:
        return int(value)
    return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _openai_usage(usage: Any, acc: _Acc, in_key: str, out_key: str, in_details: str, out_details: str) -> None:
    usage = _dict(usage)
    if not usage:
        return
    tokens_in, tokens_out = _int(usage.get(in_key)), _int(usage.get(out_key))
    if tokens_in is not None:
        acc.tokens_in = tokens_in  # cached included (DESIGN 4)
    if tokens_out is not None:
        acc.tokens_out = tokens_out  # reasoning included
    cached = _int(_dict(usage.get(in_details)).get("cached_tokens"))
    if cached is not None:
        acc.tokens_cached = cached
    reasoning = _int(_dict(usage.get(out_details)).get("reasoning_tokens"))
    if reasoning is not None:
        acc.tokens_reasoning = reasoning


def _anthropic_usage(usage: Any, acc: _Acc) -> None:
    usage = _dict(usage)
    fresh = _int(usage.get("input_tokens"))
    read = _int(usage.get("cache_read_input_tokens"))
    created = _int(usage.get("cache_creation_input_tokens"))
    if fresh is not None or read is not None or created is not None:
        total = (fresh or 0) + (read or 0) + (created or 0)
        acc.tokens_in = max(acc.tokens_in or 0, total)  # message_delta may repeat the input counts
        if read is not None:
            acc.tokens_cached = read
    out = _int(usage.get("output_tokens"))
    if out is not None:
        acc.tokens_out = max(acc.tokens_out or 0, out)


def _apply(fmt: str, obj: Any, acc: _Acc, arrived: float | None) -> None:
    """Read model, usage, content, end and errors from one JSON body or one stream frame."""
    if fmt == "gemini" and isinstance(obj, list):  # a JSON-array stream (no alt=sse)
        for item in obj:
            _apply(fmt, item, acc, arrived)
        return
    if not isinstance(obj, dict):
        return
    if fmt == "openai-chat":
        acc.set_model(obj.get("model"))
        if obj.get("error"):
            acc.set_error(obj["error"])
        _openai_usage(
            obj.get("usage"), acc, "prompt_tokens", "completion_tokens", "prompt_tokens_details",
            "completion_tokens_details",
        )
        for choice in obj.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            if choice.get("finish_reason"):
                acc.done = True
            delta = _dict(choice.get("delta")) or _dict(choice.get("message"))
            if (
                delta.get("content")
                or delta.get("reasoning_content")
                or delta.get("reasoning")
                or delta.get("tool_calls")
                or delta.get("function_call")
                or choice.get("text")
            ):
                acc.saw_content(arrived)
    elif fmt == "openai-responses":
        kind = obj.get("type")
        response = _dict(obj.get("response")) if isinstance(kind, str) else obj
        acc.set_model(response.get("model"))
        _openai_usage(
            response.get("usage"), acc, "input_tokens", "output_tokens", "input_tokens_details",
            "output_tokens_details",
        )
        if isinstance(kind, str):
            if kind.endswith(".delta"):
                acc.saw_content(arrived)
            elif kind in ("response.completed", "response.incomplete"):
                acc.done = True
            elif kind == "response.failed":
                acc.done = True
                acc.set_error(response.get("error"))
            elif kind == "error":
                acc.set_error(obj)
        else:
            if response.get("error"):
                acc.set_error(response["error"])
            if response.get("output"):
                acc.saw_content(arrived)
    elif fmt == "anthropic":
        kind = obj.get("type")
        if kind == "message":
            acc.set_model(obj.get("model"))
            _anthropic_usage(obj.get("usage"), acc)
            if obj.get("content"):
                acc.saw_content(arrived)
            acc.done = True
        elif kind == "message_start":
            message = _dict(obj.get("message"))
            acc.set_model(message.get("model"))
            _anthropic_usage(message.get("usage"), acc)
        elif kind == "message_delta":
            _anthropic_usage(obj.get("usage"), acc)
        elif kind == "content_block_delta":
            delta = _dict(obj.get("delta"))
            if delta.get("text") or delta.get("thinking") or delta.get("partial_json"):
                acc.saw_content(arrived)
        elif kind == "message_stop":
            acc.done = True
        elif kind == "error":
            acc.set_error(obj.get("error"))
    elif fmt == "gemini":
        acc.set_model(obj.get("modelVersion"))
        if obj.get("error"):
            acc.set_error(obj["error"])
        meta = _dict(obj.get("usageMetadata"))
        if meta:
            prompt = _int(meta.get("promptTokenCount"))
            if prompt is not None:
                acc.tokens_in = prompt
            candidates, thoughts = _int(meta.get("candidatesTokenCount")), _int(meta.get("thoughtsTokenCount"))
            if candidates is not None or thoughts is not None:
                acc.tokens_out = (candidates or 0) + (thoughts or 0)  # thoughts inside tokens_out (DESIGN 4)
            if thoughts is not None:
                acc.tokens_reasoning = thoughts
            cached = _int(meta.get("cachedContentTokenCount"))
            if cached is not None:
                acc.tokens_cached = cached
        for candidate in obj.get("candidates") or ():
            if not isinstance(candidate, dict):
                continue
            if candidate.get("finishReason"):
                acc.done = True
            for part in _dict(candidate.get("content")).get("parts") or ():
                if isinstance(part, dict) and (part.get("text") or part.get("functionCall")):
                    acc.saw_content(arrived)
    elif fmt == "ollama":
        acc.set_model(obj.get("model"))
        if obj.get("error"):
            acc.set_error(obj["error"])
        message = _dict(obj.get("message"))
        if (
            message.get("content")
            or message.get("thinking")
            or message.get("tool_calls")
            or obj.get("response")
            or obj.get("thinking")
        ):
            acc.saw_content(arrived)
        if obj.get("done"):
            acc.done = True
            prompt, out = _int(obj.get("prompt_eval_count")), _int(obj.get("eval_count"))
            if prompt is not None:
                acc.tokens_in = prompt
            if out is not None:
                acc.tokens_out = out


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


def _frames_of(obs: _Observation, framing: str, acc: _Acc) -> None:
    decoder = SSEDecoder() if framing == "sse" else NDJSONDecoder()
    fmt = obs.route.fmt
    inflate = _decompressor(obs.content_encoding)
    last_arrived = obs.t_close

    def feed(chunks: Any, dec: Any) -> None:
        nonlocal last_arrived
        for chunk, arrived in chunks:
            data = inflate.decode(chunk) if inflate is not None else chunk
            last_arrived = arrived
            for frame in dec.feed(data, arrived):
                _apply_frame(fmt, frame.event, frame.data, acc, frame.arrived_ns)

    feed(obs.head, decoder)
    if obs.tail and not obs.gap:
        feed(obs.tail, decoder)
    elif obs.tail and inflate is None:
        # Bytes are missing between head and tail: restart at the first frame boundary in the tail.
        boundary = b"\n\n" if framing == "sse" else b"\n"
        joined = b"".join(chunk for chunk, _ in obs.tail)
        cut = joined.find(boundary)
        if framing == "sse":
            crlf = joined.find(b"\r\n\r\n")
            if crlf != -1 and (cut == -1 or crlf < cut):
                cut, boundary = crlf, b"\r\n\r\n"
        if cut != -1:
            skip = cut + len(boundary)
            decoder = SSEDecoder() if framing == "sse" else NDJSONDecoder()
            rest: list[tuple[bytes, float]] = []
            for chunk, arrived in obs.tail:
                if skip >= len(chunk):
                    skip -= len(chunk)
                    continue
                rest.append((chunk[skip:], arrived))
                skip = 0
            feed(rest, decoder)
    for frame in decoder.close(last_arrived):
        _apply_frame(fmt, frame.event, frame.data, acc, frame.arrived_ns)


def _apply_frame(fmt: str, event: str | None, data: str, acc: _Acc, arrived: float) -> None:
    text = data.strip()
    if not text:
        return
    if text == "[DONE]":
        acc.done = True
        return
    try:
        obj = json.loads(text)
    except ValueError:
        return
    if fmt == "anthropic" and isinstance(obj, dict) and "type" not in obj and event:
        obj = {**obj, "type": event}
    _apply(fmt, obj, acc, arrived)


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


def _clean(text: str, limit: int) -> str:
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cc", "Cf")).strip()
    return text[:limit]


def _summarize(obs: _Observation, project: str | None) -> dict[str, Any]:
    route = obs.route
    acc = _Acc()
    framing = "json"
    if "event-stream" in obs.content_type:
        framing = "sse"
    elif "ndjson" in obs.content_type or "jsonl" in obs.content_type:
        framing = "ndjson"
    streamed = framing != "json"
    if not obs.body_dropped and (obs.head or obs.tail):
        try:
            if streamed:
                _frames_of(obs, framing, acc)
            elif not obs.gap and not obs.tail:
                inflate = _decompressor(obs.content_encoding)
                raw = b"".join(chunk for chunk, _ in obs.head)
                body = inflate.decode(raw) if inflate is not None else raw
                _apply(route.fmt, json.loads(body), acc, None)
        except Exception:  # an unreadable body: report the call without what it would have said
            pass

    model = acc.model or route.url_model
    if model is None:
        try:
            model = _request_model(obs.request_body)
        except Exception:
            model = None
    obs.request_body = None
    model = _clean(model, 200) if model else ""

    status = obs.status
    error_kind: str | None = None
    if not 200 <= status < 300:
        error_kind = str(classify_status(status, acc.error_type))
    elif obs.exc_kind is not None:
        error_kind = obs.exc_kind
    elif acc.error is not None:
        error_kind = acc.error
    elif streamed and not acc.done and not obs.exhausted and not obs.body_dropped:
        error_kind = "cancelled"  # the app stopped reading before the end
    elif streamed and acc.done and not acc.content and not acc.tokens_out and not obs.gap:
        error_kind = "empty_response"

    record: dict[str, Any] = {
        "provider": route.provider,
        "model": model or "unknown",
        "ok": error_kind is None,
        "http_status": status,
    }
    if error_kind is not None:
        record["error_kind"] = error_kind
    if project:
        record["project"] = project
    if obs.request_id:
        request_id = _clean(obs.request_id, 200)
        if request_id:
            record["request_id"] = request_id

    start = obs.perf_start
    if obs.elapsed is not None:
        start = obs.t_close - obs.elapsed
    record["ts"] = round(obs.wall_close - (obs.t_close - start), 6)
    total_ms = max(0.0, (obs.t_close - start) * 1000)
    if streamed and acc.first is not None and acc.last is not None:
        ttft = max(0.0, (acc.first - start) * 1000)
        latency = max(ttft, (acc.last - start) * 1000)
        record["ttft_ms"] = round(ttft, 3)
        record["latency_ms"] = round(latency, 3)
    else:
        record["latency_ms"] = round(total_ms, 3)

    if acc.tokens_in is not None:
        record["tokens_in"] = acc.tokens_in
        if acc.tokens_cached is not None and acc.tokens_cached <= acc.tokens_in:
            record["tokens_cached"] = acc.tokens_cached
    if acc.tokens_out is not None:
        record["tokens_out"] = acc.tokens_out
        if acc.tokens_reasoning is not None and acc.tokens_reasoning <= acc.tokens_out:
            record["tokens_reasoning"] = acc.tokens_reasoning
    return record


# -- the reporter --------------------------------------------------------------------------------------


def _is_loopback_url(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    return host in ("localhost", "::1") or host.startswith("127.")


class Reporter:
    """Queues usage records and posts them in batches from a daemon thread.

    Made by :func:`instrument`; use :meth:`flush` to wait for delivery, :meth:`close` at exit
    (also registered with :mod:`atexit`). ``stats`` counts what happened. No method raises.
    """

    def __init__(
        self,
        *,
        endpoint: str = DEFAULT_ENDPOINT,
        api_key: str | None = None,
        project: str | None = None,
        provider: str | None = None,
        batch_size: int = 50,
        flush_interval_s: float = 2.0,
        max_queue: int = 10_000,
        send_timeout_s: float = 2.0,
        exit_timeout_s: float = 1.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if flush_interval_s <= 0:
            raise ValueError(f"flush_interval_s must be > 0, got {flush_interval_s}")
        if max_queue < 1:
            raise ValueError(f"max_queue must be >= 1, got {max_queue}")
        if project is not None:
            project = project.strip()
            if not project or len(project) > 100 or _clean(project, 100) != project:
                raise ValueError("project must be 1-100 characters without control characters")
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be an http(s) URL, got {endpoint!r}")
        self.endpoint = endpoint
        self.project = project
        self.provider = provider
        self.batch_size = int(batch_size)
        self.flush_interval_s = float(flush_interval_s)
        self.max_queue = int(max_queue)
        self.send_timeout_s = float(send_timeout_s)
        self.exit_timeout_s = float(exit_timeout_s)
        self._api_key = api_key if api_key is not None else (os.environ.get(API_KEY_ENV) or None)
        self._hooks: list[tuple[weakref.ref[Any], Any]] = []
        #: Counters: records sent, dropped (queue full, refused by the endpoint, or given up at close).
        self.sent = 0
        self.dropped = 0
        self.send_failures = 0
        self.last_error: str | None = None
        self._init_state()
        self._closed = False
        atexit.register(self._at_exit)
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _after_fork(ref))
        self._start_thread()

    def __repr__(self) -> str:  # never shows the key
        return f"Reporter(endpoint={self.endpoint!r}, project={self.project!r}, sent={self.sent})"

    def _init_state(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._items: deque[Any] = deque()  # observations and records, not yet looked at
        self._pending: deque[dict[str, Any]] = deque()  # records waiting to be sent
        self._pending_since = 0.0
        self._held = 0
        self._enqueued = 0
        self._finished = 0
        self._flushers = 0
        self._stopping = False
        self._stop_deadline = 0.0
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._run, name="llmscope-client-reporter", daemon=True)
        self._thread = thread
        thread.start()

    # -- the app side (never raises, never blocks beyond a short lock) ------------------------------

    def _on_response(self, response: httpx.Response, is_async: bool) -> None:
        try:
            if self._closed:
                return
            route = _route(response.request.url, self.provider)
            if route is None or 300 <= response.status_code < 400:
                return
            obs = _Observation(self, route, response)
            if response.is_closed:  # a body given in memory (mock transports): already read
                obs.content_encoding = ""  # response.content is decoded
                obs.add(response.content)
                obs.exhausted = True
                obs.finish(time.perf_counter())
                return
            inner = response.stream
            response.stream = _AsyncObserved(inner, obs) if is_async else _SyncObserved(inner, obs)
        except Exception:
            self._note_error("could not observe a response")

    def _submit(self, obs: _Observation) -> None:
        self._put(obs, obs.held_bytes)

    def report(self, **fields: Any) -> None:
        """Queue one record by hand (same fields as the endpoint takes); project is added if set."""
        try:
            record = dict(fields)
            if self.project and "project" not in record and "tag" not in record:
                record["project"] = self.project
            self._put(record, 0)
        except Exception:
            self._note_error("could not queue a record")

    def _put(self, item: Any, held: int) -> None:
        with self._cond:
            if self._closed and self._stopping:
                self.dropped += 1
                return
            if os.getpid() != self._pid:  # pragma: no cover - a fork not seen by the at-fork hook
                return
            if held and self._held + held > MAX_HELD_BYTES and isinstance(item, _Observation):
                item.drop_body()
                held = 0
            if len(self._items) + len(self._pending) >= self.max_queue:
                if self._pending:  # records waiting to be sent are the oldest
                    self._pending.popleft()
                else:
                    old = self._items.popleft()
                    self._held -= old.held_bytes if isinstance(old, _Observation) else 0
                self.dropped += 1
                self._finished += 1
            self._items.append(item)
            self._held += held
            self._enqueued += 1
            self._cond.notify_all()
            restart = self._thread is None  # the first record after a fork
            if restart:
                self._thread = threading.Thread(target=self._run, name="llmscope-client-reporter", daemon=True)
        if restart:
            self._thread.start()

    def _note_error(self, what: str) -> None:
        try:
            self.last_error = what
            log.debug("llmscope client: %s", what, exc_info=True)
        except Exception:  # pragma: no cover
            pass

    # -- control ------------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        with self._cond:
            queued = self._enqueued - self._finished
        return {"sent": self.sent, "dropped": self.dropped, "queued": queued, "send_failures": self.send_failures}

    def flush(self, timeout: float = 5.0) -> bool:
        """Send what is queued now; True when all of it was delivered (or dropped) within timeout."""
        try:
            with self._cond:
                goal = self._enqueued
                if self._finished >= goal:
                    return True
                self._flushers += 1
                self._cond.notify_all()
                try:
                    return self._cond.wait_for(lambda: self._finished >= goal, timeout)
                finally:
                    self._flushers -= 1
        except Exception:  # pragma: no cover
            return False

    def close(self, timeout: float = 2.0) -> None:
        """Stop observing, send what is queued (waiting at most ``timeout``), stop the thread."""
        try:
            if self._closed and self._stopping:
                return
            self._closed = True
            for client_ref, hook in self._hooks:
                client = client_ref()
                if client is not None:
                    try:
                        client.event_hooks["response"].remove(hook)
                    except (ValueError, KeyError, AttributeError):
                        pass
            self._hooks = []
            with self._cond:
                self._stopping = True
                self._stop_deadline = time.monotonic() + max(0.0, timeout)
                self._cond.notify_all()
            thread = self._thread
            if thread is not None and thread is not threading.current_thread():
                thread.join(max(0.0, timeout) + 0.1)
            try:
                atexit.unregister(self._at_exit)
            except Exception:  # pragma: no cover
                pass
        except Exception:  # pragma: no cover
            pass

    def _at_exit(self) -> None:
        self.close(self.exit_timeout_s)

    def __enter__(self) -> Reporter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the worker thread --------------------------------------------------------------------------

    def _run(self) -> None:
        """Parse observations into records, then post records in batches; exit when closed."""
        retry_at = 0.0
        backoff = 0.0
        http: httpx.Client | None = None
        try:
            while True:
                with self._cond:
                    while not self._items and not self._stopping:
                        now = time.monotonic()
                        if not self._pending:
                            self._cond.wait(5.0)
                            continue
                        urgent = self._flushers > 0 or len(self._pending) >= self.batch_size
                        due = max(now if urgent else self._pending_since + self.flush_interval_s, retry_at)
                        if due <= now:
                            break
                        self._cond.wait(due - now)
                    items = list(self._items)
                    self._items.clear()
                    self._held = 0
                records: list[dict[str, Any]] = []
                for item in items:
                    if isinstance(item, _Observation):
                        try:
                            records.append(_summarize(item, self.project))
                        except Exception:
                            self._finish(1)
                    else:
                        records.append(item)
                with self._cond:
                    if records:
                        if not self._pending:
                            self._pending_since = time.monotonic()
                        self._pending.extend(records)
                        self._trim()
                    stopping, deadline = self._stopping, self._stop_deadline
                while True:
                    now = time.monotonic()
                    if now < retry_at or (stopping and now >= deadline):
                        break
                    with self._cond:
                        pending = len(self._pending)
                        urgent = self._flushers > 0 or stopping or pending >= self.batch_size
                        if not pending or (not urgent and now - self._pending_since < self.flush_interval_s):
                            break
                        batch = [self._pending.popleft() for _ in range(min(self.batch_size, pending))]
                    if http is None:
                        http = httpx.Client(
                            timeout=httpx.Timeout(self.send_timeout_s),
                            trust_env=not _is_loopback_url(self.endpoint),
                        )
                    outcome = self._send(http, batch)
                    if outcome == "retry":
                        self.send_failures += 1
                        backoff = min(_MAX_BACKOFF_S, backoff * 2 if backoff else 0.5)
                        retry_at = time.monotonic() + backoff
                        with self._cond:  # back at the front, still subject to the bound
                            self._pending.extendleft(reversed(batch))
                            self._trim()
                        break
                    if outcome == "ok":
                        backoff = 0.0
                    with self._cond:
                        if outcome == "ok":
                            self.sent += len(batch)
                        else:
                            self.dropped += len(batch)
                        self._pending_since = time.monotonic()
                        self._finished += len(batch)
                        self._cond.notify_all()
                if stopping:
                    with self._cond:
                        if self._items:
                            continue
                        now = time.monotonic()
                        if self._pending and now < deadline and retry_at <= deadline:
                            wait = max(0.0, min(retry_at, deadline) - now)
                        else:  # all sent, or out of time: give up what is left
                            left = len(self._pending)
                            self._pending.clear()
                            self.dropped += left
                            self._finished += left
                            self._cond.notify_all()
                            return
                    time.sleep(min(0.05, wait))
        except Exception:  # pragma: no cover - a bug here must not take the app down
            self._note_error("the reporter thread failed")
        finally:
            if http is not None:
                try:
                    http.close()
                except Exception:  # pragma: no cover
                    pass

    def _trim(self) -> None:
        """Drop the oldest records beyond max_queue (call with the lock held)."""
        over = min(len(self._pending), len(self._items) + len(self._pending) - self.max_queue)
        if over > 0:
            for _ in range(over):
                self._pending.popleft()
            self.dropped += over
            self._finished += over
            self._cond.notify_all()

    def _finish(self, count: int) -> None:
        with self._cond:
            self._finished += count
            self._cond.notify_all()

    def _send(self, http: httpx.Client, batch: list[dict[str, Any]]) -> str:
        """POST one batch: "ok", "drop" (refused for good) or "retry" (the endpoint is not there)."""
        headers = {"content-type": "application/json"}
        if self._api_key:
            headers["authorization"] = f"Bearer {self._api_key}"
        try:
            response = http.post(self.endpoint, content=json.dumps(batch).encode(), headers=headers)
        except (httpx.HTTPError, OSError) as exc:
            self._warn(f"cannot reach {self.endpoint}: {type(exc).__name__}")
            return "retry"
        except Exception as exc:  # pragma: no cover
            self._warn(f"sending to {self.endpoint} failed: {type(exc).__name__}")
            return "drop"
        status = response.status_code
        if 200 <= status < 300:
            self.last_error = None
            return "ok"
        if status in (408, 429) or status >= 500:
            self._warn(f"{self.endpoint} answered {status}; retrying")
            return "retry"
        message = ""
        try:
            message = str(response.json()["error"]["message"])[:200]
        except Exception:
            pass
        self._warn(f"{self.endpoint} refused {len(batch)} records with {status}: {message}")
        return "drop"

    def _warn(self, message: str) -> None:
        if message != self.last_error:  # once per streak, not per batch
            log.warning("llmscope client: %s", message)
        self.last_error = message


def _after_fork(ref: weakref.ref[Reporter]) -> None:
    reporter = ref()
    if reporter is None:
        return
    try:  # the child starts empty: the parent's queue and thread are the parent's
        reporter._init_state()
        reporter._thread = None
        if reporter._closed:
            reporter._stopping = True
    except Exception:  # pragma: no cover
        pass


def instrument(
    client: httpx.Client | httpx.AsyncClient,
    *,
    endpoint: str = DEFAULT_ENDPOINT,
    api_key: str | None = None,
    project: str | None = None,
    batch_size: int = 50,
    flush_interval_s: float = 2.0,
    provider: str | None = None,
) -> Reporter:
    """Report every LLM call made through ``client`` to the llmscope-tui ingest endpoint.

    ``api_key`` defaults to LLMSCOPE_API_KEY; ``project`` names the app (shown as target
    ``app:<project>``); ``provider`` overrides the provider guessed from the URL's host (useful
    for a self-hosted OpenAI-compatible server, e.g. "vllm"). Returns the :class:`Reporter`; call
    ``reporter.close()`` for a clean exit (also done at interpreter exit). Instrumenting the same
    client twice returns the first reporter.
    """
    if not isinstance(client, (httpx.Client, httpx.AsyncClient)):
        raise TypeError(f"instrument() needs an httpx.Client or httpx.AsyncClient, got {type(client).__name__}")
    hooks = client.event_hooks["response"]
    for hook in hooks:
        existing = getattr(hook, "__llmscope_reporter__", None)
        if existing is not None and not existing._closed:
            return existing
    reporter = Reporter(
        endpoint=endpoint,
        api_key=api_key,
        project=project,
        provider=provider,
        batch_size=batch_size,
        flush_interval_s=flush_interval_s,
    )
    ref = weakref.ref(reporter)

    if isinstance(client, httpx.AsyncClient):

        async def hook(response: httpx.Response) -> None:
            r = ref()
            if r is not None:
                r._on_response(response, True)

    else:

        def hook(response: httpx.Response) -> None:  # type: ignore[misc]
            r = ref()
            if r is not None:
                r._on_response(response, False)

    hook.__llmscope_reporter__ = reporter  # type: ignore[attr-defined]
    # First, so the stream is wrapped before any other hook of the app reads the body.
    hooks.insert(0, hook)
    reporter._hooks.append((weakref.ref(client), hook))
    return reporter
