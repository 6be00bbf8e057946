"""Reading a probe's socket off the event loop: a thread blocked in recvmsg takes each segment
off the socket as it lands, so the kernel's receive stamp stays that segment's own however late
the loop is.

Why: TCP merges segments that queue before a read into one read carrying the newest stamp
(probe/netclock.py's limit). When the probe's loop read more than one inter-token gap late (the
TUI rendering on the other thread, 50 streams on one loop, the app starting) the first token's
segment had merged with the next one and TTFT read a whole gap high. A thread blocked in
recvmsg is woken by the kernel as the segment arrives, and the system call dequeues it before
the thread needs the GIL again: what waits for the loop is bytes already stamped, one chunk per
segment. The thread then needs the GIL only for a moment (a few µs a segment) before it blocks
again, so a merge now takes a GIL wait longer than a gap (a switch interval is 1-5 ms).

One thread per connection, alive as long as the connection and blocked in the kernel all that
time (no CPU while idle). It also answers the pool's idle check without a system call: an idle
connection the server closed has its end-of-stream already read.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections import deque

from llmscope_tui.probe.connect import wait_readable

__all__ = ["SocketReader", "peek_readable", "running_asyncio_loop"]

#: a read's size: more than any probe response's segment, as httpcore's own reads
_READ = 65536

Chunk = tuple[bytes, list[tuple[int, int, bytes]]]


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class SocketReader:
    """A daemon thread reading a connected, blocking socket with recvmsg into a queue the event
    loop takes chunks from (take/wait). The socket's writes must not block (send with
    MSG_DONTWAIT): the file is in blocking mode for this thread's sake.

    The thread reads while armed: from the connection's start, and from each request's write
    (arm) until the probe has its first token (disarm). Then it parks after the read it is in,
    and the loop reads the rest of the response itself: a token's stamp matters for TTFT only
    while it is the first (a later merge moves no metric: ITL is a mean over the stream), and each
    thread wake-up costs the loop a GIL hand-over. The loop
    reads the socket only while the thread is parked and disarmed, both decided under one lock,
    so the two never read at once and the bytes stay in order.

    close() stops the thread; the socket is closed by whichever of the two finishes last, so its
    descriptor is never reused under a read still blocked on it."""

    def __init__(self, sock: socket.socket, anc_size: int, loop: asyncio.AbstractEventLoop) -> None:
        self._sock = sock
        self._anc_size = anc_size
        self._loop = loop
        # reentrant: close() may run as a finalizer in a collection that starts on this very
        # thread while it holds the lock (a stream dropped in a reference cycle)
        self._lock = threading.RLock()
        self._wakeup = threading.Condition(self._lock)
        self._chunks: deque[Chunk] = deque()
        self._failure: OSError | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._alive = True
        self._closing = False
        self._armed = True
        self._parked = False
        sock.setblocking(True)
        self._thread = threading.Thread(target=self._run, name="llmscope-read", daemon=True)
        self._thread.start()

    # -- the thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        sock, anc_size = self._sock, self._anc_size
        try:
            while self._resume():
                try:
                    data, ancdata, _flags, _addr = sock.recvmsg(_READ, anc_size)
                except OSError as exc:  # reset, or closed under us (close() shuts it down first)
                    self._push(None, exc)
                    return
                self._push((data, ancdata), None)
                if not data:
                    return
        finally:
            with self._lock:
                self._alive = False
                close = self._closing
            if close:
                sock.close()

    def _resume(self) -> bool:
        """Wait while disarmed (parked: the loop may read the socket meanwhile); False to stop."""
        with self._wakeup:
            if not self._armed and not self._closing:
                self._parked = True
                waiter, self._waiter = self._waiter, None
                self._wake_loop(waiter)  # a loop waiting on this thread now reads the socket itself
                while not self._armed and not self._closing:
                    self._wakeup.wait()
            self._parked = False
            return not self._closing

    def _push(self, chunk: Chunk | None, failure: OSError | None) -> None:
        with self._lock:
            if chunk is not None:
                self._chunks.append(chunk)
            else:
                self._failure = failure
            waiter, self._waiter = self._waiter, None
        self._wake_loop(waiter)

    def _wake_loop(self, waiter: asyncio.Future[None] | None) -> None:
        """Wake the loop if it is waiting on this stream (waiter)."""
        if waiter is not None:
            try:
                self._loop.call_soon_threadsafe(_wake, waiter)
            except RuntimeError:  # the loop is closed: nobody will read
                pass

    # -- the loop's side ----------------------------------------------------------------------

    def arm(self) -> None:
        """A request is being written: read its response's first bytes as they land."""
        with self._wakeup:
            if not self._armed:
                self._armed = True
                self._wakeup.notify()

    def disarm(self) -> None:
        """The first token is in: the thread parks after the read it is in."""
        with self._lock:
            self._armed = False

    def _loop_reads(self) -> bool:
        return self._parked and not self._armed and not self._chunks and self._failure is None

    def take(self, max_bytes: int) -> Chunk | None:
        """The oldest chunk read (at most max_bytes of it; the rest stays first, with the same
        stamp), b"" at the end of the stream and from then on, None when nothing is there yet.
        While the thread is parked, a read of the socket itself without waiting. Raises what a
        read raised."""
        with self._lock:
            if self._chunks:
                data, ancdata = self._chunks[0]
                if not data:
                    return data, ancdata  # end of stream: stays, so every later read sees it
                if len(data) > max_bytes:
                    self._chunks[0] = (data[max_bytes:], ancdata)
                    return data[:max_bytes], ancdata
                return self._chunks.popleft()
            if self._failure is not None:
                raise self._failure
            if self._loop_reads():
                try:
                    data, ancdata, _flags, _addr = self._sock.recvmsg(max_bytes, self._anc_size, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    return None
                return data, ancdata
            return None

    async def wait(self) -> None:
        """Until there is something to take: read by the thread, or on the socket while the
        thread is parked."""
        with self._lock:
            if self._chunks or self._failure is not None:
                return
            if self._loop_reads():
                waiter = None
            else:
                waiter = self._waiter = self._loop.create_future()
        if waiter is None:  # parked until this loop arms it, which it cannot do while here
            await wait_readable(self._sock)
            return
        try:
            await waiter
        finally:
            with self._lock:
                if self._waiter is waiter:
                    self._waiter = None

    def readable(self) -> bool:
        """httpcore's idle check: something arrived on an idle connection (the server closed it,
        or sent what it should not have)."""
        with self._lock:
            if self._chunks or self._failure is not None:
                return True
            if not self._loop_reads():
                return False  # the thread is reading: it would have queued it
            return peek_readable(self._sock)

    def close(self) -> None:
        """Stop the thread: wake it when parked, shut the socket down under its blocked read
        (which then returns the end of the stream), or, when it is already gone, close now."""
        with self._wakeup:
            self._closing = True
            if self._alive:
                if self._parked:
                    self._wakeup.notify()
                    return
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:  # already reset: the read has returned or is about to
                    pass
                return
        self._sock.close()

    @property
    def thread(self) -> threading.Thread:
        return self._thread


def running_asyncio_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop this task runs on, or None (anyio on trio: the loop reads the socket)."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def peek_readable(sock: socket.socket) -> bool:
    """httpcore's idle-connection check: readable means the server closed or sent junk. httpcore
    asks it of every idle pooled connection each time a request comes or goes, so it is one
    non-blocking peek (one system call, nothing allocated) rather than a poll object."""
    if sock.fileno() < 0:
        return True
    try:
        sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return False
    except OSError:
        return True  # a reset connection: as poll() says, readable (the read will fail)
    return True
