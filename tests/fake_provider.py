"""A fake LLM provider for tests: the four real wire protocols over real HTTP/1.1 on 127.0.0.1.

Quick use::

    from fake_provider import FakeProvider, Script

    with FakeProvider() as fake:                       # port 0: the OS picks one
        fake.enqueue(Script(status=429, retry_after="2"), Script(fault="reset_mid_stream"))
        fake.script(default=Script(tokens=["a", "b"], token_gap_s=0.05))
        ...  # point the client at fake.base_url ("http://127.0.0.1:PORT")
        req = fake.wait_for_requests(1)[0]             # a RecordedRequest
        req.t_first_content_ns, req.t_last_content_ns, req.content_frames

pytest: ``fake_provider_fixture()`` is a generator that a conftest can wrap::

    @pytest.fixture
    def fake_provider():
        yield from fake_provider_fixture()

Routes (all POST; anything else is 404/405 and consumes no script):

    openai     /v1/chat/completions  and  /chat/completions
    azure      /openai/deployments/{deployment}/chat/completions?api-version=...
               (no api-version: 404 "Resource not found", as Azure answers), /openai/v1/chat/completions
    anthropic  /v1/messages
    gemini     /v1beta/models/{model}:streamGenerateContent?alt=sse   (CRLF-framed SSE, like Google)
               without alt=sse it streams a JSON array, as Google does; :generateContent is not streamed
    ollama     /api/chat   (NDJSON, application/x-ndjson; "stream": false gives one JSON object)

OpenAI/Anthropic requests without ``"stream": true`` get the non-streamed JSON body.

How a response unfolds (times from the moment the request body has arrived)::

    sleep(headers_delay_s) -> status line + headers -> prelude frames (openai role chunk; anthropic
    message_start, content_block_start, ping) -> sleep(first_token_delay_s) -> piece 1 -> sleep(gap)
    -> piece 2 ... -> trailer frames (finish chunk, usage chunk, [DONE] / message_delta,
    message_stop / final NDJSON line) written back to back.

Pieces are reasoning pieces, then ``tokens``, then tool-call pieces; each is one frame, written with
its own ``writer.write`` + ``drain`` on a TCP_NODELAY socket and stamped with
``time.perf_counter_ns()`` just before the write (the client's clock in the same process). A piece
with empty text is written on schedule but is not a content frame. Frames that count as content are
the ones that DESIGN 4 says stop the TTFT clock: non-empty text, reasoning or tool-call data
(OpenAI role-only chunks, Anthropic block starts/stops and pings, usage chunks are not).

Usage numbers in ``Usage`` are in DESIGN 4 terms (input = all input, cached included; output
includes reasoning) and the fake converts them to each wire's convention (Anthropic input_tokens
excludes cache reads and writes; Gemini candidatesTokenCount excludes thoughtsTokenCount).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import itertools
import json
import re
import socket
import struct
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, unquote, urlsplit

__all__ = [
    "FAULTS",
    "PROTOCOLS",
    "FakeProvider",
    "RecordedRequest",
    "Script",
    "Usage",
    "fake_provider_fixture",
]

PROTOCOLS = ("openai", "azure", "anthropic", "gemini", "ollama")

FAULTS = (
    "hang",  # read the request, never answer (until the client goes away or the fake stops)
    "headers_then_silence",  # 200 + stream headers, then nothing
    "reset_mid_stream",  # fault_after (2) pieces, then RST (SO_LINGER 0 + close)
    "malformed",  # after fault_after (1) pieces a frame that is not JSON; the stream then goes on normally
    "error_event",  # after fault_after (1) pieces the protocol's in-stream error, then the body ends
    "empty",  # a clean, complete stream with no content at all
    "close_early",  # body ends cleanly (0-chunk) and FIN without the terminal frame
    #                 ([DONE] / message_stop / finishReason / done:true); with fault_after=N it stops
    #                 after N pieces and sends no trailer at all
    "eof_mid_stream",  # fault_after (2) pieces, then FIN without ending the chunked body
    "disconnect",  # read the request, then FIN without any response
    "reset",  # read the request, then RST without any response
)

_DEFAULT_FAULT_AFTER = {
    "reset_mid_stream": 2,
    "eof_mid_stream": 2,
    "malformed": 1,
    "error_event": 1,
    "close_early": None,
}
_PRE_RESPONSE_FAULTS = ("hang", "disconnect", "reset")

_REQUEST_ID_HEADER = {
    "openai": "x-request-id",
    "azure": "x-request-id",
    "anthropic": "request-id",
    "gemini": "x-request-id",
    "ollama": "x-request-id",
}


# --------------------------------------------------------------------------------------------
# Scripts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Usage:
    """Token usage the fake reports, in DESIGN 4 terms. ``None`` = derive from the script.

    output_tokens defaults to the number of pieces (reasoning + tokens + tool args pieces),
    reasoning_tokens to the number of reasoning pieces.
    """

    input_tokens: int = 12
    output_tokens: int | None = None
    cached_tokens: int = 0
    reasoning_tokens: int | None = None
    cache_creation_tokens: int = 0

    _ALIASES: ClassVar[dict[str, str]] = {
        "input": "input_tokens",
        "output": "output_tokens",
        "cached": "cached_tokens",
        "reasoning": "reasoning_tokens",
        "cache_creation": "cache_creation_tokens",
    }

    @classmethod
    def from_mapping(cls, values: dict[str, int]) -> Usage:
        kwargs = {cls._ALIASES.get(k, k): v for k, v in values.items()}
        return cls(**kwargs)


@dataclass(frozen=True)
class Script:
    """What the fake does for one request. The defaults give a normal, successful stream."""

    tokens: Sequence[str] = ("Hello", " there", ",", " OK", ".")
    first_token_delay_s: float = 0.01  # after the prelude frames, before the first piece
    token_gap_s: float = 0.005  # between pieces
    token_gaps_s: Sequence[float] | None = None  # per-gap override (len = pieces - 1); token_gap_s beyond
    headers_delay_s: float = 0.0  # after the request arrived, before the status line
    include_usage: bool = True  # openai also needs stream_options.include_usage in the request
    usage: Usage | dict[str, int] = field(default_factory=Usage)
    status: int = 200
    retry_after: str | None = None  # Retry-After header (any status)
    error_body: Any = None  # overrides the realistic body: dict/list -> JSON, str/bytes -> raw
    error_content_type: str | None = None  # for raw error bodies (default text/plain; charset=utf-8)
    request_id: str | None = None  # x-request-id (anthropic: request-id); also in anthropic error bodies
    extra_headers: dict[str, str] = field(default_factory=dict)  # added to every response
    role_chunk_first: bool = True  # openai role-only delta first; anthropic content_block_start + ping early
    fault: str | None = None  # one of FAULTS
    fault_after: int | None = None  # pieces before the fault fires (defaults per fault, see FAULTS)
    error_event_type: str | None = None  # in-stream error type: anthropic overloaded_error|api_error|...,
    #                                      openai error.type, gemini error.status, ollama message
    error_message: str | None = None  # message for the in-stream error / status error body
    malformed_frame: bytes | None = None  # raw frame for fault="malformed" (default: a broken JSON frame)
    reasoning: Sequence[str] = ()  # reasoning pieces before the text (openai delta.reasoning_content,
    #                               anthropic thinking_delta, gemini thought parts, ollama message.thinking)
    reasoning_field: str = "reasoning_content"  # openai delta key for reasoning ("reasoning" for OpenRouter)
    tool_name: str | None = None  # a tool call after the text (openai tool_calls, anthropic tool_use,
    tool_args: Sequence[str] = ()  # gemini functionCall, ollama tool_calls); args as JSON fragments
    finish_reason: str | None = None  # verbatim stop/finish reason (default per protocol)
    sse_crlf: bool | None = None  # CRLF SSE line ends (default: gemini only)
    sse_line_end: str | None = None  # "\n", "\r\n" or a bare "\r" (overrides sse_crlf)
    sse_nameless_events: bool = False  # an `event: keepalive` with no data line before each SSE frame
    text_field: str = "content"  # openai delta key for the text pieces ("refusal" for a refusal)
    ignore_stream: bool = False  # answer a streamed request with the whole JSON body (as LiteLLM's
    #                              /v1/messages does with a mock model)

    def __post_init__(self) -> None:
        if isinstance(self.usage, dict):
            object.__setattr__(self, "usage", Usage.from_mapping(self.usage))
        object.__setattr__(self, "tokens", tuple(self.tokens))
        object.__setattr__(self, "reasoning", tuple(self.reasoning))
        object.__setattr__(self, "tool_args", tuple(self.tool_args))
        if self.token_gaps_s is not None:
            object.__setattr__(self, "token_gaps_s", tuple(self.token_gaps_s))
        if self.fault is not None and self.fault not in FAULTS:
            raise ValueError(f"unknown fault {self.fault!r}; one of {', '.join(FAULTS)}")
        if self.status != 200 and self.fault not in (None, *_PRE_RESPONSE_FAULTS):
            raise ValueError(f"fault {self.fault!r} needs status 200 (it happens inside a stream)")
        if not 100 <= self.status <= 599:
            raise ValueError(f"bad status {self.status}")
        u = self.usage
        assert isinstance(u, Usage)
        if u.cached_tokens + u.cache_creation_tokens > u.input_tokens:
            raise ValueError("usage: input_tokens counts all input, so it must be >= cached + cache_creation")
        for name in ("first_token_delay_s", "token_gap_s", "headers_delay_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")

    # convenient constructors -----------------------------------------------------------------

    @classmethod
    def error(cls, status: int, *, retry_after: str | None = None, **kwargs: Any) -> Script:
        """A plain HTTP error with the protocol's realistic JSON body."""
        return cls(status=status, retry_after=retry_after, **kwargs)

    @classmethod
    def rate_limited(cls, retry_after: str | None = "1", **kwargs: Any) -> Script:
        return cls(status=429, retry_after=retry_after, **kwargs)

    def with_(self, **changes: Any) -> Script:
        return replace(self, **changes)

    # derived ------------------------------------------------------------------------------------

    @property
    def effective_fault_after(self) -> int | None:
        if self.fault_after is not None:
            return self.fault_after
        return _DEFAULT_FAULT_AFTER.get(self.fault or "")

    def gap(self, index: int) -> float:
        """The pause before piece ``index`` (0-based)."""
        if index == 0:
            return self.first_token_delay_s
        if self.token_gaps_s is not None and index - 1 < len(self.token_gaps_s):
            return self.token_gaps_s[index - 1]
        return self.token_gap_s


ScriptSource = Script | Callable[["RecordedRequest"], Script]


# --------------------------------------------------------------------------------------------
# Request records
# --------------------------------------------------------------------------------------------


@dataclass(eq=False)
class RecordedRequest:
    """One request as the fake saw it, with the server-side timing of its response.

    All ``t_*_ns`` are ``time.perf_counter_ns()`` taken in the server thread; None = did not happen.
    """

    method: str
    target: str  # raw request target, e.g. "/v1beta/models/x:streamGenerateContent?alt=sse"
    path: str  # percent-decoded path without the query
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names; repeated headers joined with ", "
    body: bytes
    json: Any  # parsed body, None if not JSON
    http_version: str
    conn_id: int  # which TCP connection (1, 2, ...): same id = keep-alive reuse
    conn_request_index: int  # 0 for the first request on its connection
    t_conn_accepted_ns: int  # when the fake accepted that connection
    t_headers_ns: int  # request head fully received
    t_body_ns: int | None = None  # request body fully received
    protocol: str | None = None  # openai | azure | anthropic | gemini | ollama | None (no route)
    model: str | None = None  # body model, gemini path model, azure deployment
    deployment: str | None = None
    stream: bool = True
    usage_requested: bool | None = None  # openai: stream_options.include_usage in the request
    script: Script | None = None
    status: int | None = None  # status line sent, None if none
    t_status_ns: int | None = None  # just before the status line + headers were written
    t_first_content_ns: int | None = None  # just before the first content frame was written
    t_last_content_ns: int | None = None  # just before the last content frame was written
    content_frames: int = 0
    content_times_ns: list[int] = field(default_factory=list)  # every content frame's stamp
    frames: list[tuple[int, str, bytes]] = field(default_factory=list)  # (t_ns, kind, payload) all frames
    t_end_ns: int | None = None  # just before the response's last bytes (or the drop/reset/stop)
    outcome: str = "pending"  # complete | hang | headers_then_silence | reset | eof | disconnect |
    #                          close_early | client_gone | stopped
    done: threading.Event = field(default_factory=threading.Event, repr=False)

    @property
    def new_connection(self) -> bool:
        return self.conn_request_index == 0

    @property
    def content(self) -> list[bytes]:
        return [payload for _, kind, payload in self.frames if kind == "content"]

    def wait_done(self, timeout: float = 5.0) -> RecordedRequest:
        if not self.done.wait(timeout):
            raise TimeoutError(f"fake provider: request {self.method} {self.target} still running")
        return self


# --------------------------------------------------------------------------------------------
# Wire formats
# --------------------------------------------------------------------------------------------


@dataclass
class _Piece:
    kind: str  # reasoning | text | tool_start | tool_args
    text: str

    @property
    def is_content(self) -> bool:
        return self.kind == "tool_start" or bool(self.text)


Frame = tuple[bytes, bool]  # (payload, is_content)


def _compact(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


class _Ctx:
    """Per-response state the frame generators read."""

    def __init__(self, req: RecordedRequest, script: Script, protocol: str) -> None:
        self.req = req
        self.script = script
        self.protocol = protocol
        self.model = req.model or "fake-model"
        self.created = int(time.time())
        self.hex = uuid.uuid4().hex
        self.crlf = script.sse_crlf if script.sse_crlf is not None else protocol == "gemini"
        self.json_array = protocol == "gemini" and req.query.get("alt") != "sse"
        self.first_array_item = True
        fault = script.fault
        self.drop_terminal = fault == "close_early" and script.effective_fault_after is None
        pieces: list[_Piece] = []
        if fault != "empty":
            pieces += [_Piece("reasoning", t) for t in script.reasoning]
            pieces += [_Piece("text", t) for t in script.tokens]
            if script.tool_name is not None:
                pieces.append(_Piece("tool_start", script.tool_name))
                pieces += [_Piece("tool_args", a) for a in script.tool_args]
        self.pieces = pieces
        u = script.usage
        assert isinstance(u, Usage)
        self.input = u.input_tokens
        self.cached = u.cached_tokens
        self.cache_creation = u.cache_creation_tokens
        n_reasoning = sum(1 for p in pieces if p.kind == "reasoning")
        self.reasoning = u.reasoning_tokens if u.reasoning_tokens is not None else n_reasoning
        default_out = sum(1 for p in pieces if p.kind != "tool_start")
        self.output = u.output_tokens if u.output_tokens is not None else default_out
        self.usage_on = script.include_usage and (req.usage_requested is not False)
        self.has_tool = script.tool_name is not None and fault != "empty"

    def sse(self, obj: Any, event: str | None = None) -> bytes:
        nl = self.script.sse_line_end or ("\r\n" if self.crlf else "\n")
        data = obj if isinstance(obj, str) else _compact(obj)
        head = f"event: {event}{nl}" if event else ""
        if self.script.sse_nameless_events:
            head = f"event: keepalive{nl}{nl}{head}"
        return f"{head}data: {data}{nl}{nl}".encode()

    def tool_args_obj(self) -> Any:
        joined = "".join(self.script.tool_args)
        try:
            return json.loads(joined) if joined else {}
        except ValueError:
            return {"_raw": joined}


# Each generator yields (section, frames): section "prelude" | "piece" | "trailer".
# A "piece" item is one scheduled piece (the executor sleeps before it); its frames are written
# back to back. Generators are lazy, so trailers may read timings of what was already sent.

Out = Iterator[tuple[str, list[Frame]]]


def _openai_frames(ctx: _Ctx) -> Out:
    s = ctx.script
    azure = ctx.protocol == "azure"
    base: dict[str, Any] = {
        "id": f"chatcmpl-{ctx.hex[:24]}",
        "object": "chat.completion.chunk",
        "created": ctx.created,
        "model": ctx.model,
        "system_fingerprint": "fp_fake0001",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        if azure:
            choice["content_filter_results"] = {} if not delta.get("content") else _AZURE_FILTERS
        obj = {**base, "choices": [choice]}
        if ctx.usage_on:
            obj["usage"] = None
        return ctx.sse(obj)

    if azure:  # Azure opens with a choices-less prompt-filter chunk
        yield "prelude", [
            (
                ctx.sse(
                    {
                        "choices": [],
                        "created": 0,
                        "id": "",
                        "model": "",
                        "object": "",
                        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": _AZURE_FILTERS}],
                    }
                ),
                False,
            )
        ]
    role_pending = True
    if s.role_chunk_first:
        yield "prelude", [(chunk({"role": "assistant", "content": "", "refusal": None}), False)]
        role_pending = False
    for piece in ctx.pieces:
        delta: dict[str, Any] = {}
        if role_pending:
            delta["role"] = "assistant"
            role_pending = False
        if piece.kind == "reasoning":
            delta[s.reasoning_field] = piece.text
        elif piece.kind == "text":
            delta[s.text_field] = piece.text
        elif piece.kind == "tool_start":
            delta["tool_calls"] = [
                {
                    "index": 0,
                    "id": f"call_{ctx.hex[:24]}",
                    "type": "function",
                    "function": {"name": piece.text, "arguments": ""},
                }
            ]
        else:
            delta["tool_calls"] = [{"index": 0, "function": {"arguments": piece.text}}]
        yield "piece", [(chunk(delta), piece.is_content)]
    finish = s.finish_reason or ("tool_calls" if ctx.has_tool else "stop")
    trailer: list[Frame] = [(chunk({}, finish), False)]
    if ctx.usage_on:
        usage = {
            "prompt_tokens": ctx.input,
            "completion_tokens": ctx.output,
            "total_tokens": ctx.input + ctx.output,
            "prompt_tokens_details": {"cached_tokens": ctx.cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": ctx.reasoning,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
        trailer.append((ctx.sse({**base, "choices": [], "usage": usage}), False))
    if not ctx.drop_terminal:
        trailer.append((ctx.sse("[DONE]"), False))
    yield "trailer", trailer


_AZURE_FILTERS = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}


def _anthropic_frames(ctx: _Ctx) -> Out:
    s = ctx.script
    msg_usage = {
        "input_tokens": ctx.input - ctx.cached - ctx.cache_creation,
        "cache_creation_input_tokens": ctx.cache_creation,
        "cache_read_input_tokens": ctx.cached,
        "output_tokens": min(1, ctx.output),
        "service_tier": "standard",
    }
    message: dict[str, Any] = {
        "id": f"msg_{ctx.hex[:24]}",
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }
    if ctx.usage_on:
        message["usage"] = msg_usage
    prelude: list[Frame] = [(ctx.sse({"type": "message_start", "message": message}, "message_start"), False)]

    block_kinds = {"reasoning": "thinking", "text": "text", "tool_start": "tool_use", "tool_args": "tool_use"}
    index = -1
    open_kind: str | None = None

    def start(kind: str) -> bytes:
        if kind == "thinking":
            block: dict[str, Any] = {"type": "thinking", "thinking": "", "signature": ""}
        elif kind == "text":
            block = {"type": "text", "text": ""}
        else:
            block = {"type": "tool_use", "id": f"toolu_{ctx.hex[:24]}", "name": s.tool_name, "input": {}}
        return ctx.sse({"type": "content_block_start", "index": index, "content_block": block}, "content_block_start")

    def stop() -> list[Frame]:
        frames: list[Frame] = []
        if open_kind == "thinking":
            sig = {"type": "signature_delta", "signature": "EqQBCgIYAhIM" + ctx.hex[:16]}
            frames.append(
                (ctx.sse({"type": "content_block_delta", "index": index, "delta": sig}, "content_block_delta"), False)
            )
        frames.append((ctx.sse({"type": "content_block_stop", "index": index}, "content_block_stop"), False))
        return frames

    ping = (ctx.sse({"type": "ping"}, "ping"), False)
    pieces = ctx.pieces
    if s.role_chunk_first and pieces:
        index, open_kind = 0, block_kinds[pieces[0].kind]
        prelude.append((start(open_kind), False))
    if s.role_chunk_first:
        prelude.append(ping)
    yield "prelude", prelude

    for piece in pieces:
        frames: list[Frame] = []
        kind = block_kinds[piece.kind]
        if kind != open_kind:
            if open_kind is not None:
                frames += stop()
            index += 1
            open_kind = kind
            frames.append((start(kind), False))
        if piece.kind == "tool_start":
            yield "piece", frames  # the block start carries the name; nothing streamed here
            continue
        if piece.kind == "reasoning":
            delta = {"type": "thinking_delta", "thinking": piece.text}
        elif piece.kind == "text":
            delta = {"type": "text_delta", "text": piece.text}
        else:
            delta = {"type": "input_json_delta", "partial_json": piece.text}
        event = {"type": "content_block_delta", "index": index, "delta": delta}
        frames.append((ctx.sse(event, "content_block_delta"), piece.is_content))
        yield "piece", frames

    trailer: list[Frame] = []
    if open_kind is not None:
        trailer += stop()
    stop_reason = s.finish_reason or ("tool_use" if ctx.has_tool else "end_turn")
    delta_event: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": None},
    }
    if ctx.usage_on:
        delta_event["usage"] = {"output_tokens": ctx.output}
    trailer.append((ctx.sse(delta_event, "message_delta"), False))
    if not ctx.drop_terminal:
        trailer.append((ctx.sse({"type": "message_stop"}, "message_stop"), False))
    yield "trailer", trailer


def _gemini_frames(ctx: _Ctx) -> Out:
    s = ctx.script
    pieces = ctx.pieces
    n_reasoning = sum(1 for p in pieces if p.kind == "reasoning")
    n_other = sum(1 for p in pieces if p.kind in ("text", "tool_args"))
    candidates_total = max(0, ctx.output - ctx.reasoning)
    seen_reasoning = 0
    seen_other = 0
    response_id = ctx.hex[:22]

    def usage(final: bool) -> dict[str, Any]:
        thoughts = ctx.reasoning if final or not n_reasoning else round(ctx.reasoning * seen_reasoning / n_reasoning)
        cands = candidates_total if final or not n_other else round(candidates_total * seen_other / n_other)
        meta: dict[str, Any] = {
            "promptTokenCount": ctx.input,
            "candidatesTokenCount": cands,
            "totalTokenCount": ctx.input + cands + thoughts,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": ctx.input}],
        }
        if ctx.cached:
            meta["cachedContentTokenCount"] = ctx.cached
        if thoughts:
            meta["thoughtsTokenCount"] = thoughts
        return meta

    def item(parts: list[dict[str, Any]], finish: bool) -> bytes:
        candidate: dict[str, Any] = {"content": {"parts": parts, "role": "model"}}
        if finish:
            candidate["finishReason"] = s.finish_reason or "STOP"
        candidate["index"] = 0
        obj: dict[str, Any] = {"candidates": [candidate]}
        if ctx.usage_on:
            obj["usageMetadata"] = usage(finish)
        obj["modelVersion"] = ctx.model
        obj["responseId"] = response_id
        return _gemini_encode(ctx, obj)

    # The tool call is one functionCall part: its args pieces are not streamed one by one.
    scheduled = [p for p in pieces if p.kind != "tool_start"] if ctx.has_tool else list(pieces)
    if ctx.has_tool and not any(p.kind == "tool_args" for p in pieces):
        scheduled.append(_Piece("tool_args", ""))
    tool_emitted = False
    last = len(scheduled) - 1
    for i, piece in enumerate(scheduled):
        if piece.kind == "reasoning":
            seen_reasoning += 1
            part: dict[str, Any] | None = {"text": piece.text, "thought": True}
            content = piece.is_content
        elif piece.kind == "text":
            seen_other += 1
            part = {"text": piece.text}
            content = piece.is_content
        else:
            seen_other += 1
            if tool_emitted:
                part, content = None, False
            else:
                part = {"functionCall": {"name": s.tool_name, "args": ctx.tool_args_obj()}}
                tool_emitted = content = True
        final = i == last and not ctx.drop_terminal
        if part is None:
            if final:
                yield "trailer", [(item([{"text": ""}], True), False)]
            else:
                yield "piece", []
            continue
        yield "piece", [(item([part], final), content)]
    if not scheduled and not ctx.drop_terminal:
        # nothing to say: one closing chunk with an empty text part (unless the stream stops early)
        yield "trailer", [(item([{"text": ""}], True), False)]
    if ctx.json_array:
        yield "trailer", [(b"\r\n]" if not ctx.first_array_item else b"[]", False)]


def _gemini_encode(ctx: _Ctx, obj: Any) -> bytes:
    if not ctx.json_array:
        return ctx.sse(obj)
    text = json.dumps(obj, ensure_ascii=False, indent=2)
    if ctx.first_array_item:
        ctx.first_array_item = False
        return ("[" + text).encode()
    return (",\r\n" + text).encode()


def _rfc3339_now() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e9):09d}Z"


def _ollama_frames(ctx: _Ctx) -> Out:
    s = ctx.script
    req = ctx.req

    def line(obj: dict[str, Any]) -> bytes:
        return (_compact(obj) + "\n").encode()

    for piece in ctx.pieces:
        message: dict[str, Any] = {"role": "assistant", "content": ""}
        if piece.kind == "reasoning":
            message["thinking"] = piece.text
        elif piece.kind == "text":
            message["content"] = piece.text
        elif piece.kind == "tool_start":
            message["tool_calls"] = [{"function": {"name": piece.text, "arguments": ctx.tool_args_obj()}}]
        else:
            yield "piece", []  # arguments arrived whole with the call
            continue
        obj = {"model": ctx.model, "created_at": _rfc3339_now(), "message": message, "done": False}
        yield "piece", [(line(obj), piece.is_content)]
    if ctx.drop_terminal:
        return
    now = time.perf_counter_ns()
    start = req.t_body_ns or req.t_headers_ns
    first = req.t_first_content_ns or now
    last = req.t_last_content_ns or now
    final: dict[str, Any] = {
        "model": ctx.model,
        "created_at": _rfc3339_now(),
        "message": {"role": "assistant", "content": ""},
        "done_reason": s.finish_reason or "stop",
        "done": True,
        "total_duration": now - start,
        "load_duration": min(1_000_000, max(0, first - start)),
    }
    if ctx.usage_on:
        final["prompt_eval_count"] = ctx.input
    final["prompt_eval_duration"] = max(0, first - start)
    if ctx.usage_on:
        final["eval_count"] = ctx.output
    final["eval_duration"] = max(0, last - first)
    yield "trailer", [(line(final), False)]


_FRAMES = {
    "openai": _openai_frames,
    "azure": _openai_frames,
    "anthropic": _anthropic_frames,
    "gemini": _gemini_frames,
    "ollama": _ollama_frames,
}

_STREAM_CONTENT_TYPE = {
    "openai": "text/event-stream; charset=utf-8",
    "azure": "text/event-stream; charset=utf-8",
    "anthropic": "text/event-stream; charset=utf-8",
    "gemini": "text/event-stream",
    "ollama": "application/x-ndjson",
}


def _error_frame(ctx: _Ctx) -> bytes:
    s = ctx.script
    p = ctx.protocol
    if p in ("openai", "azure"):
        err = {
            "message": s.error_message or "The server had an error while processing your request. Sorry about that!",
            "type": s.error_event_type or "server_error",
            "param": None,
            "code": None,
        }
        return ctx.sse({"error": err})
    if p == "anthropic":
        kind = s.error_event_type or "overloaded_error"
        message = s.error_message or ("Overloaded" if kind == "overloaded_error" else "Internal server error")
        return ctx.sse({"type": "error", "error": {"type": kind, "message": message}}, "error")
    if p == "gemini":
        status = s.error_event_type or "INTERNAL"
        code = {"UNAVAILABLE": 503, "RESOURCE_EXHAUSTED": 429, "DEADLINE_EXCEEDED": 504}.get(status, 500)
        message = s.error_message or "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"
        return _gemini_encode(ctx, {"error": {"code": code, "message": message, "status": status}})
    message = s.error_message or s.error_event_type or "an error was encountered while running the model: unexpected EOF"
    return (_compact({"error": message}) + "\n").encode()


def _malformed_frame(ctx: _Ctx) -> bytes:
    if ctx.script.malformed_frame is not None:
        return ctx.script.malformed_frame
    if ctx.protocol == "ollama":
        return b'{"model":"' + ctx.model.encode() + b'","message":{not json\n'
    if ctx.protocol == "anthropic":
        return ctx.sse("{not json", "content_block_delta")
    if ctx.json_array:
        return b",\r\n{not json"
    return ctx.sse("{not json")


# --------------------------------------------------------------------------------------------
# Error bodies (realistic, per protocol)
# --------------------------------------------------------------------------------------------

_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request: 'messages' must contain at least one message."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-fake****. You can find your API key at https://platform.openai.com/account/api-keys.",
    ),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found", "The model `{model}` does not exist or you do not have access to it."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for {model} in organization org-fake on requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s.",
    ),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    529: ("server_error", None, "The engine is currently overloaded, please try again later."),
}

_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "messages: at least one message is required"),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: {model}"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests per minute.",
    ),
    500: ("api_error", "Internal server error"),
    502: ("api_error", "Bad gateway"),
    503: ("api_error", "Service unavailable"),
    529: ("overloaded_error", "Overloaded"),
}

_GEMINI_ERRORS: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers without established identity)."),
    404: ("NOT_FOUND", "models/{model} is not found for API version v1beta, or is not supported for generateContent."),
    429: (
        "RESOURCE_EXHAUSTED",
        "You exceeded your current quota, please check your plan and billing details.",
    ),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting"),
    502: ("UNAVAILABLE", "Bad gateway."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
    529: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
}

_OLLAMA_ERRORS: dict[int, str] = {
    400: "invalid request: messages must not be empty",
    401: "unauthorized",
    403: "forbidden",
    404: 'model "{model}" not found, try pulling it first',
    429: "too many requests",
    500: "llama runner process has terminated: exit status 2",
    502: "bad gateway",
    503: "server busy, please try again.  maximum pending requests exceeded",
    529: "server overloaded",
}


def error_body(protocol: str | None, status: int, model: str = "fake-model", *, message: str | None = None,
               request_id: str | None = None) -> dict[str, Any]:
    """The JSON body a real provider of ``protocol`` sends with ``status``."""
    reason = _reason(status)
    if protocol == "openai" or protocol is None:
        kind, code, text = _OPENAI_ERRORS.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None, reason)
        )
        return {"error": {"message": message or text.format(model=model), "type": kind, "param": None, "code": code}}
    if protocol == "azure":
        if status == 404:
            code, text = "DeploymentNotFound", f"The API deployment for this resource does not exist. ({model})"
        elif status == 401:
            code, text = "401", (
                "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
                "valid key for an active subscription and use a correct regional API endpoint for your resource."
            )
        elif status == 429:
            code, text = "429", (
                "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 "
                "have exceeded token rate limit of your current OpenAI S0 pricing tier. Please retry after 6 seconds."
            )
        else:
            code, text = str(status), reason
        return {"error": {"code": code, "message": message or text}}
    if protocol == "anthropic":
        kind, text = _ANTHROPIC_ERRORS.get(status, ("api_error" if status >= 500 else "invalid_request_error", reason))
        body: dict[str, Any] = {"type": "error", "error": {"type": kind, "message": message or text.format(model=model)}}
        if request_id:
            body["request_id"] = request_id
        return body
    if protocol == "gemini":
        gstatus, text = _GEMINI_ERRORS.get(status, ("INTERNAL" if status >= 500 else "FAILED_PRECONDITION", reason))
        return {"error": {"code": status, "message": message or text.format(model=model), "status": gstatus}}
    text = _OLLAMA_ERRORS.get(status, reason.lower())
    return {"error": message or text.format(model=model)}


def _reason(status: int) -> str:
    if status == 529:
        return "Overloaded"
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


# --------------------------------------------------------------------------------------------
# Non-streamed bodies
# --------------------------------------------------------------------------------------------


def _nonstream_body(ctx: _Ctx) -> dict[str, Any]:
    text = "".join(p.text for p in ctx.pieces if p.kind == "text")
    thinking = "".join(p.text for p in ctx.pieces if p.kind == "reasoning")
    s = ctx.script
    p = ctx.protocol
    if p in ("openai", "azure"):
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        if thinking:
            message[s.reasoning_field] = thinking
        if ctx.has_tool:
            message["tool_calls"] = [
                {
                    "id": f"call_{ctx.hex[:24]}",
                    "type": "function",
                    "function": {"name": s.tool_name, "arguments": "".join(s.tool_args)},
                }
            ]
        return {
            "id": f"chatcmpl-{ctx.hex[:24]}",
            "object": "chat.completion",
            "created": ctx.created,
            "model": ctx.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": s.finish_reason or ("tool_calls" if ctx.has_tool else "stop"),
                }
            ],
            "usage": {
                "prompt_tokens": ctx.input,
                "completion_tokens": ctx.output,
                "total_tokens": ctx.input + ctx.output,
                "prompt_tokens_details": {"cached_tokens": ctx.cached, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": ctx.reasoning, "audio_tokens": 0},
            },
            "system_fingerprint": "fp_fake0001",
        }
    if p == "anthropic":
        content: list[dict[str, Any]] = []
        if thinking:
            content.append({"type": "thinking", "thinking": thinking, "signature": "EqQBCgIYAhIM"})
        if text:
            content.append({"type": "text", "text": text})
        if ctx.has_tool:
            content.append({"type": "tool_use", "id": f"toolu_{ctx.hex[:24]}", "name": s.tool_name,
                            "input": ctx.tool_args_obj()})
        return {
            "id": f"msg_{ctx.hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": ctx.model,
            "content": content,
            "stop_reason": s.finish_reason or ("tool_use" if ctx.has_tool else "end_turn"),
            "stop_sequence": None,
            "usage": {
                "input_tokens": ctx.input - ctx.cached - ctx.cache_creation,
                "cache_creation_input_tokens": ctx.cache_creation,
                "cache_read_input_tokens": ctx.cached,
                "output_tokens": ctx.output,
            },
        }
    if p == "gemini":
        parts: list[dict[str, Any]] = []
        if thinking:
            parts.append({"text": thinking, "thought": True})
        parts.append({"text": text})
        if ctx.has_tool:
            parts.append({"functionCall": {"name": s.tool_name, "args": ctx.tool_args_obj()}})
        cands = max(0, ctx.output - ctx.reasoning)
        meta: dict[str, Any] = {
            "promptTokenCount": ctx.input,
            "candidatesTokenCount": cands,
            "totalTokenCount": ctx.input + ctx.output,
        }
        if ctx.cached:
            meta["cachedContentTokenCount"] = ctx.cached
        if ctx.reasoning:
            meta["thoughtsTokenCount"] = ctx.reasoning
        return {
            "candidates": [
                {"content": {"parts": parts, "role": "model"}, "finishReason": s.finish_reason or "STOP", "index": 0}
            ],
            "usageMetadata": meta,
            "modelVersion": ctx.model,
            "responseId": ctx.hex[:22],
        }
    message = {"role": "assistant", "content": text}
    if thinking:
        message["thinking"] = thinking
    if ctx.has_tool:
        message["tool_calls"] = [{"function": {"name": s.tool_name, "arguments": ctx.tool_args_obj()}}]
    return {
        "model": ctx.model,
        "created_at": _rfc3339_now(),
        "message": message,
        "done_reason": s.finish_reason or "stop",
        "done": True,
        "total_duration": 1_000_000,
        "load_duration": 100_000,
        "prompt_eval_count": ctx.input,
        "prompt_eval_duration": 200_000,
        "eval_count": ctx.output,
        "eval_duration": 700_000,
    }


# --------------------------------------------------------------------------------------------
# Routing
# --------------------------------------------------------------------------------------------

_ROUTES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?:/v1)?/chat/completions$"), "openai"),
    (re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)/chat/completions$"), "azure"),
    (re.compile(r"^/openai/v1/chat/completions$"), "azure"),
    (re.compile(r"^/v1/messages$"), "anthropic"),
    (re.compile(r"^/v1(?:beta)?/models/(?P<model>[^/:]+):(?P<method>streamGenerateContent|generateContent)$"),
     "gemini"),
    (re.compile(r"^/api/chat$"), "ollama"),
]


def _route(path: str) -> tuple[str, dict[str, str]] | None:
    for pattern, protocol in _ROUTES:
        m = pattern.match(path)
        if m:
            return protocol, {k: v for k, v in m.groupdict().items() if v is not None}
    return None


# --------------------------------------------------------------------------------------------
# The server
# --------------------------------------------------------------------------------------------


class _Stop(Exception):
    """The connection is finished (fault, close, client gone); do not read another request."""


class _ClientGone(Exception):
    pass


class FakeProvider:
    """A fake LLM provider on 127.0.0.1 in a background thread with its own event loop.

    ``with FakeProvider() as fake:`` starts it; leaving the block closes every connection and joins
    the thread. ``api_key`` (optional): when set, requests must carry it in the protocol's header
    (openai ``Authorization: Bearer``, azure ``api-key``, anthropic ``x-api-key``, gemini
    ``x-goog-api-key`` or ``?key=``; ollama is not checked) or get a 401 with the protocol's body.
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, default: ScriptSource | None = None,
                 api_key: str | None = None, raise_errors: bool = True) -> None:
        self.host = host
        self._requested_port = port
        self.port: int | None = None
        self.api_key = api_key
        self.raise_errors = raise_errors
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._default: ScriptSource = default if default is not None else Script()
        self._by_protocol: dict[str, ScriptSource] = {}
        self._queue: deque[ScriptSource] = deque()
        self._protocol_queues: dict[str, deque[ScriptSource]] = {}
        self._requests: list[RecordedRequest] = []
        self.errors: list[BaseException] = []  # unexpected exceptions inside the fake itself
        self._conn_ids = itertools.count(1)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    # lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeProvider:
        if self._thread is not None:
            raise RuntimeError("FakeProvider already started")
        self._thread = threading.Thread(target=self._run, name="fake-provider", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake provider did not start")
        if self._startup_error is not None:
            self._thread.join(5)
            raise RuntimeError("fake provider failed to start") from self._startup_error
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None:
            return
        if loop is not None and self._stop_event is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # loop already gone
                loop.call_soon_threadsafe(self._stop_event.set)
        thread.join(10)
        if thread.is_alive():
            raise RuntimeError("fake provider thread did not stop")
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.stop()
        if exc_type is None and self.raise_errors and self.errors:
            raise RuntimeError(f"fake provider internal error: {self.errors[0]!r}") from self.errors[0]

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise RuntimeError("fake provider not started")
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    # scripting -----------------------------------------------------------------------------

    def script(self, default: ScriptSource | None = None, **by_protocol: ScriptSource | None) -> None:
        """Set the default script and/or per-protocol defaults (openai=..., anthropic=..., None clears).

        A script may be a callable taking the RecordedRequest (protocol, model, json already set).
        """
        with self._lock:
            if default is not None:
                self._default = default
            for protocol, source in by_protocol.items():
                if protocol not in PROTOCOLS:
                    raise ValueError(f"unknown protocol {protocol!r}")
                if source is None:
                    self._by_protocol.pop(protocol, None)
                else:
                    self._by_protocol[protocol] = source

    def enqueue(self, *scripts: ScriptSource, protocol: str | None = None) -> None:
        """Queue scripts consumed one per routed request (a protocol's own queue first), then defaults."""
        if protocol is not None and protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {protocol!r}")
        with self._lock:
            queue = self._queue if protocol is None else self._protocol_queues.setdefault(protocol, deque())
            queue.extend(scripts)

    def pending(self) -> int:
        """Queued scripts not yet consumed."""
        with self._lock:
            return len(self._queue) + sum(len(q) for q in self._protocol_queues.values())

    def reset(self) -> None:
        """Forget requests, queues and defaults (connections stay open)."""
        with self._lock:
            self._requests.clear()
            self._queue.clear()
            self._protocol_queues.clear()
            self._by_protocol.clear()
            self._default = Script()

    def _next_script(self, req: RecordedRequest) -> Script:
        with self._lock:
            source: ScriptSource | None = None
            pq = self._protocol_queues.get(req.protocol or "")
            if pq:
                source = pq.popleft()
            elif self._queue:
                source = self._queue.popleft()
            else:
                source = self._by_protocol.get(req.protocol or "", self._default)
        script = source(req) if callable(source) and not isinstance(source, Script) else source
        if not isinstance(script, Script):
            raise TypeError(f"script source returned {script!r}, not a Script")
        return script

    # records -------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot list of every request received, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def last_request(self) -> RecordedRequest:
        with self._lock:
            if not self._requests:
                raise LookupError("no request received")
            return self._requests[-1]

    def wait_for_requests(self, n: int = 1, timeout: float = 5.0, *, done: bool = True) -> list[RecordedRequest]:
        """Wait until ``n`` requests arrived (and, with done=True, their responses finished)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._requests) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"fake provider: {len(self._requests)} requests, wanted {n}")
                self._cond.wait(left)
            reqs = list(self._requests)
        if done:
            for req in reqs[:n]:
                req.wait_done(max(0.0, deadline - time.monotonic()))
        return reqs

    def _record(self, req: RecordedRequest) -> None:
        with self._cond:
            self._requests.append(req)
            self._cond.notify_all()

    # event loop ----------------------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            if not self._ready.is_set():
                self._startup_error = exc
                self._ready.set()
            else:
                self.errors.append(exc)
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        self._stop_event = asyncio.Event()
        server = await asyncio.start_server(self._on_connection, self.host, self._requested_port,
                                            reuse_address=True)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await self._stop_event.wait()
        finally:
            server.close()
            for task in list(self._tasks):
                task.cancel()
            if self._tasks:
                await asyncio.gather(*self._tasks, return_exceptions=True)
            for writer in list(self._writers):
                writer.transport.abort()
            await server.wait_closed()

    async def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        accepted = time.perf_counter_ns()
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn_id = next(self._conn_ids)
        req: RecordedRequest | None = None
        try:
            for index in itertools.count():
                req = await self._read_request(reader, writer, conn_id, index, accepted)
                if req is None:
                    break
                keep_alive = await self._respond(req, reader, writer)
                self._finish(req)
                if not keep_alive:
                    break
        except asyncio.CancelledError:
            if req is not None and not req.done.is_set():
                self._finish(req, "stopped")
            writer.transport.abort()
        except (_ClientGone, ConnectionError, asyncio.IncompleteReadError, OSError):
            if req is not None and not req.done.is_set():
                self._finish(req, "client_gone")
            writer.transport.abort()
        except _Stop:
            if req is not None and not req.done.is_set():
                self._finish(req)
        except BaseException as exc:  # noqa: BLE001 - a bug in the fake: make it visible
            self.errors.append(exc)
            if req is not None and not req.done.is_set():
                self._finish(req, "fake_error")
            writer.transport.abort()
        finally:
            if not writer.transport.is_closing():
                writer.close()
            self._writers.discard(writer)
            self._tasks.discard(task)

    @staticmethod
    def _finish(req: RecordedRequest, outcome: str | None = None) -> None:
        if outcome is not None or req.outcome == "pending":
            req.outcome = outcome or "complete"
        if req.t_end_ns is None:
            req.t_end_ns = time.perf_counter_ns()
        req.done.set()

    # request parsing -----------------------------------------------------------------------

    async def _read_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, conn_id: int,
                            index: int, accepted: int) -> RecordedRequest | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise
            return None  # clean EOF between requests
        except asyncio.LimitOverrunError:
            await self._write_simple(writer, 431, {"error": "request header too large"}, close=True)
            return None
        t_headers = time.perf_counter_ns()
        lines = head.decode("latin-1").split("\r\n")
        while lines and not lines[0]:  # tolerate stray CRLF before a request line
            lines.pop(0)
        method, target, version = (lines[0].split(" ", 2) + ["", ""])[:3]
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            key = name.strip().lower()
            value = value.strip()
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        split = urlsplit(target)
        req = RecordedRequest(
            method=method,
            target=target,
            path=unquote(split.path),
            query=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers=headers,
            body=b"",
            json=None,
            http_version=version,
            conn_id=conn_id,
            conn_request_index=index,
            t_conn_accepted_ns=accepted,
            t_headers_ns=t_headers,
        )
        self._record(req)
        if headers.get("expect", "").lower() == "100-continue":
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            await writer.drain()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            parts = []
            while True:
                size_line = await reader.readuntil(b"\r\n")
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                    break
                parts.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(parts)
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        req.body = body
        req.t_body_ns = time.perf_counter_ns()
        if body:
            try:
                req.json = json.loads(body)
            except ValueError:
                req.json = None
        return req

    # responding ----------------------------------------------------------------------------

    async def _respond(self, req: RecordedRequest, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> bool:
        close_requested = req.headers.get("connection", "").lower() == "close" or req.http_version == "HTTP/1.0"
        routed = _route(req.path)
        if routed is None:
            await self._write_simple(writer, 404, error_body(None, 404, message=f"Unknown path {req.path}"),
                                     req=req, close=close_requested)
            return not close_requested
        protocol, params = routed
        req.protocol = protocol
        if req.method != "POST":
            await self._write_simple(writer, 405, error_body(protocol, 405), req=req, close=close_requested,
                                     extra={"allow": "POST"})
            return not close_requested
        body = req.json if isinstance(req.json, dict) else {}
        req.deployment = params.get("deployment")
        req.model = params.get("model") or req.deployment or (body.get("model") if isinstance(body.get("model"), str) else None)
        if protocol == "gemini":
            req.stream = params.get("method") == "streamGenerateContent"
        elif protocol == "ollama":
            req.stream = body.get("stream", True) is not False
        else:
            req.stream = body.get("stream") is True
        if protocol in ("openai", "azure"):
            options = body.get("stream_options")
            req.usage_requested = isinstance(options, dict) and options.get("include_usage") is True
        if protocol == "azure" and req.deployment is not None and "api-version" not in req.query:
            await self._write_simple(writer, 404, {"error": {"code": "404", "message": "Resource not found"}},
                                     req=req, close=close_requested)
            return not close_requested
        if not isinstance(req.json, dict):
            await self._write_simple(writer, 400, error_body(protocol, 400, message="could not parse the JSON body"),
                                     req=req, close=close_requested)
            return not close_requested
        if not self._authorized(req):
            await self._write_simple(writer, 401, error_body(protocol, 401, req.model or "fake-model"),
                                     req=req, close=close_requested)
            return not close_requested

        script = self._next_script(req)
        req.script = script
        fault = script.fault

        if fault in _PRE_RESPONSE_FAULTS:
            await self._sleep(script.headers_delay_s)
            if fault == "hang":
                req.outcome = "hang"
                await self._wait_client_gone(reader)
            elif fault == "disconnect":
                req.outcome = "disconnect"
                writer.close()
            else:
                req.outcome = "reset"
                self._reset(writer)
            req.t_end_ns = time.perf_counter_ns()
            raise _Stop

        rid_header = _REQUEST_ID_HEADER[protocol]
        extra = dict(script.extra_headers)
        if script.request_id is not None:
            extra[rid_header] = script.request_id
        if script.retry_after is not None:
            extra["retry-after"] = script.retry_after

        if script.status != 200:
            await self._sleep(script.headers_delay_s)
            body_obj: Any = script.error_body
            if body_obj is None:
                body_obj = error_body(protocol, script.status, req.model or "fake-model",
                                      message=script.error_message, request_id=script.request_id)
            await self._write_simple(writer, script.status, body_obj, req=req, close=close_requested, extra=extra,
                                     content_type=script.error_content_type)
            return not close_requested

        ctx = _Ctx(req, script, protocol)
        if not req.stream or script.ignore_stream:
            return await self._respond_whole(req, ctx, reader, writer, extra, close_requested)
        return await self._stream(req, ctx, reader, writer, extra, close_requested)

    def _authorized(self, req: RecordedRequest) -> bool:
        key = self.api_key
        if key is None or req.protocol == "ollama":
            return True
        h = req.headers
        if req.protocol == "openai":
            return h.get("authorization") == f"Bearer {key}"
        if req.protocol == "azure":
            return h.get("api-key") == key or h.get("authorization") == f"Bearer {key}"
        if req.protocol == "anthropic":
            return h.get("x-api-key") == key
        return h.get("x-goog-api-key") == key or req.query.get("key") == key

    async def _stream(self, req: RecordedRequest, ctx: _Ctx, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter, extra: dict[str, str], close_requested: bool) -> bool:
        script = ctx.script
        fault = script.fault
        protocol = ctx.protocol
        await self._sleep(script.headers_delay_s)
        content_type = "application/json; charset=UTF-8" if ctx.json_array else _STREAM_CONTENT_TYPE[protocol]
        headers = {"content-type": content_type, "transfer-encoding": "chunked", "cache-control": "no-cache"}
        if protocol == "ollama":
            del headers["cache-control"]
        headers.update(extra)
        # close_early ends the body and closes: say so up front, so that the client's pool does not
        # race the FIN and put the next request on a dead connection.
        await self._write_head(req, writer, 200, headers, close_requested or fault == "close_early")
        if fault == "headers_then_silence":
            req.outcome = "headers_then_silence"
            await self._wait_client_gone(reader)
            req.t_end_ns = time.perf_counter_ns()
            raise _Stop

        fault_after = script.effective_fault_after if fault in _DEFAULT_FAULT_AFTER else None
        fired = fault_after is None
        piece_index = 0
        sections = itertools.chain(_FRAMES[protocol](ctx), [("end", [])])
        for section, frames in sections:
            if not fired and (section != "prelude" and (section != "piece" or piece_index == fault_after)):
                fired = True
                await self._sleep(script.gap(piece_index))
                if fault == "reset_mid_stream":
                    req.outcome = "reset"
                    self._reset(writer)
                    req.t_end_ns = time.perf_counter_ns()
                    raise _Stop
                if fault == "eof_mid_stream":
                    req.outcome = "eof"
                    writer.close()
                    req.t_end_ns = time.perf_counter_ns()
                    raise _Stop
                if fault == "close_early":
                    req.outcome = "close_early"
                    await self._write_raw(req, writer, b"0\r\n\r\n", "end")
                    writer.close()
                    raise _Stop
                if fault == "malformed":
                    await self._write_frame(req, writer, _malformed_frame(ctx), "malformed", False)
                    if section == "piece":
                        # the piece that was due now comes one normal gap later
                        await self._sleep(script.token_gap_s)
                        await self._write_frames(req, writer, frames)
                        piece_index += 1
                        continue
                elif fault == "error_event":
                    req.outcome = "error_event"
                    await self._write_frame(req, writer, _error_frame(ctx), "error", False)
                    await self._write_raw(req, writer, b"0\r\n\r\n", "end")
                    return not close_requested
                if section == "piece":
                    await self._write_frames(req, writer, frames)
                    piece_index += 1
                    continue
            if section == "piece":
                await self._sleep(script.gap(piece_index))
                piece_index += 1
            await self._write_frames(req, writer, frames)
        if fault == "close_early":
            req.outcome = "close_early"
        await self._write_raw(req, writer, b"0\r\n\r\n", "end")
        if fault == "close_early":
            writer.close()
            raise _Stop
        return not close_requested

    async def _respond_whole(self, req: RecordedRequest, ctx: _Ctx, reader: asyncio.StreamReader,
                             writer: asyncio.StreamWriter, extra: dict[str, str], close_requested: bool) -> bool:
        """A non-streamed answer: the whole generation time passes before the headers."""
        script = ctx.script
        wait = script.headers_delay_s + sum(script.gap(i) for i in range(len(ctx.pieces)))
        await self._sleep(wait)
        payload = json.dumps(_nonstream_body(ctx), ensure_ascii=False).encode()
        headers = {"content-type": "application/json", "content-length": str(len(payload)), **extra}
        await self._write_head(req, writer, 200, headers, close_requested)
        if script.fault == "headers_then_silence":
            req.outcome = "headers_then_silence"
            await self._wait_client_gone(reader)
            raise _Stop
        if script.fault in ("reset_mid_stream", "eof_mid_stream"):
            await self._write_frame(req, writer, payload[: len(payload) // 2], "body", False, chunked=False)
            if script.fault == "reset_mid_stream":
                req.outcome = "reset"
                self._reset(writer)
            else:
                req.outcome = "eof"
                writer.close()
            req.t_end_ns = time.perf_counter_ns()
            raise _Stop
        t = time.perf_counter_ns()
        if ctx.pieces:
            req.t_first_content_ns = req.t_last_content_ns = t
            req.content_frames = 1
            req.content_times_ns.append(t)
        req.frames.append((t, "content" if ctx.pieces else "body", payload))
        self._finish(req)  # complete before the client can see the body
        writer.write(payload)
        await self._drain(writer)
        return not close_requested

    # writing -------------------------------------------------------------------------------

    async def _write_head(self, req: RecordedRequest, writer: asyncio.StreamWriter, status: int,
                          headers: dict[str, str], close: bool) -> None:
        lines = [f"HTTP/1.1 {status} {_reason(status)}"]
        base = {"date": email.utils.formatdate(usegmt=True), "server": "fake-llm-provider",
                "connection": "close" if close else "keep-alive"}
        for name, value in {**base, **headers}.items():
            lines.append(f"{name}: {value}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        req.status = status
        req.t_status_ns = time.perf_counter_ns()
        req.frames.append((req.t_status_ns, "head", data))
        writer.write(data)
        await self._drain(writer)

    async def _write_frames(self, req: RecordedRequest, writer: asyncio.StreamWriter, frames: list[Frame]) -> None:
        for payload, is_content in frames:
            await self._write_frame(req, writer, payload, "content" if is_content else "meta", is_content)

    async def _write_frame(self, req: RecordedRequest, writer: asyncio.StreamWriter, payload: bytes, kind: str,
                           is_content: bool, *, chunked: bool = True) -> None:
        data = b"%x\r\n%s\r\n" % (len(payload), payload) if chunked else payload
        t = time.perf_counter_ns()
        if is_content:
            if req.t_first_content_ns is None:
                req.t_first_content_ns = t
            req.t_last_content_ns = t
            req.content_frames += 1
            req.content_times_ns.append(t)
        req.frames.append((t, kind, payload))
        writer.write(data)
        await self._drain(writer)

    async def _write_raw(self, req: RecordedRequest, writer: asyncio.StreamWriter, data: bytes, kind: str) -> None:
        req.frames.append((time.perf_counter_ns(), kind, data))
        if kind == "end":
            self._finish(req)  # complete before the client can see the end of the body
        writer.write(data)
        await self._drain(writer)

    async def _write_simple(self, writer: asyncio.StreamWriter, status: int, body: Any, *,
                            req: RecordedRequest | None = None, close: bool = False,
                            extra: dict[str, str] | None = None, content_type: str | None = None) -> None:
        if isinstance(body, bytes):
            payload = body
            ctype = content_type or "text/plain; charset=utf-8"
        elif isinstance(body, str):
            payload = body.encode()
            ctype = content_type or "text/plain; charset=utf-8"
        else:
            payload = json.dumps(body, ensure_ascii=False).encode()
            ctype = content_type or "application/json"
        headers = {"content-type": ctype, "content-length": str(len(payload)), **(extra or {})}
        if req is None:
            req = RecordedRequest("", "", "", {}, {}, b"", None, "", 0, 0, 0, 0)
        await self._write_head(req, writer, status, headers, close)
        req.frames.append((time.perf_counter_ns(), "body", payload))
        self._finish(req)  # complete before the client can see the body
        writer.write(payload)
        await self._drain(writer)
        if close:
            writer.close()

    @staticmethod
    async def _drain(writer: asyncio.StreamWriter) -> None:
        if writer.transport.is_closing():
            raise _ClientGone
        await writer.drain()

    @staticmethod
    def _reset(writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    @staticmethod
    async def _sleep(seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)

    @staticmethod
    async def _wait_client_gone(reader: asyncio.StreamReader) -> None:
        """Hold the connection, discarding anything sent, until the client closes it (or we stop)."""
        while await reader.read(65536):
            pass


def fake_provider_fixture(**kwargs: Any) -> Iterator[FakeProvider]:
    """Generator for a pytest fixture: ``yield from fake_provider_fixture()`` in a conftest fixture."""
    with FakeProvider(**kwargs) as fake:
        yield fake
