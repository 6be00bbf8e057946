"""Ingest endpoint benchmarks: throughput over keep-alive, and how long idle/slow connections live.

    python bench/bench_ingest.py                    # both
    python bench/bench_ingest.py rate --requests 3000 --records 1
    python bench/bench_ingest.py slowloris --connections 30 --timeout 0.5

`rate`: the endpoint runs on an event loop in a background thread (as in the monitor); the main
thread posts N requests one after another over one keep-alive httpx connection and prints req/s,
records/s, the per-request time and the CPU per request (all, and the server's thread). Client and server share one
process (and its GIL); on a busy machine compare the CPU figure, which the load moves least.

`slowloris`: with the server's idle/head timeout set to --timeout seconds, opens three kinds of
connection: silent (connects, sends nothing), trickling (sends one header byte every 0.1 s,
never finishing the head) and idle keep-alive (one complete request, then nothing). It prints,
per kind, how many the server still holds after 3 x timeout and when it closed the others.

Runs against whichever server stack the tree has (llmscope_tui.server, else the older
llmscope_tui.ingest.IngestServer on llmscope_tui.httpserver), so one script measures before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import select
import socket
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

RECORD = {"provider": "openai", "model": "gpt-4o-mini", "tokens_in": 120, "tokens_out": 40, "latency_ms": 850}


class Background:
    """An event loop in a thread running one server until stop()."""

    def __init__(self, make: Callable[[], Any]) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = asyncio.run_coroutine_threadsafe(self._start(make), self.loop).result(10)

    async def _start(self, make: Callable[[], Any]) -> Any:
        server = make()
        await server.start()
        return server

    def cpu(self) -> float:
        """CPU seconds the server's thread has used."""

        async def read() -> float:
            return time.thread_time()

        return asyncio.run_coroutine_threadsafe(read(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def make_server(sink: Callable[[list[Any]], None], timeout: float | None = None) -> Callable[[], Any]:
    try:
        from llmscope_tui.server import IngestServer

        stack = "uvicorn (llmscope_tui.server)"

        def make() -> Any:
            limits = {} if timeout is None else {"head_timeout_s": timeout, "keep_alive_s": timeout}
            return IngestServer(sink, **limits)
    except ImportError:
        from llmscope_tui.httpserver import LoopbackHTTPServer

        from llmscope_tui.ingest import IngestServer as OldIngest

        stack = "h11 (llmscope_tui.httpserver)"

        def make() -> Any:
            ingest = OldIngest(sink)
            if timeout is None:
                return ingest
            return LoopbackHTTPServer(ingest.handle, idle_timeout=timeout)

    print(f"server stack: {stack}")
    return make


def rate(requests: int, records: int) -> None:
    taken = [0]
    background = Background(make_server(lambda samples: taken.__setitem__(0, taken[0] + len(samples))))
    body = json.dumps([RECORD] * records if records > 1 else RECORD).encode()
    headers = {"content-type": "application/json"}
    url = background.server.base_url + "/v1/events"
    try:
        with httpx.Client(timeout=10) as client:
            for _ in range(200):  # warm up
                client.post(url, content=body, headers=headers)
            taken[0] = 0
            each: list[float] = []
            cpu, server_cpu = time.process_time(), background.cpu()
            started = time.perf_counter()
            for _ in range(requests):
                sent = time.perf_counter()
                response = client.post(url, content=body, headers=headers)
                each.append((time.perf_counter() - sent) * 1000)
                if response.status_code != 202:
                    raise SystemExit(f"unexpected {response.status_code}: {response.text}")
            elapsed = time.perf_counter() - started
            cpu, server_cpu = time.process_time() - cpu, background.cpu() - server_cpu
    finally:
        background.stop()
    each.sort()
    print(
        f"rate: {requests} POSTs x {records} record(s) over one keep-alive connection in {elapsed:.2f} s: "
        f"{requests / elapsed:,.0f} req/s, {taken[0] / elapsed:,.0f} records/s; "
        f"per request median {statistics.median(each):.2f} ms, p90 {each[int(len(each) * 0.9)]:.2f} ms, "
        f"CPU {cpu / requests * 1000:.2f} ms (server thread {server_cpu / requests * 1000:.2f} ms)"
    )


def slowloris(connections: int, timeout: float) -> None:
    background = Background(make_server(lambda samples: None, timeout))
    port = background.server.port
    kinds: dict[str, list[socket.socket]] = {"silent": [], "trickling": [], "idle keep-alive": []}
    request = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    payload = json.dumps(RECORD).encode()
    opened = time.monotonic()
    for _ in range(connections):
        for kind, socks in kinds.items():
            sock = socket.create_connection(("127.0.0.1", port))
            if kind == "idle keep-alive":
                sock.sendall(request % len(payload) + payload)
                sock.settimeout(5)
                sock.recv(65536)  # the 202
            socks.append(sock)
    closed_at: dict[str, list[float]] = {kind: [] for kind in kinds}
    open_socks = {kind: list(socks) for kind, socks in kinds.items()}
    trickle = b"GET /v1/health HTTP/1.1\r\nX-Slow: " + b"a" * 10_000
    sent = 0
    horizon = opened + 3 * timeout
    try:
        while time.monotonic() < horizon:
            now = time.monotonic()
            for kind, socks in open_socks.items():
                for sock in list(socks):
                    if kind == "trickling":
                        try:
                            sock.send(trickle[sent : sent + 1])
                        except OSError:
                            pass
                    if _eof(sock):
                        closed_at[kind].append(now - opened)
                        socks.remove(sock)
            sent += 1
            time.sleep(0.1)
        for kind, socks in open_socks.items():
            done = closed_at[kind]
            median = f"{statistics.median(done):.2f} s" if done else "-"
            print(
                f"slowloris: {kind:<16} {len(socks):>3} of {connections} still held after {3 * timeout:.1f} s "
                f"(timeout {timeout:g} s); closed ones after median {median}"
            )
    finally:
        for socks in kinds.values():
            for sock in socks:
                sock.close()
        background.stop()


def _eof(sock: socket.socket) -> bool:
    """True once the server closed the connection (a response it sent first is read and dropped)."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        return sock.recv(65536) == b""
    except OSError:
        return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    r = sub.add_parser("rate")
    r.add_argument("--requests", type=int, default=3000)
    r.add_argument("--records", type=int, default=1)
    s = sub.add_parser("slowloris")
    s.add_argument("--connections", type=int, default=30)
    s.add_argument("--timeout", type=float, default=0.5)
    args = parser.parse_args()
    if args.command in (None, "rate"):
        rate(getattr(args, "requests", 3000), getattr(args, "records", 1))
    if args.command in (None, "slowloris"):
        slowloris(getattr(args, "connections", 30), getattr(args, "timeout", 0.5))


if __name__ == "__main__":
    main()
