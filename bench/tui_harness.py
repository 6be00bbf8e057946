"""What every TUI benchmark (bench_tui.py) runs on: the demo provider in another process, the
app as a child in a real pseudo-terminal whose output a thread reads and timestamps, fresh temp
dirs and configs of N targets, and the CPU counters of /proc. Loopback only."""

from __future__ import annotations

import bisect
import fcntl
import json
import os
import re
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT / "src"), str(BENCH)]

import bench_probe
from llmscope_tui.demo import DEFAULT_PROFILES

#: the command line every child process runs (bench_tui.py holds the subcommands)
SCRIPT = str(BENCH / "bench_tui.py")
CLI = [sys.executable, "-m", "llmscope_tui"]
TICK = os.sysconf("SC_CLK_TCK")
FAKE_KEY = "bench-not-a-key"  # the demo ignores keys; anthropic/gemini presets want one set
SPARK_RUN = re.compile(rb"(?:\xe2\x96[\x81-\x88\xb2\xbc]){20}")  # 20 sparkline cells in a row (blocks, or ▲▼ beyond the limits)


def names(n: int = 20) -> list[str]:
    return [f"t{i + 1:02d}" for i in range(n)]


def size_arg(text: str) -> tuple[int, int]:
    cols, rows = text.lower().split("x")
    return int(cols), int(rows)


def pct(values: list[float], q: float) -> float:
    return bench_probe.pct(values, q)


def serve_demo(port_file: str) -> None:
    """The demo provider in this process until SIGTERM."""
    from llmscope_tui.demo import DemoProvider

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with DemoProvider() as demo:
        Path(port_file).write_text(demo.base_url)
        while True:
            signal.pause()


class DemoServer:
    def __init__(self, tmp: Path) -> None:
        port_file = tmp / "demo.url"
        self.proc = subprocess.Popen([sys.executable, SCRIPT, "serve-demo", "--port-file", str(port_file)])
        deadline = time.monotonic() + 20
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("demo server did not start")
            time.sleep(0.05)
        self.base_url = port_file.read_text().rstrip("/")

    def close(self) -> None:
        stop(self.proc)


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> int | None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


class PtyChild:
    """A child on a pseudo-terminal; a thread drains the master side and timestamps the output."""

    CAP = 32 << 20  # bytes kept for pattern searches (all of it is counted)

    def __init__(self, argv: list[str], size: tuple[int, int], env: dict[str, str]) -> None:
        cols, rows = size
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        env = {**env, "COLUMNS": str(cols), "LINES": str(rows)}
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
        os.close(slave)
        self.buf = bytearray()
        self.marks: list[tuple[int, float]] = []  # (buffer length after a read, perf_counter)
        self.total = 0
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def _pump(self) -> None:
        while True:
            try:
                data = os.read(self.master, 1 << 16)
            except OSError:
                return
            if not data:
                return
            now = time.perf_counter()
            self.total += len(data)
            if len(self.buf) < self.CAP:
                self.buf += data
                self.marks.append((len(self.buf), now))

    def first(self, pattern: re.Pattern[bytes]) -> float | None:
        """Seconds from spawn until the output first held ``pattern``."""
        match = pattern.search(bytes(self.buf))
        if match is None:
            return None
        index = bisect.bisect_left(self.marks, (match.end(), 0.0))
        return self.marks[min(index, len(self.marks) - 1)][1] - self.started

    def wait_for(self, pattern: re.Pattern[bytes], timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            found = self.first(pattern)
            if found is not None:
                return found
            time.sleep(0.05)
        return self.first(pattern)

    def close(self) -> None:
        stop(self.proc)
        self._reader.join(5)
        os.close(self.master)

    def tail(self) -> str:
        return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", " ", self.buf[-3000:].decode(errors="replace"))


def child_env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMSCOPE_", "TEXTUAL")) and k != "NO_COLOR"}
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        env[var] = str(tmp / var.lower())
    env.update(ANTHROPIC_API_KEY=FAKE_KEY, GEMINI_API_KEY=FAKE_KEY, TERM="xterm-256color", COLORTERM="truecolor",
               PYTHONPATH=str(ROOT / "src"))
    return env


def write_config(path: Path, base_url: str, db: Path, target_names: list[str], interval: str = "1s") -> Path:
    """One [[targets]] per name, cycling through the demo's models/protocols (as demo_targets)."""
    from llmscope_tui.session import demo_prices

    lines = ["[monitor]", f'interval = "{interval}"', "concurrency = 32", f"db = {json.dumps(str(db))}", ""]
    for price in demo_prices():
        lines += ["[[prices]]", f'model = "{price.model}"', f"input_per_mtok = {price.input_per_mtok}",
                  f"output_per_mtok = {price.output_per_mtok}", ""]
    presets = {"openai": ("openai-compatible", "/v1"), "anthropic": ("anthropic", ""), "gemini": ("gemini", ""),
               "ollama": ("ollama", "")}
    for i, name in enumerate(target_names):
        profile = DEFAULT_PROFILES[i % len(DEFAULT_PROFILES)]
        provider, suffix = presets[profile.protocol]
        lines += ["[[targets]]", f'name = "{name}"', f'provider = "{provider}"', f'model = "{profile.model}"',
                  f'base_url = "{base_url}{suffix}"', f"prompt = {json.dumps(profile.prompt)}", "max_tokens = 32", ""]
    path.write_text("\n".join(lines))
    return path


@contextmanager
def workdir(prefix: str) -> Iterator[Path]:
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield tmp
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values) - values[3] - values[4], sum(values)


def count_samples(db: Path) -> int:
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            return int(conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
        finally:
            conn.close()
    except sqlite3.Error:
        return 0


def _load(config: Path) -> Any:
    from llmscope_tui.config import load_settings

    return load_settings(config)
