"""`python bench/bench_probe.py targets`: probes per second and CPU per probe against the number
of targets (10, 100, 1,000), and the streams really in flight with 50 targets; the server and
the target are bench_probe.py's (see its docstring)."""

from __future__ import annotations

import resource
import statistics
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

import anyio

from bench_probe import LOOP, ServerProcess, target
from llmscope_tui.probe.scheduler import ProbeScheduler
from llmscope_tui.probe.stream import Timeouts


async def _targets_round(
    base_url: str, n_targets: int, interval: float, seconds: float, concurrency: int = 64,
    window: AbstractContextManager[object] | None = None,
) -> tuple[int, int, float, float, float, list[int]]:
    """Probes completed, failed, wall s, process user and system CPU s, the client's in-flight
    count every 10 ms. ``window`` is entered for the measured seconds only (a profiler): what
    the start costs (1,000 tasks, the pool filling) is not the probes' cost."""
    import tempfile

    from llmscope_tui.store import SampleStore

    targets = [target(base_url, f"t{i}", interval) for i in range(n_targets)]
    done = [0, 0]
    in_flight: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = SampleStore(Path(tmp) / "bench.db")

        def on_sample(sample) -> None:
            done[0] += 1
            done[1] += 0 if sample.ok else 1
            store.add(sample)

        sched = ProbeScheduler(targets, on_sample, timeouts=Timeouts(5, 10, 20), concurrency=concurrency,
                               grace_s=5, jitter=0.0)

        async def watch() -> None:
            while True:
                await anyio.sleep(0.01)
                in_flight.append(sched.stats.in_flight)

        async with anyio.create_task_group() as tg:
            tg.start_soon(sched.run)
            await anyio.sleep(min(2.0, interval * 1.5))  # connections opened, staggered start over
            done[:] = [0, 0]
            tg.start_soon(watch)
            with window or nullcontext():
                use0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
                await anyio.sleep(seconds)
                n, failed = done
                use1, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - t0
            user, system = use1.ru_utime - use0.ru_utime, use1.ru_stime - use0.ru_stime
            sched.stop(0.5)
            tg.cancel_scope.cancel()
        store.close()
    return n, failed, wall, user, system, in_flight


def targets(seconds: float, counts: list[int], *, in_flight: bool = True, concurrency: int = 64) -> None:
    print(f"Probes per second against targets: concurrency {concurrency}, 5 ms streams, samples stored,"
          " server in another process")
    print(f"{'targets':>8} {'probes':>7} {'failed':>6} {'probes/s':>9} {'CPU ms/probe':>13} {'of it sys':>10} "
          f"{'CPU %':>6}")
    server = ServerProcess(first_delay=0.005, gap=0.0, tokens=8)
    try:
        for n in counts:
            probes, failed, wall, user, system, _ = anyio.run(
                _targets_round, server.base_url, n, n / 2000, seconds, concurrency, backend_options=LOOP)
            cpu = user + system
            print(f"{n:>8} {probes:>7} {failed:>6} {probes / wall:>9.1f} {cpu / max(1, probes) * 1000:>13.3f} "
                  f"{system / max(1, probes) * 1000:>10.3f} {cpu / wall * 100:>6.0f}")
    finally:
        server.close()
    if not in_flight:
        return
    print("In flight: 50 targets every 100 ms, 250 ms streams (max / median, sampled every 10 ms)")
    server = ServerProcess(first_delay=0.25, gap=0.0, tokens=8)
    try:
        probes, failed, wall, user, system, client = anyio.run(
            _targets_round, server.base_url, 50, 0.1, seconds, backend_options=LOOP)
        opened = server.open_streams()[-len(client):]
    finally:
        server.close()
    print(f"  client in flight: max {max(client)}  median {statistics.median(client):.0f}; server open streams:"
          f" max {max(opened)}  median {statistics.median(opened):.0f}; {probes / wall:.1f} probes/s,"
          f" {failed} failed, CPU {(user + system) / max(1, probes) * 1000:.3f} ms/probe")




def calls(seconds: float, counts: list[int], concurrency: int = 64, top: int = 8) -> None:
    """Python calls per probe under cProfile, for each target count, and the functions whose
    calls per probe grew most from the first count to the last. Counts of calls, unlike times,
    do not move with the machine's load: what grows here is work that grows with the targets."""
    import cProfile
    import pstats

    server = ServerProcess(first_delay=0.005, gap=0.0, tokens=8)
    per: dict[int, dict[str, float]] = {}
    try:
        for n in counts:
            profile = cProfile.Profile()  # on for the measured window only
            probes, *_ = anyio.run(_targets_round, server.base_url, n, n / 2000, seconds, concurrency,
                                   profile, backend_options=LOOP)
            stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
            per[n] = {f"{Path(f).name}:{line}:{name}": v[1] / max(1, probes)
                      for (f, line, name), v in stats.items()}
            print(f"{n:>6} targets: {probes} probes, {sum(per[n].values()):.0f} Python calls a probe")
    finally:
        server.close()
    first, last = per[counts[0]], per[counts[-1]]
    grown = sorted(last, key=lambda k: first.get(k, 0.0) - last[k])[:top]
    print(f"calls a probe that grew most from {counts[0]} to {counts[-1]} targets:")
    for name in grown:
        print(f"  {first.get(name, 0.0):8.2f} -> {last[name]:8.2f}  {name}")
