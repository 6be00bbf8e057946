"""The app-side client: usage read from an instrumented httpx client's traffic, sent in the background.

A fake upstream on 127.0.0.1 answers like OpenAI, Anthropic, Gemini and Ollama (plain JSON and
streamed); the records go to the real ingest routes, so every record the client makes is also
checked against the endpoint's validation.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import pytest
import stamina

from conftest import ThreadedServer
from llmscope_tui.client import Reporter, instrument, observe, summary
from llmscope_tui.model import Sample
from llmscope_tui.server import IngestRoutes, ThreadedHTTPServer, build_app
from llmscope_tui.server.app import Request, Response, StreamingResponse
from llmscope_tui.server.app import Response as JSONResponse

APP_KEY = "sk-app-secret-123456789"
PROMPT = "the secret prompt text"

OPENAI_JSON = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
    "usage": {
        "prompt_tokens": 120,
        "completion_tokens": 40,
        "prompt_tokens_details": {"cached_tokens": 100},
        "completion_tokens_details": {"reasoning_tokens": 12},
    },
}
RESPONSES_JSON = {
    "object": "response",
    "model": "o4-mini",
    "status": "completed",
    "output": [{"type": "message", "content": [{"type": "output_text", "text": "Hi"}]}],
    "usage": {
        "input_tokens": 50,
        "output_tokens": 20,
        "input_tokens_details": {"cached_tokens": 10},
        "output_tokens_details": {"reasoning_tokens": 8},
    },
}
ANTHROPIC_JSON = {
    "type": "message",
    "model": "claude-3-5-haiku-20241022",
    "content": [{"type": "text", "text": "Hi"}],
    "usage": {
        "input_tokens": 10,
        "cache_read_input_tokens": 200,
        "cache_creation_input_tokens": 30,
        "output_tokens": 25,
    },
}
GEMINI_JSON = {
    "candidates": [{"content": {"parts": [{"text": "Hi"}]}, "finishReason": "STOP"}],
    "usageMetadata": {
        "promptTokenCount": 80,
        "candidatesTokenCount": 15,
        "thoughtsTokenCount": 5,
        "cachedContentTokenCount": 60,
    },
}
OLLAMA_JSON = {"model": "llama3.2", "message": {"role": "assistant", "content": "Hi"}, "done": True,
               "prompt_eval_count": 33, "eval_count": 7}

OPENAI_STREAM = [
    b'data: {"model":"gpt-4o","choices":[{"delta":{"role":"assistant"}}]}\n\n',
    b'data: {"model":"gpt-4o","choices":[{"delta":{"content":"Hel"}}]}\n\n',
    b'data: {"model":"gpt-4o","choices":[{"delta":{"content":"lo"}}]}\n\n',
    b'data: {"model":"gpt-4o","choices":[{"delta":{"content":"!"},"finish_reason":"stop"}]}\n\n',
    (b'data: {"model":"gpt-4o","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":3,'
    b'"prompt_tokens_details":{"cached_tokens":0}}}\n\n'),
    b"data: [DONE]\n\n",
]
ANTHROPIC_STREAM = [
    (b'event: message_start\ndata: {"type":"message_start","message":{"model":"claude-sonnet-4",'
    b'"usage":{"input_tokens":5,"cache_read_input_tokens":100,"output_tokens":1}}}\n\n'),
    b": ping\n\n",
    b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"Hi"}}\n\n',
    b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"!"}}\n\n',
    b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":9}}\n\n',
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
]
GEMINI_STREAM = [
    b'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}]}}],"modelVersion":"gemini-2.0-flash"}\r\n\r\n',
    (b'data: {"candidates":[{"content":{"parts":[{"text":" there"}]},"finishReason":"STOP"}],'
    b'"usageMetadata":{"promptTokenCount":7,"candidatesTokenCount":4},"modelVersion":"gemini-2.0-flash"}\r\n\r\n'),
]
OLLAMA_STREAM = [
    b'{"model":"qwen3","message":{"content":"Hi"},"done":false}\n',
    b'{"model":"qwen3","message":{"content":"!"},"done":false}\n',
    b'{"model":"qwen3","message":{"content":""},"done":true,"prompt_eval_count":21,"eval_count":2}\n',
]
STREAMS = {
    "/v1/chat/completions": (OPENAI_STREAM, "text/event-stream"),
    "/v1/messages": (ANTHROPIC_STREAM, "text/event-stream"),
    "/v1beta/models/gemini-2.0-flash:streamGenerateContent": (GEMINI_STREAM, "text/event-stream"),
    "/api/chat": (OLLAMA_STREAM, "application/x-ndjson"),
}


class Upstream:
    """A fake LLM API. Streams pause between chunks, so time to first token is measurable."""

    gap_s = 0.03

    async def __call__(self, request: Request) -> Response | StreamingResponse:
        body = request.json() if request.body else {}
        model = body.get("model")
        if model == "limited":
            return Response.json({"error": {"type": "rate_limit_error", "message": "slow down"}}, 429)
        if model == "not-json":
            return Response(200, b"<html>oops</html>", [("content-type", "application/json")])
        if model == "gzip":
            data = gzip.compress(json.dumps(OPENAI_JSON).encode())
            return Response(200, data, [("content-type", "application/json"), ("content-encoding", "gzip")])
        path = request.path
        if body.get("stream") or ":streamGenerateContent" in path:
            chunks, ctype = STREAMS[path]
            gap = self.gap_s

            async def gen() -> Any:
                for chunk in chunks:
                    await asyncio.sleep(gap)
                    yield chunk

            return StreamingResponse(200, {"content-type": ctype, "x-request-id": "req-stream"}, gen())
        replies = {
            "/v1/chat/completions": OPENAI_JSON,
            "/v1/responses": RESPONSES_JSON,
            "/v1/messages": ANTHROPIC_JSON,
            "/v1beta/models/gemini-2.0-flash:generateContent": GEMINI_JSON,
            "/api/chat": OLLAMA_JSON,
        }
        if path in replies:
            return Response.json(replies[path], headers={"x-request-id": "req-1"})
        return Response.json({"data": []})


class Endpoint:
    """The ingest endpoint on the server stack: the real ingest routes, recording what arrives
    (an ASGI app wrapped around them; it can hold each request or answer a fixed status)."""

    def __init__(
        self,
        *,
        api_key: str | None = None,
        hang: threading.Event | None = None,
        status: int = 0,
        away_for: int = 0,
    ):
        self.samples: list[Sample] = []
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.arrived = threading.Event()
        self.hang = hang
        self.status = status
        self.away_for = away_for  # answer the first away_for posts with 503
        self.ingest = build_app(
            ingest=IngestRoutes(self._sink, api_key=api_key), max_body_bytes=1_000_000, body_timeout_s=30
        )

    def _sink(self, samples: list[Sample]) -> None:
        with self.lock:
            self.samples.extend(samples)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        with self.lock:
            self.bodies.append(body)
            self.headers.append({k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]})
        self.arrived.set()
        if self.hang is not None:
            while not self.hang.is_set():
                await asyncio.sleep(0.01)
        if self.status:
            await JSONResponse.json({"error": {"message": "nope"}}, self.status)(send)
            return
        with self.lock:
            away = len(self.bodies) <= self.away_for
        if away:
            await JSONResponse.json({"error": {"message": "restarting"}}, 503)(send)
            return

        async def replay() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        await self.ingest(scope, replay, send)

    def by_model(self) -> dict[str, Sample]:
        with self.lock:
            return {s.model: s for s in self.samples}


@pytest.fixture
def upstream() -> Iterator[ThreadedServer]:
    with ThreadedServer(Upstream(), name="fake-upstream") as server:
        yield server


@pytest.fixture
def endpoint() -> Iterator[tuple[Endpoint, str]]:
    ep = Endpoint()
    with ThreadedHTTPServer(ep, name="fake-ingest") as server:
        yield ep, server.base_url + "/v1/events"


def _calls(http: httpx.Client) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {APP_KEY}"}
    messages = [{"role": "user", "content": PROMPT}]
    return {
        "openai": http.post(
            "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": messages}, headers=headers
        ),
        "responses": http.post("/v1/responses", json={"model": "o4-mini", "input": PROMPT}, headers=headers),
        "anthropic": http.post("/v1/messages", json={"model": "claude", "messages": messages}, headers=headers),
        "gemini": http.post("/v1beta/models/gemini-2.0-flash:generateContent", json={"contents": []}, headers=headers),
        "ollama": http.post("/api/chat", json={"model": "llama3.2", "messages": messages}),
    }


def _check_json_records(ep: Endpoint) -> None:
    got = ep.by_model()
    openai = got["gpt-4o-mini-2024-07-18"]
    assert (openai.provider, openai.target, openai.source) == ("openai-compatible", "app:checkout", "app")
    assert (openai.tokens_in, openai.tokens_out, openai.tokens_cached, openai.tokens_reasoning) == (120, 40, 100, 12)
    assert openai.ok == 1 and openai.http_status == 200 and openai.request_id == "req-1"
    assert openai.latency_ms is not None and 0 <= openai.latency_ms < 5000 and openai.ttft_ms is None
    responses = got["o4-mini"]
    assert (responses.tokens_in, responses.tokens_out, responses.tokens_cached, responses.tokens_reasoning) == (
        50, 20, 10, 8,
    )
    anthropic = got["claude-3-5-haiku-20241022"]
    assert anthropic.provider == "anthropic"
    # DESIGN 4: Anthropic tokens_in = input + cache read + cache creation; cached = cache read.
    assert (anthropic.tokens_in, anthropic.tokens_out, anthropic.tokens_cached) == (240, 25, 200)
    assert (anthropic.tokens_cache_write, openai.tokens_cache_write) == (30, 0)  # cache creation
    gemini = got["gemini-2.0-flash"]  # from the URL: the body names no model
    assert gemini.provider == "gemini"
    # DESIGN 4: Gemini thoughts go inside tokens_out.
    assert (gemini.tokens_in, gemini.tokens_out, gemini.tokens_cached, gemini.tokens_reasoning) == (80, 20, 60, 5)
    ollama = got["llama3.2"]
    assert (ollama.provider, ollama.tokens_in, ollama.tokens_out) == ("ollama", 33, 7)


def test_sync_client_reports_usage_and_leaves_responses_alone(
    upstream: ThreadedServer, endpoint: tuple[Endpoint, str]
) -> None:
    ep, url = endpoint
    with httpx.Client(base_url=upstream.base_url) as http:
        reporter = instrument(http, endpoint=url, project="checkout")
        responses = _calls(http)
        assert reporter.flush(5.0)
        reporter.close()
    assert responses["openai"].json() == OPENAI_JSON
    assert responses["anthropic"].json() == ANTHROPIC_JSON
    assert responses["gemini"].json() == GEMINI_JSON
    assert responses["ollama"].json() == OLLAMA_JSON
    assert responses["openai"].elapsed.total_seconds() > 0  # httpx still sets it
    assert len(ep.samples) == 5
    _check_json_records(ep)
    assert reporter.stats == {"sent": 5, "dropped": 0, "queued": 0, "send_failures": 0}
    # Only counts and timings leave the app: never its key, its prompt or the reply text.
    sent = b"".join(ep.bodies)
    assert APP_KEY.encode() not in sent and PROMPT.encode() not in sent and b"Hello" not in sent
    assert all("sk-app" not in json.dumps(h) for h in ep.headers)


@pytest.mark.anyio
async def test_async_client_reports_usage(upstream: ThreadedServer, endpoint: tuple[Endpoint, str]) -> None:
    ep, url = endpoint
    async with httpx.AsyncClient(base_url=upstream.base_url) as http:
        reporter = instrument(http, endpoint=url, project="checkout")
        messages = [{"role": "user", "content": PROMPT}]
        results = await asyncio.gather(
            http.post("/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": messages}),
            http.post("/v1/responses", json={"model": "o4-mini", "input": PROMPT}),
            http.post("/v1/messages", json={"model": "claude", "messages": messages}),
            http.post("/v1beta/models/gemini-2.0-flash:generateContent", json={}),
            http.post("/api/chat", json={"model": "llama3.2", "messages": messages}),
        )
        assert await anyio.to_thread.run_sync(reporter.flush, 5.0)
        reporter.close()
    assert results[0].json() == OPENAI_JSON and results[2].json() == ANTHROPIC_JSON
    _check_json_records(ep)


def _expected_stream_records(ep: Endpoint) -> None:
    got = ep.by_model()
    openai = got["gpt-4o"]
    assert (openai.tokens_in, openai.tokens_out, openai.tokens_cached) == (12, 3, 0)
    anthropic = got["claude-sonnet-4"]
    assert (anthropic.tokens_in, anthropic.tokens_out, anthropic.tokens_cached) == (105, 9, 100)
    gemini = got["gemini-2.0-flash"]
    assert (gemini.tokens_in, gemini.tokens_out) == (7, 4)
    ollama = got["qwen3"]
    assert (ollama.tokens_in, ollama.tokens_out) == (21, 2)
    for sample in (openai, anthropic, gemini, ollama):
        assert sample.ok == 1, sample
        assert sample.request_id == "req-stream"
        # The first content chunk comes after at least two pauses of the fake (one for Gemini
        # and Ollama, whose first frame carries text); the last after all of them.
        assert sample.ttft_ms is not None and sample.latency_ms is not None
        assert Upstream.gap_s * 1000 * 0.8 <= sample.ttft_ms < sample.latency_ms < 5000
    assert openai.itl_ms is not None and openai.tps is not None  # computed like a probe's


def _stream_requests() -> list[tuple[str, dict[str, Any]]]:
    return [
        ("/v1/chat/completions", {"model": "gpt-4o", "stream": True}),
        ("/v1/messages", {"model": "claude-sonnet-4", "stream": True}),
        ("/v1beta/models/gemini-2.0-flash:streamGenerateContent?alt=sse", {}),
        ("/api/chat", {"model": "qwen3", "stream": True}),
    ]


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
def test_streams_pass_through_byte_identical_and_are_measured(
    upstream: ThreadedServer, endpoint: tuple[Endpoint, str]
) -> None:
    ep, url = endpoint
    with httpx.Client(base_url=upstream.base_url) as http:
        reporter = instrument(http, endpoint=url)
        for path, body in _stream_requests():
            with http.stream("POST", path, json=body) as response:
                received = b"".join(response.iter_raw())
            chunks, _ = STREAMS[path.split("?")[0]]
            assert received == b"".join(chunks)
        # iter_lines / iter_text, as the SDKs read, see the same text.
        with http.stream("POST", "/v1/chat/completions", json={"model": "gpt-4o", "stream": True}) as response:
            lines = list(response.iter_lines())
        assert lines == b"".join(OPENAI_STREAM).decode().splitlines()
        assert reporter.flush(5.0)
        reporter.close()
    _expected_stream_records(ep)
    assert len(ep.samples) == 5


@pytest.mark.anyio
@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_async_streams_pass_through_byte_identical(
    upstream: ThreadedServer, endpoint: tuple[Endpoint, str]
) -> None:
    ep, url = endpoint
    async with httpx.AsyncClient(base_url=upstream.base_url) as http:
        reporter = instrument(http, endpoint=url)
        for path, body in _stream_requests():
            async with http.stream("POST", path, json=body) as response:
                received = b"".join([chunk async for chunk in response.aiter_raw()])
            assert received == b"".join(STREAMS[path.split("?")[0]][0])
        assert await anyio.to_thread.run_sync(reporter.flush, 5.0)
        reporter.close()
    _expected_stream_records(ep)


def test_an_abandoned_stream_is_reported_cancelled(upstream: ThreadedServer, endpoint: tuple[Endpoint, str]) -> None:
    ep, url = endpoint
    with httpx.Client(base_url=upstream.base_url) as http:
        reporter = instrument(http, endpoint=url)
        with http.stream("POST", "/v1/chat/completions", json={"model": "gpt-4o", "stream": True}) as response:
            next(response.iter_raw())
        assert reporter.flush(5.0)
        reporter.close()
    (sample,) = ep.samples
    assert sample.ok == 0 and sample.error_kind == "cancelled"


def test_errors_and_odd_bodies_are_reported_not_raised(
    upstream: ThreadedServer, endpoint: tuple[Endpoint, str]
) -> None:
    ep, url = endpoint
    with httpx.Client(base_url=upstream.base_url) as http:
        reporter = instrument(http, endpoint=url)
        limited = http.post("/v1/chat/completions", json={"model": "limited", "messages": []})
        odd = http.post("/v1/chat/completions", json={"model": "not-json", "messages": []})
        zipped = http.post("/v1/chat/completions", json={"model": "gzip", "messages": []})
        other = http.get("/v1/models")  # not an LLM call: not reported
        assert reporter.flush(5.0)
        reporter.close()
    assert limited.status_code == 429 and odd.text == "<html>oops</html>" and zipped.json() == OPENAI_JSON
    assert other.json() == {"data": []}
    got = ep.by_model()
    assert set(got) == {"limited", "not-json", "gpt-4o-mini-2024-07-18"}
    # The model of a refused call comes from the request body (only the model is read from it).
    assert (got["limited"].ok, got["limited"].error_kind, got["limited"].http_status) == (0, "rate_limit", 429)
    assert got["not-json"].ok == 1 and got["not-json"].tokens_in is None
    assert got["gpt-4o-mini-2024-07-18"].tokens_in == 120  # gzip decoded


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
def test_a_hanging_endpoint_does_not_delay_the_app(upstream: ThreadedServer) -> None:
    release = threading.Event()
    ep = Endpoint(hang=release)
    try:
        with ThreadedHTTPServer(ep, name="hanging-ingest") as ingest, httpx.Client(base_url=upstream.base_url) as http:
            reporter = instrument(http, endpoint=ingest.base_url + "/v1/events", batch_size=1, flush_interval_s=0.05)
            http.post("/v1/chat/completions", json={"model": "m", "messages": []})
            assert ep.arrived.wait(5.0)  # the reporter is now stuck in a send the endpoint holds
            started = time.perf_counter()
            for _ in range(5):
                response = http.post("/v1/chat/completions", json={"model": "m", "messages": []})
                assert response.json() == OPENAI_JSON
            app_time = time.perf_counter() - started
            assert not release.is_set()
            assert app_time < 1.0, app_time  # the endpoint holds each send for up to 2 s
            started = time.perf_counter()
            assert reporter.flush(0.2) is False
            reporter.close(timeout=0.2)
            assert time.perf_counter() - started < 1.5
            release.set()
    finally:
        release.set()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("failure", ["refused", "500", "401"])
def test_a_failing_endpoint_never_raises_into_the_app(upstream: ThreadedServer, failure: str) -> None:
    ep = Endpoint(status=500 if failure == "500" else 0, api_key="right-key" if failure == "401" else None)
    with (
        stamina.set_testing(True, attempts=2),  # retries without waiting, then the batch is dropped
        ThreadedHTTPServer(ep, name="failing-ingest") as ingest,
        httpx.Client(base_url=upstream.base_url) as http,
    ):
        url = ingest.base_url + "/v1/events"
        if failure == "refused":
            url = f"http://127.0.0.1:{_closed_port()}/v1/events"
        reporter = instrument(http, endpoint=url, api_key="wrong-key", batch_size=1)
        for _ in range(3):
            assert http.post("/v1/messages", json={"model": "claude"}).json() == ANTHROPIC_JSON
        reporter.flush(0.3)
        reporter.close(timeout=0.2)
    stats = reporter.stats
    assert stats["sent"] == 0
    assert ep.samples == []
    if failure == "401":
        assert stats["dropped"] == 3  # refused for good: dropped, not retried
        assert "401" in (reporter.last_error or "")
        assert "wrong-key" not in (reporter.last_error or "")
    else:
        assert stats["send_failures"] >= 1


@pytest.mark.parametrize(("away_for", "delivered"), [(2, True), (3, False)])
def test_an_endpoint_away_is_retried_and_warned_about_once(
    upstream: ThreadedServer, caplog: pytest.LogCaptureFixture, away_for: int, delivered: bool
) -> None:
    """503s are retried (stamina's test mode: no waiting, 3 attempts); one warning per streak."""
    ep = Endpoint(away_for=away_for)
    caplog.set_level(logging.WARNING)
    with (
        stamina.set_testing(True, attempts=3),
        ThreadedHTTPServer(ep, name="restarting-ingest") as ingest,
        httpx.Client(base_url=upstream.base_url) as http,
    ):
        reporter = instrument(http, endpoint=ingest.base_url + "/v1/events", batch_size=1)
        http.post("/v1/messages", json={"model": "claude"})
        assert reporter.flush(5.0)
        reporter.close()
    assert len(ep.bodies) == 3 and reporter.send_failures == away_for
    assert (reporter.stats["sent"], reporter.stats["dropped"]) == ((1, 0) if delivered else (0, 1))
    assert [s.model for s in ep.samples] == (["claude-3-5-haiku-20241022"] if delivered else [])
    # (reporters of earlier tests may still be giving up in the background: only this endpoint's)
    url = ingest.base_url + "/v1/events"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and url in r.getMessage()]
    assert warnings == [f"llmscope client: {url} answered 503; retrying"]
    assert [r for r in caplog.records if r.name == "stamina"] == []  # no stamina line per retry
    assert reporter.last_error is None if delivered else "503" in (reporter.last_error or "")


def test_the_key_comes_from_the_environment(
    upstream: ThreadedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLMSCOPE_API_KEY", "env-key")
    ep = Endpoint(api_key="env-key")
    with ThreadedHTTPServer(ep) as ingest, httpx.Client(base_url=upstream.base_url) as http:
        reporter = instrument(http, endpoint=ingest.base_url + "/v1/events")
        http.post("/api/chat", json={"model": "llama3.2"})
        assert reporter.flush(5.0)
        reporter.close()
    assert len(ep.samples) == 1
    assert ep.headers[0]["authorization"] == "Bearer env-key"


def test_broken_internals_never_reach_the_app(
    upstream: ThreadedServer, endpoint: tuple[Endpoint, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    ep, url = endpoint

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("bug in the client")

    with httpx.Client(base_url=upstream.base_url) as http:
        reporter = instrument(http, endpoint=url)
        monkeypatch.setattr(summary, "summarize", boom)
        assert http.post("/v1/messages", json={"model": "claude"}).json() == ANTHROPIC_JSON
        monkeypatch.setattr(observe.Observation, "__init__", boom)
        assert http.post("/v1/messages", json={"model": "claude"}).json() == ANTHROPIC_JSON
        reporter.flush(2.0)
        reporter.close()
    assert ep.samples == []


def test_queue_is_bounded_and_drops_the_oldest() -> None:
    reporter = Reporter(
        endpoint=f"http://127.0.0.1:{_closed_port()}/v1/events", max_queue=3, batch_size=1, flush_interval_s=60
    )
    try:
        for i in range(10):
            reporter.report(provider="p", model=f"m{i}")
        # At most max_queue wait (plus one batch in flight); the oldest went first.
        assert reporter.stats["queued"] <= 3 + reporter.batch_size
        assert reporter.dropped >= 10 - 3 - reporter.batch_size
        reporter.flush(0.3)
        with reporter._cond:
            kept = [r["model"] for r in [*reporter._pending, *reporter._items]]
        assert kept and kept == sorted(kept) and "m9" in kept and "m0" not in kept
    finally:
        reporter.close(timeout=0.1)


def test_instrument_once_per_client_and_close_detaches(upstream: ThreadedServer) -> None:
    with httpx.Client(base_url=upstream.base_url) as http:
        reporter = instrument(http, endpoint="http://127.0.0.1:9/v1/events")
        assert instrument(http) is reporter
        assert len(http.event_hooks["response"]) == 1
        reporter.close(timeout=0.1)
        assert http.event_hooks["response"] == []
        with pytest.raises(TypeError):
            instrument(object())  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            instrument(http, project="x" * 101)


def _sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def test_long_streams_known_hosts_and_stream_errors(endpoint: tuple[Endpoint, str]) -> None:
    """Through MockTransport: a stream longer than what is kept (head + tail), providers named by
    host, an Azure deployment URL, and an error event inside a 200 stream."""
    ep, url = endpoint
    delta = _sse({"model": "gpt-4.1", "choices": [{"delta": {"content": "x" * 200}}]})
    long_stream = [delta] * 30_000 + [  # ~7 MB, more than the 4 MiB head
        _sse({"model": "gpt-4.1", "choices": [{"delta": {}, "finish_reason": "stop"}]}),
        _sse({"model": "gpt-4.1", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 30_000}}),
        b"data: [DONE]\n\n",
    ]
    overloaded = [
        (b'event: message_start\ndata: {"type":"message_start","message":{"model":"claude-opus-4",'
        b'"usage":{"input_tokens":3,"output_tokens":1}}}\n\n'),
        b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n',
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        host = request.url.host
        if host == "api.openai.com":
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=iter(long_stream))
        if host == "api.anthropic.com":
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=iter(overloaded))
        return httpx.Response(200, json={**OPENAI_JSON, "model": "gpt-4o"})  # Azure names the real model

    with httpx.Client(transport=httpx.MockTransport(handler)) as http:
        reporter = instrument(http, endpoint=url)
        with http.stream("POST", "https://api.openai.com/v1/chat/completions", json={"stream": True}) as response:
            size = sum(len(chunk) for chunk in response.iter_raw())
        assert size == sum(map(len, long_stream))
        with http.stream("POST", "https://api.anthropic.com/v1/messages", json={"stream": True}) as response:
            assert b"".join(response.iter_raw()) == b"".join(overloaded)
        azure = "https://acme.openai.azure.com/openai/deployments/prod-chat/chat/completions?api-version=2024-10-21"
        assert http.post(azure, json={}).status_code == 200
        assert reporter.flush(5.0)
        reporter.close()
    got = ep.by_model()
    long = got["gpt-4.1"]
    assert (long.provider, long.ok, long.tokens_in, long.tokens_out) == ("openai", 1, 9, 30_000)
    assert long.ttft_ms is not None and long.latency_ms is not None and long.ttft_ms <= long.latency_ms
    busy = got["claude-opus-4"]
    assert (busy.provider, busy.ok, busy.error_kind, busy.tokens_in) == ("anthropic", 0, "overloaded", 3)
    assert got["gpt-4o"].provider == "azure"
