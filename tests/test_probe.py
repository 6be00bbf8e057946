"""Probing against the fake provider over real HTTP: protocols, metric definitions, error kinds."""

from __future__ import annotations

import itertools
import socket

import anyio
import httpx
import pytest

from fake_provider import FakeProvider, Script, Usage
from llmscope_tui.model import ErrorKind, Sample, Target
from llmscope_tui.probe.scheduler import ProbeScheduler, make_client
from llmscope_tui.probe.stream import Timeouts, probe_once
from llmscope_tui.wire.errors import classify_exception, error_text, parse_retry_after

pytestmark = pytest.mark.anyio

PROTOCOLS = ("openai", "anthropic", "gemini", "ollama")
KEY = "sk-test-secret-key-0123456789"
FAST = Timeouts(connect_s=2, first_token_s=2, total_s=4)


def target_for(fake: FakeProvider, protocol: str, **changes: object) -> Target:
    base = fake.base_url + ("/v1" if protocol == "openai" else "")
    fields: dict[str, object] = {
        "name": f"t-{protocol}", "provider": protocol, "model": f"model-{protocol}", "protocol": protocol, "base_url": base
    }
    fields.update(changes)
    return Target(**fields)  # type: ignore[arg-type]


async def probe(fake: FakeProvider, protocol: str, timeouts: Timeouts = FAST, key: str | None = KEY) -> Sample:
    async with make_client(1, timeouts) as client:  # the scheduler's client: kernel stamps on Linux
        return await probe_once(client, target_for(fake, protocol), key, timeouts)


# ----------------------------------------------------------------------------- success


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_stream_gives_a_complete_sample(fake_provider: FakeProvider, protocol: str) -> None:
    fake_provider.script(default=Script(usage=Usage(input_tokens=21, output_tokens=5), request_id="req-42"))
    sample = await probe(fake_provider, protocol)
    assert sample.ok == 1 and sample.error_kind is None and sample.http_status == 200
    assert (sample.tokens_in, sample.tokens_out, sample.tokens_estimated) == (21, 5, 0)
    assert sample.target == f"t-{protocol}" and sample.source == "probe"
    if protocol != "ollama":
        assert sample.request_id == "req-42"
    assert sample.connect_ms is not None and sample.connect_ms >= 0
    assert sample.ttft_ms is not None and sample.latency_ms is not None and sample.latency_ms > sample.ttft_ms
    assert sample.itl_ms == pytest.approx((sample.latency_ms - sample.ttft_ms) / 4)
    assert sample.tps == pytest.approx(4 / ((sample.latency_ms - sample.ttft_ms) / 1000))


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_metrics_match_the_servers_own_timing(fake_provider: FakeProvider, protocol: str) -> None:
    """TTFT/latency follow the server's send times, and role/ping prelude frames do not stop the clock."""
    fake_provider.script(default=Script(first_token_delay_s=0.15, token_gaps_s=[0.02, 0.03, 0.05, 0.04]))
    sample = await probe(fake_provider, protocol)
    req = fake_provider.wait_for_requests(1)[0]
    assert sample.ok
    server_span_ms = (req.t_last_content_ns - req.t_first_content_ns) / 1e6
    # the margins hold on a machine at load 6: a late read can shift a stamp by tens of ms, while
    # a clock stopped by a prelude frame would be off by the whole 150 ms first-token delay
    assert sample.latency_ms - sample.ttft_ms == pytest.approx(server_span_ms, abs=60.0)
    server_ttft_ms = (req.t_first_content_ns - req.t_headers_ns) / 1e6
    assert server_ttft_ms >= 150
    # t0 is before the server saw the request head, so measured TTFT is never shorter (a clock
    # stopped by a prelude frame would read far less); a new connection's set-up is part of TTFT
    # by definition (connect_ms says how much), and on a machine at load 6 the request can wait
    # hundreds of ms for the CPU before the server reads it, so the upper bound only catches a
    # t0 taken absurdly early
    assert server_ttft_ms <= sample.ttft_ms <= server_ttft_ms + sample.connect_ms + 1000.0


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_missing_usage_is_estimated_from_chunks(fake_provider: FakeProvider, protocol: str) -> None:
    fake_provider.script(default=Script(include_usage=False, tokens=["a", "b", "c"]))
    sample = await probe(fake_provider, protocol)
    assert sample.ok and sample.tokens_estimated == 1 and sample.tokens_out == 3
    assert sample.tokens_in is not None and sample.tokens_in > 0


async def test_openai_cached_and_reasoning_tokens(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        default=Script(
            reasoning=["think", "ing"],
            first_token_delay_s=0.05,
            usage=Usage(input_tokens=100, cached_tokens=60, output_tokens=9, reasoning_tokens=4),
        )
    )
    sample = await probe(fake_provider, "openai")
    req = fake_provider.wait_for_requests(1)[0]
    assert (sample.tokens_in, sample.tokens_cached, sample.tokens_out, sample.tokens_reasoning) == (100, 60, 9, 4)
    assert req.json["stream"] is True and req.json["stream_options"] == {"include_usage": True}
    assert req.headers["authorization"] == f"Bearer {KEY}"
    # reasoning deltas are output: TTFT stops at the first one
    assert sample.ttft_ms <= (req.t_first_content_ns - req.t_headers_ns) / 1e6 + sample.connect_ms + 60  # margin: see above


async def test_anthropic_usage_counts_cache_reads_and_writes(fake_provider: FakeProvider) -> None:
    fake_provider.script(
        default=Script(usage=Usage(input_tokens=120, cached_tokens=50, cache_creation_tokens=30, output_tokens=7))
    )
    sample = await probe(fake_provider, "anthropic")
    req = fake_provider.wait_for_requests(1)[0]
    assert (sample.tokens_in, sample.tokens_cached, sample.tokens_out) == (120, 50, 7)
    assert req.headers["x-api-key"] == KEY and req.headers["anthropic-version"] == "2023-06-01"


async def test_gemini_thoughts_are_inside_tokens_out_and_key_never_in_url(fake_provider: FakeProvider) -> None:
    fake_provider.script(default=Script(usage=Usage(input_tokens=10, output_tokens=12, reasoning_tokens=5)))
    sample = await probe(fake_provider, "gemini")
    req = fake_provider.wait_for_requests(1)[0]
    assert (sample.tokens_out, sample.tokens_reasoning) == (12, 5)
    assert req.headers["x-goog-api-key"] == KEY
    assert KEY not in req.target and req.query == {"alt": "sse"}


async def test_tool_call_deltas_count_as_output(fake_provider: FakeProvider) -> None:
    fake_provider.script(default=Script(tokens=[], tool_name="lookup", tool_args=['{"q":', '"x"}']))
    sample = await probe(fake_provider, "openai")
    assert sample.ok and sample.ttft_ms is not None


async def test_pooled_connection_reports_zero_connect(fake_provider: FakeProvider) -> None:
    async with make_client(1, FAST) as client:
        target = target_for(fake_provider, "openai")
        first = await probe_once(client, target, KEY, FAST)
        second = await probe_once(client, target, KEY, FAST)
    assert first.connect_ms > 0 and second.connect_ms == 0.0
    reqs = fake_provider.wait_for_requests(2)
    assert reqs[1].conn_id == reqs[0].conn_id


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, ErrorKind.AUTH),
        (403, ErrorKind.AUTH),
        (400, ErrorKind.CLIENT_ERROR),
        (404, ErrorKind.CLIENT_ERROR),
        (500, ErrorKind.SERVER_ERROR),
        (502, ErrorKind.SERVER_ERROR),
        (503, ErrorKind.SERVER_ERROR),
        (529, ErrorKind.OVERLOADED),
    ],
)
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_status_errors(fake_provider: FakeProvider, protocol: str, status: int, kind: ErrorKind) -> None:
    fake_provider.script(default=Script.error(status))
    sample = await probe(fake_provider, protocol)
    assert (sample.ok, sample.error_kind, sample.http_status) == (0, kind, status)
    assert sample.error_message and str(status) in sample.error_message


@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_rate_limit_keeps_retry_after(fake_provider: FakeProvider, protocol: str) -> None:
    fake_provider.script(default=Script.rate_limited(retry_after="7"))
    sample = await probe(fake_provider, protocol)
    assert (sample.error_kind, sample.http_status, sample.retry_after_s) == ("rate_limit", 429, 7.0)


@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        ("reset_mid_stream", ErrorKind.NETWORK),
        ("eof_mid_stream", ErrorKind.NETWORK),
        ("disconnect", ErrorKind.NETWORK),
        ("reset", ErrorKind.NETWORK),
        ("malformed", ErrorKind.MALFORMED),
        ("error_event", ErrorKind.STREAM_ERROR),
        ("empty", ErrorKind.EMPTY_RESPONSE),
        ("close_early", ErrorKind.STREAM_ERROR),
    ],
)
@pytest.mark.parametrize("protocol", PROTOCOLS)
async def test_stream_faults(fake_provider: FakeProvider, protocol: str, fault: str, kind: ErrorKind) -> None:
    script = Script(fault=fault, error_event_type="api_error" if protocol == "anthropic" else None)
    if fault == "close_early":
        script = Script(fault=fault, fault_after=2)
    fake_provider.script(default=script)
    sample = await probe(fake_provider, protocol)
    assert (sample.ok, sample.error_kind) == (0, kind), sample.error_message


async def test_a_cut_off_stream_counts_the_chunks_that_arrived(fake_provider: FakeProvider) -> None:
    fake_provider.script(default=Script(fault="reset_mid_stream", fault_after=3))
    sample = await probe(fake_provider, "anthropic")
    assert sample.error_kind == "network"
    assert (sample.tokens_out, sample.tokens_estimated) == (3, 1)


@pytest.mark.parametrize(
    ("protocol", "frame"),
    [
        ("openai", b'data: {"choices": "not a list"}\n\n'),
        ("openai", b'data: {"choices": [{"delta": "text"}]}\n\n'),
        ("anthropic", b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": 5}\n\n'),
        ("gemini", b'data: {"candidates": [{"content": {"parts": "x"}}]}\n\n'),
        ("ollama", b'{"message": "hello", "done": false}\n'),
        ("openai", b'data: [1, 2]\n\n'),
    ],
)
async def test_frames_of_the_wrong_shape_are_malformed(fake_provider: FakeProvider, protocol: str, frame: bytes) -> None:
    fake_provider.script(default=Script(fault="malformed", malformed_frame=frame))
    sample = await probe(fake_provider, protocol)
    assert sample.error_kind == ErrorKind.MALFORMED, sample


async def test_anthropic_overloaded_event_in_stream(fake_provider: FakeProvider) -> None:
    fake_provider.script(default=Script(fault="error_event", error_event_type="overloaded_error"))
    sample = await probe(fake_provider, "anthropic")
    assert sample.error_kind == ErrorKind.OVERLOADED and sample.http_status == 200


@pytest.mark.parametrize("fault", ["hang", "headers_then_silence"])
async def test_no_first_token_in_time(fake_provider: FakeProvider, fault: str) -> None:
    fake_provider.script(default=Script(fault=fault))
    sample = await probe(fake_provider, "openai", Timeouts(connect_s=1, first_token_s=0.3, total_s=2))
    assert sample.error_kind == ErrorKind.TIMEOUT_FIRST_TOKEN
    assert sample.ttft_ms is None


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_slow_stream_hits_the_total_timeout(fake_provider: FakeProvider) -> None:
    fake_provider.script(default=Script(tokens=["a", "b", "c"], token_gap_s=0.4))
    sample = await probe(fake_provider, "openai", Timeouts(connect_s=1, first_token_s=0.3, total_s=0.6))
    assert sample.error_kind == ErrorKind.TIMEOUT_TOTAL
    assert sample.ttft_ms is not None  # output had started


async def test_connect_timeout_when_no_connection_opens() -> None:
    async def never(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(10)
        raise AssertionError("unreachable")

    target = Target(name="t", provider="openai", model="m", protocol="openai", base_url="http://127.0.0.1:9/v1")
    async with httpx.AsyncClient(transport=httpx.MockTransport(never)) as client:
        sample = await probe_once(client, target, None, Timeouts(connect_s=0.2, first_token_s=0.2, total_s=1))
    assert sample.error_kind == ErrorKind.TIMEOUT_CONNECT


async def test_refused_connection_is_network() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    target = Target(name="t", provider="ollama", model="m", protocol="ollama", base_url=f"http://127.0.0.1:{port}")
    async with make_client(1, FAST) as client:
        sample = await probe_once(client, target, None, FAST)
    assert (sample.ok, sample.error_kind, sample.http_status, sample.connect_ms) == (0, "network", None, None)


@pytest.mark.parametrize("kernel_clock", [True, False])
async def test_tls_to_a_plain_port_says_why(kernel_clock: bool) -> None:
    """It stored the empty message "ConnectError:" (httpx's exception had no text). The server
    answers a TLS hello as a plain HTTP server does: 400 and close."""
    import threading

    server = socket.create_server(("127.0.0.1", 0))

    def plain_http() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(4096)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")

    thread = threading.Thread(target=plain_http, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    target = Target(name="t", provider="openai", model="m", protocol="openai", base_url=f"https://127.0.0.1:{port}/v1")
    try:
        async with make_client(1, FAST, kernel_clock=kernel_clock) as client:
            sample = await probe_once(client, target, KEY, FAST)
    finally:
        thread.join(5)
        server.close()
    assert (sample.ok, sample.error_kind) == (0, "network")
    assert sample.error_message is not None and len(sample.error_message) > len("ConnectError: ")
    assert "SSL" in sample.error_message or "TLS" in sample.error_message, sample.error_message


async def test_an_echoed_key_never_reaches_the_sample(fake_provider: FakeProvider) -> None:
    fake_provider.script(default=Script.error(401, error_message=f"Incorrect API key provided: {KEY}"))
    sample = await probe(fake_provider, "openai")
    assert sample.error_kind == "auth" and KEY not in (sample.error_message or "")
    assert KEY not in repr(sample)


def test_classification_and_helpers() -> None:
    assert classify_exception(httpx.ConnectTimeout("x")) == ErrorKind.TIMEOUT_CONNECT
    assert classify_exception(httpx.ConnectError("x")) == ErrorKind.NETWORK
    assert classify_exception(httpx.RemoteProtocolError("x")) == ErrorKind.NETWORK
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("soon") is None
    assert "sk-abc" not in error_text("bad key sk-abcdefghijkl and Bearer abcdefghijk123")


# ----------------------------------------------------------------------------- scheduler


@pytest.mark.slow
async def test_scheduler_never_overlaps_a_target_and_caps_concurrency(fake_provider: FakeProvider) -> None:
    """Each probe takes ~0.3 s with 0.1 s intervals: a target's probes run back to back, never doubled,
    and four targets never have more than two requests in flight (concurrency 2)."""
    fake_provider.script(default=Script(first_token_delay_s=0.25, token_gap_s=0.01))
    targets = [target_for(fake_provider, "openai", name=f"t{i}", model=f"t{i}", interval_s=0.1) for i in range(4)]
    samples: list[Sample] = []
    sched = ProbeScheduler(targets, samples.append, timeouts=FAST, concurrency=2, env={}, max_probes=10, jitter=0)
    with anyio.fail_after(15):
        await sched.run()
    assert len(samples) == 10 and all(s.ok for s in samples)
    reqs = fake_provider.wait_for_requests(10)
    spans = [(r.t_headers_ns, r.t_end_ns) for r in reqs]
    for start, _ in spans:
        assert sum(1 for s, e in spans if s <= start < e) <= 2
    by_target: dict[str, list[tuple[int, int]]] = {}
    for r in reqs:
        by_target.setdefault(r.model, []).append((r.t_headers_ns, r.t_end_ns))
    for runs in by_target.values():
        runs.sort()
        assert all(nxt[0] >= prev[1] for prev, nxt in itertools.pairwise(runs))
    assert max(sched.stats.lags_s) > 0.1  # the slow probes pushed later ones back instead of doubling up


async def test_scheduler_interval_and_stagger(fake_provider: FakeProvider) -> None:
    """Each target is due every interval, never sooner, and the second one starts interval / n later.

    Checked on the times the scheduler asked to wake at, not on wall-clock arrivals, so a busy
    machine that wakes it late cannot break the test."""
    targets = [target_for(fake_provider, "gemini", name=f"g{i}", interval_s=0.2) for i in range(2)]
    samples: list[Sample] = []
    sched = ProbeScheduler(targets, samples.append, timeouts=FAST, env={}, jitter=0)
    by_loop: dict[int, list[float]] = {}
    wait_until = sched._wait_until

    async def recording_wait_until(due: float) -> bool:
        by_loop.setdefault(anyio.get_current_task().id, []).append(due)
        return await wait_until(due)

    sched._wait_until = recording_wait_until  # type: ignore[method-assign]
    async with anyio.create_task_group() as tg:
        tg.start_soon(sched.run)
        with anyio.fail_after(20):
            while min(sum(s.target == t.name for s in samples) for t in targets) < 3:
                await anyio.sleep(0.02)
        sched.stop()
    dues = dict(zip(["g0", "g1"], sorted(by_loop.values()), strict=True))  # g0 is due first
    assert dues["g1"][0] - dues["g0"][0] == pytest.approx(0.1, abs=1e-9)  # staggered by interval / n
    for name, times in dues.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(gaps) >= 3, name
        assert all(gap >= 0.2 - 1e-9 for gap in gaps), (name, gaps)  # never sooner than the interval


async def test_stop_cancels_stragglers_after_grace_and_records_them(fake_provider: FakeProvider) -> None:
    fake_provider.script(default=Script(fault="hang"))
    samples: list[Sample] = []
    target = target_for(fake_provider, "openai", interval_s=0.1)
    sched = ProbeScheduler([target], samples.append, timeouts=Timeouts(1, 30, 30), env={}, grace_s=0.2)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sched.run)
            await anyio.sleep(0.3)
            sched.stop()
    assert [s.error_kind for s in samples] == ["cancelled"]


async def test_a_second_stop_with_a_shorter_grace_cuts_the_running_grace_short(fake_provider: FakeProvider) -> None:
    """A second q: the grace already running (an hour here) ends at once, and the hung probe is
    still recorded."""
    fake_provider.script(default=Script(fault="hang"))
    samples: list[Sample] = []
    target = target_for(fake_provider, "openai", interval_s=0.1)
    sched = ProbeScheduler([target], samples.append, timeouts=Timeouts(1, 3600, 3600), env={}, grace_s=3600)
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            tg.start_soon(sched.run)
            while sched.stats.in_flight == 0:
                await anyio.sleep(0.01)
            sched.stop()
            await anyio.sleep(0.05)  # the hour-long grace is under way
            sched.stop(grace_s=0)
    assert sched.grace_s == 0 and [s.error_kind for s in samples] == ["cancelled"]


async def test_scheduler_reads_the_key_from_the_environment_and_skips_disabled(fake_provider: FakeProvider) -> None:
    ok = target_for(fake_provider, "anthropic", api_key_env="MY_KEY", interval_s=0.1)
    off = target_for(fake_provider, "openai", name="off", disabled_reason="OPENAI_API_KEY is not set")
    samples: list[Sample] = []
    client = make_client(2, FAST)
    async with client:
        sched = ProbeScheduler([ok, off], samples.append, env={"MY_KEY": "k-123"}, client=client, max_probes=2)
        with anyio.fail_after(10):
            await sched.run()
    assert {s.target for s in samples} == {ok.name}
    assert fake_provider.wait_for_requests(1)[0].headers["x-api-key"] == "k-123"


async def test_an_unexpected_error_in_a_probe_does_not_end_the_loop(
    fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    from llmscope_tui.probe import scheduler as scheduler_module

    real = scheduler_module.probe_once
    calls = 0

    async def flaky(*args: object, **kwargs: object) -> Sample:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("a bug")
        return await real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(scheduler_module, "probe_once", flaky)
    samples: list[Sample] = []
    target = target_for(fake_provider, "openai", interval_s=0.05)
    sched = ProbeScheduler([target], samples.append, timeouts=FAST, env={}, max_probes=3)
    with anyio.fail_after(10):
        await sched.run()
    assert [s.ok for s in samples] == [0, 1, 1]
    assert samples[0].error_kind == "internal"  # ours, not the provider's (it was `malformed`)
    assert "RuntimeError: a bug" in (samples[0].error_message or "")
