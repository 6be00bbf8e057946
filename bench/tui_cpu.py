"""CPU of the whole process, headless against the TUI at given terminal sizes, probing the same
targets on the demo provider in another process (bench_tui.py cpu); and the CPU of one refresh
pass in process, a figure a busy machine moves much less (bench_tui.py pass)."""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import time
from pathlib import Path
from typing import Any

from tui_harness import (
    CLI,
    TICK,
    DemoServer,
    PtyChild,
    child_env,
    count_samples,
    cpu_ticks,
    machine_ticks,
    names,
    stop,
    workdir,
    write_config,
)
from tui_startup import _copy_db, big_db


def cpu_run(kind: str, size: tuple[int, int] | None, fps: float, warmup: float, seconds: float,
            seed: tuple[Path, list[str]] | None, src: Path | None = None) -> dict[str, float]:
    """One child (headless, or the TUI at ``size``) for a window; ``src``: run that source tree
    (another checkout's src/) instead of this one's."""
    with workdir("bench_tui_cpu_") as tmp:
        demo = DemoServer(tmp)
        db = tmp / "samples.db"
        if seed is not None:
            _copy_db(seed[0], db)
        config = write_config(tmp / "config.toml", demo.base_url, db, seed[1] if seed else names())
        env = child_env(tmp)
        if src is not None:
            env["PYTHONPATH"] = str(src)
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


def cpu(seconds: float, warmup: float, repeat: int, fps: float, sizes: list[tuple[int, int]], db_rows: int,
        also: list[Path] | None = None) -> None:
    """Headless and the TUI at each size, interleaved round by round; with ``also`` (other
    checkouts' src/ folders, e.g. before a change) the same runs of each in the same rounds, so
    a comparison holds while the machine's load drifts."""
    seed = big_db(db_rows) if db_rows else None
    trees: list[tuple[str, Path | None]] = [("", None)] + [(f" @{i + 1}", Path(p)) for i, p in enumerate(also or [])]
    kinds: list[tuple[str, tuple[int, int] | None, Path | None]] = [
        (f"{name}{tag}", size, src) for tag, src in trees
        for name, size in [("headless", None), *((f"tui {c}x{r}", (c, r)) for c, r in sizes)]
    ]
    print(f"CPU of the whole process, % of one core: 20 targets at 1 s, demo provider in another process, "
          f"TUI --fps {fps:g}, {warmup:g} s warm-up then {seconds:g} s window, {repeat} rounds (interleaved), "
          f"data file {'fresh' if seed is None else f'starting with {db_rows:,} samples'}")
    for tag, src in trees[1:]:
        print(f"  runs marked{tag}: the source tree {src}")
    print(f"{'run':<19} {'round':>5} {'cpu %':>7} {'probes/s':>9} {'pty KB/s':>9} {'demo %':>7} {'rest of machine %':>18}")
    results: dict[str, list[float]] = {k: [] for k, _, _ in kinds}
    for r in range(repeat):
        for kind, size, src in kinds:
            m = cpu_run(kind, size, fps, warmup, seconds, seed, src)
            results[kind].append(m["cpu"])
            print(f"{kind:<19} {r + 1:>5} {m['cpu']:>7.2f} {m['probes']:>9.1f} {m['bytes'] / 1024:>9.1f} "
                  f"{m['demo']:>7.1f} {m['rest']:>18.1f}", flush=True)
    print("summary (median, min-max over rounds; TUI - headless paired within each round):")
    for kind, values in results.items():
        tag = kind[kind.index(" @"):] if " @" in kind else ""
        headless = results[f"headless{tag}"]
        diffs = [v - h for v, h in zip(values, headless, strict=True)]
        extra = "" if kind.startswith("headless") else (f"   TUI - headless: {statistics.median(diffs):+.2f} points "
                                                         f"({min(diffs):+.2f}..{max(diffs):+.2f}; goal <= 5)")
        print(f"  {kind:<17} {statistics.median(values):6.2f} %  ({min(values):.2f}-{max(values):.2f}){extra}")


# ----------------------------------------------------------------------------- one refresh pass


def _idle_monitor(settings: Any) -> Any:
    """A real Monitor that probes nothing: the bench hands the app its samples."""
    from llmscope_tui.monitor import Monitor

    class IdleMonitor(Monitor):
        async def run(self, **_: Any) -> Any:
            self._idle = asyncio.Event()
            await self._idle.wait()
            return self.summary

        def stop(self, reason: str = "stopped", grace_s: float | None = None) -> None:
            super().stop(reason, grace_s)
            self._idle.set()

    return IdleMonitor(settings)


async def _pass_cost(size: tuple[int, int], passes: int, tmp: Path) -> float:
    """CPU ms of one refresh pass in process (run_test's headless driver renders every frame):
    20 targets each with a new sample, as every second of a real run; synthetic figures."""
    from llmscope_tui.config import load_settings
    from llmscope_tui.tui.app import LLMScopeApp

    target_names = names()
    (tmp / "config.toml").write_text("".join(
        f'[[targets]]\nname = "{n}"\nprovider = "ollama"\nmodel = "m"\nbase_url = "http://127.0.0.1:9"\n\n'
        for n in target_names))
    settings = load_settings(tmp / "config.toml", env={}, db=tmp / "samples.db")
    app = LLMScopeApp(settings, fps=4, store_every_s=3600, monitor=_idle_monitor(settings))
    rng = random.Random(1)
    ts = 1000.0

    def feed() -> None:
        nonlocal ts
        ts += 1
        for n in target_names:
            app.state.apply({"event": "sample", "target": n, "ts": ts, "source": "probe", "ok": True,
                             "ttft_ms": rng.uniform(200, 400), "latency_ms": rng.uniform(1100, 1200),
                             "tps": rng.uniform(40, 60)})

    async with app.run_test(size=size) as pilot:
        for _ in range(60):  # a minute of history behind the sparklines
            feed()
        app.bridge.redraw()
        await pilot.pause()
        t0 = time.process_time()
        for _ in range(passes):
            feed()
            app.bridge.redraw()
            await pilot.pause()
        cost = (time.process_time() - t0) / passes * 1000
        await app.action_quit()
    return cost


def pass_cost(sizes: list[tuple[int, int]], passes: int, repeat: int) -> None:
    print(f"CPU of one refresh pass in process (ms; 20 targets, each with a new sample, the screen "
          f"rendered by run_test's headless driver), {passes} passes, median of {repeat} runs:")
    for size in sizes:
        with workdir("bench_tui_pass_") as tmp:
            costs = [asyncio.run(_pass_cost(size, passes, tmp)) for _ in range(repeat)]
        print(f"  {size[0]}x{size[1]}: median {statistics.median(costs):5.1f} ms  "
              f"({min(costs):.1f}-{max(costs):.1f})", flush=True)
