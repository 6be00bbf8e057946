"""Anthropic messages, streamed: usage in message_start, cumulative in message_delta."""

from __future__ import annotations

from typing import Any

from llmscope_tui.model import Target
from llmscope_tui.wire.base import (
    FrameInfo,
    JSONReader,
    MalformedFrame,
    RequestSpec,
    StreamState,
    Usage,
    count,
    stream_error,
)

_CONTENT_DELTAS = {
    "text_delta": "text",
    "thinking_delta": "thinking",
    "input_json_delta": "partial_json",
}


class AnthropicProtocol(JSONReader):
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

    def read_object(self, obj: Any, event: str | None, state: StreamState) -> FrameInfo:
        """A stream event (its type in the data, or else the SSE event name), or a whole message."""
        if not isinstance(obj, dict):
            raise MalformedFrame(f"expected a JSON object, got {type(obj).__name__}")
        kind = obj.get("type") or event
        if kind == "message":  # a whole body of a call made without streaming
            state.note_model(obj.get("model"))
            read_usage(obj.get("usage"), state.usage)
            content = bool(obj.get("content"))
            return FrameInfo(content=content, pieces=int(content), done=True)
        if kind == "message_start":
            message = obj.get("message") or {}
            state.note_model(message.get("model"))
            usage = message.get("usage")
            if isinstance(usage, dict):  # its output_tokens (1) is a placeholder, not a count
                usage = {k: v for k, v in usage.items() if k != "output_tokens"}
            read_usage(usage, state.usage)
        elif kind == "message_delta":
            read_usage(obj.get("usage"), state.usage)
        elif kind == "content_block_delta":
            delta = obj.get("delta") or {}
            field = _CONTENT_DELTAS.get(delta.get("type", ""))
            if field and delta.get(field):
                return FrameInfo(content=True, pieces=1, reasoning=field == "thinking")
        elif kind == "message_stop":
            return FrameInfo(done=True)
        elif kind == "error":
            return FrameInfo(error=stream_error(obj))
        return FrameInfo()


def read_usage(usage: Any, u: Usage) -> None:
    """DESIGN 4: tokens_in is all input (fresh + cache read + cache write); cached = cache read;
    cache write = cache creation (priced apart, at the cache-write price)."""
    if not isinstance(usage, dict):
        return
    fresh = count(usage.get("input_tokens"))
    read = count(usage.get("cache_read_input_tokens"))
    created = count(usage.get("cache_creation_input_tokens"))
    if fresh is not None or read is not None or created is not None:
        total = (fresh or 0) + (read or 0) + (created or 0)
        # message_delta may repeat input counts; message_start may carry them alone.
        u.tokens_in = max(u.tokens_in or 0, total)
        if read is not None:
            u.tokens_cached = read
        if created is not None:
            u.tokens_cache_write = created
    out = count(usage.get("output_tokens"))
    if out is not None:
        u.tokens_out = max(u.tokens_out or 0, out)
