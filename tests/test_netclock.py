"""Kernel arrival stamps (probe/netclock.py): a stalled event loop does not move TTFT, over plain
TCP and TLS; the backend keeps httpx's pooling, timeouts and connection errors."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator

import anyio
import anyio.to_thread
import httpx
import pytest

from llmscope_tui.model import Target
from llmscope_tui.probe import connect, netclock
from llmscope_tui.probe.scheduler import make_client
from llmscope_tui.probe.stream import Timeouts, probe_once
from raw_http import read_request

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(netclock.clock_in_use() != "kernel", reason="kernel receive stamps are Linux-only"),
]

STALL_S = 0.3
TIMEOUTS = Timeouts(connect_s=10, first_token_s=20, total_s=30)


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class StallServer:
    """One OpenAI stream in a thread. Its first content chunk goes out only once the client's
    loop says it is stalled, so that chunk arrives while nothing in the client can read it;
    the server stamps when it got the request and when it sent that chunk (the truth)."""

    def __init__(self, tls: ssl.SSLContext | None = None, next_token_s: float | None = None) -> None:
        self.next_token_s = next_token_s  # a second token this long after the first, mid-stall
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.tls = tls
        self.received, self.stalling = threading.Event(), threading.Event()
        self.received_ns = self.sent_ns = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def target(self) -> Target:
        scheme = "https" if self.tls else "http"
        return Target(name="t", provider="openai", model="m", protocol="openai",
                      base_url=f"{scheme}://localhost:{self.port}/v1")

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        if self.tls is not None:
            conn = self.tls.wrap_socket(conn, server_side=True)
        with conn:
            read_request(conn)
            self.received_ns = time.perf_counter_ns()
            conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                         + _chunk(b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n'))
            self.received.set()
            self.stalling.wait(10)
            time.sleep(0.02)  # well inside the stall
            self.sent_ns = time.perf_counter_ns()
            conn.sendall(_chunk(b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'))
            if self.next_token_s is not None:
                time.sleep(self.next_token_s)
                conn.sendall(_chunk(b'data: {"choices":[{"delta":{"content":" there"}}]}\n\n'))
            conn.sendall(_chunk(b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n')
                         + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")

    def close(self) -> None:
        self.stalling.set()
        self.listener.close()
        self.thread.join(10)


async def _probe_through_a_stall(server: StallServer, client: httpx.AsyncClient) -> tuple[float, float, float]:
    """TTFT as probed, the server's own (request received -> first token sent) and the time from
    request received to the stall's end, all in ms. The stall blocks the loop as a render burst
    or a collector pause does."""
    stall_end_ns = 0

    async def stall() -> None:
        nonlocal stall_end_ns
        assert await anyio.to_thread.run_sync(server.received.wait, 10)
        server.stalling.set()
        time.sleep(STALL_S)  # noqa: ASYNC251 - blocking the loop is the point
        stall_end_ns = time.perf_counter_ns()

    async with anyio.create_task_group() as tg:
        tg.start_soon(stall)
        sample = await probe_once(client, server.target(), None, TIMEOUTS)
    assert sample.ok, sample.error_message
    assert sample.ttft_ms is not None
    return (sample.ttft_ms, (server.sent_ns - server.received_ns) / 1e6,
            (stall_end_ns - server.received_ns) / 1e6)


@pytest.fixture
def tls_pair() -> Iterator[tuple[ssl.SSLContext, ssl.SSLContext]]:
    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    yield server_ctx, client_ctx


async def test_a_stalled_loop_does_not_move_the_kernel_stamped_ttft() -> None:
    server = StallServer()
    try:
        async with make_client(1, TIMEOUTS) as client:
            ttft, truth, stall_end = await _probe_through_a_stall(server, client)
    finally:
        server.close()
    # the token arrived mid-stall; its stamp is the kernel's, not the late read's
    assert truth - 1 < ttft < truth + 150 < stall_end


async def test_tls_records_carry_the_stamp_of_the_read_that_completed_them(
    tls_pair: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_ctx, client_ctx = tls_pair
    server = StallServer(tls=server_ctx)
    try:
        async with httpx.AsyncClient(verify=client_ctx) as client:
            assert netclock.use_kernel_clock(client) == "kernel"
            ttft, truth, stall_end = await _probe_through_a_stall(server, client)
    finally:
        server.close()
    assert truth - 1 < ttft < truth + 150 < stall_end


@pytest.mark.parametrize("off_loop", [True, False], ids=["reader-thread", "loop-reads"])
async def test_a_token_that_lands_while_the_loop_is_late_keeps_its_own_stamp(off_loop: bool) -> None:
    """Two tokens 150 ms apart land while the loop is stalled. Read on the loop, TCP has merged
    them into one read carrying the second one's stamp: TTFT one gap high (the limit the reader
    thread removes). Read by the connection's own thread, each segment is taken off the socket
    as it lands, so the first token keeps its own stamp."""
    server = StallServer(next_token_s=0.15)
    try:
        async with make_client(1, TIMEOUTS, off_loop=off_loop) as client:
            ttft, truth, stall_end = await _probe_through_a_stall(server, client)
    finally:
        server.close()
    assert stall_end > truth + 150  # both tokens came while the loop could not read
    if off_loop:
        assert truth - 1 < ttft < truth + 75
    else:
        assert truth + 140 < ttft < stall_end


async def test_a_user_stamp_would_include_the_stall() -> None:
    """What the kernel stamps fix: httpx's own backend is stamped when the loop gets to read."""
    server = StallServer()
    try:
        async with httpx.AsyncClient() as client:
            ttft, _truth, stall_end = await _probe_through_a_stall(server, client)
    finally:
        server.close()
    assert ttft >= stall_end


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose accept queue is full: the kernel drops new SYNs, so a connect hangs."""
    with socket.socket() as listener, socket.socket() as filler:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        filler.connect(listener.getsockname())
        yield listener.getsockname()[1]


async def test_connect_timeout_and_read_timeout_keep_httpx_exceptions(
    unanswered_port: int, fake_provider: object
) -> None:
    from fake_provider import Script

    async with make_client(1, Timeouts(connect_s=0.2)) as client:
        with pytest.raises(httpx.ConnectTimeout):
            await client.get(f"http://127.0.0.1:{unanswered_port}/")
    fake_provider.script(default=Script(fault="hang"))  # type: ignore[attr-defined]
    async with httpx.AsyncClient(timeout=httpx.Timeout(5, read=0.2)) as client:
        netclock.use_kernel_clock(client)
        with pytest.raises(httpx.ReadTimeout):
            await client.post(fake_provider.base_url + "/v1/chat/completions", json={})  # type: ignore[attr-defined]


async def test_an_address_that_never_answers_does_not_hold_up_the_next(unanswered_port: int) -> None:
    with socket.create_server(("127.0.0.1", 0)) as good:
        stuck = (socket.AF_INET, socket.SOCK_STREAM, 0, ("127.0.0.1", unanswered_port))
        fine = (socket.AF_INET, socket.SOCK_STREAM, 0, good.getsockname())
        with anyio.fail_after(5):  # the stuck address alone would hang until the connect timeout
            sock = await connect.connect_first([stuck, fine], None)
        with sock:
            assert sock.getpeername() == good.getsockname()


def test_realtime_stamps_land_on_the_perf_counter_timeline() -> None:
    before = time.perf_counter_ns()
    converted = netclock.realtime_to_perf_ns(time.time_ns())
    after = time.perf_counter_ns()
    assert before - 1_000_000 < converted < after + 1_000_000


async def test_a_request_leaves_in_one_send(fake_provider: object, monkeypatch: pytest.MonkeyPatch) -> None:
    """Headers and body in one send(): no scheduling gap between them lands inside TTFT."""
    sends: list[bytes] = []
    original = netclock.StampedStream._send

    async def counting(self: netclock.StampedStream, buffer: bytes) -> None:
        sends.append(bytes(buffer))
        await original(self, buffer)

    monkeypatch.setattr(netclock.StampedStream, "_send", counting)
    target = Target(name="t", provider="openai", model="m", protocol="openai",
                    base_url=fake_provider.base_url + "/v1")  # type: ignore[attr-defined]
    async with make_client(1, TIMEOUTS) as client:
        for _ in range(2):  # a new connection, then a pooled one
            assert (await probe_once(client, target, "k", TIMEOUTS)).ok
    assert len(sends) == 2 and all(b'"stream": true' in s or b'"stream":true' in s for s in sends)
