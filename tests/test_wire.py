"""wire/ readers: what the probe and the app-side client both rely on (DESIGN 4 meanings)."""

from __future__ import annotations

import json

import pytest

from llmscope_tui.model import ErrorKind
from llmscope_tui.wire import PROTOCOLS
from llmscope_tui.wire.base import MalformedFrame, StreamState, count
from llmscope_tui.wire.openai import OpenAIResponsesReader


def test_a_refusal_delta_is_content() -> None:
    """DESIGN 4: a refusal is what the model said; time to first token stops at it."""
    state = StreamState()
    role = PROTOCOLS["openai"].read_frame(None, '{"choices":[{"delta":{"role":"assistant","refusal":null}}]}', state)
    refusal = PROTOCOLS["openai"].read_frame(None, '{"choices":[{"delta":{"refusal":"I can\'t"}}]}', state)
    assert (role.content, refusal.content, refusal.pieces) == (False, True, 1)


def test_whole_bodies_are_read_like_streams() -> None:
    """The client reads calls made without streaming through the same readers."""
    openai, anthropic, gemini, ollama = (PROTOCOLS[name] for name in ("openai", "anthropic", "gemini", "ollama"))
    state = StreamState()
    body = {"model": "gpt-4o", "choices": [{"message": {"content": "Hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2}}
    info = openai.read_object(body, None, state)
    assert (info.content, info.done, state.model, state.usage.tokens_in, state.usage.tokens_out) == (
        True, True, "gpt-4o", 5, 2
    )
    state = StreamState()
    body = {"type": "message", "model": "claude", "content": [{"text": "Hi"}],
            "usage": {"input_tokens": 1, "cache_creation_input_tokens": 4, "output_tokens": 3}}
    info = anthropic.read_object(body, None, state)
    assert (info.content, state.model, state.usage.tokens_in, state.usage.tokens_out) == (True, "claude", 5, 3)
    state = StreamState()
    chunk = {"candidates": [{"content": {"parts": [{"text": "a"}]}}], "modelVersion": "gemini-x"}
    info = gemini.read_object([chunk, chunk], None, state)  # a JSON-array stream: every element
    assert (info.pieces, state.model) == (2, "gemini-x")
    state = StreamState()
    info = ollama.read_object({"model": "m", "response": "Hi", "done": True, "eval_count": 1}, None, state)
    assert (info.content, info.done, state.usage.tokens_out) == (True, True, 1)  # /api/generate


def test_the_responses_api_reader() -> None:
    reader = OpenAIResponsesReader()
    state = StreamState()
    assert reader.read_frame(None, json.dumps({"type": "response.output_text.delta", "delta": "x"}), state).content
    done = reader.read_frame(None, json.dumps({"type": "response.completed", "response": {
        "model": "o4-mini", "usage": {"input_tokens": 7, "output_tokens": 3,
                                      "output_tokens_details": {"reasoning_tokens": 1}}}}), state)
    assert done.done and (state.model, state.usage.tokens_in, state.usage.tokens_reasoning) == ("o4-mini", 7, 1)
    failed = reader.read_frame(None, json.dumps({"type": "error", "code": "server_error", "message": "boom"}), state)
    assert failed.error is not None and failed.error[0] is ErrorKind.STREAM_ERROR


@pytest.mark.parametrize("value", [True, -1, "12", 1.5, None, [3]])
def test_counts_that_are_not_counts_are_ignored(value: object) -> None:
    assert count(value) is None
    state = StreamState()
    PROTOCOLS["ollama"].read_frame(None, json.dumps({"done": True, "eval_count": value}), state)
    assert state.usage.tokens_out is None


def test_a_frame_of_the_wrong_shape_is_malformed_for_every_reader() -> None:
    for name, frame in [("openai", '{"choices": [{"delta": "x"}]}'), ("anthropic", '"text"'),
                        ("gemini", "[1]"), ("ollama", '{"message": "hello"}')]:
        with pytest.raises(MalformedFrame):
            PROTOCOLS[name].read_frame(None, frame, StreamState())
