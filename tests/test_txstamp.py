"""Kernel send stamps as t0 (probe/kstamp.py, probe/netclock.py): the error queue read on a real
loopback connection, t0 on a pooled connection taken when the request really left, and a clean
fall back to the user-space t0 where the kernel refuses or its stamps do not come."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from llmscope_tui.model import Target
from llmscope_tui.probe import kstamp, netclock, offloop, stream
from llmscope_tui.probe.scheduler import make_client
from llmscope_tui.probe.stream import Timeouts, probe_once
from raw_http import read_request

pytestmark = pytest.mark.skipif(netclock.clock_in_use() != "kernel", reason="kernel send stamps: Linux x86_64/aarch64")

TIMEOUTS = Timeouts(connect_s=10, first_token_s=20, total_s=30)
STALL_S = 0.2


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    assert kstamp.keep_rx_stamping_on()  # as the probe's clock_in_use() does before any connection
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        with client, server:
            yield client, server


def _stamps(sock: socket.socket, count: int) -> list[tuple[int, int]]:
    """The first ``count`` send stamps; the kernel queues them as the segments leave, which on
    loopback is during send() itself, so the wait is only a guard."""
    got: list[tuple[int, int]] = []
    deadline = time.monotonic() + 10
    while len(got) < count and time.monotonic() < deadline:
        got += kstamp.read_tx_stamps(sock)
        if len(got) < count:
            time.sleep(0.001)
    return got


def test_the_error_queue_gives_each_send_its_last_byte_and_its_time(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = pair
    assert kstamp.enable_tx_stamps(client)
    before = time.perf_counter_ns()
    client.sendall(b"x" * 100)
    client.sendall(b"y" * 50)
    stamps = _stamps(client, 2)
    after = time.perf_counter_ns()
    assert [offset for offset, _ in stamps] == [99, 149]  # OPT_ID: offset of each send's last byte
    assert before <= stamps[0][1] <= stamps[1][1] <= after  # the perf_counter_ns timeline
    assert kstamp.read_tx_stamps(client) == []  # drained, and reading an empty queue does not block
    server.settimeout(5)
    assert len(server.recv(1000)) > 0


def test_receive_stamps_still_read_with_send_stamps_on(pair: tuple[socket.socket, socket.socket]) -> None:
    """With SO_TIMESTAMPING on, the kernel adds its stamp to every read as well: the read's
    ancillary room holds both, and the arrival is still the kernel's."""
    client, server = pair
    client.setsockopt(socket.SOL_SOCKET, kstamp.SO_TIMESTAMPNS, 1)
    assert kstamp.enable_tx_stamps(client)
    before = time.perf_counter_ns()
    server.sendall(b"hello")
    client.settimeout(5)
    data, ancdata, flags, _ = client.recvmsg(100, kstamp.RX_ANC_SIZE)
    assert data == b"hello" and not flags & socket.MSG_CTRUNC
    stamp = kstamp.stamp_from_ancdata(ancdata)
    assert stamp is not None and before <= stamp <= time.perf_counter_ns()


def _target(fake: Any) -> Target:
    return Target(name="t", provider="openai", model="m", protocol="openai", base_url=fake.base_url + "/v1")


@pytest.fixture
def traces(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Each probe's _Trace, as _build_sample gets it."""
    seen: list[Any] = []
    original = stream._build_sample

    def spy(target: Any, trace: Any, *rest: Any) -> Any:
        seen.append(trace)
        return original(target, trace, *rest)

    monkeypatch.setattr(stream, "_build_sample", spy)
    return seen


@pytest.mark.anyio
async def test_a_pooled_probe_takes_t0_when_the_kernel_sent_the_request(
    fake_provider: Any, traces: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop blocked between the headers being written (the user-space t0) and the request's
    send(), as a render burst does: the kernel's t0 is after the stall, before the server had it."""
    original = stream._Trace.__call__

    async def stalling(self: Any, name: str, info: dict[str, Any]) -> None:
        await original(self, name, info)
        if name.endswith("send_request_body.complete") and self.connect_start_ns is None:
            time.sleep(STALL_S)  # noqa: ASYNC251 - blocking the loop is the point

    monkeypatch.setattr(stream._Trace, "__call__", stalling)
    async with make_client(1, TIMEOUTS) as client:
        first = await probe_once(client, _target(fake_provider), "k", TIMEOUTS)
        pooled = await probe_once(client, _target(fake_provider), "k", TIMEOUTS)
    assert first.ok and pooled.ok, (first.error_message, pooled.error_message)
    new, reused = traces
    assert not new.kernel_t0 and new.t0_ns == new.connect_start_ns  # DESIGN 4: connect start
    request = fake_provider.requests[1]
    assert request.conn_request_index == 1
    assert reused.kernel_t0 and reused.t0_ns == reused.sent_ns
    assert reused.headers_start_ns + STALL_S * 1e9 <= reused.sent_ns <= request.t_headers_ns
    assert pooled.connect_ms == 0.0


@pytest.mark.anyio
async def test_t0_falls_back_to_user_space_when_the_kernel_refuses(
    fake_provider: Any, traces: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kstamp, "SO_TIMESTAMPING", 0x7FFF)  # an option no kernel has: setsockopt fails
    async with make_client(1, TIMEOUTS) as client:
        samples = [await probe_once(client, _target(fake_provider), "k", TIMEOUTS) for _ in range(2)]
    assert all(s.ok and s.ttft_ms is not None and s.ttft_ms > 0 for s in samples)
    reused = traces[1]
    assert reused.sent_ns is None and not reused.kernel_t0
    assert reused.t0_ns == reused.headers_start_ns


@pytest.mark.anyio
async def test_a_socket_whose_send_stamps_do_not_come_stops_asking(
    fake_provider: Any, traces: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = kstamp.read_tx_stamps
    streams: list[Any] = []

    def lost(sock: socket.socket, last: int | None = None) -> list[tuple[int, int]]:
        real(sock, last)  # read, then lost
        return []

    monkeypatch.setattr(netclock, "read_tx_stamps", lost)
    original_init = netclock.StampedStream.__init__

    def keep(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        streams.append(self)

    monkeypatch.setattr(netclock.StampedStream, "__init__", keep)
    async with make_client(1, TIMEOUTS) as client:
        samples = [await probe_once(client, _target(fake_provider), "k", TIMEOUTS) for _ in range(5)]
    assert all(s.ok for s in samples)
    assert len(streams) == 1 and not streams[0]._tx  # three misses: SO_TIMESTAMPING off again
    assert all(t.t0_ns == t.headers_start_ns for t in traces[1:])


@pytest.mark.anyio
@pytest.mark.parametrize("off_loop", [True, False], ids=["reader-thread", "loop-reads"])
async def test_a_queued_send_stamp_does_not_keep_waking_the_wait(
    fake_provider: Any, monkeypatch: pytest.MonkeyPatch, off_loop: bool
) -> None:
    """A stamp waiting on the error queue makes the socket report an error (POLLERR) to every
    readiness wait until it is read: the stream reads it before it waits, or it would spin until
    the first token."""
    from fake_provider import Script

    waits = [0]
    original = netclock.wait_readable

    async def counting(sock: socket.socket) -> None:
        waits[0] += 1
        await original(sock)

    monkeypatch.setattr(netclock, "wait_readable", counting)
    monkeypatch.setattr(offloop, "wait_readable", counting)  # the loop's reads after the first token
    fake_provider.script(default=Script(first_token_delay_s=0.15, headers_delay_s=0.05))
    async with make_client(1, TIMEOUTS, off_loop=off_loop) as client:
        for _ in range(2):  # a new connection, then a pooled one
            waits[0] = 0
            assert (await probe_once(client, _target(fake_provider), "k", TIMEOUTS)).ok
            assert waits[0] <= 20  # a wait per burst of the response, not thousands


class _TLSServer:
    """Two OpenAI streams on one TLS connection, in a thread; stamps when each request's head
    was read (after the kernel delivered it)."""

    BODY = (b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n'
            b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\ndata: [DONE]\n\n')

    def __init__(self, ctx: Any) -> None:
        import threading

        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.ctx, self.received_ns = ctx, []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with self.ctx.wrap_socket(conn, server_side=True) as tls:
            tls.settimeout(10)
            data = b""
            for _ in range(2):
                data = read_request(tls, data)
                self.received_ns.append(time.perf_counter_ns())
                tls.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n%s"
                            % (len(self.BODY), self.BODY))

    def close(self) -> None:
        self.listener.close()
        self.thread.join(10)


@pytest.mark.anyio
async def test_over_tls_t0_is_the_send_of_the_requests_records(traces: list[Any]) -> None:
    import ssl

    import httpx

    trustme = pytest.importorskip("trustme")
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    server = _TLSServer(server_ctx)
    target = Target(name="t", provider="openai", model="m", protocol="openai",
                    base_url=f"https://localhost:{server.port}/v1")
    try:
        async with httpx.AsyncClient(verify=client_ctx) as client:
            assert netclock.use_kernel_clock(client) == "kernel"
            samples = [await probe_once(client, target, "k", TIMEOUTS) for _ in range(2)]
    finally:
        server.close()
    assert all(s.ok for s in samples), [s.error_message for s in samples]
    reused = traces[1]
    assert reused.kernel_t0 and reused.headers_start_ns <= reused.sent_ns <= server.received_ns[1]
