"""The kernel's own stamps of a socket's traffic, on the perf_counter_ns timeline (Linux).

Receive: SO_TIMESTAMPNS puts the kernel's receive time of the newest segment a read consumed
into that read's ancillary data. Transmit: SO_TIMESTAMPING with TX_SOFTWARE queues, for every
send() call, the time its last byte left for the device (on loopback, the loopback driver's
transmit) on the socket's error queue, numbered by OPT_ID with the offset of that byte in the
stream, so a stamp is matched to the bytes it belongs to. Both are CLOCK_REALTIME; one mapping
(realtime_to_perf_ns) puts them on the timeline of the probe's other stamps.

Python's socket module names none of the SO_TIMESTAMPING constants: they are defined here by
number from linux/net_tstamp.h and asm-generic/socket.h, and used only on machines where those
numbers hold (TX_MACHINES); elsewhere enable_tx_stamps says no and the probe stamps its sends in
user space.
"""

from __future__ import annotations

import errno
import functools
import platform
import socket
import sys
import time

#: asm-generic/socket.h (x86, arm, arm64, riscv): SO_TIMESTAMPNS_OLD, SO_TIMESTAMPING_OLD, the
#: 64-bit-time forms on 64-bit machines. Python names SO_TIMESTAMPNS on some builds only.
SO_TIMESTAMPNS: int = getattr(socket, "SO_TIMESTAMPNS", 35)
SO_TIMESTAMPING: int = 37
#: linux/net_tstamp.h
SOF_TIMESTAMPING_TX_SOFTWARE = 1 << 1
SOF_TIMESTAMPING_SOFTWARE = 1 << 4
SOF_TIMESTAMPING_OPT_ID = 1 << 7
SOF_TIMESTAMPING_OPT_TSONLY = 1 << 11
#: a software stamp of each send, reported without a copy of the packet, numbered by byte offset
TX_FLAGS = SOF_TIMESTAMPING_TX_SOFTWARE | SOF_TIMESTAMPING_SOFTWARE | SOF_TIMESTAMPING_OPT_ID | SOF_TIMESTAMPING_OPT_TSONLY
#: linux/errqueue.h: the error queue's origin for stamps, and the kind "handed to the device"
SO_EE_ORIGIN_TIMESTAMPING = 4
SCM_TSTAMP_SND = 0
#: where those numbers (and a 64-bit struct timespec) hold
TX_MACHINES = frozenset({"x86_64", "amd64", "aarch64", "arm64"})
#: the IP levels an error queue message reports on (IP_RECVERR, IPV6_RECVERR)
_RECVERR = {(socket.IPPROTO_IP, 11), (getattr(socket, "IPPROTO_IPV6", 41), 25)}

_SPACE = getattr(socket, "CMSG_SPACE", None)
#: a read's ancillary room: SCM_TIMESTAMPNS (one timespec) and, once SO_TIMESTAMPING is on,
#: SCM_TIMESTAMPING (three), which the kernel adds to every read as well
RX_ANC_SIZE = _SPACE(16) + _SPACE(48) if _SPACE else 0
#: an error queue message: both stamps and a sock_extended_err with the peer's address
_ERR_ANC_SIZE = RX_ANC_SIZE + _SPACE(16 + 28) if _SPACE else 0
#: a kernel stamp further than this before the read is a clock step, not a late read
STALE_NS = 60 * 10**9
_MSG_ERRQUEUE: int = getattr(socket, "MSG_ERRQUEUE", 0x2000)


def realtime_to_perf_ns(realtime_ns: int) -> int:
    """A CLOCK_REALTIME instant on the perf_counter_ns (CLOCK_MONOTONIC) timeline: the offset
    is sampled now, from the tightest of three adjacent reads, so NTP slewing and steps since
    the last read do not accumulate."""
    best_gap, offset = 1 << 62, 0
    for _ in range(3):
        a = time.perf_counter_ns()
        wall = time.time_ns()
        b = time.perf_counter_ns()
        if b - a < best_gap:
            best_gap, offset = b - a, wall - (a + b) // 2
    return realtime_ns - offset


def _timespec_ns(blob: bytes) -> int:
    return int.from_bytes(blob[:8], sys.byteorder) * 10**9 + int.from_bytes(blob[8:16], sys.byteorder)


#: One idle socket asking for receive stamps, kept for the process's life (see keep_rx_stamping_on).
_KEEPER: list[socket.socket] = []


def keep_rx_stamping_on() -> bool:
    """Whether this host gives receive stamps; if so, keep them coming from now on.

    Linux stamps received packets only while some socket asks (a host-wide switch), and turns
    the switch on lazily, in deferred work, when the first socket asks after none did: a
    connection opened then gets its first bytes unstamped (1 read in 5 on fresh loopback pairs
    here). One idle socket that asks, kept open, keeps the switch on for every later connection."""
    if _KEEPER:
        return True
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    except OSError:
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if not sock.getsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS):
            sock.close()
            return False
    except OSError:
        sock.close()
        return False
    _KEEPER.append(sock)
    return True


def stamp_from_ancdata(ancdata: list[tuple[int, int, bytes]]) -> int | None:
    """The kernel's stamp in a recvmsg's ancillary data (SCM_TIMESTAMPNS, else the software
    stamp of SCM_TIMESTAMPING), on the perf_counter_ns timeline; None when there is none or
    it cannot be right (after now, or minutes before: the wall clock stepped)."""
    found = None
    for level, kind, blob in ancdata:
        if level == socket.SOL_SOCKET and kind in (SO_TIMESTAMPNS, SO_TIMESTAMPING) and len(blob) >= 16:
            found = _timespec_ns(blob)
            if found and kind == SO_TIMESTAMPNS:
                break
    return to_perf_ns(found) if found else None


def to_perf_ns(realtime_ns: int) -> int | None:
    """A kernel stamp on the perf_counter_ns timeline, or None when it cannot be right: after
    now, or minutes before (the wall clock stepped between the stamp and this read)."""
    now = time.perf_counter_ns()
    stamp = realtime_to_perf_ns(realtime_ns)
    return stamp if now - STALE_NS < stamp <= now else None


@functools.cache
def tx_stamps_possible() -> bool:
    """This machine's kernel takes SO_TIMESTAMPING's transmit flags (asked on an unconnected
    socket, so without OPT_ID, which only a connected TCP socket takes)."""
    if not sys.platform.startswith("linux") or not _SPACE or platform.machine().lower() not in TX_MACHINES:
        return False
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, TX_FLAGS & ~SOF_TIMESTAMPING_OPT_ID)
            return bool(sock.getsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING) & SOF_TIMESTAMPING_TX_SOFTWARE)
    except OSError:
        return False


def enable_tx_stamps(sock: socket.socket) -> bool:
    """Ask the kernel to stamp every send() on this connected TCP socket; the byte offsets of
    OPT_ID count from the next byte sent. False (nothing changed) where it refuses."""
    if not tx_stamps_possible():
        return False
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, TX_FLAGS)
    except OSError:
        return False
    return True


def disable_tx_stamps(sock: socket.socket) -> None:
    """Stop stamping sends (a socket whose stamps never came)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPING, 0)
    except OSError:
        pass


def read_tx_stamps(sock: socket.socket, last: int | None = None) -> list[tuple[int, int]]:
    """Every transmit stamp waiting on sock's error queue, without blocking: (offset of the
    last byte of the send() it stamps, modulo 2**32; the time it left, perf_counter_ns), in
    the order the kernel queued them; it stops after the stamp of byte ``last`` (the last byte
    sent: no stamp can follow, and the read that would say so costs an exception). A stamp
    that cannot be mapped is dropped; other error queue messages are read and ignored."""
    out: list[tuple[int, int]] = []
    while True:
        try:
            _data, ancdata, _flags, _addr = sock.recvmsg(0, _ERR_ANC_SIZE, _MSG_ERRQUEUE | socket.MSG_DONTWAIT)
        except OSError:  # nothing queued (EAGAIN), or a closed socket: the next read reports it
            return out
        stamp, offset = None, None
        for level, kind, blob in ancdata:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPING and len(blob) >= 16:
                stamp = _timespec_ns(blob)
            elif (level, kind) in _RECVERR and len(blob) >= 16:
                ee_errno = int.from_bytes(blob[0:4], sys.byteorder)
                origin, info = blob[4], int.from_bytes(blob[8:12], sys.byteorder)
                if ee_errno == errno.ENOMSG and origin == SO_EE_ORIGIN_TIMESTAMPING and info == SCM_TSTAMP_SND:
                    offset = int.from_bytes(blob[12:16], sys.byteorder)
        mapped = to_perf_ns(stamp) if stamp else None
        if mapped is not None and offset is not None:
            out.append((offset, mapped))
            if offset == last:
                return out
