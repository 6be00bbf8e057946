"""The headless log is written off the probe loop: an output nobody reads never holds probing up,
and a clean stop writes every queued line, in order."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from llmscope_tui.background_writer import BackgroundWriter

WAIT_S = 60.0  # generous: conditions are waited for, never assumed after a sleep


class StuckOutput:
    """A file-like whose write blocks until ``release`` is set, as a full pipe does."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()  # a write is waiting on the output
        self.text: list[str] = []

    def write(self, text: str) -> int:
        self.entered.set()
        assert self.release.wait(WAIT_S), "the test never released the output"
        self.text.append(text)
        return len(text)

    def flush(self) -> None:
        pass

    def lines(self) -> list[str]:
        return "".join(self.text).splitlines()


def _writes_return(writer: BackgroundWriter, lines: list[str]) -> None:
    """Write every line from another thread; fail (not hang) if a write blocks."""
    thread = threading.Thread(target=lambda: [writer.write(line + "\n") for line in lines], daemon=True)
    thread.start()
    thread.join(WAIT_S)
    assert not thread.is_alive(), "a write blocked on the stuck output"


def test_writes_never_wait_for_a_stuck_output_and_every_line_arrives_in_order() -> None:
    out, said = StuckOutput(), []
    writer = BackgroundWriter(out, capacity=5000, warn=said.append)  # type: ignore[arg-type]
    lines = [f"line {i}" for i in range(2000)]
    writer.write(lines[0] + "\n")
    assert out.entered.wait(WAIT_S)  # the writer thread is now stuck in the output's write
    _writes_return(writer, lines[1:])
    assert writer.pending == 2000 and not out.text
    out.release.set()
    assert writer.close() is True
    assert out.lines() == lines and said == [] and writer.dropped == 0


def test_a_full_queue_drops_counts_and_says_so_once() -> None:
    out, said = StuckOutput(), []
    writer = BackgroundWriter(out, capacity=10, warn=said.append)  # type: ignore[arg-type]
    writer.write("line 0\n")
    assert out.entered.wait(WAIT_S)  # line 0 is in flight; the queue holds 10 more
    _writes_return(writer, [f"line {i}" for i in range(1, 25)])
    assert writer.dropped == 14
    assert len(said) == 1 and "not being read" in said[0] and "dropped" in said[0]
    out.release.set()
    assert writer.close() is False  # not everything reached the output: lines were dropped
    assert out.lines() == [f"line {i}" for i in range(11)]  # what was kept, in order
    assert said[-1] == "14 log lines were dropped while the output was not being read"


def test_a_stop_waits_a_bounded_time_for_an_output_that_stays_stuck() -> None:
    out, said = StuckOutput(), []
    writer = BackgroundWriter(out, warn=said.append)  # type: ignore[arg-type]
    for i in range(3):
        writer.write(f"line {i}\n")
    assert out.entered.wait(WAIT_S)
    assert writer.close(timeout=0.1) is False  # returns although the output never moved
    assert said and said[0].startswith("3 log lines not written")
    out.release.set()  # let the daemon thread finish


def test_a_reader_that_goes_away_is_not_an_error() -> None:
    class Gone:
        def write(self, text: str) -> int:
            raise BrokenPipeError

        def flush(self) -> None:
            pass

    said: list[str] = []
    writer = BackgroundWriter(Gone(), warn=said.append)  # type: ignore[arg-type]
    for i in range(5):
        writer.write(f"line {i}\n")
    writer.close()
    assert writer.broken and said == []
    assert writer.write("later\n") == 6  # ignored, no exception


def test_a_real_pipe_nobody_reads_holds_nothing_up(tmp_path: Path) -> None:
    """Through a file descriptor (os.write): more than a pipe holds is taken without blocking,
    and all of it arrives once someone reads."""
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "w", encoding="utf-8") as stream, os.fdopen(read_fd, "rb") as reader:
        writer = BackgroundWriter(stream, warn=print)
        lines = [json.dumps({"n": i, "pad": "x" * 200}) for i in range(2000)]  # ~430 KB
        _writes_return(writer, lines)
        got: list[bytes] = []
        drain = threading.Thread(target=lambda: got.append(reader.read()), daemon=True)
        drain.start()
        assert writer.close() is True
        stream.close()  # EOF for the reader
        drain.join(WAIT_S)
    assert b"".join(got).decode().splitlines() == lines


def _stored(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM samples").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


@pytest.mark.slow  # a real process probing for seconds
def test_probing_goes_on_while_stdout_is_a_pipe_nobody_reads(tmp_path: Path, fake_provider: Any) -> None:
    db, config = tmp_path / "s.db", tmp_path / "config.toml"
    config.write_text(
        f'[monitor]\ninterval = "10ms"\ntimeout = "5s"\n\n[[targets]]\nname = "fake"\n'
        f'provider = "openai-compatible"\nmodel = "gpt-4o-mini"\nbase_url = "{fake_provider.base_url}/v1"\n'
        'api_key_env = "FAKE_KEY"\n'
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmscope_tui", "--headless", "--config", str(config), "--db", str(db)],
        env={**os.environ, "FAKE_KEY": "k"}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        # a sample's line is ~600 bytes: a 64 KiB pipe is full after ~110 of them; with the log
        # written on the probe loop, probing stopped there
        deadline = time.monotonic() + 2 * WAIT_S
        while _stored(db) < 400 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        stored_while_unread = _stored(db)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=WAIT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert stored_while_unread >= 400, f"probing stalled at {stored_while_unread} samples: {err!r}"
    assert len(out) > 3 * 65536  # far more than the pipe held while nobody read
    assert proc.returncode == 0, err
    events = [json.loads(line) for line in out.decode().splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "stop"
    logged = [e["ts"] for e in events if e["event"] == "sample"]
    with sqlite3.connect(db) as conn:
        in_file = [row[0] for row in conn.execute("SELECT ts FROM samples ORDER BY id")]
    assert logged == in_file  # every line, none lost, in the order the samples were taken
    assert b"dropped" not in err
