"""Ollama /api/chat, NDJSON: counts and nanosecond durations on the final line."""

from __future__ import annotations

from typing import Any

from llmscope_tui.model import ErrorKind, Target
from llmscope_tui.wire.base import (
    FrameInfo,
    JSONReader,
    MalformedFrame,
    RequestSpec,
    StreamState,
    count,
    generic_error,
)


class OllamaProtocol(JSONReader):
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

    def read_object(self, obj: Any, event: str | None, state: StreamState) -> FrameInfo:
        """One /api/chat or /api/generate line, or a whole body; counts come with done."""
        if not isinstance(obj, dict):
            raise MalformedFrame(f"expected a JSON object, got {type(obj).__name__}")
        state.note_model(obj.get("model"))
        if obj.get("error"):
            _, text = generic_error(obj)
            return FrameInfo(error=(ErrorKind.STREAM_ERROR, text))
        message = obj.get("message") or {}
        content = bool(
            message.get("content")
            or message.get("thinking")
            or message.get("tool_calls")
            or obj.get("response")  # /api/generate
            or obj.get("thinking")
        )
        reasoning = bool(message.get("thinking") or obj.get("thinking"))
        if not obj.get("done"):
            return FrameInfo(content=content, pieces=int(content), reasoning=reasoning)
        u = state.usage
        prompt, out = count(obj.get("prompt_eval_count")), count(obj.get("eval_count"))
        if prompt is not None:
            u.tokens_in = prompt
        if out is not None:
            u.tokens_out = out
        return FrameInfo(content=content, pieces=int(content), done=True, reasoning=reasoning)
