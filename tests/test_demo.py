"""The built-in demo provider: real protocol shapes over real HTTP, usage, incidents, shutdown."""

from __future__ import annotations

import json
import re
import socket
import statistics
import threading
import time
from dataclasses import replace

import httpx
import pytest

from llmscope_tui.demo import (
    DEFAULT_PROFILES,
    DemoProvider,
    DemoTimeline,
    demo_targets,
    event_words,
)
from llmscope_tui.model import Target

# Each word (with its apostrophes/hyphens) and each punctuation mark is one demo token.
WORD_OR_MARK = re.compile(r"[A-Za-z0-9'-]+|[^\sA-Za-z0-9'-]")


def n_tokens(text: str) -> int:
    return len(WORD_OR_MARK.findall(text))


def sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    """Minimal SSE parsing: (event name, joined data) per blank-line-separated block."""
    events = []
    for block in re.split(r"\r?\n\r?\n", raw.decode()):
        name, data = None, []
        for line in block.splitlines():
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].lstrip())
        if name is not None or data:
            events.append((name, "\n".join(data)))
    return events


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def demo():
    with DemoProvider(seed=7, latency_scale=0.05, background_errors=False) as provider:
        yield provider


@pytest.fixture(scope="module")
def client(demo: DemoProvider):
    with httpx.Client(base_url=demo.base_url, timeout=5) as c:
        yield c


PROMPT = [{"role": "user", "content": "Reply with the word OK."}]
LONG_PROMPT = [{"role": "user", "content": "Reply with the word OK. " * 40}]


def openai_stream(client: httpx.Client, messages=PROMPT, **extra) -> tuple[httpx.Response, list[dict]]:
    body = {"model": "gpt-4o-mini-sim", "stream": True, "messages": messages, **extra}
    r = client.post("/v1/chat/completions", json=body)
    events = sse_events(r.content)
    assert events[-1] == (None, "[DONE]")
    return r, [json.loads(data) for _, data in events[:-1]]


def test_openai_stream(client: httpx.Client) -> None:
    r, chunks = openai_stream(client, stream_options={"include_usage": True})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["x-request-id"].startswith("req_")
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-4o-mini-sim" for c in chunks)
    first, *middle, finish, usage_chunk = chunks
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    text = "".join(c["choices"][0]["delta"]["content"] for c in middle)
    assert text.startswith("OK") and all(c["choices"][0]["delta"]["content"] for c in middle)
    assert finish["choices"][0]["finish_reason"] == "stop" and finish["choices"][0]["delta"] == {}
    assert usage_chunk["choices"] == []
    usage = usage_chunk["usage"]
    assert usage["completion_tokens"] == n_tokens(text) == len(middle)
    assert 8 <= usage["completion_tokens"] <= 16
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]

    # Input tokens follow the prompt's length; no usage chunk unless asked for.
    _, long_chunks = openai_stream(client, LONG_PROMPT, stream_options={"include_usage": True})
    assert long_chunks[-1]["usage"]["prompt_tokens"] > usage["prompt_tokens"] + 100
    _, plain = openai_stream(client)
    assert plain[-1]["choices"][0]["finish_reason"] == "stop"
    assert "usage" not in plain[-1]

    # max_tokens is honoured, with the finish reason a real server gives.
    _, short = openai_stream(client, max_tokens=3, stream_options={"include_usage": True})
    assert short[-1]["usage"]["completion_tokens"] == 3
    assert short[-2]["choices"][0]["finish_reason"] == "length"


def test_anthropic_stream(client: httpx.Client) -> None:
    body = {"model": "claude-haiku-sim", "max_tokens": 64, "stream": True, "messages": PROMPT}
    r = client.post("/v1/messages", json=body, headers={"x-api-key": "ignored", "anthropic-version": "2023-06-01"})
    assert r.status_code == 200
    assert r.headers["request-id"].startswith("req_")
    events = sse_events(r.content)
    names = [name for name, _ in events]
    n = names.count("content_block_delta")
    assert names == (
        ["message_start", "content_block_start", "ping"]
        + ["content_block_delta"] * n
        + ["content_block_stop", "message_delta", "message_stop"]
    )
    data = [json.loads(d) for _, d in events]
    assert all(d["type"] == name for d, name in zip(data, names))
    start_usage = data[0]["message"]["usage"]
    assert start_usage["input_tokens"] > 0 and start_usage["output_tokens"] == 1
    text = "".join(d["delta"]["text"] for d in data if d["type"] == "content_block_delta")
    assert data[-2]["usage"]["output_tokens"] == n_tokens(text) == n
    assert data[-2]["delta"]["stop_reason"] == "end_turn"


def test_gemini_stream(client: httpx.Client) -> None:
    body = {"contents": [{"role": "user", "parts": [{"text": "Reply with the word OK."}]}]}
    r = client.post(
        "/v1beta/models/gemini-flash-sim:streamGenerateContent",
        params={"alt": "sse"},
        json=body,
        headers={"x-goog-api-key": "ignored"},
    )
    assert r.status_code == 200
    chunks = [json.loads(d) for _, d in sse_events(r.content)]
    assert len(chunks) >= 2
    text = "".join(part["text"] for c in chunks for part in c["candidates"][0]["content"]["parts"])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    usage = chunks[-1]["usageMetadata"]
    assert usage["candidatesTokenCount"] == n_tokens(text)
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    # Gemini streams several tokens per event.
    assert len(chunks) < usage["candidatesTokenCount"]


def test_ollama_stream(client: httpx.Client) -> None:
    body = {"model": "llama3-sim", "messages": PROMPT}  # stream defaults to true, as in Ollama
    r = client.post("/api/chat", json=body)
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = [json.loads(line) for line in r.text.splitlines() if line.strip()]
    *parts, final = lines
    assert all(p["done"] is False and p["message"]["role"] == "assistant" for p in parts)
    assert final["done"] is True and final["done_reason"] == "stop"
    text = "".join(p["message"]["content"] for p in parts)
    assert final["eval_count"] == n_tokens(text) == len(parts)
    assert final["prompt_eval_count"] > 0
    for key in ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration"):
        assert isinstance(final[key], int) and final[key] > 0
    assert final["total_duration"] >= final["eval_duration"] + final["prompt_eval_duration"]


def test_streams_are_paced_not_dumped(client: httpx.Client) -> None:
    """Content arrives spread over time: TTFT first, then per-token gaps."""
    body = {"model": "llama3-sim", "messages": PROMPT}
    stamps = []
    with client.stream("POST", "/api/chat", json=body) as r:
        for _ in r.iter_lines():
            stamps.append(time.perf_counter())
    # latency_scale 0.05: ~1.4 ms median gap, 10+ tokens -> the stream lasts several ms.
    assert stamps[-1] - stamps[0] > 0.005


def test_protocol_shaped_client_errors(client: httpx.Client) -> None:
    r = client.post("/v1/chat/completions", json={"model": "nope", "stream": True, "messages": PROMPT})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = client.post("/v1/chat/completions", json={"model": "gpt-4o-mini-sim", "messages": PROMPT})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = client.post("/v1/messages", json={"model": "claude-haiku-sim", "stream": True, "messages": PROMPT})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"  # max_tokens missing
    r = client.post("/v1beta/models/nope:streamGenerateContent?alt=sse", json={"contents": []})
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"
    r = client.post("/api/chat", content=b"{oops")
    assert r.status_code == 400 and isinstance(r.json()["error"], str)


def test_demo_targets() -> None:
    targets = demo_targets("http://127.0.0.1:5555/")
    assert [t.provider for t in targets] == ["openai", "anthropic", "gemini", "ollama"]
    assert all(isinstance(t, Target) and t.protocol == t.provider for t in targets)
    assert [t.name for t in targets] == [
        "demo-openai",
        "demo-anthropic",
        "demo-gemini",
        "demo-ollama",
    ]
    assert targets[0].base_url == "http://127.0.0.1:5555/v1"
    assert all(t.base_url == "http://127.0.0.1:5555" for t in targets[1:])
    assert all(t.api_key_env is None and t.interval_s == 1.0 and t.enabled for t in targets)
    assert len({t.model for t in targets}) == 4


def test_same_seed_same_draws() -> None:
    def counts() -> list[int]:
        with (
            DemoProvider(seed=3, latency_scale=0.02, background_errors=False) as p,
            httpx.Client(base_url=p.base_url, timeout=5) as c,
        ):
            return [
                json.loads(sse_events(c.post("/v1/chat/completions", json={
                    "model": "gpt-4o-mini-sim", "stream": True, "messages": PROMPT,
                    "stream_options": {"include_usage": True}}).content)[-2][1])["usage"]["completion_tokens"]
                for _ in range(4)
            ]

    assert counts() == counts()


def test_timeline_scaling_and_words() -> None:
    tl = DemoTimeline()
    assert tl.describe(10) is None and tl.describe(100) is None  # the warm-up sets the baselines
    assert "latency shift" in tl.describe(110) and "claude-haiku-sim" in tl.describe(110)
    assert "demo-anthropic" in tl.describe(110, {"claude-haiku-sim": "demo-anthropic"})  # names the target
    assert "drift" in tl.describe(125)
    assert "429" in tl.describe(145) and "gemini-flash-sim" in tl.describe(145)
    assert tl.describe(tl.cycle_s + 145) == tl.describe(145)  # the script repeats
    fast = tl.scaled(0.01)
    def kinds(words: str | None) -> list[str]:
        return [part.split(":")[0] for part in (words or "").split("; ") if part]

    assert kinds(fast.describe(1.45)) == kinds(tl.describe(145)) == ["latency shift", "slow drift", "429 burst"]
    assert fast.effect("gemini-flash-sim", 1.45).rate_limited and not fast.effect("gemini-flash-sim", 1.55).rate_limited
    # The drift reaches the same height however the script is compressed.
    assert fast.effect("llama3-sim", 2.0).ttft_factor == pytest.approx(tl.effect("llama3-sim", 200).ttft_factor)
    assert tl.effect("llama3-sim", 210).ttft_factor == 1.0  # and resets


def test_the_demo_announces_which_incident_runs_when_it_changes() -> None:
    """The ``demo`` monitor event: the current script at start, then one event when an incident
    starts or ends, never one per countdown second; its words at any later moment are the
    timeline's own, countdowns included."""
    clock, wall = FakeClock(), FakeClock()
    wall.now = 1_700_000_000.0

    def advance(seconds: float) -> None:
        clock.now += seconds
        wall.now += seconds

    names = {"claude-haiku-sim": "demo-anthropic", "llama3-sim": "demo-ollama"}
    with DemoProvider(clock=clock, wall_clock=wall) as demo:
        first = demo.announce_due()
        assert first == {"event": "demo", "ts": wall.now, "incident": None, "running": []}  # warm-up: calm
        advance(50)
        assert demo.announce_due() is None  # nothing changed

        advance(60)  # 110 s in: the latency shift, 5 s into the cycle
        shift = demo.announce_due()
        assert shift is not None and shift["ts"] == wall.now
        assert shift["incident"] == demo.incident_now() == "latency shift: demo-anthropic TTFT x1.8 (ends in 70 s)"
        (item,) = shift["running"]
        assert item["kind"] == "shift" and item["target"] == "demo-anthropic" and item["factor"] == 1.8
        assert item["until_ts"] - item["since_ts"] == pytest.approx(75.0)
        advance(6)
        assert demo.announce_due() is None  # the countdown moved, the incident did not change
        # a reader of the event keeps its countdown current with the wall clock alone
        assert event_words(shift, wall.now) == demo.incident_now()
        assert demo.incident_now().endswith("(ends in 64 s)")

        advance(10)  # 126 s in: the drift has joined the shift
        both = demo.announce_due()
        assert both is not None and [r["kind"] for r in both["running"]] == ["shift", "drift"]
        assert event_words(both, wall.now + 4) == demo.timeline.describe(130, names)
        assert event_words(both, wall.now + 4).endswith("now +10%")  # 10 s into the drift
        advance(demo.timeline.cycle_s)  # the same moment of the next cycle: new incidents
        again = demo.announce_due()
        assert again is not None and [r["cycle"] for r in again["running"]] == [1, 1]
    assert event_words(None, 0.0) is None


def claude_ttft_ms(client: httpx.Client) -> float:
    """Client-side time to the first text_delta, in ms."""
    body = {"model": "claude-haiku-sim", "max_tokens": 32, "stream": True, "messages": PROMPT}
    t0 = time.perf_counter()
    buffer = b""
    ttft = None
    with client.stream("POST", "/v1/messages", json=body) as r:
        assert r.status_code == 200
        for chunk in r.iter_raw():
            buffer += chunk
            if ttft is None and b"content_block_delta" in buffer:
                ttft = time.perf_counter() - t0
    assert ttft is not None
    return ttft * 1000


@pytest.mark.slow  # a real process or real-time stream: seconds
def test_latency_shift_and_drift_measured_by_client() -> None:
    clock = FakeClock()
    timeline = DemoTimeline().scaled(0.1)  # warm-up 10.5 s, then shift 0-7.5 s, drift 1.5-10.5 s, burst 3.5-4.5 s
    with (
        DemoProvider(seed=11, clock=clock, timeline=timeline, latency_scale=0.08, background_errors=False) as demo,
        httpx.Client(base_url=demo.base_url, timeout=5) as client,
    ):
        claude_ttft_ms(client)  # warm the connection
        assert demo.incident_now() is None
        calm = [claude_ttft_ms(client) for _ in range(6)]
        clock.now += 14.5  # 14.5 s in: shift, drift and burst are all on
        words = demo.incident_now()
        assert words is not None and "latency shift" in words and "429 burst" in words and "drift" in words
        shifted = [claude_ttft_ms(client) for _ in range(6)]
        ratio = statistics.median(shifted) / statistics.median(calm)
        assert 1.4 < ratio < 2.4, (calm, shifted)
        # The next cycle repeats the shift; after it ends the model is calm again.
        clock.now += timeline.warmup_s + timeline.shift_end_s - 14.5 + 0.5
        assert "latency shift" not in (demo.incident_now() or "")
        after = [claude_ttft_ms(client) for _ in range(4)]
        assert statistics.median(after) / statistics.median(calm) < 1.35
    assert demo.timeline.effect("llama3-sim", 20.0).ttft_factor > 1.5


@pytest.mark.slow
def test_429_burst_happens_on_schedule() -> None:
    """The burst answers 429 exactly inside its window (on the demo's clock, stepped by the test,
    so a busy machine cannot move a request across the window's edge)."""
    timeline = DemoTimeline().scaled(0.01)  # burst 1.40-1.50 s after start, cycle 2.1 s
    clock = FakeClock()
    demo = DemoProvider(seed=5, clock=clock, timeline=timeline, latency_scale=0.01, background_errors=False).start()
    url = "/v1beta/models/gemini-flash-sim:streamGenerateContent?alt=sse"
    body = {"contents": [{"parts": [{"text": "Reply with the word OK."}]}]}
    seen: list[tuple[float, int, httpx.Response]] = []
    try:
        with httpx.Client(base_url=demo.base_url, timeout=5) as client:
            openai_body = {"model": "gpt-4o-mini-sim", "stream": True, "messages": PROMPT}
            for at in (0.5, 1.30, 1.39, 1.41, 1.45, 1.49, 1.51, 1.60):
                clock.now = 1000.0 + at  # FakeClock starts at 1000: "at" s after start()
                r = client.post(url, json=body)
                seen.append((at, r.status_code, r))
                if r.status_code == 429:
                    # Other models are unaffected by this burst.
                    assert client.post("/v1/chat/completions", json=openai_body).status_code == 200
    finally:
        demo.stop()
    limited = [(t, r) for t, status, r in seen if status == 429]
    assert limited, "no 429 during the burst window"
    assert [t for t, _ in limited] == [1.41, 1.45, 1.49]
    assert [status for t, status, _ in seen if not 1.40 <= t < 1.50] == [200] * 5
    r = limited[0][1]
    assert r.headers["retry-after"] == "1"
    error = r.json()["error"]
    assert error["code"] == 429 and error["status"] == "RESOURCE_EXHAUSTED"
    assert error["details"][0]["retryDelay"] == "1s"
    assert demo.rate_limited == len(limited)


def test_rate_limit_shapes_for_every_protocol() -> None:
    clock = FakeClock()
    with DemoProvider(seed=1, clock=clock, latency_scale=0.01, background_errors=False) as demo:
        clock.now += 145.0  # inside the default burst window
        with httpx.Client(base_url=demo.base_url, timeout=5) as client:
            demo.timeline = DemoTimeline(burst_model="gpt-4o-mini-sim")
            body = {"model": "gpt-4o-mini-sim", "stream": True, "messages": PROMPT}
            r = client.post("/v1/chat/completions", json=body)
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
            assert r.json()["error"]["code"] == "rate_limit_exceeded"

            demo.timeline = DemoTimeline(burst_model="claude-haiku-sim")
            body = {"model": "claude-haiku-sim", "max_tokens": 8, "stream": True, "messages": PROMPT}
            r = client.post("/v1/messages", json=body)
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
            assert r.json()["type"] == "error" and r.json()["error"]["type"] == "rate_limit_error"

            demo.timeline = DemoTimeline(burst_model="llama3-sim")
            r = client.post("/api/chat", json={"model": "llama3-sim", "messages": PROMPT})
            assert r.status_code == 429 and r.headers["retry-after"] == "1"
            assert isinstance(r.json()["error"], str)


def test_background_errors_have_real_shapes() -> None:
    haiku = next(p for p in DEFAULT_PROFILES if p.model == "claude-haiku-sim")
    always_overloaded = [replace(haiku, error_rate=1.0)]
    with (
        DemoProvider(seed=2, latency_scale=0.01, profiles=always_overloaded) as demo,
        httpx.Client(base_url=demo.base_url, timeout=5) as client,
    ):
        body = {"model": "claude-haiku-sim", "max_tokens": 8, "stream": True, "messages": PROMPT}
        r = client.post("/v1/messages", json=body)
    assert r.status_code == 529
    assert r.json()["error"]["type"] == "overloaded_error"


def test_stops_cleanly_mid_stream() -> None:
    before = set(threading.enumerate())
    demo = DemoProvider(seed=4, latency_scale=1.0, background_errors=False).start()
    port = int(demo.base_url.rsplit(":", 1)[1])
    body = {"model": "llama3-sim", "messages": PROMPT}
    with (
        httpx.Client(base_url=demo.base_url, timeout=5) as client,
        client.stream("POST", "/api/chat", json=body) as r,
    ):
        assert r.status_code == 200  # headers are out; the first token is ~650 ms away
        started = time.monotonic()
        demo.stop()
        assert time.monotonic() - started < 2.0
        with pytest.raises(httpx.HTTPError):
            r.read()
    assert not demo.running
    assert {t for t in threading.enumerate() if t.is_alive()} <= before  # no thread left behind
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
