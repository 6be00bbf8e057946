"""Stamps the event loop cannot delay: the kernel's send time of a request and receive time of
its response's bytes.

A probe stamped with perf_counter_ns when its task got round to reading, so a render burst, a
collector pause or a busy loop moved TTFT by however long the loop was late. On Linux the kernel
stamps every received segment (SO_TIMESTAMPNS, CLOCK_REALTIME) and hands the stamp of the newest
segment a read consumed to recvmsg as ancillary data. This module is an httpcore network backend
that reads with recvmsg, converts that stamp to the perf_counter_ns timeline of t0 (DESIGN 4)
and keeps it on the stream, where the probe finds it through
``response.extensions["network_stream"]`` right after each raw chunk. TLS is done over it
(probe/tlsstream.py, ssl.MemoryBIO), so decrypted bytes carry the stamp of the socket read that
completed their record.

t0 the same way: where the kernel takes SO_TIMESTAMPING, every send() is stamped as it leaves for
the device (probe/kstamp.py), and the stream keeps, as request_sent_ns, the stamp of the first
send() that carried a byte of the current request (a request leaves in one send(), so that is its
last byte's segment, the same segment for any request under one MSS; over TLS, its records).
The stamp waits on the socket's error queue, read without blocking when the stream next finds
nothing to read and when the response's first bytes arrive: by then it is there. A socket
whose stamps do not come (three requests in a row) stops asking, and its probes take t0 in
user space as before.

Limit: TCP merges segments queued before a read into one read carrying the newest stamp, so the
stamp is exact only while the reads keep up with the segments. Read on the loop, that took the
loop reading within one inter-token gap; so each connection is read by a thread of its own
(probe/offloop.py), blocked in recvmsg, which takes each segment off the socket as it lands.
Elsewhere (not Linux, setsockopt refused, an httpx without the pool hook) nothing
changes: the probe stamps in user space as before, and ``clock_in_use()`` says "user"
("kernel-rx" when only the sends are stamped in user space).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import socket
import ssl
import sys
import weakref
from collections.abc import Iterable
from typing import Any, Final

import anyio
import anyio.lowlevel
import httpcore
import httpx

from llmscope_tui.probe.connect import connect_first, wait_readable, wait_writable
from llmscope_tui.probe.kstamp import (
    RX_ANC_SIZE,
    SO_TIMESTAMPNS,
    disable_tx_stamps,
    enable_tx_stamps,
    keep_rx_stamping_on,
    read_tx_stamps,
    realtime_to_perf_ns,
    stamp_from_ancdata,
    tx_stamps_possible,
)
from llmscope_tui.probe.offloop import Chunk, SocketReader, peek_readable, running_asyncio_loop
from llmscope_tui.probe.tlsstream import TLS_READ, StampedTLSStream, mapped

__all__ = [
    "SO_TIMESTAMPNS",
    "StampedStream",
    "StampedTLSStream",
    "StampingBackend",
    "arrival_ns",
    "clock_in_use",
    "first_token_read",
    "read_on_loop",
    "realtime_to_perf_ns",
    "sent_ns",
    "use_kernel_clock",
]

_ANC_SIZE = RX_ANC_SIZE
#: writes wait for the next read up to this size: a request leaves in one send() (see _post)
_COALESCE_BYTES = 65536
#: OPT_ID's byte offsets are 32-bit and wrap
_U32: Final = 0xFFFFFFFF
#: requests in a row whose send stamp did not come before a socket stops asking for them
_TX_MISSES = 3

_notify_closing = getattr(anyio, "notify_closing", None)


@functools.cache
def clock_in_use() -> str:
    """"kernel" when requests' sends (t0 on a pooled connection) and response arrivals are both
    stamped by the kernel, "kernel-rx" when only arrivals are, "user" when both are the probe's
    own perf_counter_ns reads (for the start event and the status line)."""
    if not sys.platform.startswith("linux") or not _ANC_SIZE:
        return "user"
    if "_network_backend" not in vars(httpcore.AsyncConnectionPool()):
        return "user"  # the hook use_kernel_clock sets is gone in this httpcore
    if not keep_rx_stamping_on():
        return "user"
    return "kernel" if tx_stamps_possible() else "kernel-rx"


def use_kernel_clock(client: httpx.AsyncClient, off_loop: bool = True) -> str:
    """Make new connections of client's default transport read through StampingBackend; say
    which clock its probes get. httpx has no public way to pass a network backend, so this
    sets the one attribute httpcore's pool opens every connection with; proxy mounts keep
    httpx's own backend (and user stamps)."""
    pool = getattr(getattr(client, "_transport", None), "_pool", None)
    clock = clock_in_use()
    if clock == "user" or type(pool) is not httpcore.AsyncConnectionPool:
        return "user"
    pool._network_backend = StampingBackend(off_loop)
    return clock


def read_on_loop(client: httpx.AsyncClient, on_loop: bool) -> bool:
    """Have client's connections read their next responses on the event loop (on_loop) or on
    their reader threads again; False when client has no StampingBackend (nothing to switch)."""
    backend = getattr(getattr(getattr(client, "_transport", None), "_pool", None), "_network_backend", None)
    if not isinstance(backend, StampingBackend):
        return False
    backend.off_loop = not on_loop
    return True


def arrival_ns(network_stream: object) -> int | None:
    """The kernel's stamp (perf_counter_ns timeline) of the latest socket read that delivered
    bytes on network_stream, or None when that stream has no kernel stamps."""
    return getattr(network_stream, "last_arrival_ns", None)


def sent_ns(network_stream: object) -> int | None:
    """The kernel's stamp (perf_counter_ns timeline) of the send() that carried the current
    request's first byte on network_stream, or None (no stamp: t0 stays in user space). Read it
    once the response has begun, while the connection is still this request's."""
    return getattr(network_stream, "request_sent_ns", None)


def first_token_read(network_stream: object) -> None:
    """Tell network_stream's reader thread the first token is in (see probe/offloop.py)."""
    done = getattr(network_stream, "first_token_read", None)
    if done is not None:
        done()


class StampedStream(httpcore.AsyncNetworkStream):
    """A non-blocking TCP socket read with recvmsg; each read that delivers bytes records the
    kernel's arrival stamp in last_arrival_ns. With tx (SO_TIMESTAMPING on, see kstamp), the
    send stamp of the current request's first byte lands in request_sent_ns."""

    def __init__(
        self,
        sock: socket.socket,
        kernel: bool,
        tx: bool = False,
        reader_loop: asyncio.AbstractEventLoop | None = None,
        backend: StampingBackend | None = None,
    ) -> None:
        self._sock = sock
        self._kernel = kernel
        self._outbox = bytearray()
        self.last_arrival_ns: int | None = None
        self.request_sent_ns: int | None = None
        self._tx = tx
        self._tx_sent = 0  # offset of the next byte to send (OPT_ID counts from enabling)
        self._tx_seen = 0  # offset after the last byte whose stamp was read
        self._req_start: int | None = None  # offset of the current request's first byte
        self._req_open = False  # bytes of a request written, its response not begun
        self._tx_misses = 0
        self._backend = backend  # its off_loop says whether the reader thread is wanted now
        self._reader: SocketReader | None = None
        if reader_loop is not None and kernel:
            self._reader = SocketReader(sock, _ANC_SIZE, reader_loop)
            weakref.finalize(self, self._reader.close)  # a stream dropped unclosed ends its thread

    # -- raw I/O (OSError / TimeoutError out; callers map them) -----------------------------

    async def _recv(self, max_bytes: int) -> bytes:
        await anyio.lowlevel.checkpoint_if_cancelled()
        if self._outbox:
            with contextlib.suppress(OSError):  # as httpcore does: a server that stopped
                await self._flush()  # reading mid-request may still have answered
        waited = False
        while (chunk := self._read_now(max_bytes)) is None:
            if self._tx and self._tx_seen != self._tx_sent:
                self._take_tx()  # also what ends the wake-ups a queued stamp causes (POLLERR)
            if self._reader is not None:
                await self._reader.wait()
            else:
                await wait_readable(self._sock)
            waited = True
        data, ancdata = chunk
        if data:
            if self._req_open:
                self._response_began()
            self.last_arrival_ns = stamp_from_ancdata(ancdata) if self._kernel else None
        if not waited:  # a stream that always has data must still let other tasks run
            await anyio.lowlevel.cancel_shielded_checkpoint()
        return data

    def _read_now(self, max_bytes: int) -> Chunk | None:
        """What has arrived, without waiting: from the reader thread's queue, else the socket."""
        if self._reader is not None:
            return self._reader.take(max_bytes)
        try:
            if self._kernel:
                data, ancdata, _flags, _addr = self._sock.recvmsg(max_bytes, _ANC_SIZE)
                return data, ancdata
            return self._sock.recv(max_bytes), []
        except BlockingIOError:
            return None

    def _take_tx(self) -> None:
        """Read the send stamps queued so far; the first one at or past the current request's
        first byte is its t0."""
        for offset, stamp in read_tx_stamps(self._sock, (self._tx_sent - 1) & _U32):
            self._tx_seen = (offset + 1) & _U32
            start = self._req_start
            if self.request_sent_ns is None and start is not None and (offset - start) & _U32 < 1 << 31:
                self.request_sent_ns = stamp

    def _response_began(self) -> None:
        self._req_open = False
        if self._tx and self.request_sent_ns is None:
            self._take_tx()
            if self.request_sent_ns is None:
                self._tx_misses += 1
                if self._tx_misses >= _TX_MISSES:  # this socket's stamps do not come: stop asking
                    self._tx = False
                    disable_tx_stamps(self._sock)
                    read_tx_stamps(self._sock)  # a late one left queued would wake every wait
            else:
                self._tx_misses = 0

    async def _post(self, data: bytes, timeout: float | None) -> None:
        """Queue bytes for the next read, which sends them first (the first bytes after a
        response began start a new request, see request_sent_ns). httpcore writes a request's
        headers and body in two calls; sent apart, the first send() on loopback wakes the server
        and the sender can lose the CPU before the second, which then lands inside TTFT (a
        0.6 ms median and 10 ms p99 request leg on a loaded machine, bench/bench_clock.py). HTTP/1.1
        always reads after a request, so nothing queued is left behind."""
        if self._reader is not None and (self._backend is None or self._backend.off_loop):
            self._reader.arm()  # this request's response: read as it lands until its first token
        if self._tx and not self._req_open:
            self._req_open, self.request_sent_ns = True, None
            self._req_start = (self._tx_sent + len(self._outbox)) & _U32
        self._outbox += data
        if len(self._outbox) >= _COALESCE_BYTES:  # a large upload streams as it comes
            with mapped(httpcore.WriteTimeout, httpcore.WriteError), anyio.fail_after(timeout):
                await self._flush()

    async def _flush(self) -> None:
        data, self._outbox = bytes(self._outbox), bytearray()
        await self._send(data)

    async def _send(self, buffer: bytes) -> None:
        """No yield to the loop unless the socket is full."""
        await anyio.lowlevel.checkpoint_if_cancelled()
        view = memoryview(buffer)
        while view:
            try:
                sent = self._sock.send(view, socket.MSG_DONTWAIT)  # blocking file with a reader
            except BlockingIOError:
                await wait_writable(self._sock)
                continue
            view = view[sent:]
            self._tx_sent = (self._tx_sent + sent) & _U32

    def first_token_read(self) -> None:
        """The probe has its first token's stamp: the rest of this response may be read on the
        loop (a later segment's stamp moves no metric)."""
        if self._reader is not None:
            self._reader.disarm()

    # -- httpcore's interface -----------------------------------------------------------------

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with mapped(httpcore.ReadTimeout, httpcore.ReadError), anyio.fail_after(timeout):
            return await self._recv(max_bytes)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            await self._post(buffer, timeout)

    async def aclose(self) -> None:
        self._outbox.clear()  # a request given up on (cancelled) is not sent
        if self._sock.fileno() >= 0:
            if _notify_closing is not None:
                _notify_closing(self._sock)
            if self._reader is not None:
                self._reader.close()  # its thread closes the socket once its read has returned
            else:
                self._sock.close()
        await anyio.lowlevel.cancel_shielded_checkpoint()  # closing in a cancelled task is cleanup

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        tls = ssl_context.wrap_bio(incoming, outgoing, server_side=False, server_hostname=server_hostname)
        try:
            with mapped(httpcore.ConnectTimeout, httpcore.ConnectError), anyio.fail_after(timeout):
                while True:
                    try:
                        tls.do_handshake()
                        break
                    except ssl.SSLWantReadError:
                        await self._send(outgoing.read())
                        data = await self._recv(TLS_READ)
                        if not data:
                            raise ConnectionResetError("the server closed the connection during the TLS handshake")
                        incoming.write(data)
                if outgoing.pending:
                    await self._send(outgoing.read())
        except BaseException:
            await self.aclose()
            raise
        return StampedTLSStream(self, tls, incoming, outgoing)

    def get_extra_info(self, info: str) -> Any:
        if info == "socket":
            return self._sock
        if info == "is_readable":
            return self._reader.readable() if self._reader is not None else peek_readable(self._sock)
        with contextlib.suppress(OSError):
            if info == "client_addr":
                return self._sock.getsockname()
            if info == "server_addr":
                return self._sock.getpeername()
        return None


class StampingBackend(httpcore.AsyncNetworkBackend):
    """Opens the sockets StampedStream reads: connect with a staggered attempt per address
    (RFC 8305, as anyio.connect_tcp does), TCP_NODELAY, SO_TIMESTAMPNS and, where the kernel
    takes it, SO_TIMESTAMPING's send stamps on (set once connected: OPT_ID needs a connection).
    With off_loop, each connection's bytes are read by a thread of its own (probe/offloop.py),
    so a late loop does not merge segments and their stamps; read_on_loop() can turn that off
    and on again for the requests that follow (the threads stay, parked)."""

    def __init__(self, off_loop: bool = True) -> None:
        self.off_loop = off_loop

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        with mapped(httpcore.ConnectTimeout, httpcore.ConnectError), anyio.fail_after(timeout):
            infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            sock = await connect_first([info[:3] + info[4:] for info in infos], local_address)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for option in socket_options or ():  # httpcore's SOCKET_OPTION tuples
                sock.setsockopt(*option)
        except OSError as exc:
            sock.close()
            raise httpcore.ConnectError(str(exc)) from exc
        kernel = True
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:
            kernel = False  # this socket's probes stamp in user space
        loop = running_asyncio_loop() if self.off_loop and kernel else None
        return StampedStream(sock, kernel, tx=kernel and enable_tx_stamps(sock), reader_loop=loop, backend=self)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return await httpcore.AnyIOBackend().connect_unix_socket(path, timeout, socket_options)

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)

