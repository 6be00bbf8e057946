"""Anthropic messages, streamed: usage in message_start, cumulative in message_delta."""

from __future__ import annotations

from typing import Any

from llmscope_tui.model import ErrorKind, Target
from llmscope_tui.wire.base import (
    FrameInfo,
    RequestSpec,
    StreamState,
    generic_error,
    load_object,
)

_CONTENT_DELTAS = {"text_delta": "text", "thinking_delta": "thinking", "input_json_delta": "partial_json"}


class AnthropicProtocol:
    name = "anthropic"
    framing = "sse"

    def build_request(self, target: Target, api_key: str | None) -> RequestSpec:
        headers = {
            "content-type": "application/json",
            "accept": "text/event-stream",
            "anthropic-version": "2023-06-01",
        }
        if api_key:
            headers["x-api-key"] = api_key
        headers.update(dict(target.extra_headers))
        body = {
            "model": target.model,
            "max_tokens": target.max_tokens,
            "messages": [{"role": "user", "content": target.prompt}],
            "stream": True,
        }
        return RequestSpec(url=f"{target.base_url}/v1/messages", headers=headers, body=body)

    def read_frame(self, event: str | None, data: str, state: StreamState) -> FrameInfo:
        obj = load_object(data)
        kind = obj.get("type") or event
        if kind == "message_start":
            self._read_usage((obj.get("message") or {}).get("usage"), state)
        elif kind == "message_delta":
            self._read_usage(obj.get("usage"), state)
        elif kind == "content_block_delta":
            delta = obj.get("delta") or {}
            field = _CONTENT_DELTAS.get(delta.get("type", ""))
            if field and delta.get(field):
                return FrameInfo(content=True, pieces=1)
        elif kind == "message_stop":
            return FrameInfo(done=True)
        elif kind == "error":
            err_type, message = generic_error(obj)
            error = ErrorKind.OVERLOADED if err_type == "overloaded_error" else ErrorKind.STREAM_ERROR
            return FrameInfo(error=(error, message))
        return FrameInfo()

    @staticmethod
    def _read_usage(usage: Any, state: StreamState) -> None:
        if not isinstance(usage, dict):
            return
        u = state.usage
        fresh = usage.get("input_tokens")
        read = usage.get("cache_read_input_tokens")
        created = usage.get("cache_creation_input_tokens")
        if fresh is not None or read is not None or created is not None:
            total = (fresh or 0) + (read or 0) + (created or 0)
            # message_delta may repeat input counts; message_start may carry them alone.
            u.tokens_in = max(u.tokens_in or 0, total)
            if read is not None:
                u.tokens_cached = read
        if usage.get("output_tokens") is not None:
            u.tokens_out = max(u.tokens_out or 0, usage["output_tokens"])

    def error_type(self, body: Any) -> tuple[str | None, str]:
        return generic_error(body)
