"""OpenAI chat completions, streamed (and every OpenAI-compatible server, Azure included),
and the Responses API the app-side client also reads."""

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

_REASONING_KEYS = ("reasoning_content", "reasoning")  # DeepSeek / vLLM, OpenRouter
#: A refusal, reasoning or tool call is content too (DESIGN 4).
_CONTENT_KEYS = ("content", "refusal", *_REASONING_KEYS, "tool_calls", "function_call")


class OpenAIProtocol(JSONReader):
    name = "openai"
    framing = "sse"
    done_marker = "[DONE]"

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

    def read_object(self, obj: Any, event: str | None, state: StreamState) -> FrameInfo:
        """A chat.completion.chunk, or a whole chat.completion / completion body."""
        if not isinstance(obj, dict):
            raise MalformedFrame(f"expected a JSON object, got {type(obj).__name__}")
        state.note_model(obj.get("model"))
        if obj.get("error"):
            return FrameInfo(error=stream_error(obj))
        read_usage(obj.get("usage"), state.usage, "prompt_tokens", "completion_tokens")
        pieces = 0
        done = reasoning = False
        for choice in obj.get("choices") or ():
            done = done or bool(choice.get("finish_reason"))
            delta = choice.get("delta") or choice.get("message") or {}
            if any(delta.get(key) for key in _CONTENT_KEYS) or choice.get("text"):
                pieces += 1
            reasoning = reasoning or any(delta.get(key) for key in _REASONING_KEYS)
        return FrameInfo(content=pieces > 0, pieces=pieces, done=done, reasoning=reasoning)


class OpenAIResponsesReader(JSONReader):
    """The Responses API (/v1/responses): read for the app-side client; the probe does not speak it."""

    name = "openai-responses"
    framing = "sse"
    done_marker = "[DONE]"

    def read_object(self, obj: Any, event: str | None, state: StreamState) -> FrameInfo:
        """A response.* stream event, or a whole response body."""
        if not isinstance(obj, dict):
            raise MalformedFrame(f"expected a JSON object, got {type(obj).__name__}")
        kind = obj.get("type")
        response = (obj.get("response") or {}) if isinstance(kind, str) else obj
        state.note_model(response.get("model"))
        read_usage(response.get("usage"), state.usage, "input_tokens", "output_tokens")
        if not isinstance(kind, str):  # a whole body
            if response.get("error"):
                return FrameInfo(error=stream_error(response))
            content = bool(response.get("output"))
            return FrameInfo(content=content, pieces=int(content), done=True)
        if kind.endswith(".delta"):
            return FrameInfo(content=True, pieces=1)
        if kind in ("response.completed", "response.incomplete"):
            return FrameInfo(done=True)
        if kind == "response.failed":
            return FrameInfo(done=True, error=stream_error({"error": response.get("error")}))
        if kind == "error":
            return FrameInfo(error=stream_error({"error": obj}))
        return FrameInfo()


def read_usage(usage: Any, u: Usage, in_key: str, out_key: str) -> None:
    """OpenAI usage (chat: prompt/completion tokens; Responses: input/output tokens)."""
    if not isinstance(usage, dict):
        return
    tokens_in, tokens_out = count(usage.get(in_key)), count(usage.get(out_key))
    if tokens_in is not None:
        u.tokens_in = tokens_in  # cached included (DESIGN 4)
    if tokens_out is not None:
        u.tokens_out = tokens_out  # reasoning included
    cached = count((usage.get(f"{in_key}_details") or {}).get("cached_tokens"))
    if cached is not None:
        u.tokens_cached = cached
    reasoning = count((usage.get(f"{out_key}_details") or {}).get("reasoning_tokens"))
    if reasoning is not None:
        u.tokens_reasoning = reasoning
