"""Arrival clock benchmark: kernel receive stamps vs user-space stamps, on a quiet and a stalled loop.

    python bench/bench_clock.py                              # 1 and 10 streams, 300 probes each
    python bench/bench_clock.py --probes 500 --streams 1 10 --gap 0.06 --stall-ms 20 50
    python bench/bench_clock.py send-cost                    # what a kernel send stamp costs

The server (this file with `serve`, in another process) stamps its own truth on the one clock
all processes share (perf_counter_ns = CLOCK_MONOTONIC on Linux): when the request reached it,
by the kernel's receive stamp of the read that completed it (its own loop's lateness does not
count), and right before the first content chunk's send() call, keyed by the request's own
x-request-id header if it sent one, else by a counter (echoed in the response's x-request-id). Error = our TTFT - (sent -
received): what the measurement adds. It has two legs: the request leg (t0 -> the request's last
byte reached the server: with a user-space t0, h11 building and writing the request and any
wait for the CPU before the send(); with the kernel's send stamp, loopback transit alone)
and the response leg (sent -> our first-token stamp): the part the arrival clock decides.

For each stream count the probes run four ways: clock kernel (make_client, probe/netclock.py:
the kernel's send stamp as t0 where it takes SO_TIMESTAMPING, its receive stamps) or
user (httpx's own backend, stamped when the loop reads), each with and without a task that
blocks the loop for --stall-ms (uniform) every 50-150 ms, as a render burst or a collector
pause does. The kernel stamp is exact while the loop reads within one inter-token gap: TCP
merges segments queued before a read into one read carrying the newest stamp. So --gap (the
server's inter-token gap) is longer than the longest stall by default; run --gap 0.02 to see
that limit.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import statistics
import sys
import time
from pathlib import Path

import anyio

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from bench_probe import TIMEOUTS, pct, pooled_probes
from bench_probe import ServerProcess as ProbeServerProcess
from llmscope_tui.probe import netclock, stream
from llmscope_tui.probe.scheduler import make_client

CLOCKS = ("kernel", "kernel-loop", "user")
CHUNK = b'data: {"object":"chat.completion.chunk","model":"bench","choices":[%s]}\n\n'  # AIPerf needs "object"
ROLE = CHUNK % b'{"index":0,"delta":{"role":"assistant","content":""}}'
TOKEN = CHUNK % b'{"index":0,"delta":{"content":"tok"}}'


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


# ----------------------------------------------------------------------------- server side


def serve(first_delay: float, gap: float, tokens: int, port_file: str) -> None:
    """Raw sockets on anyio: requests read through netclock's StampedStream (kernel stamps),
    every chunk written with a plain send() right after its stamp."""

    async def send_now(conn: socket.socket, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[conn.send(view):]
            except BlockingIOError:
                await anyio.wait_writable(conn)

    stamps: dict[str, list[int]] = {}
    counter = 0
    usage = {"prompt_tokens": 7, "completion_tokens": tokens, "total_tokens": 7 + tokens}
    tail = (_chunk(CHUNK % b'{"index":0,"delta":{},"finish_reason":"stop"}')
            + _chunk(b"data: " + json.dumps({"object": "chat.completion.chunk", "model": "bench",
                                             "choices": [], "usage": usage}).encode() + b"\n\n")
            + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")

    async def handle(conn: socket.socket) -> None:
        nonlocal counter
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.setsockopt(socket.SOL_SOCKET, netclock.SO_TIMESTAMPNS, 1)
        sock = netclock.StampedStream(conn, kernel=True)
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = await sock.read(65536)
                    if not data:
                        return
                    buf += data
                head, _, buf = buf.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(buf) < length:
                    buf += await sock.read(65536)
                buf = buf[length:]
                received = sock.last_arrival_ns or time.perf_counter_ns()
                if head.startswith(b"GET /stamps"):
                    body = json.dumps(stamps).encode()
                    stamps.clear()
                    await send_now(conn, b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                                         b"content-length: %d\r\n\r\n%s" % (len(body), body))
                    continue
                counter += 1  # a client's own x-request-id keys its truth (tools that send one)
                rid = next((line.split(b":", 1)[1].strip().decode() for line in head.split(b"\r\n")
                            if line.lower().startswith(b"x-request-id:")), "") or str(counter)
                await send_now(conn, b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                                     b"transfer-encoding: chunked\r\nx-request-id: " + rid.encode() + b"\r\n\r\n"
                                     + _chunk(ROLE))
                await anyio.sleep(first_delay)
                for i in range(tokens):
                    if i:
                        await anyio.sleep(gap)
                    if i == 0:
                        stamps[rid] = [received, time.perf_counter_ns()]
                    await send_now(conn, _chunk(TOKEN))  # send() at once, right after the stamp
                await send_now(conn, tail)
        except OSError:
            pass
        finally:
            await sock.aclose()

    async def main() -> None:
        listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
        listener.setblocking(False)
        Path(port_file).write_text(str(listener.getsockname()[1]))
        async with anyio.create_task_group() as tg:
            while True:
                await anyio.wait_readable(listener)
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                tg.start_soon(handle, conn)

    anyio.run(main)


class ServerProcess(ProbeServerProcess):
    """This file's truth server in its own process (bench_probe's launcher, our `serve`)."""

    script = __file__


# ----------------------------------------------------------------------------- client side


async def _round(base_url: str, concurrency: int, probes: int, clock: str,
                 stall_ms: tuple[float, float] | None) -> list[tuple[str, float]]:
    rng = random.Random(7)

    async def staller() -> None:
        assert stall_ms is not None
        while True:
            await anyio.sleep(rng.uniform(0.05, 0.15))
            time.sleep(rng.uniform(*stall_ms) / 1000)  # noqa: ASYNC251 - the loop blocked, as by a render burst

    kernel, off_loop = clock != "user", clock == "kernel"
    async with make_client(concurrency, TIMEOUTS, kernel_clock=kernel, off_loop=off_loop) as client:
        return await pooled_probes(client, base_url, concurrency, probes, staller if stall_ms else None)


def _cpu_s() -> float:
    """This process's CPU time, every thread's (the probe's reader threads included)."""
    return time.process_time()


def run(probes: int, streams: list[int], first_delay: float, gap: float, tokens: int,
        stall_ms: tuple[float, float], clocks: list[str]) -> None:
    print(f"Arrival clock on this machine: {netclock.clock_in_use()}; server: first token after "
          f"{first_delay * 1000:.0f} ms, then every {gap * 1000:.0f} ms; stall {stall_ms[0]:g}-{stall_ms[1]:g} ms")
    print(f"{'streams':>7} {'clock':>11} {'stall':>5} {'n':>5} {'median':>7} {'p90':>7} {'p99':>7} {'max':>7}"
          f" | {'req med':>7} {'req p99':>7} | {'resp med':>8} {'resp p99':>8} | {'CPU/probe':>9}   (ms)")
    first_seen: dict[str, tuple[int, int]] = {}
    original = stream._build_sample

    def spy(target, trace, out, state, start_wall, start_ns):  # type: ignore[no-untyped-def]
        sample = original(target, trace, out, state, start_wall, start_ns)
        if sample.request_id and out.first_ns is not None:
            first_seen[sample.request_id] = (trace.t0_ns, out.first_ns)
        return sample

    stream._build_sample = spy
    try:
        for concurrency in streams:
            for stall in (None, stall_ms):
                for clock in clocks:
                    server = ServerProcess(first_delay, gap, tokens)
                    first_seen.clear()
                    try:
                        server.stamps()
                        cpu = _cpu_s()
                        measured = anyio.run(_round, server.base_url, concurrency, probes, clock, stall)
                        cpu = _cpu_s() - cpu
                        stamps = server.stamps()
                    finally:
                        server.close()
                    errors, requests, legs = [], [], []
                    for rid, ttft_ms in measured:
                        if rid in stamps:
                            received, sent = stamps[rid]
                            t0, first = first_seen[rid]
                            errors.append(ttft_ms - (sent - received) / 1e6)
                            requests.append((received - t0) / 1e6)
                            legs.append((first - sent) / 1e6)
                    print(f"{concurrency:>7} {clock:>11} {'yes' if stall else 'no':>5}"
                          f" {len(errors):>5} {statistics.median(errors):>7.3f} {pct(errors, 0.9):>7.3f}"
                          f" {pct(errors, 0.99):>7.3f} {max(errors):>7.3f}"
                          f" | {statistics.median(requests):>7.3f} {pct(requests, 0.99):>7.3f}"
                          f" | {statistics.median(legs):>8.3f}"
                          f" {pct(legs, 0.99):>8.3f} | {cpu * 1000 / max(1, len(measured)):>9.3f}", flush=True)
    finally:
        stream._build_sample = original


def send_cost(rounds: int = 20000) -> None:
    """What a kernel send stamp costs per request: a 300-byte send() on loopback, the stamp read
    back from the error queue, the bytes received on the other end; against the same without."""
    from llmscope_tui.probe import kstamp

    with socket.create_server(("127.0.0.1", 0)) as listener:
        pairs = []
        for stamped in (True, False):
            client = socket.create_connection(listener.getsockname())
            server, _ = listener.accept()
            if stamped:
                assert kstamp.enable_tx_stamps(client), "SO_TIMESTAMPING refused here"
            client.setblocking(False)
            pairs.append((client, server, stamped))
        for _ in range(3):
            row = []
            for client, server, stamped in pairs:
                sent, start = 0, time.perf_counter()
                for _ in range(rounds):
                    sent += client.send(b"x" * 300)
                    if stamped:
                        kstamp.read_tx_stamps(client, (sent - 1) & 0xFFFFFFFF)
                    server.recv(65536)
                row.append((time.perf_counter() - start) / rounds * 1e6)
            print(f"send + recv per request: stamped {row[0]:.1f} us, plain {row[1]:.1f} us, "
                  f"the stamp {row[0] - row[1]:.1f} us")
        for client, server, _ in pairs:
            client.close()
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what")
    s = sub.add_parser("serve")
    s.add_argument("--first-delay", type=float, required=True)
    s.add_argument("--gap", type=float, required=True)
    s.add_argument("--tokens", type=int, required=True)
    s.add_argument("--port-file", required=True)
    sub.add_parser("send-cost", help="CPU of a kernel send stamp per request (loopback microbenchmark)")
    parser.add_argument("--probes", type=int, default=300)
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--first-delay", type=float, default=0.05)
    parser.add_argument("--gap", type=float, default=0.06)
    parser.add_argument("--tokens", type=int, default=4)
    parser.add_argument("--stall-ms", type=float, nargs=2, default=[20.0, 50.0])
    parser.add_argument("--clocks", nargs="+", choices=CLOCKS, default=["kernel", "user"],
                        help="kernel: reads on a thread (the product); kernel-loop: kernel stamps read on the loop; user: httpx's own backend")
    args = parser.parse_args()
    if args.what == "serve":
        serve(args.first_delay, args.gap, args.tokens, args.port_file)
    elif args.what == "send-cost":
        send_cost()
    else:
        run(args.probes, args.streams, args.first_delay, args.gap, args.tokens,
            (args.stall_ms[0], args.stall_ms[1]), args.clocks)


if __name__ == "__main__":
    main()
