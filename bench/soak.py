"""Soak: the real Monitor for 100,000 probes against the local fake provider with faults mixed
in, watching for growth. Every 10 s it prints the probes done, the rate, RSS, open fds,
threads and the data file's size (with its -wal); at the end, the error kinds stored against
the faults scripted, and the growth from the first 10 % of the run to the end.

    python bench/soak.py                         # 100,000 probes, 20 targets (about 8-12 min)
    python bench/soak.py --probes 5000           # a quick look
    python bench/soak.py --db /tmp/soak.db --every 5

The fake provider (tests/fake_provider.py, all four wire protocols) runs in a child process,
so the figures are the monitor's alone. Each request draws its script from a fixed mix (seeded):
most stream normally; the rest are 429s, 500s, 401s, resets and EOFs mid-stream, malformed
frames, in-stream error events and streams that end without output. Loopback only; it stops by
itself. Linux (/proc) for RSS, fds and threads.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

#: (weight, what the fake does, the error kind a right reading stores; None = ok)
MIX: tuple[tuple[int, dict[str, Any], str | None], ...] = (
    (70, {}, None),
    (5, {"status": 429, "retry_after": "1"}, "rate_limit"),
    (4, {"status": 500}, "server_error"),
    (2, {"status": 401}, "auth"),
    (4, {"fault": "reset_mid_stream"}, "network"),
    (4, {"fault": "eof_mid_stream"}, "network"),
    (4, {"fault": "error_event"}, "stream_error/overloaded"),  # Anthropic's is overloaded_error
    (4, {"fault": "malformed"}, "malformed"),  # a bad frame, then the stream goes on
    (3, {"tokens": ()}, "empty_response"),
)
PROTOCOLS = ("openai-compatible", "anthropic", "gemini", "ollama")


def serve(seed: int) -> None:
    """The child: the fake provider with the mix, until stdin closes."""
    from fake_provider import FakeProvider, Script

    rng = random.Random(seed)
    weights = [w for w, _, _ in MIX]
    scripts = [Script(tokens=("a", "b", "c", "d"), token_gap_s=0.001, first_token_delay_s=0.002).with_(**kw)
               if "tokens" not in kw else Script(**kw) for _, kw, _ in MIX]
    lock = threading.Lock()

    def pick(_request: Any) -> Any:
        with lock:
            return rng.choices(scripts, weights)[0]

    with FakeProvider(default=pick, raise_errors=False) as fake:
        print(fake.base_url, flush=True)
        sys.stdin.read()


def config_text(base_url: str, targets: int, interval: str, db: Path) -> str:
    lines = [f'[monitor]\ninterval = "{interval}"\ntimeout = "5s"\nconcurrency = 32\ndb = "{db}"\n',
             "[spc]\nbaseline_samples = 20\n"]
    for i in range(targets):
        provider = PROTOCOLS[i % len(PROTOCOLS)]
        base = f"{base_url}/v1" if provider == "openai-compatible" else base_url
        lines.append(
            f'[[targets]]\nname = "t{i:02d}-{provider}"\nprovider = "{provider}"\nmodel = "fake-model"\n'
            f'base_url = "{base}"\napi_key_env = "SOAK_KEY"\n'
        )
    return "\n".join(lines)


def proc_figures() -> tuple[float, int, int]:
    """RSS in MiB, open fds, threads of this process (Linux /proc)."""
    rss_kb = 0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss_kb = int(line.split()[1])
    return rss_kb / 1024, len(os.listdir("/proc/self/fd")), len(os.listdir("/proc/self/task"))


def file_size_mb(db: Path) -> float:
    return sum(p.stat().st_size for p in (db, db.with_name(db.name + "-wal")) if p.exists()) / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", default="run", choices=("run", "serve"))
    parser.add_argument("--probes", type=int, default=100_000)
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--interval", default="20ms", help="per target (default 20ms)")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between figure lines")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", type=Path, default=None)
    args = parser.parse_args()
    if args.mode == "serve":
        serve(args.seed)
        return 0

    import anyio

    from llmscope_tui.config import load_settings
    from llmscope_tui.monitor import Monitor

    folder = Path(tempfile.mkdtemp(prefix="llmscope-soak-"))
    db = args.db or folder / "soak.db"
    child = subprocess.Popen([sys.executable, __file__, "serve", "--seed", str(args.seed)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdin is not None
    base_url = child.stdout.readline().strip()
    config = folder / "soak.toml"
    config.write_text(config_text(base_url, args.targets, args.interval, db))
    settings = load_settings(config, env={"SOAK_KEY": "sk-soak-not-a-real-key"})
    monitor = Monitor(settings)
    kinds: Counter[str] = Counter()
    monitor.subscribe(lambda e: kinds.update([e.get("error_kind") or "ok"]) if e.get("event") == "sample" else None)

    rows: list[tuple[float, int, float, int, int, float]] = []
    done = threading.Event()
    started = time.monotonic()
    print(f"soak: {args.probes:,} probes, {args.targets} targets every {args.interval}, data file {db}")
    print(f"{'s':>6} {'probes':>8} {'per s':>7} {'RSS MiB':>8} {'fds':>5} {'threads':>7} {'file MiB':>8}")

    def report() -> None:
        last_n, last_t = 0, started
        while not done.wait(args.every):
            now, n = time.monotonic(), monitor.summary.samples
            rss, fds, threads = proc_figures()
            rows.append((now - started, n, rss, fds, threads, file_size_mb(db)))
            print(f"{now - started:6.0f} {n:8,} {(n - last_n) / (now - last_t):7.1f} {rss:8.1f} {fds:5d} "
                  f"{threads:7d} {file_size_mb(db):8.1f}", flush=True)
            last_n, last_t = n, now

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    try:
        anyio.run(lambda: monitor.run(count=args.probes))
    finally:
        done.set()
        child.stdin.close()
        child.wait(10)
    elapsed = time.monotonic() - started
    rss, fds, threads = proc_figures()
    print(f"done: {monitor.summary.samples:,} probes in {elapsed:.0f} s ({monitor.summary.samples / elapsed:.0f}/s); "
          f"unsaved {monitor.summary.unsaved}; final RSS {rss:.1f} MiB, fds {fds}, threads {threads}, "
          f"file {file_size_mb(db):.1f} MiB")
    total = max(1, sum(kinds.values()))
    print("stored   :", ", ".join(f"{k} {v / total:.1%}" for k, v in kinds.most_common()))
    scripted: Counter[str] = Counter()
    for weight, _, kind in MIX:
        scripted[kind or "ok"] += weight
    total_w = sum(scripted.values())
    print("scripted :", ", ".join(f"{k} {v / total_w:.1%}" for k, v in scripted.most_common()))
    warm = [r for r in rows if r[1] >= args.probes * 0.1]
    if len(warm) >= 2:
        first, last = warm[0], warm[-1]
        print(f"growth from {first[1]:,} to {last[1]:,} probes: RSS {last[2] - first[2]:+.1f} MiB, "
              f"fds {last[3] - first[3]:+d}, threads {last[4] - first[4]:+d}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
