"""Do dashboards read the right percentiles? histogram_quantile from a real Prometheus against the
exact quantiles of the same samples in the data file.

    python bench/bench_metrics_accuracy.py                   # 75 s of the demo, today's buckets
    python bench/bench_metrics_accuracy.py --old-buckets     # the same with the pre-session-6 buckets
    python bench/bench_metrics_accuracy.py --duration 40 --max-error 10   # exit 1 past 10 %

Needs the `prometheus` binary (Debian: apt-get install prometheus). Everything is on loopback in
a temporary directory and stops by itself: a headless demo (--metrics-port, LLMSCOPE_LOCATION=bench,
a fresh data file, 4 targets probed every second) runs --duration seconds while Prometheus scrapes
it every second. Then, at the last scrape, per target, for TTFT and latency, p50 and p95:

- `window`: histogram_quantile(q, sum by (le, target) (X_bucket - X_bucket offset W)) with W from
  the first scrape to the last one: exactly the samples observed between them (no extrapolation),
  against numpy's quantile of the same samples from the data file (the ok samples in order of
  completion, from the first scrape's count to the last one's);
- `rate`: histogram_quantile(q, sum by (le, target) (rate(X_bucket[W]))), as a dashboard asks,
  against the same exact figures (rate() extrapolates to the window's edges, a little noise more).

`--old-buckets` patches llmscope_tui.metrics.LATENCY_BUCKETS in the probe's process to the buckets
it had before (0.05, 0.1, 0.2, 0.3, 0.5 ...), for the "before" figure in docs/metrics.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OLD_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0)
METRICS = (("llmscope_ttft_seconds", "ttft_ms"), ("llmscope_latency_seconds", "latency_ms"))
QUANTILES = (0.5, 0.95)

_PROBE = """
import sys
import llmscope_tui.metrics as metrics
if {old!r}:
    metrics.LATENCY_BUCKETS = {buckets!r}
from llmscope_tui.cli import main
sys.exit(main(sys.argv[1:]))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_probe(tmp: Path, port: int, duration_s: float, old: bool) -> subprocess.Popen[bytes]:
    code = _PROBE.format(old=old, buckets=OLD_BUCKETS)
    args = [sys.executable, "-c", code, "--headless", "--demo", "--db", str(tmp / "samples.db"),
            "--metrics-port", str(port), "--duration", f"{duration_s:g}s", "--log-file", str(tmp / "log.jsonl")]  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT / "src"), "LLMSCOPE_LOCATION": "bench",
           "HOME": str(tmp), "XDG_DATA_HOME": str(tmp / "data"), "XDG_STATE_HOME": str(tmp / "state")}  # fmt: skip
    return subprocess.Popen(args, env=env, stderr=subprocess.DEVNULL)


def start_prometheus(binary: str, tmp: Path, target_port: int, web_port: int) -> subprocess.Popen[bytes]:
    config = tmp / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: llmscope\n    static_configs: [{{targets: ['127.0.0.1:{target_port}']}}]\n"
    )
    args = [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{web_port}", "--log.level=error"]  # fmt: skip
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def query(api: str, promql: str, at: float) -> list[dict[str, Any]]:
    response = httpx.get(f"{api}/api/v1/query", params={"query": promql, "time": f"{at:.3f}"}, timeout=10)
    response.raise_for_status()
    return list(response.json()["data"]["result"])


def scrapes(api: str, at: float) -> dict[str, list[tuple[float, float]]]:
    """Per target: (scrape time, cumulative TTFT count) of every scrape up to ``at``."""
    found = query(api, 'llmscope_ttft_seconds_count{location="bench"}[10m]', at)
    return {s["metric"]["target"]: [(float(t), float(v)) for t, v in s["values"]] for s in found}


def exact(db: Path, target: str, field: str, first: int, last: int) -> np.ndarray:
    """The ok samples' values (seconds) observed between two scrapes: in order of completion,
    those past the first scrape's count up to the last one's."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute(
            f"SELECT {field} FROM samples WHERE target = ? AND ok = 1 AND ttft_ms IS NOT NULL "
            "ORDER BY ts + latency_ms / 1000.0",
            (target,),
        ).fetchall()
    return np.array([r[0] / 1000 for r in rows[first:last]], dtype=float)


def measure(api: str, db: Path) -> list[dict[str, Any]]:
    at = time.time()
    counts = scrapes(api, at)
    rows = []
    for target, series in sorted(counts.items()):
        (t_first, c_first), (t_last, c_last) = series[0], series[-1]
        window = max(1, round(t_last - t_first))
        for metric, field in METRICS:
            values = exact(db, target, field, int(c_first), int(c_last))
            for q in QUANTILES:
                sel = f'{metric}_bucket{{location="bench",target="{target}"}}'
                delta = f"histogram_quantile({q}, sum by (le) ({sel} - {sel} offset {window}s))"
                rated = f"histogram_quantile({q}, sum by (le) (rate({sel}[{window + 1}s])))"
                got = {name: float(query(api, expr, t_last)[0]["value"][1]) for name, expr in (("window", delta), ("rate", rated))}
                truth = float(np.quantile(values, q))
                rows.append({"target": target, "metric": field, "q": q, "n": len(values), "exact_s": truth,
                             **{f"{k}_s": v for k, v in got.items()},
                             **{f"{k}_error": v / truth - 1 for k, v in got.items()}})  # fmt: skip
    return rows


def run(duration_s: float, old: bool) -> list[dict[str, Any]]:
    binary = shutil.which("prometheus")
    if binary is None:
        raise SystemExit("bench_metrics_accuracy: no prometheus binary (Debian: apt-get install prometheus)")
    with tempfile.TemporaryDirectory(prefix="llmscope-prom-") as name:
        tmp = Path(name)
        metrics_port, web_port = free_port(), free_port()
        prometheus = start_prometheus(binary, tmp, metrics_port, web_port)
        probe = start_probe(tmp, metrics_port, duration_s, old)
        try:
            # samples that finished after the last scrape are left out on both sides (counts)
            deadline = time.monotonic() + duration_s + 60
            while probe.poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            if probe.poll() is None:
                raise SystemExit("bench_metrics_accuracy: the probe did not stop in time")
            return measure(f"http://127.0.0.1:{web_port}", tmp / "samples.db")
        finally:
            for process in (probe, prometheus):
                if process.poll() is None:
                    process.terminate()
                    try:
                        process.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        process.kill()
                        process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=75.0, help="seconds of probing (default 75)")
    parser.add_argument("--old-buckets", action="store_true", help="the buckets before session 6")
    parser.add_argument("--max-error", type=float, default=None, help="exit 1 if a |window error| passes this %%")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    rows = run(args.duration, args.old_buckets)
    if args.json:
        print(json.dumps(rows, indent=1))
    print(f"{'target':<22} {'metric':<10} {'q':>4} {'n':>4} {'exact':>8} {'window':>8} {'err':>7} {'rate()':>8} {'err':>7}")
    for r in rows:
        print(f"{r['target']:<22} {r['metric']:<10} {r['q']:>4} {r['n']:>4} {r['exact_s']:>8.4f} "
              f"{r['window_s']:>8.4f} {r['window_error'] * 100:>+6.1f}% {r['rate_s']:>8.4f} {r['rate_error'] * 100:>+6.1f}%")  # fmt: skip
    worst = max(abs(r["window_error"]) for r in rows)
    worst_rate = max(abs(r["rate_error"]) for r in rows)
    print(f"largest |error|: {worst * 100:.1f} % (window), {worst_rate * 100:.1f} % (rate)")
    if args.max_error is not None and worst * 100 > args.max_error:
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
