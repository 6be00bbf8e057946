"""TUI benchmarks (issue 5, "Cost of watching"): CPU of the UI, TTFT accuracy while it renders,
time to the first screen on a big data file, and a profile of where the UI spends its time.

    python bench/bench_tui.py cpu --seconds 30 --repeat 3            # headless vs TUI 80x24 and 160x48
    python bench/bench_tui.py cpu --seconds 30 --fps 2               # the same at another --fps
    python bench/bench_tui.py cpu --db-rows 1000000                  # ... on a data file of 1M samples
    python bench/bench_tui.py ttft --probes 300                      # bench_probe accuracy, plain vs with UI
    python bench/bench_tui.py first-screen                           # 1,000,000 samples (file cached in /tmp)
    python bench/bench_tui.py profile --seconds 30                   # py-spy (pip install py-spy) on the TUI
    python bench/bench_tui.py quit --runs 5 [--external]             # q / q q / Ctrl-C -> process exit

Every run probes 20 targets (t01..t20, 1 s interval, cycling through the four wire protocols)
against the demo provider (llmscope_tui.demo.DemoProvider) in ANOTHER process (the
`serve-demo` subcommand), so the provider's CPU is not counted. The TUI runs as a child in a
real pseudo-terminal (TERM=xterm-256color, COLORTERM=truecolor, TIOCSWINSZ size) whose output
a thread keeps reading. CPU = utime+stime from /proc/<pid>/stat over a steady window after a
warm-up. Each run gets a fresh temp dir (config, data file, XDG dirs); children get SIGTERM
(SIGKILL after 15 s) and temp dirs are removed. Loopback only.

Goals: (1) TUI CPU at most 5 % of one core above headless with 20 targets at 1 s; (2) TTFT
accuracy (bench_probe.py accuracy) unchanged within 0.5 ms while the UI renders; (3) first
screen under 1 s with 1,000,000 samples in the data file.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import fcntl
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT / "src"), str(BENCH)]

import bench_probe
import bench_store
from llmscope_tui.demo import DEFAULT_PROFILES

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


# ----------------------------------------------------------------------------- children


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
        self.proc = subprocess.Popen([sys.executable, __file__, "serve-demo", "--port-file", str(port_file)])
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


# ----------------------------------------------------------------------------- cpu


def cpu_run(kind: str, size: tuple[int, int] | None, fps: float, warmup: float, seconds: float,
            seed: tuple[Path, list[str]] | None) -> dict[str, float]:
    with workdir("bench_tui_cpu_") as tmp:
        demo = DemoServer(tmp)
        db = tmp / "samples.db"
        if seed is not None:
            _copy_db(seed[0], db)
        config = write_config(tmp / "config.toml", demo.base_url, db, seed[1] if seed else names())
        env = child_env(tmp)
        pty: PtyChild | None = None
        try:
            if size is None:
                err = (tmp / "stderr.txt").open("wb")
                proc = subprocess.Popen([*CLI, "--headless", "--config", str(config), "--log-file", os.devnull],
                                        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=env)
            else:
                pty = PtyChild([*CLI, "--tui", "--config", str(config), "--fps", str(fps)], size, env)
                proc = pty.proc
            time.sleep(warmup)
            if proc.poll() is not None:
                raise RuntimeError(f"{kind} child exited early: {pty.tail() if pty else (tmp / 'stderr.txt').read_text()}")
            c0, d0, (b0, a0), n0, o0 = cpu_ticks(proc.pid), cpu_ticks(demo.proc.pid), machine_ticks(), count_samples(db), (
                pty.total if pty else 0)
            me0, t0 = sum(os.times()[:2]), time.monotonic()
            time.sleep(seconds)
            c1, d1, (b1, a1), n1, o1 = cpu_ticks(proc.pid), cpu_ticks(demo.proc.pid), machine_ticks(), count_samples(db), (
                pty.total if pty else 0)
            wall, me = time.monotonic() - t0, sum(os.times()[:2]) - me0
            ncpu = os.cpu_count() or 1
            child, demo_cpu = (c1 - c0) / TICK / wall * 100, (d1 - d0) / TICK / wall * 100
            rest = (b1 - b0) / max(1, a1 - a0) * ncpu * 100 - child - demo_cpu - me / wall * 100
            return {"cpu": child, "demo": demo_cpu, "rest": rest, "probes": (n1 - n0) / wall, "bytes": (o1 - o0) / wall}
        finally:
            if pty is not None:
                pty.close()
            else:
                stop(proc)
            demo.close()


def cpu(seconds: float, warmup: float, repeat: int, fps: float, sizes: list[tuple[int, int]], db_rows: int) -> None:
    seed = big_db(db_rows) if db_rows else None
    kinds: list[tuple[str, tuple[int, int] | None]] = [("headless", None)] + [(f"tui {c}x{r}", (c, r)) for c, r in sizes]
    print(f"CPU of the whole process, % of one core: 20 targets at 1 s, demo provider in another process, "
          f"TUI --fps {fps:g}, {warmup:g} s warm-up then {seconds:g} s window, {repeat} rounds (interleaved), "
          f"data file {'fresh' if seed is None else f'starting with {db_rows:,} samples'}")
    print(f"{'run':<16} {'round':>5} {'cpu %':>7} {'probes/s':>9} {'pty KB/s':>9} {'demo %':>7} {'rest of machine %':>18}")
    results: dict[str, list[float]] = {k: [] for k, _ in kinds}
    for r in range(repeat):
        for kind, size in kinds:
            m = cpu_run(kind, size, fps, warmup, seconds, seed)
            results[kind].append(m["cpu"])
            print(f"{kind:<16} {r + 1:>5} {m['cpu']:>7.2f} {m['probes']:>9.1f} {m['bytes'] / 1024:>9.1f} "
                  f"{m['demo']:>7.1f} {m['rest']:>18.1f}", flush=True)
    print("summary (median, min-max over rounds; TUI - headless paired within each round):")
    for kind, values in results.items():
        diffs = [v - h for v, h in zip(values, results["headless"], strict=True)]
        extra = "" if kind == "headless" else (f"   TUI - headless: {statistics.median(diffs):+.2f} points "
                                                f"({min(diffs):+.2f}..{max(diffs):+.2f}; goal <= 5)")
        print(f"  {kind:<14} {statistics.median(values):6.2f} %  ({min(values):.2f}-{max(values):.2f}){extra}")


# ----------------------------------------------------------------------------- ttft


def _load(config: Path) -> Any:
    from llmscope_tui.config import load_settings

    return load_settings(config)


async def _with_app(config: Path, driver: str, size: tuple[int, int], body: Callable[[], Any]) -> dict[str, Any]:
    """Run ``body()`` where the app's own probes run (the monitor's loop, in its thread) while
    the LLMScopeApp probes and renders 20 targets."""
    from llmscope_tui.tui.app import LLMScopeApp

    app = LLMScopeApp(_load(config), fps=4.0, freeze_gc=True)  # as the command runs it

    async def on_monitor_loop() -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(body(), app.monitor_thread.loop))

    async def settle() -> int:
        deadline = time.monotonic() + 20
        while app.state.samples < 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        await asyncio.sleep(2)  # past the first store read, into the steady state
        return app.state.samples

    if driver == "headless":
        async with app.run_test(size=size, headless=True):
            before, t0 = await settle(), time.monotonic()
            result = await on_monitor_loop()
            after, t1 = app.state.samples, time.monotonic()
            await app.action_quit()
    else:  # the real Linux driver, writing escape sequences to this process's terminal (a pty)
        task = asyncio.create_task(app.run_async())
        before, t0 = await settle(), time.monotonic()
        result = await on_monitor_loop()
        after, t1 = app.state.samples, time.monotonic()
        await app.action_quit()
        await task
    return {"result": result, "ui_rate": (after - before) / (t1 - t0)}


async def _with_monitor(config: Path, body: Callable[[], Any]) -> dict[str, Any]:
    """Run ``body()`` on the loop of a headless Monitor probing the same 20 targets: the
    baseline the UI is compared with (the probing itself, without any screen)."""
    from llmscope_tui.monitor import Monitor

    monitor = Monitor(_load(config))
    samples = [0]
    monitor.subscribe(lambda e: samples.__setitem__(0, samples[0] + (e.get("event") == "sample")))
    task = asyncio.create_task(monitor.run())
    await asyncio.sleep(5)  # as many probes in flight as under the app
    before, t0 = samples[0], time.monotonic()
    result = await body()
    rate = (samples[0] - before) / (time.monotonic() - t0)
    monitor.stop("bench")
    await task
    return {"result": result, "ui_rate": rate}


def ttft_child(config: Path, probes: int, streams: list[int], order: list[str], driver: str, size: tuple[int, int],
               out: Path) -> None:
    """Runs in a pty: bench_probe's accuracy rounds plain and with the app, in one process."""
    report: dict[str, Any] = {}
    try:
        for variant in order:
            for concurrency in streams:
                server = bench_probe.ServerProcess(bench_probe.FIRST_DELAY, bench_probe.GAP, bench_probe.TOKENS)
                try:
                    server.stamps()

                    async def body(c: int = concurrency, url: str = server.base_url) -> Any:
                        return await bench_probe._accuracy_round(url, c, probes)

                    if variant == "plain":
                        measured, ui = asyncio.run(body()), 0.0
                    elif variant == "monitor":
                        run = asyncio.run(_with_monitor(config, body))
                        measured, ui = run["result"], run["ui_rate"]
                    else:
                        run = asyncio.run(_with_app(config, driver, size, body))
                        measured, ui = run["result"], run["ui_rate"]
                    stamps = server.stamps()
                finally:
                    server.close()
                errors = [ttft - (stamps[rid][1] - stamps[rid][0]) / 1e6 for rid, ttft in measured if rid in stamps]
                report[f"{variant}/{concurrency}"] = {"errors": errors, "ui_rate": ui}
    except BaseException:  # noqa: BLE001 - the child reports any failure to the parent, which prints it
        report["error"] = traceback.format_exc()
    out.write_text(json.dumps(report))


def ttft(probes: int, streams: list[int], driver: str, size: tuple[int, int], repeat: int) -> None:
    print(f"TTFT accuracy (bench_probe accuracy: measured TTFT - stamping server's own TTFT, ms), server "
          f"{bench_probe.FIRST_DELAY * 1000:g} ms + {bench_probe.TOKENS} tokens; 'headless' = on the loop of a Monitor probing "
          f"the same targets without a UI; 'with UI' = on the loop of an LLMScopeApp's monitor ({driver} driver, {size[0]}x{size[1]}) probing 20 demo targets at 1 s")
    print(f"{'streams':>7} {'variant':<8} {'round':>5} {'probes':>6} {'median':>7} {'p90':>7} {'p99':>7} {'max':>7}"
          f" {'UI samples/s':>12}")
    rows: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for r in range(repeat):
        order = ["plain", "monitor", "ui"] if r % 2 == 0 else ["ui", "monitor", "plain"]
        with workdir("bench_tui_ttft_") as tmp:
            demo = DemoServer(tmp)
            config = write_config(tmp / "config.toml", demo.base_url, tmp / "samples.db", names())
            out = tmp / "out.json"
            argv = [sys.executable, __file__, "_ttft-child", "--config", str(config), "--probes", str(probes),
                    "--streams", *map(str, streams), "--order", ",".join(order), "--driver", driver,
                    "--size", f"{size[0]}x{size[1]}", "--out", str(out)]
            pty = PtyChild(argv, size, child_env(tmp))
            try:
                pty.proc.wait(60 + 2 * len(streams) * probes * 1.2)
            finally:
                pty.close()
                demo.close()
            report = json.loads(out.read_text()) if out.exists() else {"error": pty.tail()}
        if "error" in report:
            raise RuntimeError(f"ttft child failed:\n{report['error']}")
        for c in streams:
            for variant in ("plain", "monitor", "ui"):
                rec = report[f"{variant}/{c}"]
                e = rec["errors"]
                rows.setdefault((c, variant), []).append((statistics.median(e), pct(e, 0.99)))
                rate = f"{rec['ui_rate']:.1f}" if variant != "plain" else "-"
                label = {"ui": "with UI", "monitor": "headless", "plain": "plain"}[variant]
                print(f"{c:>7} {label:<8} {r + 1:>5} {len(e):>6} "
                      f"{statistics.median(e):>7.3f} {pct(e, 0.9):>7.3f} {pct(e, 0.99):>7.3f} {max(e):>7.3f} {rate:>12}",
                      flush=True)
    print("summary (median over rounds): with UI - headless monitor (the UI's own effect), and - plain")
    for c in streams:
        ui = rows[(c, "ui")]
        for base in ("monitor", "plain"):
            ref = rows[(c, base)]
            dm = statistics.median(u[0] for u in ui) - statistics.median(p[0] for p in ref)
            d99 = statistics.median(u[1] for u in ui) - statistics.median(p[1] for p in ref)
            goal = " (goal: within 0.5 ms)" if base == "monitor" else ""
            print(f"  {c:>2} streams, UI - {base:<7}: median {dm:+.3f} ms, p99 {d99:+.3f} ms{goal}")


# ----------------------------------------------------------------------------- first screen

BIG_DB = Path("/tmp/llmscope-bench-tui-1m.db")


def big_db(rows: int, n_targets: int = 20, days: float = 7.0) -> tuple[Path, list[str]]:
    """bench_store's synthetic samples, spread over ``days`` up to now, written through
    SampleStore.add_many; cached in /tmp and rebuilt when stale (>30 min) or of another size."""
    from llmscope_tui.model import Sample
    from llmscope_tui.store import SampleStore

    target_names = bench_store.target_names(n_targets)
    if BIG_DB.exists():
        conn = sqlite3.connect(f"file:{BIG_DB}?mode=ro", uri=True)
        count, newest = conn.execute("SELECT COUNT(*), MAX(ts) FROM samples").fetchone()
        conn.close()
        if count == rows and time.time() - newest < 1800:
            print(f"reusing {BIG_DB} ({rows:,} samples, newest {time.time() - newest:.0f} s ago)")
            return BIG_DB, target_names
    for suffix in ("", "-wal", "-shm"):
        Path(f"{BIG_DB}{suffix}").unlink(missing_ok=True)
    bench_store.INTERVAL_S = days * 86400 / (rows / n_targets)  # synthetic_rows spaces samples by this
    rng = __import__("numpy").random.default_rng(7)
    t0, started = time.time() - days * 86400 + 60, time.perf_counter()
    store = SampleStore(BIG_DB)
    try:
        for start in range(0, rows, 100_000):
            batch = bench_store.synthetic_rows(start, min(100_000, rows - start), n_targets, t0, rng)
            store.add_many(Sample(*row) for row in batch)
            store.flush()
    finally:
        store.close()
    print(f"built {BIG_DB}: {rows:,} samples, {n_targets} targets, {days:g} days, via add_many in "
          f"{time.perf_counter() - started:.0f} s ({BIG_DB.stat().st_size / 1e6:.0f} MB)")
    return BIG_DB, target_names


def _copy_db(src: Path, dst: Path) -> None:
    for suffix in ("", "-wal"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")


async def _first_screen_inprocess(config: Path, size: tuple[int, int]) -> dict[str, float]:
    from textual.widgets import Static

    from llmscope_tui.tui.app import LLMScopeApp
    from llmscope_tui.tui.widgets import TargetsTable

    marks: dict[str, float] = {}
    t0 = time.perf_counter()
    app = LLMScopeApp(_load(config))
    read_store = app.reads.read

    def timed_read() -> None:  # instance attribute: run_worker(self.read) finds this one
        marks.setdefault("store read starts", time.perf_counter() - t0)
        read_store()
        marks.setdefault("store read done", time.perf_counter() - t0)

    app.reads.read = timed_read  # type: ignore[method-assign]

    def sparks() -> bytes:
        return str(app.query_one("#sparks", Static).content).encode()

    async with app.run_test(size=size, headless=True):
        table = app.query_one(TargetsTable)
        marks["mounted"] = time.perf_counter() - t0
        checks = {"20 table rows": lambda: table.row_count >= 20, "history applied": lambda: app.reads.history_loaded,
                  "history drawn": lambda: bool(SPARK_RUN.search(sparks()))}
        deadline = time.monotonic() + 30
        while checks and time.monotonic() < deadline:
            for what, check in list(checks.items()):
                if check():
                    marks[what] = time.perf_counter() - t0
                    del checks[what]
            await asyncio.sleep(0.002)
        await app.action_quit()
    return marks


def first_screen(rows: int, runs: int, size: tuple[int, int]) -> None:
    from llmscope_tui.costs import PriceBook
    from llmscope_tui.report import budget_statuses, cost_summary, overhead, recommendations
    from llmscope_tui.rollups import rollups
    from llmscope_tui.store import SampleStore, open_readonly
    from llmscope_tui.tui.store_reads import read_history

    db, target_names = big_db(rows)
    with workdir("bench_tui_first_") as tmp:
        os.environ.update({k: v for k, v in child_env(tmp).items() if k.startswith("XDG_") or k.endswith("_API_KEY")})
        demo = DemoServer(tmp)
        try:
            copy = tmp / "samples.db"
            config = write_config(tmp / "config.toml", demo.base_url, copy, target_names)
            print(f"first screen, {size[0]}x{size[1]}, {rows:,} samples in the data file (page cache warm), "
                  f"{len(target_names)} targets; seconds from start:")
            table: dict[str, list[float]] = {}
            for _ in range(runs):  # in process: App() -> conditions, via run_test
                _copy_db(db, copy)
                for what, t in asyncio.run(_first_screen_inprocess(config, size)).items():
                    table.setdefault(f"in process: {what}", []).append(t)
                Path(f"{copy}-wal").unlink(missing_ok=True)
            for _ in range(runs):  # a new process in a pty: spawn -> bytes on the terminal
                _copy_db(db, copy)
                pty = PtyChild([*CLI, "--tui", "--config", str(config)], size, child_env(tmp))
                try:
                    name = pty.wait_for(re.compile(re.escape(target_names[-1].encode())), 30)
                    drawn = pty.wait_for(SPARK_RUN, 30)
                finally:
                    pty.close()
                table.setdefault("pty process: first frame with a target name", []).append(name or float("nan"))
                table.setdefault("pty process: sparklines drawn from history", []).append(drawn or float("nan"))
                Path(f"{copy}-wal").unlink(missing_ok=True)
            for what, values in table.items():
                print(f"  {what:<46} median {statistics.median(values):6.3f}  ({min(values):.3f}-{max(values):.3f})")
            print(f"  (a bare `python -c 'import llmscope_tui.tui.app'` takes {_import_time():.3f} s)")

            print("store reads of the first refresh on that file (ms, first call / median of 5 after):")
            _copy_db(db, copy)
            settings = _load(config)
            day = time.time() - time.time() % 86400  # UTC midnight, as the app
            prices = PriceBook(settings.prices)
            month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()
            steps: list[tuple[str, Callable[[], Any]]] = [
                ("SampleStore(path) open + close (monitor)", lambda: SampleStore(copy).close()),
                ("overhead()", lambda: overhead(settings, prices)),
                ("open_readonly()", lambda: open_readonly(copy).close()),
            ]
            store = open_readonly(copy)
            ups = rollups(store, "1h", "target")
            steps += [
                ("read_history (20 x 4 metric_series + violations)", lambda: read_history(store, target_names)),
                ("rollups(1h, target)", lambda: rollups(store, "1h", "target")),
                ("cost_summary()", lambda: cost_summary(store, prices)),
                ("  of which spend(since month start), x1 of 3 spend()", lambda: store.spend(since=month)),
                ("  of which usage_by_model(month)", lambda: store.usage_by_model(since=month)),
                ("  of which spend_by(target, month), x1 of 3 spend_by()", lambda: store.spend_by("target", since=month)),
                ("budget_statuses()", lambda: budget_statuses(store, settings)),
                ("spend_by(target, today)", lambda: store.spend_by("target", since=day)),
                ("recommendations()", lambda: recommendations(store, settings, prices, ups)),
            ]
            for what, fn in steps:
                times = []
                for _ in range(6):
                    t = time.perf_counter()
                    fn()
                    times.append((time.perf_counter() - t) * 1000)
                print(f"  {what:<52} {times[0]:8.1f} / {statistics.median(times[1:]):8.1f}")
            store.close()
            cold = subprocess.run([sys.executable, "-c", ("import time; t = time.perf_counter(); "
                                   "from llmscope_tui.costs import PriceBook; PriceBook().snapshot(); "
                                   "print(time.perf_counter() - t)")], capture_output=True, text=True, check=True,
                                  env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
            print(f"  {'PriceBook().snapshot() in a new process (monitor start)':<52} {float(cold.stdout) * 1000:8.1f}")
        finally:
            demo.close()


def quit_run(keys: list[bytes], size: tuple[int, int], settle: float, external: bool) -> dict[str, float]:
    """One `--tui --demo` (or, ``external``, 20 targets on the demo in another process, as real
    providers) in a pty: wait for data, let probes run ``settle`` s (some are in flight), send
    ``keys``; seconds from the first key to the process's exit, and the -wal left."""
    with workdir("bench_tui_quit_") as tmp:
        demo = DemoServer(tmp) if external else None
        db = tmp / "xdg_data_home" / "samples.db"
        args = ["--config", str(write_config(tmp / "config.toml", demo.base_url, db, names()))] if demo else ["--demo"]
        pty = PtyChild([*CLI, "--tui", *args], size, child_env(tmp))
        try:
            if pty.wait_for(SPARK_RUN, 60) is None:
                raise RuntimeError(f"no data drawn: {pty.tail()}")
            time.sleep(settle)
            t0 = time.perf_counter()
            for key in keys:
                os.write(pty.master, key)
            try:
                pty.proc.wait(30)
                took = time.perf_counter() - t0
            except subprocess.TimeoutExpired:
                took = float("nan")  # did not quit (the bench's SIGTERM ends it)
        finally:
            pty.close()
            if demo is not None:
                demo.close()
        wal = next((tmp / "xdg_data_home").rglob("*.db-wal"), None)
        return {"s": took, "wal": wal.stat().st_size if wal else 0.0, "rc": float(pty.proc.returncode)}


def quit_bench(runs: int, size: tuple[int, int], settle: float, external: bool) -> None:
    face = "--tui --config (20 targets, the demo in another process)" if external else "--tui --demo"
    print(f"quit: `{face}` in a {size[0]}x{size[1]} pty, key(s) sent {settle:g} s after the first data; "
          f"seconds from the key to the process's exit (median of {runs}):")
    for label, keys in (("q", [b"q"]), ("q q", [b"q", b"q"]), ("Ctrl-C", [b"\x03"])):
        results = [quit_run(keys, size, settle, external) for _ in range(runs)]
        took = [r["s"] for r in results]
        print(f"  {label:<7} median {statistics.median(took):6.3f}  ({min(took):.3f}-{max(took):.3f})  "
              f"-wal left: max {max(r['wal'] for r in results):,.0f} bytes  exit codes {sorted({int(r['rc']) for r in results})}")


def _import_time() -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import llmscope_tui.tui.app"], check=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    return time.perf_counter() - t


# ----------------------------------------------------------------------------- profile

UI_PARTS = ("/textual/", "/rich/", "llmscope_tui/tui/")
PROBE_PARTS = ("llmscope_tui/probe/", "/httpx/", "/httpcore/", "/h11/", "/anyio/streams/", "/ssl.py")


def _frames(line: str) -> tuple[list[tuple[str, str]], int]:
    stack, _, count = line.rpartition(" ")
    frames = []
    for frame in stack.split(";"):
        m = re.match(r"(.*) \((.*?)(?::\d+)?\)$", frame)
        if m:
            frames.append((m.group(2), m.group(1)))
    return frames, int(count)


def _short(path: str, func: str) -> str:
    for marker in ("site-packages/", "/src/", "/lib/python3.11/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{func}"


def profile(seconds: float, warmup: float, size: tuple[int, int], fps: float, rate: int, top: int) -> None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise SystemExit("profile needs py-spy: .venv/bin/pip install py-spy")
    with workdir("bench_tui_prof_") as tmp:
        demo = DemoServer(tmp)
        config = write_config(tmp / "config.toml", demo.base_url, tmp / "samples.db", names())
        pty = PtyChild([*CLI, "--tui", "--config", str(config), "--fps", str(fps)], size, child_env(tmp))
        raw = tmp / "profile.txt"
        try:
            time.sleep(warmup)
            subprocess.run([spy, "record", "--pid", str(pty.proc.pid), "--duration", str(int(seconds)), "--rate",
                            str(rate), "--format", "raw", "--full-filenames", "--nolineno", "--nonblocking",
                            "--output", str(raw)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        finally:
            pty.close()
            demo.close()
        lines = [ln for ln in raw.read_text().splitlines() if ln.strip()]
    kinds: Counter[str] = Counter()
    own: dict[str, Counter[str]] = {}
    cum: Counter[str] = Counter()
    total = 0
    for line in lines:
        frames, n = _frames(line)
        if not frames:
            continue
        total += n
        # the part of the stack below the event loop's callback (Handle._run) or its select, or a thread's
        cut = max((i for i, (p, f) in enumerate(frames) if f.endswith(("Handle._run", "._run_once"))), default=-1)
        work = frames[cut + 1:]
        paths = [p for p, _ in work]
        if any(part in p for p in paths for part in UI_PARTS):
            kind = "UI (textual, rich, llmscope_tui/tui)"
        elif any(part in p for p in paths for part in PROBE_PARTS):
            kind = "probing (probe, httpx/httpcore/h11, anyio streams)"
        elif any("llmscope_tui/" in p for p in paths):
            kind = "core (monitor, store, spc, costs)"
        else:
            kind = "event loop / other (select, asyncio, threads)"
        kinds[kind] += n
        own.setdefault(kind, Counter())[_short(*(work or frames)[-1])] += n
        if kind.startswith("UI"):
            for key in {_short(*f) for f in work}:
                cum[key] += n
    busy = total / rate / seconds * 100
    print(f"py-spy on the TUI ({size[0]}x{size[1]}, --fps {fps:g}, 20 targets at 1 s), {seconds:g} s at {rate} Hz: "
          f"{total} non-idle samples = {busy:.1f} % of one core")
    for kind, n in kinds.most_common():
        print(f"  {kind:<52} {n / rate / seconds * 100:5.1f} % of a core ({n / total * 100:.0f} % of samples); "
              f"top own: {', '.join(k for k, _ in own[kind].most_common(3))}")
    ui = sum(n for k, n in kinds.items() if k.startswith("UI"))
    ours = Counter({k: n for k, n in cum.items() if k.startswith("llmscope_tui/")})
    for title, counter in (("own", own.get(next((k for k in kinds if k.startswith("UI")), ""), Counter())),
                           ("cumulative", cum), ("cumulative, llmscope_tui only", ours)):
        print(f"UI functions by {title} time (% of UI samples; {ui} samples = {ui / rate / seconds * 100:.1f} % of a core):")
        for key, n in counter.most_common(top):
            print(f"  {n / max(1, ui) * 100:5.1f} %  {n / rate / seconds * 100:5.2f} % core  {key}")


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    c = sub.add_parser("cpu", help="CPU % of one core: headless vs TUI in a pty")
    c.add_argument("--seconds", type=float, default=30)
    c.add_argument("--warmup", type=float, default=5)
    c.add_argument("--repeat", type=int, default=3)
    c.add_argument("--fps", type=float, default=4.0)
    c.add_argument("--sizes", type=size_arg, nargs="+", default=[(80, 24), (160, 48)])
    c.add_argument("--db-rows", type=int, default=0, help="start from the first-screen file of this many samples")
    t = sub.add_parser("ttft", help="bench_probe accuracy plain vs with the app on the same loop")
    t.add_argument("--probes", type=int, default=300)
    t.add_argument("--streams", type=int, nargs="+", default=[1, 50])
    t.add_argument("--driver", choices=("pty", "headless"), default="pty",
                   help="pty: the real Linux driver writing to a pseudo-terminal; headless: run_test")
    t.add_argument("--size", type=size_arg, default=(160, 48))
    t.add_argument("--repeat", type=int, default=1)
    f = sub.add_parser("first-screen", help="time to the first screen with 1,000,000 samples")
    f.add_argument("--rows", type=int, default=1_000_000)
    f.add_argument("--runs", type=int, default=3)
    f.add_argument("--size", type=size_arg, default=(160, 48))
    p = sub.add_parser("profile", help="py-spy profile of the TUI child")
    p.add_argument("--seconds", type=float, default=30)
    p.add_argument("--warmup", type=float, default=5)
    p.add_argument("--size", type=size_arg, default=(160, 48))
    p.add_argument("--fps", type=float, default=4.0)
    p.add_argument("--rate", type=int, default=200)
    p.add_argument("--top", type=int, default=15)
    qp = sub.add_parser("quit", help="time from q / Ctrl-C to the TUI's exit, with the demo")
    qp.add_argument("--runs", type=int, default=5)
    qp.add_argument("--size", type=size_arg, default=(80, 24))
    qp.add_argument("--settle", type=float, default=2.0, help="seconds of probing after the first data")
    qp.add_argument("--external", action="store_true", help="20 targets on the demo in another process")
    s = sub.add_parser("serve-demo")
    s.add_argument("--port-file", required=True)
    k = sub.add_parser("_ttft-child")
    k.add_argument("--config", type=Path, required=True)
    k.add_argument("--probes", type=int, required=True)
    k.add_argument("--streams", type=int, nargs="+", required=True)
    k.add_argument("--order", required=True)
    k.add_argument("--driver", required=True)
    k.add_argument("--size", type=size_arg, required=True)
    k.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if args.what == "cpu":
        cpu(args.seconds, args.warmup, args.repeat, args.fps, args.sizes, args.db_rows)
    elif args.what == "ttft":
        ttft(args.probes, args.streams, args.driver, args.size, args.repeat)
    elif args.what == "first-screen":
        first_screen(args.rows, args.runs, args.size)
    elif args.what == "profile":
        profile(args.seconds, args.warmup, args.size, args.fps, args.rate, args.top)
    elif args.what == "quit":
        quit_bench(args.runs, args.size, args.settle, args.external)
    elif args.what == "serve-demo":
        serve_demo(args.port_file)
    else:
        ttft_child(args.config, args.probes, args.streams, args.order.split(","), args.driver, args.size, args.out)


if __name__ == "__main__":
    main()
