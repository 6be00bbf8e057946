"""Rollup speed: per-target rollups over 1h / 24h / 7d from a realistic data file.

    python bench/bench_rollups.py [--targets 20] [--interval 15] [--days 8]

Builds a file of N targets probed every --interval seconds for --days days (20 x 15 s x 8 days
= about 920k samples), then times rollups() for each window (median of 5). The TUI refreshes
rollups in a worker thread every few seconds, so the 24h figure is the one that matters live.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from llmscope_tui.model import EXTRA_SAMPLE_FIELDS, SAMPLE_FIELDS
from llmscope_tui.rollups import rollups
from llmscope_tui.store import SampleStore, open_readonly


def build(path: Path, targets: int, interval: float, days: float, now: float) -> int:
    store = SampleStore(path)
    store.close()
    import sqlite3

    conn = sqlite3.connect(path)
    cols = SAMPLE_FIELDS + EXTRA_SAMPLE_FIELDS
    sql = f"INSERT INTO samples ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
    rng = np.random.default_rng(7)
    n = int(days * 86400 / interval)
    total = 0
    for t in range(targets):
        ts = now - days * 86400 + np.arange(n) * interval + t * interval / targets
        ttft = rng.lognormal(np.log(400), 0.25, n)
        ok = rng.random(n) > 0.01
        rows = []
        for i in range(n):
            good = bool(ok[i])
            rows.append((
                float(ts[i]), f"target-{t}", "openai", "gpt-4o-mini", int(good), None if good else "rate_limit",
                200 if good else 429, 0.0, float(ttft[i]) if good else None,
                float(ttft[i] * 1.5) if good else None, 15.0 if good else None, 60.0 if good else None,
                20, 12 if good else None, 0, 0, None, 0, 1e-5 if good else None, None, "probe", None, None,
            ))
        conn.executemany(sql, rows)
        conn.commit()
        total += n
    conn.close()
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--interval", type=float, default=15.0)
    parser.add_argument("--days", type=float, default=8.0)
    args = parser.parse_args()
    now = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rollups.db"
        t0 = time.perf_counter()
        total = build(path, args.targets, args.interval, args.days, now)
        print(f"built {total:,} samples ({args.targets} targets every {args.interval:g} s for {args.days:g} days) "
              f"in {time.perf_counter() - t0:.1f} s")
        with open_readonly(path) as store:
            for window in ("1h", "24h", "7d"):
                times = []
                for _ in range(5):
                    t0 = time.perf_counter()
                    result = rollups(store, window, "target", now=now)
                    times.append(time.perf_counter() - t0)
                rows = sum(r.count for r in result)
                print(f"rollups({window:>3}) by target: {len(result)} rollups over {rows:,} samples, "
                      f"median {statistics.median(times) * 1000:,.0f} ms")


if __name__ == "__main__":
    main()
