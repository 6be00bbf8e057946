"""The fake provider itself, checked with plain httpx: wire formats, faults, timing, lifecycle."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from fake_provider import (
    FAULTS,
    FakeProvider,
    RecordedRequest,
    Script,
    Usage,
    error_body,
    fake_provider_fixture,
)

OPENAI_BODY = {
    "model": "gpt-test",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}
ANTHROPIC_BODY = {"model": "claude-test", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}], "stream": True}
GEMINI_BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
OLLAMA_BODY = {"model": "llama-test", "messages": [{"role": "user", "content": "hi"}], "stream": True}

ROUTES: dict[str, tuple[str, dict[str, Any]]] = {
    "openai": ("/v1/chat/completions", OPENAI_BODY),
    "azure": ("/openai/deployments/dep-1/chat/completions?api-version=2024-10-21", OPENAI_BODY),
    "anthropic": ("/v1/messages", ANTHROPIC_BODY),
    "gemini": ("/v1beta/models/gemini-test:streamGenerateContent?alt=sse", GEMINI_BODY),
    "ollama": ("/api/chat", OLLAMA_BODY),
}
SHORT = httpx.Timeout(2.0, read=0.4)


@pytest.fixture
def fake() -> Any:
    yield from fake_provider_fixture()


@pytest.fixture
def client() -> Any:
    with httpx.Client(timeout=httpx.Timeout(5.0)) as c:
        yield c


# -- minimal parsers ----------------------------------------------------------------------------


def sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    """(event, data) per SSE event; accepts LF or CRLF line ends."""
    events = []
    text = raw.decode().replace("\r\n", "\n")
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        event, data = None, []
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
        events.append((event, "\n".join(data)))
    return events


def sse_json(raw: bytes) -> list[Any]:
    return [json.loads(d) for _, d in sse_events(raw) if d != "[DONE]"]


def ndjson(raw: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in raw.decode().splitlines() if line.strip()]


def post(client: httpx.Client, fake: FakeProvider, protocol: str, **kwargs: Any) -> httpx.Response:
    path, body = ROUTES[protocol]
    return client.post(fake.url(path), json=kwargs.pop("json", body), **kwargs)


def read_until_error(client: httpx.Client, fake: FakeProvider, protocol: str) -> tuple[bytes, BaseException | None]:
    path, body = ROUTES[protocol]
    got = b""
    try:
        with client.stream("POST", fake.url(path), json=body, timeout=SHORT) as r:
            assert r.status_code == 200
            for chunk in r.iter_raw():
                got += chunk
    except httpx.HTTPError as exc:
        return got, exc
    return got, None


def assert_ordered(req: RecordedRequest) -> None:
    stamps = [req.t_conn_accepted_ns, req.t_headers_ns, req.t_body_ns, req.t_status_ns,
              req.t_first_content_ns, req.t_last_content_ns, req.t_end_ns]
    assert all(s is not None for s in stamps), stamps
    assert stamps == sorted(stamps)
    assert req.content_times_ns[0] == req.t_first_content_ns
    assert req.content_times_ns[-1] == req.t_last_content_ns
    assert req.content_times_ns == sorted(req.content_times_ns)
    assert len(req.content_times_ns) == req.content_frames


# -- the four protocols -------------------------------------------------------------------------


def test_openai_stream_shape_usage_and_record(fake: FakeProvider, client: httpx.Client) -> None:
    fake.script(default=Script(usage=Usage(input_tokens=40, cached_tokens=8), request_id="req_abc"))
    r = post(client, fake, "openai", headers={"authorization": "Bearer sk-x"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["transfer-encoding"] == "chunked"
    assert r.headers["x-request-id"] == "req_abc"
    events = sse_events(r.content)
    assert events[-1] == (None, "[DONE]")
    chunks = sse_json(r.content)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "Hello there, OK."
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-test" for c in chunks)
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"] == {
        "prompt_tokens": 40,
        "completion_tokens": 5,
        "total_tokens": 45,
        "prompt_tokens_details": {"cached_tokens": 8, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }
    assert all("usage" in c and c["usage"] is None for c in chunks[:-1])  # as OpenAI does with include_usage

    (req,) = fake.wait_for_requests(1)
    assert (req.method, req.path, req.protocol, req.model) == ("POST", "/v1/chat/completions", "openai", "gpt-test")
    assert req.headers["authorization"] == "Bearer sk-x"
    assert req.headers["content-type"] == "application/json"
    assert req.json == OPENAI_BODY and req.stream and req.usage_requested
    assert req.status == 200 and req.outcome == "complete"
    assert req.content_frames == 5
    assert [json.loads(p[len(b"data: "):])["choices"][0]["delta"]["content"] for p in req.content] == [
        "Hello", " there", ",", " OK", "."]
    assert_ordered(req)


def test_openai_without_v1_and_usage_switches(fake: FakeProvider, client: httpx.Client) -> None:
    body = {k: v for k, v in OPENAI_BODY.items() if k != "stream_options"}
    r = client.post(fake.url("/chat/completions"), json=body)
    chunks = sse_json(r.content)
    assert r.status_code == 200 and all("usage" not in c for c in chunks)  # not asked: no usage at all
    assert fake.last_request.usage_requested is False

    fake.enqueue(Script(include_usage=False))  # asked, but the server ignores stream_options
    chunks = sse_json(post(client, fake, "openai").content)
    assert all("usage" not in c for c in chunks) and chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_openai_role_in_first_content_reasoning_and_tool_calls(fake: FakeProvider, client: httpx.Client) -> None:
    fake.enqueue(Script(role_chunk_first=False, tokens=["A", "B"]))
    chunks = sse_json(post(client, fake, "openai").content)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "A"}
    assert fake.last_request.content_frames == 2

    fake.enqueue(Script(reasoning=["think", "ing"], tokens=["ok"], tool_name="get_time", tool_args=['{"tz":', '"UTC"}']))
    chunks = sse_json(post(client, fake, "openai").content)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert [d.get("reasoning_content") for d in deltas[1:3]] == ["think", "ing"]
    assert deltas[3] == {"content": "ok"}
    call = deltas[4]["tool_calls"][0]
    assert call["function"] == {"name": "get_time", "arguments": ""} and call["id"].startswith("call_")
    assert "".join(d["tool_calls"][0]["function"]["arguments"] for d in deltas[4:7]) == '{"tz":"UTC"}'
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2
    assert chunks[-1]["usage"]["completion_tokens"] == 5  # 2 reasoning + 1 text + 2 argument pieces
    assert fake.last_request.content_frames == 6


def test_azure_route_prompt_filter_chunk_and_api_version(fake: FakeProvider, client: httpx.Client) -> None:
    r = post(client, fake, "azure", headers={"api-key": "k"})
    chunks = sse_json(r.content)
    assert chunks[0]["choices"] == [] and "prompt_filter_results" in chunks[0]
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "Hello there, OK."
    req = fake.last_request
    assert (req.protocol, req.deployment, req.model, req.query) == ("azure", "dep-1", "dep-1", {"api-version": "2024-10-21"})
    r = client.post(fake.url("/openai/deployments/dep-1/chat/completions"), json=OPENAI_BODY)
    assert r.status_code == 404 and r.json() == {"error": {"code": "404", "message": "Resource not found"}}


def test_anthropic_stream_events_and_usage(fake: FakeProvider, client: httpx.Client) -> None:
    usage = {"input": 100, "cached": 60, "cache_creation": 10, "output": 7}
    fake.enqueue(Script(usage=usage, request_id="req_01"))
    r = post(client, fake, "anthropic", headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
    assert r.headers["request-id"] == "req_01"
    events = sse_events(r.content)
    names = [e for e, _ in events]
    assert names == ["message_start", "content_block_start", "ping"] + ["content_block_delta"] * 5 + [
        "content_block_stop", "message_delta", "message_stop"]
    datas = [json.loads(d) for _, d in events]
    assert all(d["type"] == e for e, d in zip(names, datas, strict=True))
    start = datas[0]["message"]
    assert start["usage"] == {"input_tokens": 30, "cache_creation_input_tokens": 10, "cache_read_input_tokens": 60,
                              "output_tokens": 1, "service_tier": "standard"}
    assert start["model"] == "claude-test" and start["role"] == "assistant"
    assert "".join(d["delta"]["text"] for d in datas[3:8]) == "Hello there, OK."
    assert datas[-2]["delta"]["stop_reason"] == "end_turn" and datas[-2]["usage"] == {"output_tokens": 7}
    assert fake.last_request.content_frames == 5

    fake.enqueue(Script(include_usage=False))
    datas = [json.loads(d) for _, d in sse_events(post(client, fake, "anthropic").content)]
    assert "usage" not in datas[0]["message"] and "usage" not in datas[-2]


def test_anthropic_thinking_and_tool_use_blocks(fake: FakeProvider, client: httpx.Client) -> None:
    fake.enqueue(Script(reasoning=["hm"], tokens=["Hi"], tool_name="lookup", tool_args=['{"q":', '1}']))
    events = sse_events(post(client, fake, "anthropic").content)
    datas = [json.loads(d) for _, d in events]
    kinds = [(d["type"], d.get("index"), (d.get("delta") or d.get("content_block") or {}).get("type")) for d in datas]
    assert kinds == [
        ("message_start", None, None),
        ("content_block_start", 0, "thinking"),
        ("ping", None, None),
        ("content_block_delta", 0, "thinking_delta"),
        ("content_block_delta", 0, "signature_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_delta", 2, "input_json_delta"),
        ("content_block_stop", 2, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    assert datas[9]["content_block"]["name"] == "lookup"
    assert datas[-2]["delta"]["stop_reason"] == "tool_use"
    assert fake.last_request.content_frames == 4  # thinking, text, two argument fragments


def test_gemini_stream_crlf_cumulative_usage(fake: FakeProvider, client: httpx.Client) -> None:
    fake.enqueue(Script(reasoning=["plan"], usage={"input": 20, "cached": 5, "output": 9, "reasoning": 3}))
    r = post(client, fake, "gemini", headers={"x-goog-api-key": "g"})
    assert r.headers["content-type"] == "text/event-stream"
    assert b"\r\n\r\n" in r.content and b"\n\n" not in r.content.replace(b"\r\n", b"")
    chunks = sse_json(r.content)
    assert len(chunks) == 6
    parts = [c["candidates"][0]["content"]["parts"][0] for c in chunks]
    assert parts[0] == {"text": "plan", "thought": True}
    assert "".join(p["text"] for p in parts[1:]) == "Hello there, OK."
    assert all(c["candidates"][0]["content"]["role"] == "model" for c in chunks)
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None] * 5 + ["STOP"]
    metas = [c["usageMetadata"] for c in chunks]
    outs = [m["candidatesTokenCount"] for m in metas]
    assert outs == sorted(outs) and outs[-1] == 6  # 9 output - 3 thoughts
    assert metas[-1] == {"promptTokenCount": 20, "candidatesTokenCount": 6, "totalTokenCount": 29,
                         "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 20}],
                         "cachedContentTokenCount": 5, "thoughtsTokenCount": 3}
    assert all(c["modelVersion"] == "gemini-test" for c in chunks)
    req = fake.last_request
    assert req.query == {"alt": "sse"} and req.model == "gemini-test" and req.protocol == "gemini"
    assert req.headers["x-goog-api-key"] == "g"
    assert req.content_frames == 6

    fake.enqueue(Script(include_usage=False))
    assert all("usageMetadata" not in c for c in sse_json(post(client, fake, "gemini").content))


def test_gemini_without_alt_sse_streams_a_json_array(fake: FakeProvider, client: httpx.Client) -> None:
    r = client.post(fake.url("/v1beta/models/gemini-test:streamGenerateContent"), json=GEMINI_BODY)
    assert r.headers["content-type"].startswith("application/json")
    items = json.loads(r.content)
    assert isinstance(items, list) and len(items) == 5
    assert items[-1]["candidates"][0]["finishReason"] == "STOP"
    r = client.post(fake.url("/v1beta/models/gemini-test:generateContent"), json=GEMINI_BODY)
    assert r.json()["candidates"][0]["content"]["parts"][0]["text"] == "Hello there, OK."


def test_ollama_ndjson_counts_and_durations(fake: FakeProvider, client: httpx.Client) -> None:
    fake.enqueue(Script(usage={"input": 26, "output": 5}, token_gap_s=0.01))
    r = post(client, fake, "ollama")
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = ndjson(r.content)
    assert [line["done"] for line in lines] == [False] * 5 + [True]
    assert "".join(line["message"]["content"] for line in lines) == "Hello there, OK."
    assert all(line["model"] == "llama-test" and line["created_at"].endswith("Z") for line in lines)
    final = lines[-1]
    assert final["done_reason"] == "stop" and final["message"] == {"role": "assistant", "content": ""}
    assert (final["prompt_eval_count"], final["eval_count"]) == (26, 5)
    req = fake.last_request
    assert final["eval_duration"] == req.t_last_content_ns - req.t_first_content_ns >= 40_000_000
    assert final["total_duration"] >= final["eval_duration"] + final["prompt_eval_duration"]

    fake.enqueue(Script(include_usage=False))
    final = ndjson(post(client, fake, "ollama").content)[-1]
    assert final["done"] and "eval_count" not in final and "prompt_eval_count" not in final
    assert "eval_duration" in final and "total_duration" in final

    r = client.post(fake.url("/api/chat"), json={**OLLAMA_BODY, "stream": False})
    assert r.json()["message"]["content"] == "Hello there, OK." and r.json()["done"] is True


def test_non_streamed_openai_and_anthropic(fake: FakeProvider, client: httpx.Client) -> None:
    r = client.post(fake.url("/v1/chat/completions"), json={"model": "m", "messages": []})
    assert r.json()["object"] == "chat.completion" and r.json()["choices"][0]["message"]["content"] == "Hello there, OK."
    r = client.post(fake.url("/v1/messages"), json={"model": "m", "messages": [], "max_tokens": 5})
    assert r.json()["content"] == [{"type": "text", "text": "Hello there, OK."}]


# -- faults -------------------------------------------------------------------------------------


def test_every_fault_name_is_accepted_and_typos_are_not() -> None:
    for fault in FAULTS:
        Script(fault=fault)
    with pytest.raises(ValueError, match="unknown fault"):
        Script(fault="reset_midstream")
    with pytest.raises(ValueError, match="status 200"):
        Script(status=500, fault="malformed")
    with pytest.raises(ValueError, match="input_tokens"):
        Script(usage={"input": 5, "cached": 6})


def test_hang_gives_a_read_timeout(fake: FakeProvider, client: httpx.Client) -> None:
    fake.enqueue(Script(fault="hang"))
    with pytest.raises(httpx.ReadTimeout):
        post(client, fake, "openai", timeout=SHORT)
    (req,) = fake.wait_for_requests(1)
    assert req.outcome == "hang" and req.status is None and req.t_status_ns is None
    assert req.json == OPENAI_BODY  # the request itself was read and recorded


def test_headers_then_silence(fake: FakeProvider, client: httpx.Client) -> None:
    fake.enqueue(Script(fault="headers_then_silence"))
    path, body = ROUTES["anthropic"]
    with client.stream("POST", fake.url(path), json=body, timeout=SHORT) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        with pytest.raises(httpx.ReadTimeout):
            r.read()
    (req,) = fake.wait_for_requests(1)
    assert req.outcome == "headers_then_silence" and req.status == 200 and req.content_frames == 0


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini", "ollama"])
def test_reset_mid_stream_is_a_read_error_after_two_frames(fake: FakeProvider, client: httpx.Client,
                                                          protocol: str) -> None:
    fake.enqueue(Script(fault="reset_mid_stream", token_gap_s=0.02))
    got, exc = read_until_error(client, fake, protocol)
    assert isinstance(exc, (httpx.ReadError, httpx.RemoteProtocolError)), exc
    assert b"Hello" in got and b" there" in got and b" OK" not in got
    (req,) = fake.wait_for_requests(1)
    assert req.outcome == "reset" and req.content_frames == 2


def test_reset_is_an_rst_not_a_fin(fake: FakeProvider) -> None:
    """Raw socket: the reset surfaces as ECONNRESET, not as a clean EOF."""
    fake.enqueue(Script(fault="reset_mid_stream", fault_after=1))
    body = json.dumps(OLLAMA_BODY).encode()
    with socket.create_connection(("127.0.0.1", fake.port), timeout=2) as sock:
        sock.sendall(b"POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        with pytest.raises(ConnectionResetError):
            while sock.recv(65536):
                pass


def test_disconnect_and_reset_before_any_response(fake: FakeProvider, client: httpx.Client) -> None:
    fake.enqueue(Script(fault="disconnect"), Script(fault="reset"))
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, fake, "openai", timeout=SHORT)
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        post(client, fake, "openai", timeout=SHORT)
    reqs = fake.wait_for_requests(2)
    assert [r.outcome for r in reqs] == ["disconnect", "reset"]


@pytest.mark.parametrize(
    ("protocol", "needle"),
    [("openai", b"data: {not json"), ("anthropic", b"data: {not json"), ("gemini", b"data: {not json"),
     ("ollama", b"message\":{not json\n")],
)
def test_malformed_frame_then_the_stream_goes_on(fake: FakeProvider, client: httpx.Client, protocol: str,
                                                 needle: bytes) -> None:
    fake.enqueue(Script(fault="malformed"))
    r = post(client, fake, protocol)
    assert r.status_code == 200 and needle in r.content
    assert r.content.index(b"Hello") < r.content.index(needle) < r.content.index(b" there")
    req = fake.last_request
    assert [k for _, k, _ in req.frames].count("malformed") == 1 and req.content_frames == 5


def test_error_events(fake: FakeProvider, client: httpx.Client) -> None:
    fake.enqueue(Script(fault="error_event"))
    chunks = sse_json(post(client, fake, "openai").content)
    assert chunks[-1] == {"error": {"message": chunks[-1]["error"]["message"], "type": "server_error",
                                    "param": None, "code": None}}
    assert b"[DONE]" not in fake.last_request.frames[-2][2]

    for kind in ("overloaded_error", "api_error"):
        fake.enqueue(Script(fault="error_event", error_event_type=kind, fault_after=2))
        events = sse_events(post(client, fake, "anthropic").content)
        assert events[-1][0] == "error"
        assert json.loads(events[-1][1]) == {"type": "error", "error": {"type": kind, "message": json.loads(
            events[-1][1])["error"]["message"]}}
        assert [e for e, _ in events].count("content_block_delta") == 2
        assert "message_stop" not in [e for e, _ in events]

    fake.enqueue(Script(fault="error_event", error_event_type="UNAVAILABLE"))
    chunks = sse_json(post(client, fake, "gemini").content)
    assert chunks[-1]["error"]["status"] == "UNAVAILABLE" and chunks[-1]["error"]["code"] == 503

    fake.enqueue(Script(fault="error_event"))
    lines = ndjson(post(client, fake, "ollama").content)
    assert set(lines[-1]) == {"error"} and lines[0]["message"]["content"] == "Hello"
    assert fake.last_request.outcome == "error_event"


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini", "ollama"])
def test_empty_stream_ends_properly_without_content(fake: FakeProvider, client: httpx.Client, protocol: str) -> None:
    fake.enqueue(Script(fault="empty"))
    r = post(client, fake, protocol)
    assert r.status_code == 200
    req = fake.last_request
    assert req.content_frames == 0 and req.t_first_content_ns is None and req.outcome == "complete"
    if protocol == "openai":
        assert r.content.endswith(b"data: [DONE]\n\n")
        assert sse_json(r.content)[-1]["usage"]["completion_tokens"] == 0
    elif protocol == "anthropic":
        assert [e for e, _ in sse_events(r.content)] == ["message_start", "ping", "message_delta", "message_stop"]
    elif protocol == "gemini":
        (chunk,) = sse_json(r.content)
        assert chunk["candidates"][0]["finishReason"] == "STOP"
        assert chunk["candidates"][0]["content"]["parts"] == [{"text": ""}]
    else:
        (line,) = ndjson(r.content)
        assert line["done"] is True and line["eval_count"] == 0


@pytest.mark.parametrize(
    ("protocol", "terminal"),
    [("openai", b"[DONE]"), ("anthropic", b"message_stop"), ("gemini", b"finishReason"), ("ollama", b'"done":true')],
)
def test_close_early_ends_cleanly_without_the_terminal_frame(fake: FakeProvider, client: httpx.Client,
                                                             protocol: str, terminal: bytes) -> None:
    fake.enqueue(Script(fault="close_early"))
    r = post(client, fake, protocol)  # a complete HTTP body: no exception
    assert r.status_code == 200 and b"Hello there" not in r.content  # frames, not joined text
    assert b" OK" in r.content and terminal not in r.content
    req = fake.last_request
    assert req.outcome == "close_early" and req.content_frames == 5
    post(client, fake, protocol)  # the pool notices the FIN and opens a new connection
    assert fake.last_request.conn_id != req.conn_id


def test_close_early_after_n_pieces_and_eof_mid_stream(fake: FakeProvider, client: httpx.Client) -> None:
    fake.enqueue(Script(fault="close_early", fault_after=1))
    r = post(client, fake, "openai")
    chunks = sse_json(r.content)
    assert [c["choices"][0]["delta"] for c in chunks][1:] == [{"content": "Hello"}]
    fake.enqueue(Script(fault="eof_mid_stream"))
    got, exc = read_until_error(client, fake, "openai")
    assert isinstance(exc, httpx.RemoteProtocolError) and b" there" in got
    assert fake.wait_for_requests(2)[1].outcome == "eof"


# -- status errors ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 502, 503, 529])
def test_status_errors_have_realistic_json_bodies(fake: FakeProvider, client: httpx.Client, status: int) -> None:
    for protocol in ("openai", "azure", "anthropic", "gemini", "ollama"):
        fake.enqueue(Script.error(status, retry_after="7" if status == 429 else None, request_id="rid-1"))
        r = post(client, fake, protocol)
        assert r.status_code == status
        assert r.headers["content-type"] == "application/json"
        assert int(r.headers["content-length"]) == len(r.content)
        assert ("retry-after" in r.headers) == (status == 429)
        if status == 429:
            assert r.headers["retry-after"] == "7"
        body = r.json()
        if protocol == "openai":
            assert set(body["error"]) == {"message", "type", "param", "code"}
        elif protocol == "azure":
            assert set(body["error"]) == {"code", "message"}
        elif protocol == "anthropic":
            assert body["type"] == "error" and body["request_id"] == "rid-1"
            assert r.headers["request-id"] == "rid-1"
            expected = {429: "rate_limit_error", 529: "overloaded_error", 401: "authentication_error"}
            if status in expected:
                assert body["error"]["type"] == expected[status]
        elif protocol == "gemini":
            assert body["error"]["code"] == status and body["error"]["status"].isupper()
        else:
            assert isinstance(body["error"], str)
        if protocol != "anthropic":
            assert r.headers["x-request-id"] == "rid-1"
    assert fake.pending() == 0


def test_custom_error_body_and_keep_alive_after_errors(fake: FakeProvider, client: httpx.Client) -> None:
    fake.enqueue(Script.error(502, error_body="<html>Bad Gateway</html>", error_content_type="text/html"),
                 Script.rate_limited("2"), Script())
    r = post(client, fake, "openai")
    assert (r.status_code, r.text, r.headers["content-type"]) == (502, "<html>Bad Gateway</html>", "text/html")
    r = post(client, fake, "openai")
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert post(client, fake, "openai").status_code == 200
    assert len({req.conn_id for req in fake.wait_for_requests(3)}) == 1


def test_unknown_route_and_method(fake: FakeProvider, client: httpx.Client) -> None:
    assert client.post(fake.url("/v1/v1/chat/completions"), json={}).status_code == 404
    assert client.get(fake.url("/v1/messages")).status_code == 405
    assert fake.pending() == 0 and fake.requests[0].protocol is None


def test_api_key_check(client: httpx.Client) -> None:
    with FakeProvider(api_key="sekrit") as fake:
        assert post(client, fake, "openai").status_code == 401
        assert post(client, fake, "openai", headers={"authorization": "Bearer sekrit"}).status_code == 200
        assert post(client, fake, "anthropic", headers={"x-api-key": "nope"}).json()["error"]["type"] == (
            "authentication_error")
        assert post(client, fake, "gemini", headers={"x-goog-api-key": "sekrit"}).status_code == 200
        assert post(client, fake, "azure", headers={"api-key": "sekrit"}).status_code == 200
        assert post(client, fake, "ollama").status_code == 200


# -- scripting, keep-alive, timing ----------------------------------------------------------------


def test_queue_then_protocol_defaults_then_default_and_callables(fake: FakeProvider, client: httpx.Client) -> None:
    fake.script(default=Script(tokens=["d"]), anthropic=Script(tokens=["a"]))
    fake.enqueue(Script(tokens=["q1"]), Script(tokens=["q2"]))
    fake.enqueue(Script(tokens=["oq"]), protocol="ollama")
    assert b"oq" in post(client, fake, "ollama").content
    assert b"q1" in post(client, fake, "anthropic").content
    assert b"q2" in post(client, fake, "openai").content
    assert b'"text":"a"' in post(client, fake, "anthropic").content
    assert b'"content":"d"' in post(client, fake, "openai").content
    fake.script(default=lambda req: Script(tokens=[f"for-{req.model}"]))
    assert b"for-gpt-test" in post(client, fake, "openai").content
    fake.script(anthropic=None)
    assert b"for-claude-test" in post(client, fake, "anthropic").content
    assert fake.pending() == 0


def test_concurrent_requests_consume_the_queue_exactly_once(fake: FakeProvider) -> None:
    fake.script(default=Script(status=500))
    fake.enqueue(*[Script(tokens=[f"t{i}"], token_gap_s=0.01) for i in range(12)])
    with httpx.Client(timeout=5, limits=httpx.Limits(max_connections=12)) as c, ThreadPoolExecutor(12) as pool:
        responses = list(pool.map(lambda _: post(c, fake, "openai"), range(12)))
    assert all(r.status_code == 200 for r in responses)
    texts = sorted(sse_json(r.content)[1]["choices"][0]["delta"]["content"] for r in responses)
    assert texts == sorted(f"t{i}" for i in range(12))


def test_keep_alive_reuses_one_connection(fake: FakeProvider, client: httpx.Client) -> None:
    for protocol in ("openai", "anthropic", "gemini", "ollama"):
        assert post(client, fake, protocol).status_code == 200
    reqs = fake.wait_for_requests(4)
    assert len({r.conn_id for r in reqs}) == 1
    assert [r.conn_request_index for r in reqs] == [0, 1, 2, 3]
    assert [r.new_connection for r in reqs] == [True, False, False, False]
    client.post(fake.url("/api/chat"), json=OLLAMA_BODY, headers={"connection": "close"})
    post(client, fake, "ollama")
    assert fake.last_request.new_connection


def test_timing_follows_the_script(fake: FakeProvider, client: httpx.Client) -> None:
    gaps = [0.03, 0.09, 0.03]
    fake.enqueue(Script(tokens=["a", "b", "c", "d"], headers_delay_s=0.05, first_token_delay_s=0.12, token_gaps_s=gaps))
    t_client = time.perf_counter_ns()
    r = post(client, fake, "openai")
    t_done = time.perf_counter_ns()
    assert r.status_code == 200
    (req,) = fake.wait_for_requests(1)
    assert_ordered(req)
    ms = 1e6
    assert t_client < req.t_headers_ns and req.t_end_ns <= t_done + 50 * ms  # the same clock as the client
    assert (req.t_status_ns - req.t_body_ns) / ms >= 49
    assert (req.t_first_content_ns - req.t_status_ns) / ms >= 119
    diffs = [(b - a) / ms for a, b in zip(req.content_times_ns, req.content_times_ns[1:], strict=False)]
    for got, want in zip(diffs, gaps, strict=True):
        assert want * 1000 - 1 <= got <= want * 1000 + 40
    # the role chunk went out with the headers, before the TTFT delay; trailers right after the last token
    kinds = [(t, k) for t, k, _ in req.frames]
    role_t = next(t for t, k in kinds if k == "meta")
    assert (role_t - req.t_status_ns) / ms < 20
    assert (req.t_end_ns - req.t_last_content_ns) / ms < 20


def test_blank_pieces_are_scheduled_but_not_content(fake: FakeProvider, client: httpx.Client) -> None:
    fake.enqueue(Script(tokens=["", "x"], first_token_delay_s=0.05, token_gap_s=0.05))
    post(client, fake, "openai")
    req = fake.last_request
    assert req.content_frames == 1 and (req.t_first_content_ns - req.t_status_ns) / 1e6 >= 99


# -- lifecycle ----------------------------------------------------------------------------------


def test_stops_cleanly_even_with_hanging_and_streaming_clients() -> None:
    before = {t.ident for t in threading.enumerate()}
    fake = FakeProvider().start()
    fake.enqueue(Script(fault="hang"), Script(tokens=["x"] * 100, token_gap_s=0.05))
    errors: list[BaseException] = []

    def call() -> None:
        try:
            with httpx.Client(timeout=5) as c:
                post(c, fake, "openai")
        except httpx.HTTPError as exc:
            errors.append(exc)

    callers = [threading.Thread(target=call) for _ in range(2)]
    for t in callers:
        t.start()
    fake.wait_for_requests(2, done=False)
    time.sleep(0.1)
    t0 = time.monotonic()
    fake.stop()
    assert time.monotonic() - t0 < 2
    for t in callers:
        t.join(3)
        assert not t.is_alive()
    assert len(errors) == 2  # both saw the connection close under them
    assert {r.outcome for r in fake.requests} <= {"stopped", "hang", "client_gone"}
    assert all(r.done.is_set() for r in fake.requests)
    assert not fake.running and {t.ident for t in threading.enumerate()} <= before
    with pytest.raises(httpx.ConnectError):
        httpx.post(fake.url("/v1/chat/completions"), json=OPENAI_BODY, timeout=1)
    assert fake.errors == []


def test_error_body_helper_and_fixture_generator() -> None:
    assert error_body("anthropic", 529)["error"]["type"] == "overloaded_error"
    gen = fake_provider_fixture()
    fake = next(gen)
    assert fake.running and fake.base_url.startswith("http://127.0.0.1:")
    with pytest.raises(StopIteration):
        next(gen)
    assert not fake.running


@pytest.mark.anyio
async def test_async_client_in_another_loop_sees_bytes_after_the_server_stamps(fake: FakeProvider) -> None:
    fake.enqueue(Script(tokens=["alpha", "beta"], first_token_delay_s=0.05, token_gap_s=0.05))
    arrivals: list[tuple[int, bytes]] = []
    async with httpx.AsyncClient(timeout=5) as c:
        path, body = ROUTES["anthropic"]
        async with c.stream("POST", fake.url(path), json=body) as r:
            async for chunk in r.aiter_raw():
                arrivals.append((time.perf_counter_ns(), chunk))
    req = fake.last_request
    first_seen = next(t for t, chunk in arrivals if b"alpha" in chunk)
    last_seen = next(t for t, chunk in arrivals if b"beta" in chunk)
    assert req.t_first_content_ns <= first_seen < req.t_first_content_ns + 30_000_000
    assert req.t_last_content_ns <= last_seen < req.t_last_content_ns + 30_000_000
    assert req.content_frames == 2
