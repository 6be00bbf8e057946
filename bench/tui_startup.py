"""Time to the first screen on a big data file, and from a key to the process's exit
(bench_tui.py first-screen, quit)."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import bench_store
from tui_harness import (
    CLI,
    ROOT,
    SPARK_RUN,
    DemoServer,
    PtyChild,
    _load,
    child_env,
    names,
    workdir,
    write_config,
)

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


#: what the pty's output shows first: the frame (a pane's title), the targets, the first data row
#: (a status word only a probe's result sets: `● up`, `▲ degraded`, `✖ down`)
FIRST_FRAME = re.compile(re.escape(b"1 Targets"))
FIRST_ROW = re.compile("(?:\u25cf up|\u25b2 degraded|\u2716 down)".encode())


def startup_run(size: tuple[int, int]) -> dict[str, float]:
    """One `--tui` on a fresh data file, 20 targets on the demo in another process: seconds from
    spawn to the first frame, to every target's name, to the first data row."""
    with workdir("bench_tui_start_") as tmp:
        demo = DemoServer(tmp)
        target_names = names()
        config = write_config(tmp / "config.toml", demo.base_url, tmp / "samples.db", target_names)
        pty = PtyChild([*CLI, "--tui", "--config", str(config)], size, child_env(tmp))
        try:
            marks = {
                "first frame (a pane title)": pty.wait_for(FIRST_FRAME, 30),
                "the targets' names": pty.wait_for(re.compile(re.escape(target_names[0].encode())), 30),
                "first data row (a probe's status)": pty.wait_for(FIRST_ROW, 30),
            }
        finally:
            pty.close()
            demo.close()
    return {what: float("nan") if t is None else t for what, t in marks.items()}


def startup(runs: int, size: tuple[int, int]) -> None:
    print(f"start-up: `--tui --config` (20 targets at 1 s, the demo in another process, a fresh data "
          f"file) in a {size[0]}x{size[1]} pty; seconds from spawn (median of {runs}):")
    table: dict[str, list[float]] = {}
    for _ in range(runs):
        for what, t in startup_run(size).items():
            table.setdefault(what, []).append(t)
    for what, values in table.items():
        print(f"  {what:<36} median {statistics.median(values):6.3f}  ({min(values):.3f}-{max(values):.3f})")
    print(f"  (a bare `python -c 'import llmscope_tui.tui.app'` takes {_import_time():.3f} s)")
