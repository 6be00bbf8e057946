"""Incremental SSE and NDJSON framing over raw byte chunks, shared by every protocol.

Each complete frame carries the perf_counter_ns stamp of the network chunk that completed it
(the chunk holding the end of the blank line that dispatched an SSE event, or the newline that
ended an NDJSON line), so timing is taken when bytes arrive, not when a parser gets round to
them, and it does not depend on how the bytes were split into reads.
"""

from __future__ import annotations

from dataclasses import dataclass

_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class Frame:
    """One SSE event (event name + joined data lines) or one NDJSON line."""

    data: str
    arrived_ns: int
    event: str | None = None


class SSEDecoder:
    """Server-sent events per the WHATWG event-stream rules (DESIGN 2).

    LF, CR and CRLF line ends; ``:`` comment lines ignored; data lines joined with LF; an event
    with no data line is not dispatched; ``id`` and ``retry`` are not needed here and ignored.
    """

    __slots__ = ("_at_start", "_buffer", "_data", "_event", "_skip_lf")

    def __init__(self) -> None:
        self._buffer = b""  # a partial line: never holds CR or LF
        self._skip_lf = False  # the last chunk ended in CR: a leading LF is the rest of a CRLF
        self._at_start = True
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes, arrived_ns: int) -> list[Frame]:
        """Frames completed by ``chunk``, all stamped ``arrived_ns``."""
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        data = self._buffer + chunk
        if b"\r" in data:
            # A CR ends its line at once (so a frame is not held back waiting for the next read);
            # an LF that follows it in the next read is then skipped.
            self._skip_lf = data.endswith(b"\r")
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = data.split(b"\n")
        self._buffer = lines.pop()
        frames: list[Frame] = []
        for line in lines:
            self._line(line, arrived_ns, frames)
        return frames

    def close(self, arrived_ns: int) -> list[Frame]:
        """Dispatch a last event that the server ended without a blank line.

        WHATWG would discard it; we keep it (some servers end with ``data: [DONE]`` and no
        blank line), still only when it has a data line.
        """
        frames: list[Frame] = []
        if self._buffer:
            self._line(self._buffer, arrived_ns, frames)
            self._buffer = b""
        self._line(b"", arrived_ns, frames)
        return frames

    def _line(self, line: bytes, arrived_ns: int, frames: list[Frame]) -> None:
        if self._at_start:
            self._at_start = False
            line = line.removeprefix(_BOM)
        if not line:  # a blank line dispatches the event, if it has data
            if self._data:
                frames.append(Frame("\n".join(self._data), arrived_ns, self._event))
            self._event, self._data = None, []
            return
        if line[:1] == b":":
            return  # a comment / keep-alive
        name, _, value = line.partition(b":")
        if value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value.decode("utf-8", errors="replace"))
        elif name == b"event":
            self._event = value.decode("utf-8", errors="replace")


class NDJSONDecoder:
    """Newline-delimited JSON (Ollama): one frame per non-empty line."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes, arrived_ns: int) -> list[Frame]:
        """Lines completed by ``chunk``, all stamped ``arrived_ns``."""
        lines = (self._buffer + chunk).split(b"\n")
        self._buffer = lines.pop()
        return [_ndjson(line, arrived_ns) for line in lines if line.strip()]

    def close(self, arrived_ns: int) -> list[Frame]:
        """A last line the server ended without a newline."""
        rest, self._buffer = self._buffer, b""
        return [_ndjson(rest, arrived_ns)] if rest.strip() else []


def _ndjson(line: bytes, arrived_ns: int) -> Frame:
    return Frame(line.rstrip(b"\r").decode("utf-8", errors="replace"), arrived_ns)
