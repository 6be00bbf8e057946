"""Wire reads found wrong on real servers (issue 12): each probed over real HTTP on loopback.

Usage that stands, a JSON body answering a streamed request, SSE framing details, refusals,
request ids, `internal` for our own bugs, and DESIGN 4's `streamed` for ITL and tps.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from fake_provider import FakeProvider, Script, Usage
from llmscope_tui import logfile
from llmscope_tui.incidents import IncidentEngine, PolicySettings
from llmscope_tui.model import ErrorKind, Sample, Target
from llmscope_tui.probe import stream as stream_module
from llmscope_tui.probe.stream import Timeouts, probe_once
from llmscope_tui.rollups import Rollup
from llmscope_tui.tui.state import ViewState
from llmscope_tui.wire.base import REQUEST_ID_HEADERS, request_id
from llmscope_tui.wire.openai import OpenAIProtocol

pytestmark = pytest.mark.anyio

PROTOCOLS = ("openai", "anthropic", "gemini", "ollama")
KEY = "sk-test-secret-key-0123456789"
FAST = Timeouts(connect_s=2, first_token_s=2, total_s=4)
THIRTEEN = [f" t{i}" for i in range(13)]


def target_for(fake: FakeProvider, protocol: str, name: str | None = None) -> Target:
    base = fake.base_url + ("/v1" if protocol == "openai" else "")
    return Target(
        name=name or f"t-{protocol}", provider=protocol, model=f"model-{protocol}", protocol=protocol, base_url=base
    )


async def probe(fake: FakeProvider, protocol: str, name: str | None = None) -> Sample:
    async with httpx.AsyncClient() as client:
        return await probe_once(client, target_for(fake, protocol, name), KEY, FAST)


def span_ms(sample: Sample) -> float:
    assert sample.latency_ms is not None and sample.ttft_ms is not None
    return sample.latency_ms - sample.ttft_ms


# ------------------------------------------------------------------- the server's usage stands


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_reported_usage_stands_when_the_chunk_count_differs(fake_provider: FakeProvider, protocol: str) -> None:
    """LiteLLM: usage completion_tokens 10 over 13 chunks was stored as 13, estimated."""
    fake_provider.script(default=Script(tokens=THIRTEEN, usage=Usage(input_tokens=7, output_tokens=10)))
    sample = await probe(fake_provider, protocol)
    assert sample.ok, sample.error_message
    assert (sample.tokens_in, sample.tokens_out, sample.tokens_estimated) == (7, 10, 0)
    assert sample.itl_ms == pytest.approx(span_ms(sample) / 9)


# ------------------------------------------------- a JSON body answering a streamed request


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_a_json_body_to_a_streamed_request_is_one_whole_first_token(
    fake_provider: FakeProvider, protocol: str, caplog: pytest.LogCaptureFixture
) -> None:
    """LiteLLM's /v1/messages with a mock model ignores `stream: true` and answers with JSON."""
    stream_module._NOTED_WHOLE_BODY.discard(f"whole-{protocol}")
    fake_provider.script(default=Script(ignore_stream=True, usage=Usage(input_tokens=21, output_tokens=5)))
    with caplog.at_level(logging.WARNING, logger="llmscope_tui.probe.stream"):
        samples = [await probe(fake_provider, protocol, f"whole-{protocol}") for _ in range(2)]
    for sample in samples:
        assert (sample.ok, sample.error_kind) == (1, None), sample.error_message
        assert sample.ttft_ms is not None and sample.ttft_ms == sample.latency_ms
        assert sample.itl_ms is None and sample.tps is None
        assert (sample.tokens_in, sample.tokens_out, sample.tokens_estimated) == (21, 5, 0)
    assert fake_provider.wait_for_requests(2)[0].headers["content-type"] == "application/json"
    notes = [r for r in caplog.records if "one JSON body" in r.getMessage()]
    assert len(notes) == 1 and f"whole-{protocol}" in notes[0].getMessage()  # once per target


async def test_a_json_body_without_content_is_still_empty(fake_provider: FakeProvider) -> None:
    fake_provider.script(default=Script(ignore_stream=True, fault="empty"))
    sample = await probe(fake_provider, "anthropic")
    assert sample.error_kind == ErrorKind.EMPTY_RESPONSE


# ------------------------------------------------------------------------------- SSE framing


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "gemini"])
@pytest.mark.parametrize("line_end", ["\n", "\r\n", "\r"], ids=["LF", "CRLF", "CR"])
async def test_sse_line_ends_and_events_without_data_read_cleanly(
    fake_provider: FakeProvider, protocol: str, line_end: str
) -> None:
    """`event: keepalive` + a blank line is not dispatched (it used to be a `malformed` probe);
    a bare CR ends a line as LF and CRLF do."""
    fake_provider.script(default=Script(sse_line_end=line_end, sse_nameless_events=True))
    sample = await probe(fake_provider, protocol)
    assert (sample.ok, sample.error_kind) == (1, None), sample.error_message
    assert (sample.tokens_out, sample.tokens_estimated) == (5, 0)


# ------------------------------------------------------------------------ refusals, request ids


async def test_a_refusal_only_stream_is_content(fake_provider: FakeProvider) -> None:
    fake_provider.script(default=Script(text_field="refusal", tokens=["I can't", " help with that."]))
    sample = await probe(fake_provider, "openai")
    assert (sample.ok, sample.error_kind) == (1, None), sample.error_message
    assert sample.ttft_ms is not None and sample.latency_ms is not None and sample.latency_ms > sample.ttft_ms


async def test_cf_ray_is_not_a_provider_request_id(fake_provider: FakeProvider) -> None:
    fake_provider.enqueue(
        Script(extra_headers={"cf-ray": "8f1e2d3c4b5a6978-SJC"}),
        Script(extra_headers={"cf-ray": "8f1e2d3c4b5a6978-SJC"}, request_id="req_abc"),
    )
    assert (await probe(fake_provider, "openai")).request_id is None
    assert (await probe(fake_provider, "openai")).request_id == "req_abc"


async def test_anthropic_request_id_header(fake_provider: FakeProvider) -> None:
    fake_provider.script(default=Script(request_id="req_011CKX", extra_headers={"cf-ray": "x-SJC"}))
    assert (await probe(fake_provider, "anthropic")).request_id == "req_011CKX"


async def test_litellm_call_id_is_the_request_id_only_when_no_provider_id_came(
    fake_provider: FakeProvider,
) -> None:
    """LiteLLM's proxy names the call `x-litellm-call-id`; the provider's own id, sent directly or
    passed on by the proxy as `llm_provider-x-request-id`, wins over it."""
    call = {"x-litellm-call-id": "3f1c9a52-7d0e-4c1b-9a3e-5b2f8c6d4e10"}
    fake_provider.enqueue(
        Script(extra_headers=call),
        Script(extra_headers={**call, "llm_provider-x-request-id": "req_upstream"}),
        Script(extra_headers=call, request_id="req_direct"),
    )
    assert (await probe(fake_provider, "openai")).request_id == call["x-litellm-call-id"]
    assert (await probe(fake_provider, "openai")).request_id == "req_upstream"
    assert (await probe(fake_provider, "openai")).request_id == "req_direct"


def test_request_id_order_puts_every_provider_header_before_the_proxys_call_id() -> None:
    """One list, read by the probe and the app-side client alike: any provider header, bare or
    prefixed, wins over the call id, whatever order the response lists them in."""
    for header in REQUEST_ID_HEADERS[:-1]:
        headers = httpx.Headers([("x-litellm-call-id", "call-1"), (header.upper(), "provider-1")])
        assert request_id(headers) == "provider-1", header
    assert request_id(httpx.Headers({"cf-ray": "8f1e-SJC"})) is None


# --------------------------------------------------------------------- llama.cpp's own bytes

#: What llama-cpp-python 0.3.36's server (`python -m llama_cpp.server`) sent to our probe, byte for
#: byte, captured by `bench/bench_llamacpp.py --keep` (the bench is opt-in: it compiles llama.cpp):
#: a role-only first chunk, 16 one-letter content chunks, `delta: {}` with finish_reason "length",
#: [DONE]; LF line ends; no usage although the probe asks for it; its id in `x-request-id`.
LLAMACPP_STREAM = Path(__file__).parent / "data" / "llamacpp-0.3.36-chat-stream.sse"
LLAMACPP_HEADERS = {"content-type": "text/event-stream; charset=utf-8", "server": "uvicorn",
                    "x-request-id": "c685d9d2a189489da1d5504e8f046a2c", "openai-processing-ms": "4"}


@pytest.mark.parametrize("split", ["per event", "one read"])
async def test_llamacpp_server_stream_replayed(split: str) -> None:
    """llama.cpp's stream as it came, in the reads uvicorn wrote (one per event) or in one: an ok
    sample, tokens out = its 16 content chunks (estimated, as it sends no usage), its id."""
    body = LLAMACPP_STREAM.read_bytes()
    reads = [event + b"\n\n" for event in body.split(b"\n\n") if event] if split == "per event" else [body]
    assert b"".join(reads) == body

    async def stream() -> AsyncIterator[bytes]:
        for read in reads:
            yield read

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=LLAMACPP_HEADERS, content=stream())

    target = Target(name="llamacpp", provider="openai-compatible", model="tiny-random",
                    protocol="openai", base_url="http://127.0.0.1:9/v1")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        sample = await probe_once(client, target, KEY, FAST)
    assert (sample.ok, sample.error_kind) == (1, None), sample.error_message
    assert (sample.tokens_out, sample.tokens_estimated) == (16, 1)
    assert sample.tokens_in == -(-len(target.prompt) // 4)  # the prompt's length: no usage came
    assert sample.request_id == LLAMACPP_HEADERS["x-request-id"]
    assert sample.ttft_ms is not None and sample.latency_ms is not None
    assert sample.ttft_ms <= sample.latency_ms


# ------------------------------------------------------------------------------- our own bugs


async def test_a_bug_in_our_reading_code_is_internal_with_the_traceback_in_the_log(
    fake_provider: FakeProvider,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(self: object, obj: object, event: object, state: object) -> object:
        raise RuntimeError(f"a bug of ours quoting {KEY}")

    monkeypatch.setattr(OpenAIProtocol, "read_object", broken)
    with caplog.at_level(logging.ERROR, logger="llmscope_tui.probe.stream"):
        sample = await probe(fake_provider, "openai")
    assert (sample.ok, sample.error_kind, sample.http_status) == (0, "internal", 200)
    message = sample.error_message or ""
    assert "RuntimeError" in message and "\n" not in message and KEY not in message
    (record,) = [r for r in caplog.records if r.name == "llmscope_tui.probe.stream"]
    logged = record.getMessage()
    assert "Traceback" in logged and "in broken" in logged and KEY not in logged
    assert record.exc_info is None  # the traceback went through redact, not the raw exc_info


async def test_under_the_ui_the_traceback_goes_to_a_private_log_file(
    fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch, isolated_env: Path
) -> None:
    def broken(self: object, obj: object, event: object, state: object) -> object:
        raise RuntimeError(f"a bug of ours quoting {KEY}")

    monkeypatch.setattr(OpenAIProtocol, "read_object", broken)
    handler = logfile.attach()  # what `llmscope-tui --tui` does before the UI takes the screen
    assert handler is not None
    try:
        sample = await probe(fake_provider, "openai")
    finally:
        logfile.detach(handler)
    path = logfile.default_log_file()
    assert path.is_relative_to(isolated_env)
    text = path.read_text()
    assert sample.error_kind == "internal" and "Traceback" in text and "in broken" in text
    assert KEY not in text
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize(
    "script",
    [
        Script(fault="error_event", error_message=f"invalid key {KEY}"),
        Script(fault="malformed", malformed_frame=f'data: {{"key": "{KEY}" oops\n\n'.encode()),
    ],
    ids=["error-event", "malformed-frame"],
)
async def test_in_stream_error_text_is_redacted_too(fake_provider: FakeProvider, script: Script) -> None:
    """DESIGN 5: every stored message passes the same key redaction, not only HTTP error bodies."""
    fake_provider.script(default=script)
    sample = await probe(fake_provider, "openai")
    assert sample.error_kind in ("stream_error", "malformed") and sample.error_message
    assert KEY not in sample.error_message and "[redacted]" in sample.error_message


def _internal(name: str, ts: float) -> Sample:
    return Sample(ts=ts, target=name, provider="openai", model="m", ok=0, error_kind="internal")


def test_internal_failures_are_not_the_providers_error_rate_down_or_incident() -> None:
    rollup = Rollup(key="a", window="1h", count=10, ok=6, errors_by_kind={"internal": 3, "server_error": 1})
    assert rollup.failed == 1 and rollup.error_rate == pytest.approx(1 / 7)

    view = ViewState()
    for i in range(3):
        view.apply({"event": "sample", "target": "a", "ok": 1, "ts": float(i), "ttft_ms": 100.0})
    for i in range(3, 8):
        view.apply({"event": "sample", "target": "a", "ok": 0, "ts": float(i), "error_kind": "internal"})
    a = view.target("a")
    assert a.status() == "up" and a.error_rate == 0.0 and view.errors == 0
    assert a.last_error == "internal"  # still shown: one line to the user

    engine = IncidentEngine(PolicySettings(baseline_samples=30, close_after=10), [])
    rng = np.random.default_rng(3)
    for i, ttft in enumerate(400 * np.exp(0.2 * rng.standard_normal(60))):
        engine.observe(Sample(ts=float(i), target="g", provider="openai", model="m", ok=1, ttft_ms=float(ttft)))
    assert all(engine.observe(_internal("g", 60.0 + i)) == [] for i in range(10))


# ---------------------------------------------------------------- DESIGN 4: `streamed`


async def test_hidden_reasoning_is_not_streamed(fake_provider: FakeProvider) -> None:
    """An o-series stream: usage says 40 reasoning tokens of 45, no reasoning delta arrived;
    the 40 were generated before the first visible token, so ITL and tps count the 5."""
    fake_provider.script(
        default=Script(tokens=["a", "b", "c", "d", "e"], usage=Usage(output_tokens=45, reasoning_tokens=40))
    )
    sample = await probe(fake_provider, "openai")
    assert (sample.tokens_out, sample.tokens_reasoning, sample.tokens_estimated) == (45, 40, 0)
    assert sample.itl_ms == pytest.approx(span_ms(sample) / 4)
    assert sample.tps == pytest.approx(4 / (span_ms(sample) / 1000))


async def test_gemini_hidden_thoughts_are_not_streamed(fake_provider: FakeProvider) -> None:
    fake_provider.script(default=Script(tokens=["a", "b", "c"], usage=Usage(output_tokens=20, reasoning_tokens=17)))
    sample = await probe(fake_provider, "gemini")
    assert (sample.tokens_out, sample.tokens_reasoning) == (20, 17)
    assert sample.itl_ms == pytest.approx(span_ms(sample) / 2)


@pytest.mark.parametrize("protocol", ["openai", "anthropic", "ollama"])
async def test_visible_reasoning_stays_in_streamed(fake_provider: FakeProvider, protocol: str) -> None:
    """reasoning_content / thinking deltas arrived: the reasoning was streamed, it counts."""
    fake_provider.script(
        default=Script(reasoning=["hm", "m", "."], tokens=["a", "b"], usage=Usage(output_tokens=9, reasoning_tokens=6))
    )
    sample = await probe(fake_provider, protocol)
    assert sample.ok and sample.tokens_out == 9
    assert sample.itl_ms == pytest.approx(span_ms(sample) / 8)
