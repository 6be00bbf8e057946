"""Incremental SSE and NDJSON framing over raw byte chunks, shared by every protocol.

Each complete frame carries the perf_counter_ns stamp of the network chunk that completed it,
so timing is taken when bytes arrive, not when a parser gets round to them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Frame:
    """One SSE event (event name + joined data lines) or one NDJSON line."""

    data: str
    arrived_ns: int
    event: str | None = None


class SSEDecoder:
    """Server-sent events per the WHATWG rules that matter here: event/data fields, blank-line dispatch."""

    __slots__ = ("_buffer", "_event", "_data")

    def __init__(self) -> None:
        self._buffer = b""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, chunk: bytes, arrived_ns: int) -> list[Frame]:
        frames: list[Frame] = []
        buffer = self._buffer + chunk
        lines = buffer.split(b"\n")
        self._buffer = lines.pop()
        for raw in lines:
            line = raw[:-1] if raw.endswith(b"\r") else raw
            if not line:
                if self._data or self._event is not None:
                    frames.append(Frame("\n".join(self._data), arrived_ns, self._event))
                self._event, self._data = None, []
                continue
            if line.startswith(b":"):
                continue  # SSE comment / keep-alive
            name, _, value = line.partition(b":")
            if value.startswith(b" "):
                value = value[1:]
            text = value.decode("utf-8", errors="replace")
            if name == b"data":
                self._data.append(text)
            elif name == b"event":
                self._event = text
        return frames

    def close(self, arrived_ns: int) -> list[Frame]:
        """Dispatch a last event that the server ended without a blank line."""
        frames = self.feed(b"\n\n", arrived_ns) if self._buffer else []
        if not frames and self._data:
            frames.append(Frame("\n".join(self._data), arrived_ns, self._event))
            self._event, self._data = None, []
        return frames


class NDJSONDecoder:
    """Newline-delimited JSON (Ollama): one frame per non-empty line."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes, arrived_ns: int) -> list[Frame]:
        lines = (self._buffer + chunk).split(b"\n")
        self._buffer = lines.pop()
        return [Frame(line.decode("utf-8", errors="replace"), arrived_ns) for line in lines if line.strip()]

    def close(self, arrived_ns: int) -> list[Frame]:
        rest, self._buffer = self._buffer, b""
        return [Frame(rest.decode("utf-8", errors="replace"), arrived_ns)] if rest.strip() else []
