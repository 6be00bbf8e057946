"""The reader thread of a probe connection (probe/offloop.py): one chunk per segment with its own
stamp, in order; the end of the stream, a reset and a close reach the loop; the thread never
outlives its connection; the pool's idle check sees a server's close without a system call."""

from __future__ import annotations

import asyncio
import socket
import struct
import time
from collections.abc import Iterator

import anyio
import pytest

from llmscope_tui.probe import netclock
from llmscope_tui.probe.kstamp import RX_ANC_SIZE, SO_TIMESTAMPNS, stamp_from_ancdata
from llmscope_tui.probe.offloop import SocketReader

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(netclock.clock_in_use() == "user", reason="kernel receive stamps are Linux-only"),
]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the reader wakes an asyncio loop


@pytest.fixture
def pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    """A connected loopback pair: (the probe's end, stamped; the server's end)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    client.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    yield client, server
    client.close()
    server.close()


async def _take(reader: SocketReader, max_bytes: int = 65536) -> tuple[bytes, int | None]:
    with anyio.fail_after(10):
        while (chunk := reader.take(max_bytes)) is None:
            await reader.wait()
    data, ancdata = chunk
    return data, stamp_from_ancdata(ancdata)


async def test_segments_that_land_while_the_loop_sleeps_are_read_apart(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    reader = SocketReader(client, RX_ANC_SIZE, asyncio.get_running_loop())
    try:
        server.sendall(b"first")
        time.sleep(0.2)  # noqa: ASYNC251 - the loop is late on purpose; the thread reads meanwhile
        server.sendall(b"second")
        time.sleep(0.2)  # noqa: ASYNC251
        (one, stamp_one), (two, stamp_two) = await _take(reader), await _take(reader)
    finally:
        reader.close()
    assert (one, two) == (b"first", b"second")  # read on the loop now, they would be one read
    assert stamp_one is not None and stamp_two is not None
    assert stamp_two - stamp_one > 150_000_000  # each its own arrival, 200 ms apart


async def test_a_chunk_larger_than_the_read_is_split_in_order_with_its_stamp(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = pair
    reader = SocketReader(client, RX_ANC_SIZE, asyncio.get_running_loop())
    try:
        server.sendall(b"abcdefgh")
        await _take(reader, 0)  # until it has arrived (a zero-byte piece of it)
        pieces = [reader.take(3) for _ in range(3)]
    finally:
        reader.close()
    assert [data for data, _ in pieces] == [b"abc", b"def", b"gh"]  # type: ignore[misc]
    assert len({repr(ancdata) for _, ancdata in pieces}) == 1  # type: ignore[misc]  # one segment's stamp


async def test_the_end_of_the_stream_is_read_again_and_again_and_the_thread_ends(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    client, server = pair
    reader = SocketReader(client, RX_ANC_SIZE, asyncio.get_running_loop())
    server.sendall(b"bye")
    server.close()
    assert (await _take(reader))[0] == b"bye"
    assert (await _take(reader))[0] == b""
    assert (await _take(reader))[0] == b""
    reader.thread.join(10)
    assert not reader.thread.is_alive()
    assert reader.readable()  # the pool's idle check: the server closed it
    reader.close()
    assert client.fileno() == -1


async def test_a_reset_reaches_the_loop_as_an_error(pair: tuple[socket.socket, socket.socket]) -> None:
    client, server = pair
    reader = SocketReader(client, RX_ANC_SIZE, asyncio.get_running_loop())
    server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    server.close()  # RST
    with pytest.raises(ConnectionResetError):
        await _take(reader)
    with pytest.raises(ConnectionResetError):  # and on every later read
        await _take(reader)
    reader.close()


async def test_closing_wakes_the_blocked_read_and_closes_the_socket(pair: tuple[socket.socket, socket.socket]) -> None:
    client, _server = pair
    reader = SocketReader(client, RX_ANC_SIZE, asyncio.get_running_loop())
    assert not reader.readable()  # idle, nothing from the server
    time.sleep(0.05)  # noqa: ASYNC251 - let the thread block in recvmsg
    reader.close()
    reader.thread.join(10)
    assert not reader.thread.is_alive()
    assert client.fileno() == -1  # closed by the thread once its read had returned


async def test_a_pooled_connection_the_server_closed_is_not_reused(fake_provider: object) -> None:
    """httpcore asks each idle connection whether it is readable; with a reader thread the
    answer is the end of stream it has already read."""
    from llmscope_tui.probe.scheduler import make_client
    from llmscope_tui.probe.stream import Timeouts

    url = fake_provider.base_url + "/healthz"  # type: ignore[attr-defined]
    async with make_client(1, Timeouts()) as client:
        first = await client.get(url)
        pool = client._transport._pool  # type: ignore[attr-defined]
        (conn,) = pool.connections
        stream = conn._connection._network_stream
        assert isinstance(stream, netclock.StampedStream)
        reader = stream._reader
        assert reader is not None
        reader._sock.shutdown(socket.SHUT_WR)  # stand in for the server closing the idle connection
        with anyio.fail_after(10):
            while not stream.get_extra_info("is_readable"):
                await anyio.sleep(0.01)
        second = await client.get(url)
    assert first.status_code == second.status_code
    reader.thread.join(10)
    assert not reader.thread.is_alive()  # its connection was dropped from the pool and closed


def test_a_stream_dropped_unclosed_ends_its_thread() -> None:
    async def main() -> SocketReader:
        with socket.create_server(("127.0.0.1", 0)) as listener:
            sock = socket.create_connection(listener.getsockname())
            peer, _ = listener.accept()
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        stream = netclock.StampedStream(sock, kernel=True, reader_loop=asyncio.get_running_loop())
        reader = stream._reader
        assert reader is not None
        del stream  # never closed: the finalizer stops the thread
        peer.close()
        return reader

    reader = asyncio.run(main())
    reader.thread.join(10)
    assert not reader.thread.is_alive()


async def test_requests_and_responses_keep_working_through_the_reader(fake_provider: object) -> None:
    """Many requests over a few pooled connections, each response whole and in order."""
    from llmscope_tui.probe.scheduler import make_client
    from llmscope_tui.probe.stream import Timeouts

    url = fake_provider.base_url + "/healthz"  # type: ignore[attr-defined]
    async with make_client(4, Timeouts()) as client:
        results = []

        async def get() -> None:
            results.append((await client.get(url)).status_code)

        async with anyio.create_task_group() as tg:
            for _ in range(40):
                tg.start_soon(get)
        assert all(isinstance(c._connection._network_stream, netclock.StampedStream)  # type: ignore[attr-defined]
                   for c in client._transport._pool.connections)  # type: ignore[attr-defined]
    assert len(results) == 40 and len(set(results)) == 1


async def test_every_response_completes_as_the_thread_hands_over_to_the_loop(fake_provider: object) -> None:
    """The thread reads each response up to its first token, then parks and the loop reads the
    rest. A loop already waiting on the thread when it parks must be woken to read the socket
    itself: before that, about 1 probe in 80 hung until its total timeout."""
    from fake_provider import Script
    from llmscope_tui.model import Target
    from llmscope_tui.probe.scheduler import make_client
    from llmscope_tui.probe.stream import Timeouts, probe_once

    fake_provider.script(default=Script(first_token_delay_s=0.005, token_gap_s=0.002))  # type: ignore[attr-defined]
    target = Target(name="t", provider="openai", model="m", protocol="openai",
                    base_url=fake_provider.base_url + "/v1")  # type: ignore[attr-defined]
    timeouts = Timeouts(connect_s=5, first_token_s=5, total_s=5)
    samples = []
    async with make_client(4, timeouts) as client:

        async def probes() -> None:
            for _ in range(60):
                samples.append(await probe_once(client, target, "k", timeouts))

        with anyio.fail_after(60):
            async with anyio.create_task_group() as tg:
                for _ in range(4):
                    tg.start_soon(probes)
    assert [s.error_message for s in samples if not s.ok] == []
    assert len(samples) == 240
