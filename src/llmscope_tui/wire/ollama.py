"""Ollama /api/chat, NDJSON: counts and nanosecond durations on the final line."""

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


class OllamaProtocol:
    name = "ollama"
    framing = "ndjson"

    def build_request(self, target: Target, api_key: str | None) -> RequestSpec:
        headers = {"content-type": "application/json", "accept": "application/x-ndjson"}
        if api_key:  # Ollama behind an authenticating proxy
            headers["authorization"] = f"Bearer {api_key}"
        headers.update(dict(target.extra_headers))
        body = {
            "model": target.model,
            "messages": [{"role": "user", "content": target.prompt}],
            "stream": True,
            "options": {"num_predict": target.max_tokens},
        }
        return RequestSpec(url=f"{target.base_url}/api/chat", headers=headers, body=body)

    def read_frame(self, event: str | None, data: str, state: StreamState) -> FrameInfo:
        obj = load_object(data)
        if obj.get("error"):
            _, message = generic_error(obj)
            return FrameInfo(error=(ErrorKind.STREAM_ERROR, message))
        message = obj.get("message") or {}
        content = bool(message.get("content") or message.get("thinking") or message.get("tool_calls"))
        if obj.get("done"):
            u = state.usage
            if obj.get("prompt_eval_count") is not None:
                u.tokens_in = obj["prompt_eval_count"]
            if obj.get("eval_count") is not None:
                u.tokens_out = obj["eval_count"]
            return FrameInfo(content=content, pieces=int(content), done=True)
        return FrameInfo(content=content, pieces=int(content))

    def error_type(self, body: Any) -> tuple[str | None, str]:
        return generic_error(body)
