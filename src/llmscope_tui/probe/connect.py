"""Opening a probe's TCP connection: one staggered attempt per address (RFC 8305), as
anyio.connect_tcp does, on plain non-blocking sockets that probe/netclock.py then reads."""

from __future__ import annotations

import errno
import os
import socket
from typing import Any

import anyio

_HAPPY_EYEBALLS_S = 0.25  # RFC 8305's connection attempt delay, as anyio.connect_tcp uses
#: anyio 4.7 renamed these (the old names warn)
wait_readable = getattr(anyio, "wait_readable", None) or anyio.wait_socket_readable
wait_writable = getattr(anyio, "wait_writable", None) or anyio.wait_socket_writable


async def connect_first(addresses: list[tuple[Any, ...]], local_address: str | None) -> socket.socket:
    """The first address to accept, a new attempt starting every 250 ms or as soon as the
    previous one fails, so one unreachable address family does not cost the connect timeout."""
    if not addresses:
        raise OSError(f"no address to connect to: {addresses}")
    winner: socket.socket | None = None
    errors: list[OSError] = []

    async def attempt(address: tuple[Any, ...], failed: anyio.Event, scope: anyio.CancelScope) -> None:
        nonlocal winner
        try:
            sock = await _connect_one(address, local_address)
        except OSError as exc:
            errors.append(exc)
            failed.set()
            return
        if winner is None:
            winner = sock
            scope.cancel()
        else:
            sock.close()

    try:
        async with anyio.create_task_group() as tg:
            for address in addresses:
                failed = anyio.Event()
                tg.start_soon(attempt, address, failed, tg.cancel_scope)
                with anyio.move_on_after(_HAPPY_EYEBALLS_S):
                    await failed.wait()
    except BaseException:  # the connect timed out or was cancelled as an attempt won
        if winner is not None:
            winner.close()
        raise
    if winner is None:
        raise errors[-1] if len(errors) == 1 else OSError(f"all connection attempts failed: {errors}")
    return winner


async def _connect_one(address: tuple[Any, ...], local_address: str | None) -> socket.socket:
    family, kind, proto, sockaddr = address
    sock = socket.socket(family, kind, proto)
    try:
        sock.setblocking(False)
        if local_address:
            sock.bind((local_address, 0))
        code = sock.connect_ex(sockaddr)
        if code in (errno.EINPROGRESS, errno.EAGAIN):
            await wait_writable(sock)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            raise OSError(code, f"{sockaddr}: {os.strerror(code)}")
    except BaseException:
        sock.close()
        raise
    return sock
