"""TTFT accuracy while the UI renders: bench_probe's accuracy rounds on the loop of a headless
Monitor and on the loop of an LLMScopeApp's monitor, in one child process (bench_tui.py ttft).

The truth is bench_clock.py's server (another process): the kernel's receive stamp of each
request and a stamp right before its first token's send(), so the error is against the wire,
not against a server loop that may itself be late. The response has bench_probe's shape (a
200 ms wait, then 16 tokens 20 ms apart). `start` is the startup window: probes on the app's
monitor loop from the moment it runs (the pool warmed by one probe a stream, then probes
started within the next 5 s) while the app builds its first screens, loads
and freezes its objects (gc.freeze at 2 s), and opens its own 20 connections."""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bench_clock
import bench_probe
from tui_harness import (
    SCRIPT,
    DemoServer,
    PtyChild,
    _load,
    child_env,
    names,
    pct,
    workdir,
    write_config,
)

START_WINDOW_S = 5.0


async def _with_app(config: Path, driver: str, size: tuple[int, int], body: Callable[[], Any],
                    settle_first: bool = True) -> dict[str, Any]:
    """Run ``body()`` where the app's own probes run (the monitor's loop, in its thread) while
    the LLMScopeApp probes and renders 20 targets."""
    from llmscope_tui.tui.app import LLMScopeApp

    app = LLMScopeApp(_load(config), fps=4.0, freeze_gc=True)  # as the command runs it

    async def on_monitor_loop() -> Any:
        loop = app.monitor_thread.loop
        assert loop is not None, "the monitor's thread is running"
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(body(), loop))

    async def settle() -> int:
        if not settle_first:  # the startup window: as soon as the monitor's loop runs
            while getattr(getattr(app, "monitor_thread", None), "loop", None) is None:
                await asyncio.sleep(0.005)
            return app.state.samples
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


async def _window_round(base_url: str, concurrency: int, until: float) -> list[tuple[str, float]]:
    """Pooled probes (the pool warmed first) started until ``until`` (monotonic)."""
    from llmscope_tui.probe.scheduler import make_client
    from llmscope_tui.probe.stream import probe_once

    tgt = bench_probe.target(base_url)
    out: list[tuple[str, float]] = []
    async with make_client(concurrency, bench_probe.TIMEOUTS) as client:
        await asyncio.gather(*(probe_once(client, tgt, None, bench_probe.TIMEOUTS) for _ in range(concurrency)))

        async def worker() -> None:
            while time.monotonic() < until:
                s = await probe_once(client, tgt, None, bench_probe.TIMEOUTS)
                if s.ok and s.request_id:
                    out.append((s.request_id, s.ttft_ms or 0.0))

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return out


def ttft_child(config: Path, probes: int, streams: list[int], order: list[str], driver: str, size: tuple[int, int],
               out: Path) -> None:
    """Runs in a pty: bench_probe's accuracy rounds plain and with the app, in one process."""
    report: dict[str, Any] = {}
    try:
        for variant in order:
            for concurrency in streams:
                server = bench_clock.ServerProcess(bench_probe.FIRST_DELAY, bench_probe.GAP, bench_probe.TOKENS)
                try:
                    server.stamps()

                    async def body(c: int = concurrency, url: str = server.base_url) -> Any:
                        return await bench_probe._accuracy_round(url, c, probes)

                    async def window(c: int = concurrency, url: str = server.base_url) -> Any:
                        return await _window_round(url, c, time.monotonic() + START_WINDOW_S)

                    if variant == "start":
                        run = asyncio.run(_with_app(config, driver, size, window, settle_first=False))
                        measured, ui = run["result"], run["ui_rate"]
                    elif variant == "plain":
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
    print(f"TTFT error against the wire (measured TTFT - (first token's send() - the kernel's receive stamp of the "
          f"request) at the server, ms; load average {os.getloadavg()[0]:.2f}), server "
          f"{bench_probe.FIRST_DELAY * 1000:g} ms + {bench_probe.TOKENS} tokens; 'headless' = on the loop of a Monitor probing "
          f"the same targets without a UI; 'with UI' = on the loop of an LLMScopeApp's monitor ({driver} driver, {size[0]}x{size[1]}) probing 20 demo targets at 1 s; 'UI start' = the same from the app's start, for 5 s")
    print(f"{'streams':>7} {'variant':<8} {'round':>5} {'probes':>6} {'median':>7} {'p90':>7} {'p99':>7} {'max':>7}"
          f" {'UI samples/s':>12}")
    rows: dict[tuple[int, str], list[tuple[float, float]]] = {}
    for r in range(repeat):
        order = ["plain", "monitor", "ui", "start"] if r % 2 == 0 else ["start", "ui", "monitor", "plain"]
        with workdir("bench_tui_ttft_") as tmp:
            demo = DemoServer(tmp)
            config = write_config(tmp / "config.toml", demo.base_url, tmp / "samples.db", names())
            out = tmp / "out.json"
            argv = [sys.executable, SCRIPT, "_ttft-child", "--config", str(config), "--probes", str(probes),
                    "--streams", *map(str, streams), "--order", ",".join(order), "--driver", driver,
                    "--size", f"{size[0]}x{size[1]}", "--out", str(out)]
            pty = PtyChild(argv, size, child_env(tmp))
            try:
                pty.proc.wait(60 + 2 * len(streams) * probes * 1.2)
            finally:
                pty.close()
                demo.close()
            report: dict[str, Any] = json.loads(out.read_text()) if out.exists() else {"error": pty.tail()}
        if "error" in report:
            raise RuntimeError(f"ttft child failed:\n{report['error']}")
        for c in streams:
            for variant in ("plain", "monitor", "ui", "start"):
                rec = report[f"{variant}/{c}"]
                e = rec["errors"]
                rows.setdefault((c, variant), []).append((statistics.median(e), pct(e, 0.99)))
                rate = f"{rec['ui_rate']:.1f}" if variant != "plain" else "-"
                label = {"ui": "with UI", "monitor": "headless", "plain": "plain", "start": "UI start"}[variant]
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
