"""OpenAI chat completions, streamed (and every OpenAI-compatible server, Azure included)."""

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


class OpenAIProtocol:
    name = "openai"
    framing = "sse"

    def build_request(self, target: Target, api_key: str | None) -> RequestSpec:
        headers = {"content-type": "application/json", "accept": "text/event-stream"}
        body: dict[str, Any] = {
            "model": target.model,
            "messages": [{"role": "user", "content": target.prompt}],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": target.max_tokens,
        }
        if target.provider == "azure":
            url = (
                f"{target.base_url}/openai/deployments/{target.model}/chat/completions"
                f"?api-version={target.api_version}"
            )
            if api_key:
                headers["api-key"] = api_key
        else:
            url = f"{target.base_url}/chat/completions"
            if api_key:
                headers["authorization"] = f"Bearer {api_key}"
        headers.update(dict(target.extra_headers))
        return RequestSpec(url=url, headers=headers, body=body)

    def read_frame(self, event: str | None, data: str, state: StreamState) -> FrameInfo:
        if data.strip() == "[DONE]":
            return FrameInfo(done=True)
        obj = load_object(data)
        if obj.get("error"):
            kind, message = generic_error(obj)
            error = ErrorKind.OVERLOADED if kind == "overloaded_error" else ErrorKind.STREAM_ERROR
            return FrameInfo(error=(error, message))
        usage = obj.get("usage")
        if isinstance(usage, dict):
            u = state.usage
            u.tokens_in = usage.get("prompt_tokens", u.tokens_in)
            u.tokens_out = usage.get("completion_tokens", u.tokens_out)
            details = usage.get("prompt_tokens_details") or {}
            if details.get("cached_tokens") is not None:
                u.tokens_cached = details["cached_tokens"]
            out_details = usage.get("completion_tokens_details") or {}
            if out_details.get("reasoning_tokens") is not None:
                u.tokens_reasoning = out_details["reasoning_tokens"]
        pieces = 0
        done = False
        for choice in obj.get("choices") or ():
            done = done or bool(choice.get("finish_reason"))
            delta = choice.get("delta") or {}
            if delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning"):
                pieces += 1
            elif delta.get("tool_calls") or delta.get("function_call"):
                pieces += 1
            elif choice.get("text"):
                pieces += 1
        return FrameInfo(content=pieces > 0, pieces=pieces, done=done)

    def error_type(self, body: Any) -> tuple[str | None, str]:
        return generic_error(body)
