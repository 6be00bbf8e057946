"""Gemini streamGenerateContent with alt=sse; the key goes in a header, never the URL."""

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


class GeminiProtocol(JSONReader):
    name = "gemini"
    framing = "sse"

    def build_request(self, target: Target, api_key: str | None) -> RequestSpec:
        headers = {"content-type": "application/json", "accept": "text/event-stream"}
        if api_key:
            headers["x-goog-api-key"] = api_key
        headers.update(dict(target.extra_headers))
        body = {
            "contents": [{"role": "user", "parts": [{"text": target.prompt}]}],
            "generationConfig": {"maxOutputTokens": target.max_tokens},
        }
        url = f"{target.base_url}/v1beta/models/{target.model}:streamGenerateContent?alt=sse"
        return RequestSpec(url=url, headers=headers, body=body)

    def read_object(self, obj: Any, event: str | None, state: StreamState) -> FrameInfo:
        """One streamed GenerateContentResponse, a whole one, or a JSON array of them."""
        if isinstance(obj, list):  # a JSON-array stream, as without alt=sse
            info = FrameInfo()
            for item in obj:
                info = info.merge(self.read_object(item, event, state))
            return info
        if not isinstance(obj, dict):
            raise MalformedFrame(f"expected a JSON object, got {type(obj).__name__}")
        state.note_model(obj.get("modelVersion"))
        if obj.get("error"):
            _, message = generic_error(obj)
            return FrameInfo(error=(ErrorKind.STREAM_ERROR, message))
        meta = obj.get("usageMetadata")
        if isinstance(meta, dict):
            u = state.usage
            prompt = count(meta.get("promptTokenCount"))
            if prompt is not None:
                u.tokens_in = prompt
            candidates, thoughts = count(meta.get("candidatesTokenCount")), count(meta.get("thoughtsTokenCount"))
            if candidates is not None or thoughts is not None:
                # Gemini counts thoughts apart; DESIGN 4 puts reasoning inside tokens_out.
                u.tokens_out = (candidates or 0) + (thoughts or 0)
            if thoughts is not None:
                u.tokens_reasoning = thoughts
            cached = count(meta.get("cachedContentTokenCount"))
            if cached is not None:
                u.tokens_cached = cached
        pieces = 0
        done = reasoning = False
        for candidate in obj.get("candidates") or ():
            done = done or bool(candidate.get("finishReason"))
            for part in (candidate.get("content") or {}).get("parts") or ():
                if part.get("text") or part.get("functionCall"):
                    pieces += 1
                    reasoning = reasoning or bool(part.get("thought"))  # a thought summary
        return FrameInfo(content=pieces > 0, pieces=pieces, done=done, reasoning=reasoning)

    def error_type(self, body: Any) -> tuple[str | None, str]:
        if isinstance(body, list) and body:
            body = body[0]
        return generic_error(body)
