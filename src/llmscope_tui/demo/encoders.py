"""The four wire encodings the demo speaks: how each protocol asks for a reply, streams one
and refuses one.

Each protocol is one ``Wire`` (``shapes.py``): ``read`` turns its request into an ``Ask`` (or
raises ``BadRequest``), ``stream`` dresses a drawn ``Plan`` as that protocol's frames with their
send times, and ``error`` shapes a refusal as that provider does. The server (``server.py``)
runs the same steps for all four, so what differs between protocols is only what is written
here.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from llmscope_tui.demo.generation import Plan
from llmscope_tui.demo.shapes import (
    SSE_HEADERS,
    STREAM_ONLY,
    Ask,
    BadRequest,
    Headers,
    ProfileOf,
    Stream,
    Wire,
    dumps,
    error_names,
    int_or_none,
    json_object,
    messages_texts,
    sse,
    texts_of,
    timed,
)
from llmscope_tui.server.app import Request

__all__ = ["WIRES"]


class OpenAIWire(Wire):
    """POST /v1/chat/completions: SSE chunks, an optional usage chunk, ``data: [DONE]``."""

    name = "openai"
    error_texts: ClassVar[dict[str, str]] = {
        "overloaded": "The engine is currently overloaded, please try again later."
    }

    def read(self, request: Request, path_args: Sequence[str], profile_of: ProfileOf) -> Ask:
        body = json_object(request)
        profile = profile_of(body.get("model"), self.name)
        texts = messages_texts(body, "messages: expected a non-empty array")
        if body.get("stream") is not True:
            raise BadRequest(400, "bad_request", STREAM_ONLY)
        max_tokens = int_or_none(body.get("max_completion_tokens", body.get("max_tokens")))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        return Ask(profile, profile.model, texts, max_tokens, include_usage)

    def stream(self, ask: Ask, plan: Plan) -> Stream:
        head = {
            "id": "chatcmpl-" + uuid.uuid4().hex[:24],
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": ask.profile.model,
            "system_fingerprint": "fp_llmscope_demo",
        }
        usage_null = {"usage": None} if ask.include_usage else {}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            return sse({**head, "choices": [choice], **usage_null})

        end = plan.end_s
        events = [
            (plan.first_event_s, chunk({"role": "assistant", "content": "", "refusal": None}))
        ]
        events += timed(plan.times, [chunk({"content": text}) for text in plan.chunks])
        events.append((end, chunk({}, "length" if plan.truncated else "stop")))
        if ask.include_usage:
            usage = {
                "prompt_tokens": plan.tokens_in,
                "completion_tokens": plan.tokens_out,
                "total_tokens": plan.tokens_in + plan.tokens_out,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            }
            events.append((end, sse({**head, "choices": [], "usage": usage})))
        events.append((end, b"data: [DONE]\n\n"))
        headers = [
            *SSE_HEADERS,
            ("x-request-id", "req_" + uuid.uuid4().hex),
            ("x-ratelimit-limit-requests", "600"),
        ]
        return Stream(headers, events)

    def error_parts(
        self, status: int, kind: str, message: str, retry_after: int | None
    ) -> tuple[Any, Headers]:
        type_, code = error_names(kind).openai
        headers = [("x-request-id", "req_" + uuid.uuid4().hex)]
        if kind == "rate_limit":
            headers += [
                ("x-ratelimit-limit-requests", "600"),
                ("x-ratelimit-remaining-requests", "0"),
                ("x-ratelimit-reset-requests", f"{retry_after or 1}s"),
            ]
        return {"error": {"message": message, "type": type_, "param": None, "code": code}}, headers


class AnthropicWire(Wire):
    """POST /v1/messages: SSE events named after their payload's type, usage at start and end."""

    name = "anthropic"
    overloaded_status = 529
    error_texts: ClassVar[dict[str, str]] = {"server_error": "Internal server error"}

    def read(self, request: Request, path_args: Sequence[str], profile_of: ProfileOf) -> Ask:
        body = json_object(request)
        profile = profile_of(body.get("model"), self.name)
        messages = messages_texts(body, "messages: Field required")
        max_tokens = int_or_none(body.get("max_tokens"))
        if max_tokens is None or max_tokens < 1:
            raise BadRequest(400, "bad_request", "max_tokens: Field required")
        if body.get("stream") is not True:
            raise BadRequest(400, "bad_request", STREAM_ONLY)
        return Ask(profile, profile.model, texts_of(body.get("system")) + messages, max_tokens)

    def stream(self, ask: Ask, plan: Plan) -> Stream:
        def event(data: dict[str, Any]) -> bytes:
            return b"event: " + data["type"].encode() + b"\n" + sse(data)

        usage = {
            "input_tokens": plan.tokens_in,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": 1,
        }
        message: dict[str, Any] = {
            "id": "msg_" + uuid.uuid4().hex[:24],
            "type": "message",
            "role": "assistant",
            "model": ask.profile.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        stop = {
            "stop_reason": "max_tokens" if plan.truncated else "end_turn",
            "stop_sequence": None,
        }
        first, end = plan.first_event_s, plan.end_s
        events = [
            (first, event({"type": "message_start", "message": message})),
            (
                first,
                event(
                    {
                        "type": "content_block_start",
                        "index": 0,
                        "content_block": {"type": "text", "text": ""},
                    }
                ),
            ),
            (first, event({"type": "ping"})),
        ]
        delta = "content_block_delta"
        events += timed(
            plan.times,
            [
                event({"type": delta, "index": 0, "delta": {"type": "text_delta", "text": t}})
                for t in plan.chunks
            ],
        )
        events += [
            (end, event({"type": "content_block_stop", "index": 0})),
            (
                end,
                event(
                    {
                        "type": "message_delta",
                        "delta": stop,
                        "usage": {"output_tokens": plan.tokens_out},
                    }
                ),
            ),
            (end, event({"type": "message_stop"})),
        ]
        headers = [
            *SSE_HEADERS,
            ("request-id", "req_" + uuid.uuid4().hex[:24]),
            ("anthropic-ratelimit-requests-limit", "1000"),
        ]
        return Stream(headers, events)

    def error_parts(
        self, status: int, kind: str, message: str, retry_after: int | None
    ) -> tuple[Any, Headers]:
        request_id = "req_" + uuid.uuid4().hex[:24]
        headers = [("request-id", request_id)]
        if kind == "rate_limit":
            headers += [
                ("anthropic-ratelimit-requests-limit", "1000"),
                ("anthropic-ratelimit-requests-remaining", "0"),
            ]
        error = {"type": error_names(kind).anthropic, "message": message}
        return {"type": "error", "error": error, "request_id": request_id}, headers


class GeminiWire(Wire):
    """POST /v1beta/models/{model}:streamGenerateContent?alt=sse: CRLF-framed SSE, usage
    cumulative in every event."""

    name = "gemini"
    error_texts: ClassVar[dict[str, str]] = {
        "rate_limit": "Resource has been exhausted (e.g. check quota).",
        "overloaded": "The model is overloaded. Please try again later.",
    }

    def read(self, request: Request, path_args: Sequence[str], profile_of: ProfileOf) -> Ask:
        model, method = path_args
        if method != "streamGenerateContent":
            unary = method == "generateContent"
            raise BadRequest(
                400 if unary else 404,
                "bad_request" if unary else "not_found",
                "the llmscope demo provider only serves :streamGenerateContent?alt=sse,"
                f" not :{method}",
            )
        if request.query.get("alt") != "sse":
            raise BadRequest(
                400, "bad_request", "the llmscope demo provider only serves alt=sse streams"
            )
        profile = profile_of(model, self.name)
        body = json_object(request)
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise BadRequest(
                400, "bad_request", "* GenerateContentRequest.contents: contents is not specified"
            )
        system = body.get("systemInstruction") or body.get("system_instruction")
        texts = [
            t
            for block in [system, *contents]
            if isinstance(block, dict)
            for t in texts_of(block.get("parts"))
        ]
        config = body.get("generationConfig") or body.get("generation_config") or {}
        max_tokens = int_or_none(config.get("maxOutputTokens", config.get("max_output_tokens")))
        return Ask(profile, model, texts, max_tokens)

    def stream(self, ask: Ask, plan: Plan) -> Stream:
        response_id = uuid.uuid4().hex[:22]
        payloads: list[bytes] = []
        sent = 0
        for i, (text, size) in enumerate(zip(plan.chunks, plan.sizes, strict=True)):
            sent += size
            candidate: dict[str, Any] = {
                "content": {"parts": [{"text": text}], "role": "model"},
                "index": 0,
            }
            if i == len(plan.chunks) - 1:
                candidate["finishReason"] = "MAX_TOKENS" if plan.truncated else "STOP"
            usage = {
                "promptTokenCount": plan.tokens_in,
                "candidatesTokenCount": sent,
                "totalTokenCount": plan.tokens_in + sent,
            }
            obj = {
                "candidates": [candidate],
                "usageMetadata": usage,
                "modelVersion": ask.profile.model,
                "responseId": response_id,
            }
            payloads.append(b"data: " + dumps(obj) + b"\r\n\r\n")
        headers = [
            ("content-type", "text/event-stream"),
            ("x-content-type-options", "nosniff"),
            ("server-timing", f"gfet4t7; dur={round(plan.first_event_s * 1000)}"),
        ]
        return Stream(headers, timed(plan.times, payloads))

    def error_parts(
        self, status: int, kind: str, message: str, retry_after: int | None
    ) -> tuple[Any, Headers]:
        error: dict[str, Any] = {
            "code": status,
            "message": message,
            "status": error_names(kind).gemini,
        }
        if retry_after is not None:
            error["details"] = [
                {
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": f"{retry_after}s",
                }
            ]
        return {"error": error}, []


class OllamaWire(Wire):
    """POST /api/chat: NDJSON lines, counts and nanosecond durations on the final one."""

    name = "ollama"
    error_texts: ClassVar[dict[str, str]] = {
        "rate_limit": "too many requests (simulated 429 burst)"
    }
    _STAMP = b'"created_at":""'

    def read(self, request: Request, path_args: Sequence[str], profile_of: ProfileOf) -> Ask:
        body = json_object(request)
        profile = profile_of(body.get("model"), self.name)
        texts = messages_texts(body, "messages are required")
        if body.get("stream", True) is not True:
            raise BadRequest(
                400, "bad_request", "the llmscope demo provider only serves streamed requests"
            )
        num_predict = int_or_none((body.get("options") or {}).get("num_predict"))
        if num_predict is not None and num_predict < 0:
            num_predict = None  # -1: unlimited
        return Ask(profile, str(body.get("model")), texts, num_predict)

    def stream(self, ask: Ask, plan: Plan) -> Stream:
        def line(obj: dict[str, Any]) -> bytes:
            return dumps(obj) + b"\n"

        ns = 1_000_000_000
        end, load = plan.end_s, plan.first_event_s
        events = timed(
            plan.times,
            [
                line(
                    {
                        "model": ask.model,
                        "created_at": "",
                        "message": {"role": "assistant", "content": text},
                        "done": False,
                    }
                )
                for text in plan.chunks
            ],
        )
        final = {
            "model": ask.model,
            "created_at": "",
            "message": {"role": "assistant", "content": ""},
            "done_reason": "length" if plan.truncated else "stop",
            "done": True,
            "total_duration": int(end * ns),
            "load_duration": int(load * ns),
            "prompt_eval_count": plan.tokens_in,
            "prompt_eval_duration": int((plan.times[0] - load) * ns),
            "eval_count": plan.tokens_out,
            "eval_duration": int((end - plan.times[0]) * ns),
        }
        events.append((end, line(final)))
        return Stream([("content-type", "application/x-ndjson")], events, self._stamp)

    def _stamp(self, payload: bytes) -> bytes:
        """created_at is stamped when each line leaves, as Ollama does."""
        now = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        return payload.replace(self._STAMP, b'"created_at":"' + now.encode() + b'"')

    def error_parts(
        self, status: int, kind: str, message: str, retry_after: int | None
    ) -> tuple[Any, Headers]:
        return {"error": message}, []


#: Every protocol the demo speaks, by name.
WIRES: dict[str, Wire] = {
    w.name: w for w in (OpenAIWire(), AnthropicWire(), GeminiWire(), OllamaWire())
}
