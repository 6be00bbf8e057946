"""Probe benchmarks: TTFT accuracy and sustained probe rate, against a server in another process.

    python bench/bench_probe.py                 # both, default sizes (about a minute)
    python bench/bench_probe.py accuracy --probes 400
    python bench/bench_probe.py rate --rate 250 --seconds 20
    python bench/bench_probe.py targets --seconds 10    # probes/s and CPU per probe vs targets
    python bench/bench_probe.py targets --calls --seconds 5 --counts 10 100   # Python calls per probe
    python bench/bench_probe.py compare --requests 200 --streams 1 10 50      # vs the SDK, AIPerf, GuideLLM

The server (this same file with `serve`) is a raw asyncio server answering OpenAI-style
streams. For every request it stamps, with perf_counter_ns, when the request arrived and right
before the first content chunk is written, and reports those stamps at GET /stamps. On Linux
perf_counter_ns is CLOCK_MONOTONIC, shared by all processes, so the client's and the server's
stamps are on one clock.

TTFT accuracy = measured TTFT - the server's own TTFT (first content sent - request received).
The difference is what the measurement adds: loopback transit both ways plus client scheduling.
Goal (issue 2): median under 0.5 ms and p99 under 2 ms, at 1 and at 50 concurrent streams.

`split` separates the two legs of that difference: the request leg (t0 -> the server has the
request; real latency, part of TTFT by definition) and the response leg (the server writes the
first token -> the client stamps it; the measurement's own delay).

BENCH_UVLOOP=1 runs client and server on uvloop (pip install uvloop), for comparison.

Sustained rate: N targets whose intervals add up to --rate probes/s, all through one
ProbeScheduler. Goal: at least 200 completed streamed probes per second on 2 cores with
schedule lag p99 under 50 ms.

Probes per second against targets (`targets`): 10, 100 and 1,000 targets asking far more than one
core can do (concurrency 64, 5 ms streams, every sample stored through SampleStore in a temp
file), so the figure is the client's ceiling: probes/s and CPU per probe (this process's CPU
time / probes) should not depend on the number of targets. Then 50 targets every 100 ms on
250 ms streams: how many streams the server really has open (sampled every 10 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from llmscope_tui.model import Target
from llmscope_tui.probe.scheduler import ProbeScheduler, make_client
from llmscope_tui.probe.stream import Timeouts, probe_once

# ----------------------------------------------------------------------------- server side


def serve(first_delay: float, gap: float, tokens: int, port_file: str) -> None:
    """A raw asyncio HTTP/1.1 server (no parser library) so its own overhead between the stamp
    and the socket write is a few microseconds: transport.write sends at once on a free socket."""
    stamps: dict[str, list[int]] = {}
    counter = 0
    active = 0
    open_samples: list[int] = []
    role = b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n'
    token = b'data: {"choices":[{"delta":{"content":"tok"}}]}\n\n'
    usage = {"prompt_tokens": 7, "completion_tokens": tokens, "total_tokens": 7 + tokens}
    tail = [
        b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n',
        b"data: " + json.dumps({"choices": [], "usage": usage}).encode() + b"\n\n",
        b"data: [DONE]\n\n",
    ]

    def chunk(data: bytes) -> bytes:
        return b"%x\r\n%s\r\n" % (len(data), data)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal counter, active
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                if length:
                    await reader.readexactly(length)
                received = time.perf_counter_ns()
                if head.startswith(b"GET /stamps"):
                    body = json.dumps(stamps).encode()
                    stamps.clear()
                    if head.startswith(b"GET /stamps?open"):
                        body = json.dumps(open_samples).encode()
                        open_samples.clear()
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\n\r\n%s" % (len(body), body))
                    continue
                counter += 1
                active += 1
                rid = str(counter)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                             b"transfer-encoding: chunked\r\nx-request-id: " + rid.encode() + b"\r\n\r\n"
                             + chunk(role))
                await asyncio.sleep(first_delay)
                for i in range(tokens):
                    if i:
                        await asyncio.sleep(gap)
                    if i == 0:
                        stamps[rid] = [received, time.perf_counter_ns()]
                    writer.write(chunk(token))
                writer.write(b"".join(chunk(t) for t in tail) + b"0\r\n\r\n")
                active -= 1
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def sample_open() -> None:
        while True:
            await asyncio.sleep(0.01)
            if active:
                open_samples.append(active)

    async def main() -> None:
        asyncio.get_running_loop().create_task(sample_open())
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
        Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))
        await asyncio.Event().wait()

    if os.environ.get("BENCH_UVLOOP"):
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


class ServerProcess:
    """The bench server in its own process, so it does not share the client's GIL or loop.
    ``script``: the bench file whose `serve` it runs (bench_clock.py has its own server)."""

    script = __file__

    def __init__(self, first_delay: float, gap: float, tokens: int) -> None:
        self.port_file = Path(f"/tmp/llmscope-bench-{os.getpid()}-{time.monotonic_ns()}.port")
        self.port_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(
            [sys.executable, self.script, "serve", "--first-delay", str(first_delay), "--gap", str(gap),
             "--tokens", str(tokens), "--port-file", str(self.port_file)]
        )
        deadline = time.monotonic() + 20
        while not self.port_file.exists() or not self.port_file.read_text():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("bench server did not start")
            time.sleep(0.05)
        self.base_url = f"http://127.0.0.1:{self.port_file.read_text()}"

    def stamps(self) -> dict[str, list[int]]:
        return httpx.get(self.base_url + "/stamps", timeout=10).json()

    def open_streams(self) -> list[int]:
        """The server's count of open streams, sampled every 10 ms while any was open."""
        return httpx.get(self.base_url + "/stamps?open", timeout=10).json()

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)
        self.port_file.unlink(missing_ok=True)


def target(base_url: str, name: str = "bench", interval: float = 1.0) -> Target:
    return Target(name=name, provider="openai-compatible", model="bench", protocol="openai",
                  base_url=base_url + "/v1", interval_s=interval)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


# ----------------------------------------------------------------------------- accuracy


async def _accuracy_round(base_url: str, concurrency: int, probes: int) -> list[tuple[str, float]]:
    async with make_client(concurrency, TIMEOUTS) as client:
        return await pooled_probes(client, base_url, concurrency, probes)


TIMEOUTS = Timeouts(5, 10, 20)


async def pooled_probes(
    client: Any, base_url: str, concurrency: int, probes: int,
    during: Callable[[], Awaitable[None]] | None = None,
) -> list[tuple[str, float]]:
    """``probes`` probes, ``concurrency`` at a time, after warming the pool so every measured
    probe takes the same (pooled) path; (request id, TTFT ms) of the ok ones. ``during`` runs
    beside them (a loop staller) and is cancelled when they are done."""
    tgt = target(base_url)
    out: list[tuple[str, float]] = []
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(probe_once, client, tgt, None, TIMEOUTS)
    remaining = probes

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            s = await probe_once(client, tgt, None, TIMEOUTS)
            if s.ok and s.request_id:
                out.append((s.request_id, s.ttft_ms or 0.0))

    async with anyio.create_task_group() as tg:
        if during is not None:
            tg.start_soon(during)
        async with anyio.create_task_group() as workers:
            for _ in range(concurrency):
                workers.start_soon(worker)
        tg.cancel_scope.cancel()
    return out


LOOP = {"use_uvloop": bool(os.environ.get("BENCH_UVLOOP"))}
FIRST_DELAY, GAP, TOKENS = float(os.environ.get("B_FIRST", "0.2")), float(os.environ.get("B_GAP", "0.02")), 16


def accuracy(probes: int) -> None:
    print("TTFT accuracy: measured TTFT - server's own TTFT (ms), server in another process")
    print(f"{'streams':>8} {'probes':>7} {'median':>8} {'p90':>8} {'p99':>8} {'max':>8}")
    for concurrency in (1, 50):
        server = ServerProcess(first_delay=FIRST_DELAY, gap=GAP, tokens=TOKENS)
        try:
            server.stamps()  # clear warm-up stamps on a fresh server
            measured = anyio.run(_accuracy_round, server.base_url, concurrency, probes, backend_options=LOOP)
            stamps = server.stamps()
        finally:
            server.close()
        errors = []
        for rid, ttft_ms in measured:
            if rid in stamps:
                received, first_sent = stamps[rid]
                errors.append(ttft_ms - (first_sent - received) / 1e6)
        print(
            f"{concurrency:>8} {len(errors):>7} {statistics.median(errors):>8.3f} {pct(errors, 0.9):>8.3f} "
            f"{pct(errors, 0.99):>8.3f} {max(errors):>8.3f}"
        )


def split(probes: int) -> None:
    """Split the difference into its two legs, by watching the probe's own t0 and first-arrival
    stamps: request leg (t0 -> the server has the request: real latency, part of TTFT by
    definition) and response leg (server writes the first token -> the client stamps it: the
    measurement's own delay)."""
    from llmscope_tui.probe import stream

    captured: dict[str, tuple[int, int]] = {}
    original = stream._build_sample

    def spy(target, trace, out, state, start_wall, start_ns):
        sample = original(target, trace, out, state, start_wall, start_ns)
        if sample.request_id and out.first_ns is not None:
            captured[sample.request_id] = (trace.t0_ns, out.first_ns)
        return sample

    stream._build_sample = spy
    print("TTFT error split at 1 stream (ms)")
    server = ServerProcess(first_delay=FIRST_DELAY, gap=GAP, tokens=TOKENS)
    try:
        server.stamps()
        anyio.run(_accuracy_round, server.base_url, 1, probes, backend_options=LOOP)
        stamps = server.stamps()
    finally:
        server.close()
        stream._build_sample = original
    legs: dict[str, list[float]] = {"request leg": [], "response leg": []}
    for rid, (t0, first) in captured.items():
        if rid in stamps:
            received, sent = stamps[rid]
            legs["request leg"].append((received - t0) / 1e6)
            legs["response leg"].append((first - sent) / 1e6)
    for name, values in legs.items():
        print(f"{name:>14}: median {statistics.median(values):.3f}  p99 {pct(values, 0.99):.3f}")


# ----------------------------------------------------------------------------- sustained rate


async def _rate_round(base_url: str, rate: float, seconds: float, n_targets: int) -> None:
    interval = n_targets / rate
    targets = [target(base_url, f"t{i}", interval) for i in range(n_targets)]
    done: list[int] = [0, 0]

    def on_sample(sample) -> None:
        done[0] += 1
        done[1] += 0 if sample.ok else 1

    sched = ProbeScheduler(targets, on_sample, timeouts=Timeouts(5, 10, 20), concurrency=64, grace_s=5)
    cpu0, t0 = time.process_time(), time.perf_counter()
    async with anyio.create_task_group() as tg:
        tg.start_soon(sched.run)
        await anyio.sleep(seconds)
        sched.stop()
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    lags_ms = [lag * 1000 for lag in list(sched.stats.lags_s)[n_targets:]]  # after the staggered start
    print(f"targets {n_targets}, interval {interval * 1000:.0f} ms each, asked {rate:.0f} probes/s for {seconds:.0f} s")
    print(f"completed {done[0]} probes ({done[1]} failed) in {wall:.1f} s = {done[0] / wall:.1f} probes/s")
    print(f"schedule lag ms: p50 {pct(lags_ms, 0.5):.2f}  p99 {pct(lags_ms, 0.99):.2f}  max {max(lags_ms):.2f}")
    print(f"client process CPU: {cpu / wall * 100:.0f} % of one core")


def rate(probes_per_s: float, seconds: float, n_targets: int) -> None:
    print("Sustained probe rate: one ProbeScheduler, server in another process")
    server = ServerProcess(first_delay=0.005, gap=0.001, tokens=8)
    try:
        anyio.run(_rate_round, server.base_url, probes_per_s, seconds, n_targets, backend_options=LOOP)
    finally:
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what")
    s = sub.add_parser("serve")
    s.add_argument("--first-delay", type=float, default=0.02)
    s.add_argument("--gap", type=float, default=0.002)
    s.add_argument("--tokens", type=int, default=8)
    s.add_argument("--port-file", required=True)
    a = sub.add_parser("accuracy")
    a.add_argument("--probes", type=int, default=400)
    sp = sub.add_parser("split")
    sp.add_argument("--probes", type=int, default=300)
    r = sub.add_parser("rate")
    r.add_argument("--rate", type=float, default=250)
    r.add_argument("--seconds", type=float, default=20)
    r.add_argument("--targets", type=int, default=50)
    tg = sub.add_parser("targets")
    tg.add_argument("--seconds", type=float, default=10)
    tg.add_argument("--counts", type=int, nargs="+", default=[10, 100, 1000])
    tg.add_argument("--concurrency", type=int, default=64)
    tg.add_argument("--no-in-flight", action="store_true", help="skip the 50-target in-flight round")
    tg.add_argument("--calls", action="store_true", help="Python calls per probe (cProfile), not probes/s")
    sub.add_parser("compare", add_help=False,
                   help="TTFT error against the openai SDK, AIPerf and GuideLLM: bench_compare.py's options follow")
    args, rest = parser.parse_known_args()
    if args.what == "compare":
        # its own script (other tools in their own virtualenv, BENCH_TOOLS_VENV): run it as is
        import runpy

        sys.argv = [str(ROOT / "bench" / "bench_compare.py"), *rest]
        runpy.run_path(sys.argv[0], run_name="__main__")
        return
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.what == "serve":
        serve(args.first_delay, args.gap, args.tokens, args.port_file)
    elif args.what == "accuracy":
        accuracy(args.probes)
    elif args.what == "split":
        split(args.probes)
    elif args.what == "rate":
        rate(args.rate, args.seconds, args.targets)
    elif args.what == "targets":
        # its own module: the same server, another question
        from probe_targets import calls, targets

        if args.calls:
            calls(args.seconds, args.counts, args.concurrency)
        else:
            targets(args.seconds, args.counts, in_flight=not args.no_in_flight, concurrency=args.concurrency)
    else:
        accuracy(400)
        print()
        split(300)
        print()
        rate(250, 20, 50)


if __name__ == "__main__":
    main()
