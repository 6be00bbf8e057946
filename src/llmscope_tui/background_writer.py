"""A text output written by a thread of its own: the headless log.

Writing and flushing a log line on the probe loop ties probing to whoever reads the output: a
pipe nobody drains fills its 64 KiB and the next write blocks the loop, so no probe starts and
the ones in flight are stamped late. :class:`BackgroundWriter` takes lines from the loop into
a bounded queue in memory (a lock held for an append, never for I/O) and one daemon thread
writes them out in order. If the output stays stuck until the queue is full, further lines
are dropped and counted, said once on stderr, rather than ever blocking the caller. A clean
stop waits up to a bound for the queue to drain, so a reader that is only slow loses nothing.
"""

from __future__ import annotations

import os
import sys
import threading
from collections import deque
from collections.abc import Callable
from typing import IO, Protocol

#: Lines held while the output does not keep up (about 30 MB of JSON lines; minutes of probing).
DEFAULT_CAPACITY = 50_000

#: How long a clean stop waits for queued lines to be written.
DRAIN_TIMEOUT_S = 10.0


class TextOutput(Protocol):
    """What a log writer needs of its output: a text stream or a :class:`BackgroundWriter`."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


def warn_on_stderr(message: str) -> None:
    """Print one line on stderr from a daemon thread: stderr may be the very pipe that is stuck
    (`2>&1 | stalled-reader`), and a warning about a stall must not stall the caller itself."""

    def say() -> None:
        try:
            print(f"llmscope-tui: {message}", file=sys.stderr, flush=True)
        except (OSError, ValueError):  # stderr closed or gone: nobody left to tell
            pass

    threading.Thread(target=say, name="llmscope-warn", daemon=True).start()


class BackgroundWriter:
    """A write-only text stream whose writes return at once; a thread does the real I/O.

    ``write(text)`` queues; the thread writes everything queued, then flushes, so a live reader
    (`tail -f`, jq) sees each line as soon as the output takes it. When the stream has a file
    descriptor the thread writes to it directly (bytes, ``os.write``): a thread blocked there
    holds no Python lock, so a process whose output is stuck still exits.
    """

    def __init__(
        self,
        stream: IO[str],
        *,
        capacity: int = DEFAULT_CAPACITY,
        warn: Callable[[str], None] = warn_on_stderr,
        name: str = "log",
    ) -> None:
        self.stream = stream
        self.capacity = max(int(capacity), 1)
        self.name = name
        self.dropped = 0
        self.broken = False  # the reader went away (EPIPE): the rest is discarded silently
        self._warn = warn
        self._lines: deque[str] = deque()
        self._cond = threading.Condition()
        self._closing = False
        self._in_flight = 0  # lines the thread has taken and is writing
        self._fd = _fileno(stream)
        self._encoding = getattr(stream, "encoding", None) or "utf-8"
        if self._fd is not None:
            try:
                stream.flush()  # whatever was written through the stream object goes first
            except (OSError, ValueError):  # already gone: the thread finds out on its first write
                pass
        self._thread = threading.Thread(target=self._drain, name=f"llmscope-{name}", daemon=True)
        self._thread.start()

    def write(self, text: str) -> int:
        """Queue ``text``; never blocks on the output. Returns len(text), as streams do."""
        with self._cond:
            if self.broken or self._closing:
                return len(text)
            if len(self._lines) >= self.capacity:
                self.dropped += 1
                if self.dropped == 1:
                    self._warn(
                        f"the {self.name} output is not being read: {len(self._lines)} lines "
                        "waiting, further lines are dropped (and counted) until it drains; "
                        "probing goes on"
                    )
                return len(text)
            self._lines.append(text)
            self._cond.notify()
        return len(text)

    def flush(self) -> None:
        """Nothing to do here: the thread flushes whenever it has emptied the queue."""

    @property
    def pending(self) -> int:
        """Lines queued or being written."""
        with self._cond:
            return len(self._lines) + self._in_flight

    def close(self, timeout: float = DRAIN_TIMEOUT_S) -> bool:
        """Write what is queued (waiting up to ``timeout`` s for the output), then stop.

        True when every line written to this object reached the output. Otherwise the lines
        dropped or left unwritten are said on stderr (the thread is a daemon: a stuck output
        does not keep the process alive)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        with self._cond:
            unwritten = 0 if self.broken else len(self._lines) + self._in_flight
        if unwritten:
            self._warn(
                f"{unwritten} {self.name} lines not written: "
                f"the output did not take them within {timeout:g} s"
            )
        if self.dropped:
            self._warn(f"{self.dropped} {self.name} lines were dropped while the output was not being read")
        return not unwritten and not self.dropped and not self.broken

    def _drain(self) -> None:
        while True:
            with self._cond:
                while not self._lines and not self._closing:
                    self._cond.wait()
                if not self._lines:
                    return  # closing and nothing left
                batch = "".join(self._lines)
                self._in_flight = len(self._lines)
                self._lines.clear()
            try:
                self._write(batch)
            except (OSError, ValueError):  # EPIPE (`| head`), or the stream closed under us
                with self._cond:
                    self.broken = True
                    self._lines.clear()
                    self._in_flight = 0
                return
            with self._cond:
                self._in_flight = 0

    def _write(self, text: str) -> None:
        if self._fd is None:
            self.stream.write(text)
            self.stream.flush()
            return
        data = memoryview(text.encode(self._encoding, errors="replace"))
        while data:
            data = data[os.write(self._fd, data) :]


def _fileno(stream: IO[str]) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):  # StringIO and other in-memory streams
        return None
