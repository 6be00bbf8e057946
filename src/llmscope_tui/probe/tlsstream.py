"""TLS for the probe's stamped connections (probe/netclock.py): the TLS object works on memory
BIOs over the raw socket stream, so a record is decrypted only once the socket read that
completed it has happened, and that read's kernel stamp is the record's arrival. Also the
mapping of socket errors onto httpcore's exception classes, which both streams use."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio
import httpcore

if TYPE_CHECKING:
    from llmscope_tui.probe.netclock import StampedStream

__all__ = ["TLS_READ", "StampedTLSStream", "mapped"]

#: a raw read's size under TLS (a record is at most 16 KiB plus overhead; several at once)
TLS_READ = 65536


@contextlib.contextmanager
def mapped(timeout_exc: type[Exception], error_exc: type[Exception]) -> Iterator[None]:
    """httpcore's exception contract: its timeout or error class for what the socket raised."""
    try:
        yield
    except TimeoutError as exc:  # before OSError: TimeoutError is one
        raise timeout_exc(str(exc) or type(exc).__name__) from exc
    except (OSError, ssl.SSLError, anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
        raise error_exc(str(exc) or type(exc).__name__) from exc


class StampedTLSStream(httpcore.AsyncNetworkStream):
    """TLS over a StampedStream with memory BIOs: a record is decrypted only once the socket
    read that completed it has happened, so that read's stamp is the record's arrival."""

    def __init__(self, raw: StampedStream, tls: ssl.SSLObject, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO) -> None:
        self._raw, self._tls, self._in, self._out = raw, tls, incoming, outgoing

    @property
    def last_arrival_ns(self) -> int | None:
        return self._raw.last_arrival_ns

    @property
    def request_sent_ns(self) -> int | None:
        return self._raw.request_sent_ns

    def first_token_read(self) -> None:
        self._raw.first_token_read()

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with mapped(httpcore.ReadTimeout, httpcore.ReadError), anyio.fail_after(timeout):
            while True:
                try:
                    data = self._tls.read(max_bytes)
                except ssl.SSLWantReadError:
                    pass
                except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                    return b""  # close_notify, or a peer that just closed (as httpx's own backend reads it)
                else:
                    if self._out.pending:  # a TLS 1.3 key update asks for an answer
                        self._raw._outbox += self._out.read()
                    return data
                if self._out.pending:
                    self._raw._outbox += self._out.read()
                raw = await self._raw._recv(TLS_READ)  # sends what is queued first
                if raw:
                    self._in.write(raw)
                else:
                    self._in.write_eof()

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:
            with mapped(httpcore.WriteTimeout, httpcore.WriteError):
                self._tls.write(buffer)
            await self._raw._post(self._out.read(), timeout)

    async def aclose(self) -> None:
        await self._raw.aclose()

    def get_extra_info(self, info: str) -> Any:
        if info == "ssl_object":
            return self._tls
        return self._raw.get_extra_info(info)
