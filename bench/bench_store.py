"""Store benchmark: insert rate through SampleStore, and read times on a big data file.

Prints figures; it is not a test and asserts nothing. Run:

    .venv/bin/python bench/bench_store.py                      # 10 million samples (builds ~2.5 GB)
    .venv/bin/python bench/bench_store.py --rows 200000        # quick run
    .venv/bin/python bench/bench_store.py --path /tmp/big.db   # keep the file and reuse it next time

Goals (DESIGN: the TUI reads a week of one target while the probe writes):
  * batched inserts through SampleStore.add(): >= 50,000 samples/s
  * one target's last 7 days, via metric_series() and via samples(), from a file holding
    10 million samples: < 50 ms (median of several runs)

The big file is 20 targets probed every 15 s for 90 days (20 x 5760 x 90 = 10.4 M samples,
so --rows 10000000 is 87 days), 2 % failures. It is bulk-loaded with executemany straight into
the schema SampleStore creates (the fixture, not what is measured); the insert rate is measured
separately through SampleStore on a fresh file.
"""

from __future__ import annotations

import argparse
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

try:
    import llmscope_tui.store  # noqa: F401
except ImportError:  # running from a checkout without the package installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from llmscope_tui.model import Sample
from llmscope_tui.store import SampleStore, open_readonly
from llmscope_tui.store.rows import INSERT_SAMPLE

PROVIDERS = [
    ("openai", "gpt-4o-mini"),
    ("anthropic", "claude-3-5-haiku-latest"),
    ("gemini", "gemini-2.0-flash"),
    ("ollama", "llama3.2:3b"),
    ("groq", "llama-3.1-8b-instant"),
]
INTERVAL_S = 15.0
DAY = 86400.0


def target_names(n: int) -> list[str]:
    return [f"{PROVIDERS[i % len(PROVIDERS)][0]}-{i:02d}" for i in range(n)]


def synthetic_rows(start: int, count: int, n_targets: int, t0: float, rng: np.random.Generator) -> list[tuple]:
    """Rows (SAMPLE_FIELDS + EXTRA order) for sample numbers start..start+count, interleaved
    across targets in time order as a real probe loop writes them."""
    idx = np.arange(start, start + count)
    tick = idx // n_targets
    tgt = idx % n_targets
    ts = t0 + tick * INTERVAL_S + tgt * (INTERVAL_S / n_targets) + rng.uniform(0, 0.5, count)
    ok = (rng.random(count) > 0.02).astype(np.int64)
    ttft = rng.lognormal(np.log(350), 0.25, count)
    tokens_out = rng.integers(8, 17, count)
    itl = rng.lognormal(np.log(12), 0.2, count)
    latency = ttft + itl * (tokens_out - 1)
    tps = 1000.0 / itl
    tokens_in = rng.integers(12, 40, count)
    cost = tokens_in * 1.5e-7 + tokens_out * 6e-7
    names = target_names(n_targets)
    rows = []
    for i, (t, g, k, a, b, c, d, e, f, h) in enumerate(
        zip(
            ts.tolist(),
            tgt.tolist(),
            ok.tolist(),
            ttft.round(3).tolist(),
            latency.round(3).tolist(),
            itl.round(3).tolist(),
            tps.round(3).tolist(),
            tokens_in.tolist(),
            tokens_out.tolist(),
            cost.tolist(),
            strict=True,
        )
    ):
        provider, model = PROVIDERS[g % len(PROVIDERS)]
        if k:
            rows.append(
                (t, names[g], provider, model, 1, None, 200, 0.0, a, b, c, d, e, f, 0, 0, None, 0, h,
                 f"req_{start + i:016x}", "probe", None, None)
            )
        else:
            rows.append(
                (t, names[g], provider, model, 0, "rate_limit", 429, 0.0, None, None, None, None, None, None,
                 None, 0, None, 0, None, f"req_{start + i:016x}", "probe", 2.0, "429 Too Many Requests")
            )
    return rows


def build_file(path: Path, rows: int, n_targets: int, now: float) -> None:
    """Bulk-load the fixture: indexes dropped during the load and rebuilt after (much faster)."""
    SampleStore(path).close()  # schema through the real migrations
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.execute("PRAGMA synchronous = OFF")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'samples' AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    ticks = -(-rows // n_targets)
    t0 = now - ticks * INTERVAL_S
    rng = np.random.default_rng(7)
    insert = INSERT_SAMPLE
    chunk = 250_000
    started = time.perf_counter()
    for start in range(0, rows, chunk):
        batch = synthetic_rows(start, min(chunk, rows - start), n_targets, t0, rng)
        conn.execute("BEGIN")
        conn.executemany(insert, batch)
        conn.execute("COMMIT")
        done = start + len(batch)
        print(f"\r  loaded {done:,} / {rows:,} rows ({time.perf_counter() - started:.0f} s)", end="", flush=True)
    print("\n  building indexes ...", flush=True)
    for _, sql in indexes:
        conn.execute(sql)
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    print(f"  built in {time.perf_counter() - started:.0f} s", flush=True)


def schema_sql(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [
            row[0]
            for row in conn.execute(
                "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
    finally:
        conn.close()


def fresh_schema(directory: Path) -> Path:
    path = directory / "schema.db"
    SampleStore(path).close()
    return path


def median_ms(fn: Callable[[], object], runs: int) -> tuple[float, float, object]:
    times = []
    result: object = None
    for _ in range(runs):
        t = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), min(times), result


def bench_insert(n: int, directory: Path) -> None:
    path = directory / "insert.db"
    rng = np.random.default_rng(1)
    samples = [Sample(*row) for row in synthetic_rows(0, n, 20, time.time() - n, rng)]
    store = SampleStore(path)
    started = time.perf_counter()
    for sample in samples:
        store.add(sample)
    queued = time.perf_counter() - started
    store.flush()
    elapsed = time.perf_counter() - started
    store.close()
    print(
        f"insert via SampleStore.add(): {n:,} samples in {elapsed:.2f} s = {n / elapsed:,.0f} samples/s "
        f"(queueing alone {n / queued:,.0f}/s, {queued / n * 1e6:.2f} us per add on the caller's thread)"
    )
    path2 = directory / "insert_many.db"
    store = SampleStore(path2)
    started = time.perf_counter()
    store.add_many(samples)
    store.flush()
    elapsed = time.perf_counter() - started
    store.close()
    print(f"insert via SampleStore.add_many(): {n:,} samples in {elapsed:.2f} s = {n / elapsed:,.0f} samples/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000_000, help="samples in the read fixture (default 10M)")
    parser.add_argument("--targets", type=int, default=20)
    parser.add_argument("--insert-rows", type=int, default=200_000, help="samples for the insert-rate figure")
    parser.add_argument("--runs", type=int, default=9, help="read runs per figure (median reported)")
    parser.add_argument("--path", type=Path, help="fixture file; reused when it already holds --rows samples")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="bench_store_") as tmp:
        tmpdir = Path(tmp)
        print(f"sqlite {sqlite3.sqlite_version}, python {sys.version.split()[0]}")
        bench_insert(args.insert_rows, tmpdir)

        path = args.path or tmpdir / "big.db"
        now = time.time()
        reader = None
        if path.exists():
            reader = open_readonly(path)
            if reader.count() != args.rows or schema_sql(path) != schema_sql(fresh_schema(tmpdir)):
                reader.close()
                reader = None
                path.unlink()
                for suffix in ("-wal", "-shm"):
                    Path(str(path) + suffix).unlink(missing_ok=True)
            else:
                # After the newest sample of every target: the clean-up below deletes ts >= now.
                newest = (reader.latest(t) for t in reader.targets())
                now = max(s.ts for s in newest if s is not None) + 1
                print(f"reusing {path} ({args.rows:,} samples)")
        if reader is None:
            print(f"building {path}: {args.rows:,} samples, {args.targets} targets, every {INTERVAL_S:g} s")
            build_file(path, args.rows, args.targets, now)
            reader = open_readonly(path)
        size_mb = path.stat().st_size / 1e6
        target = reader.targets()[args.targets // 2]
        since = now - 7 * DAY
        print(f"file: {path} ({size_mb:,.0f} MB), reading target {target!r}, last 7 days")

        med, best, (ts, _values) = median_ms(lambda: reader.metric_series(target, "ttft_ms", since=since), args.runs)
        print(f"metric_series(ttft_ms, 7 days): {len(ts):,} points, median {med:.1f} ms (best {best:.1f} ms)")
        med, best, (ts, _values) = median_ms(lambda: reader.metric_series(target, "ttft_ms", limit=500), args.runs)
        print(f"metric_series(ttft_ms, last 500): {len(ts):,} points, median {med:.2f} ms (best {best:.2f} ms)")
        med, best, rows = median_ms(lambda: reader.samples(target, since=since), args.runs)
        print(f"samples(7 days): {len(rows):,} samples, median {med:.1f} ms (best {best:.1f} ms)")  # type: ignore[arg-type]
        med, best, got = median_ms(reader.targets, args.runs)
        print(f"targets(): {len(got)} targets, median {med:.2f} ms")  # type: ignore[arg-type]
        med, best, got = median_ms(lambda: reader.count(target, since=since), args.runs)
        print(f"count(target, 7 days): {got:,}, median {med:.1f} ms")

        # The same read while a SampleStore in this process writes into the file, as in the TUI:
        # 1,000 samples/s (a real probe loop writes ~1/s; this is far above it).
        writer = SampleStore(path)
        rng = np.random.default_rng(3)
        live = [Sample(*row) for row in synthetic_rows(0, 50_000, args.targets, now, rng)]
        stop = threading.Event()

        def produce() -> None:
            for sample in live:
                if stop.wait(0.001):
                    return
                writer.add(sample)

        producer = threading.Thread(target=produce)
        producer.start()
        time.sleep(0.3)
        med, best, (ts, _values) = median_ms(lambda: reader.metric_series(target, "ttft_ms", since=since), args.runs)
        stop.set()
        producer.join()
        print(f"metric_series(7 days) while a writer adds 1,000 samples/s: {len(ts):,} points, median {med:.1f} ms")
        writer.close()
        reader.close()
        if args.path is not None:
            # Leave the file as found: drop what the live-write check added.
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("DELETE FROM samples WHERE ts >= ?", (now,))
            conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
