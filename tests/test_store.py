"""The data file: schema, batched writer, never losing a sample, reads from other connections."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from llmscope_tui.model import (
    EXTRA_SAMPLE_FIELDS,
    SAMPLE_FIELDS,
    ErrorKind,
    Metric,
    Sample,
    Violation,
)
from llmscope_tui.store import SCHEMA_VERSION, SampleStore, StoreError, open_readonly
from llmscope_tui.store import schema as store_schema
from llmscope_tui.store import writer as store_writer

T0 = 1_790_000_000.0  # 2026-09-21, a fixed clock for deterministic tests


def full_sample(i: int = 0, **over: Any) -> Sample:
    """A sample with every field set to a distinct, non-default value."""
    values: dict[str, Any] = {
        "ts": T0 + i + 0.123456,
        "target": f"t{i % 3}",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "ok": 1,
        "error_kind": None,
        "http_status": 200,
        "connect_ms": 12.5,
        "ttft_ms": 300.25 + i,
        "latency_ms": 900.5 + i,
        "itl_ms": 20.125,
        "tps": 49.75,
        "tokens_in": 31,
        "tokens_out": 16,
        "tokens_cached": 8,
        "tokens_cache_write": 5,
        "tokens_reasoning": 3,
        "tokens_estimated": 1,
        "cost_usd": 1.23456789e-05,
        "request_id": f"req_{i}",
        "source": "app",
        "retry_after_s": 1.5,
        "error_message": "none really",
    }
    values.update(over)
    return Sample(**values)


def failed_sample(i: int, target: str = "t0", **over: Any) -> Sample:
    return Sample(
        ts=T0 + i,
        target=target,
        provider="openai",
        model="m",
        ok=0,
        error_kind=ErrorKind.RATE_LIMIT,
        http_status=429,
        ttft_ms=999.0,  # a failed probe may still carry timings; SPC must never see them
        retry_after_s=2.0,
        error_message="429 Too Many Requests",
        **over,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "data" / "samples.db"


@pytest.fixture
def store(db: Path) -> Any:
    s = SampleStore(db)
    yield s
    s.close()


def raw_count(path: Path, table: str = "samples") -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()


# -- schema ---------------------------------------------------------------------------------


def test_new_file_has_the_schema_and_wal(store: SampleStore, db: Path) -> None:
    assert db.exists()  # parent folder created
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        info = conn.execute("PRAGMA table_info(samples)").fetchall()
        names = [row[1] for row in info]
        types = {row[1]: row[2] for row in info}
        later = list(store_schema.LATER_SAMPLE_COLUMNS)  # added by migrations: at the end
        assert names == ["id", *(f for f in SAMPLE_FIELDS if f not in later), *EXTRA_SAMPLE_FIELDS, *later]
        assert types["id"] == "INTEGER" and info[0][5] == 1  # the integer primary key
        assert types["ts"] == "REAL" and types["ok"] == "INTEGER" and types["tokens_in"] == "INTEGER"
        assert types["tokens_cache_write"] == "INTEGER"
        assert types["ttft_ms"] == "REAL" and types["tps"] == "REAL" and types["cost_usd"] == "REAL"
        assert types["target"] == "TEXT" and types["request_id"] == "TEXT"
        index_cols = {
            name: [r[2] for r in conn.execute(f"PRAGMA index_info({name})")]
            for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL")
        }
        assert index_cols["samples_target_ts"][:2] == ["target", "ts"]
        assert index_cols["samples_ts"] == ["ts"]
        assert index_cols["violations_target_metric_ts"] == ["target", "metric", "ts"]
        assert index_cols["violations_ts"] == ["ts"]
        vcols = [r[1] for r in conn.execute("PRAGMA table_info(violations)")]
        assert vcols == ["id", "target", "metric", "rule", "ts", "value", "z", "center", "sigma"]
        bcols = [r[1] for r in conn.execute("PRAGMA table_info(baselines)")]
        assert bcols == list(store_schema.BASELINE_COLUMNS)
    finally:
        conn.close()


def test_migrations_run_in_order_each_in_a_transaction(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    conn = sqlite3.connect(path, isolation_level=None)
    calls: list[int] = []

    def second(c: sqlite3.Connection) -> None:
        calls.append(c.execute("PRAGMA user_version").fetchone()[0])
        c.execute("ALTER TABLE samples ADD COLUMN region TEXT")

    known = len(store_schema.MIGRATIONS)
    migrations: list[Any] = [*store_schema.MIGRATIONS, second, ["CREATE TABLE extra (x)"]]
    store_schema.migrate(conn, path, migrations[:1])
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    store_schema.migrate(conn, path, migrations)
    assert calls == [known]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == known + 2
    assert "region" in [r[1] for r in conn.execute("PRAGMA table_info(samples)")]

    def broken(c: sqlite3.Connection) -> None:
        c.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        store_schema.migrate(conn, path, [*migrations, broken])
    assert conn.execute("PRAGMA user_version").fetchone()[0] == known + 2  # rolled back as a whole
    assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'half_done'").fetchall()
    conn.close()


def test_an_existing_file_is_opened_without_migrating_again(db: Path) -> None:
    with SampleStore(db) as s:
        s.add(full_sample())
    with SampleStore(db) as s:
        assert s.count() == 1


def test_a_newer_schema_is_refused_clearly(db: Path) -> None:
    SampleStore(db).close()
    conn = sqlite3.connect(db)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer llmscope-tui") as err:
        SampleStore(db)
    assert str(db) in str(err.value)
    with pytest.raises(StoreError, match="newer llmscope-tui"):
        open_readonly(db)


def test_a_file_that_is_not_a_database_gives_store_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.db"
    bad.write_bytes(b"this is not sqlite, it is a text file\n" * 200)
    with pytest.raises(StoreError, match="not a usable llmscope-tui data file") as err:
        SampleStore(bad)
    assert str(bad) in str(err.value)
    assert bad.read_bytes() == b"this is not sqlite, it is a text file\n" * 200  # left as it was
    assert "\n" not in str(err.value)
    with pytest.raises(StoreError, match=str(bad).replace("\\", "\\\\")):
        open_readonly(bad)


def test_open_readonly_refuses_missing_and_foreign_files(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(StoreError, match=f"no data file at {missing}"):
        open_readonly(missing)
    assert not missing.exists()  # reading never creates the file
    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE things (x)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not an llmscope-tui data file"):
        open_readonly(other)
    with pytest.raises(StoreError, match="is a directory"):
        open_readonly(tmp_path)


# -- writing and reading back ------------------------------------------------------------------


def test_round_trip_of_every_field(store: SampleStore) -> None:
    full = full_sample(7)
    minimal = Sample(ts=T0 + 100, target="t1", provider="anthropic", model="claude")
    enum_kind = failed_sample(200, target="t1")
    store.add(full)
    store.add(minimal)
    store.add(enum_kind)
    assert store.flush(5)
    got = store.samples()
    assert got[0] == full
    assert got[1] == minimal
    assert got[2].error_kind == "rate_limit" and type(got[2].error_kind) is str
    for name in SAMPLE_FIELDS + EXTRA_SAMPLE_FIELDS:
        assert getattr(got[0], name) == getattr(full, name), name
    assert store.latest("t1") == got[2]
    assert store.latest("nobody") is None


def test_add_snapshots_the_sample(store: SampleStore) -> None:
    s = full_sample(1)
    store.add(s)
    s.ttft_ms = -1.0  # the caller reuses its object
    store.flush(5)
    assert store.samples()[0].ttft_ms == full_sample(1).ttft_ms


def test_odd_value_types_are_coerced_not_stored_as_blobs(store: SampleStore, db: Path) -> None:
    errors: list[str] = []
    store.on_error = errors.append
    odd = full_sample(
        1,
        tokens_in=np.int64(31),
        ttft_ms=np.float32(300.5),
        ok=True,
        tokens_out=np.float64(float("nan")),
        error_kind=ErrorKind.TIMEOUT_TOTAL,
    )
    # One add_many: one batch, so one report for the two unstorable samples.
    store.add_many([odd, full_sample(2, ts=None), full_sample(3), full_sample(4, ts=float("inf"))])
    store.flush(5)
    assert len(errors) == 1 and "dropped 2 samples" in errors[0] and "ts is required" in errors[0]
    # A value that cannot be converted is left empty; the sample is kept.
    store.add(full_sample(5, http_status="teapot", tokens_in=np.int64(2**40)))
    assert store.flush(5)
    conn = sqlite3.connect(db)
    types = conn.execute("SELECT typeof(tokens_in), typeof(ttft_ms), typeof(ok), typeof(tokens_out) FROM samples").fetchall()
    conn.close()
    assert types[0] == ("integer", "real", "integer", "null")
    got = store.samples()
    assert [s.ts for s in got] == [full_sample(i).ts for i in (1, 3, 5)]
    assert got[0].tokens_in == 31 and got[0].ok == 1 and got[0].error_kind == "timeout_total"
    assert got[2].http_status is None and got[2].tokens_in == 2**40
    assert len(errors) == 2
    assert errors[1] == f"values that cannot be stored in {store.path} were left empty: http_status='teapot' is not an integer"
    assert store.pending == 0


def test_add_many_and_batching(db: Path) -> None:
    s = SampleStore(db, batch_size=100, flush_interval_s=0.05)
    sizes: list[int] = []
    real_write = s._write

    def counting(batch: Any, **kw: Any) -> None:
        sizes.append(batch.size)
        real_write(batch, **kw)

    s._write = counting  # type: ignore[method-assign]
    s.add_many(full_sample(i) for i in range(1000))
    for i in range(1000, 1500):
        s.add(full_sample(i))
    assert s.flush(10)
    assert s.count() == 1500 and s.pending == 0
    assert sum(sizes) == 1500
    assert max(sizes) <= 100
    assert len(sizes) <= 40  # batched, not one transaction per sample
    s.close()


def test_flush_waits_only_for_what_was_queued_and_close_writes_the_rest(db: Path) -> None:
    # A long interval: nothing would be written for a minute unless flush/close ask for it.
    s = SampleStore(db, flush_interval_s=60.0)
    for i in range(10):
        s.add(full_sample(i))
    assert s.pending == 10
    assert s.flush(timeout=5) is True
    assert raw_count(db) == 10 and s.pending == 0
    assert s.flush(timeout=0) is True  # nothing queued: immediate
    for i in range(10, 15):
        s.add(full_sample(i))
    s.close()
    s.close()  # idempotent
    assert raw_count(db) == 15
    with pytest.raises(StoreError, match="closed"):
        s.add(full_sample(99))
    assert not s._thread.is_alive()


def test_store_is_closed_at_interpreter_exit(tmp_path: Path) -> None:
    path = tmp_path / "exit.db"
    code = textwrap.dedent(
        f"""
        from llmscope_tui.store import SampleStore
        from llmscope_tui.model import Sample
        s = SampleStore({str(path)!r}, flush_interval_s=60.0)
        for i in range(250):
            s.add(Sample(ts=1.0 + i, target="t", provider="p", model="m", ok=1, ttft_ms=1.0))
        # no close(): the atexit hook must write what is queued
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert raw_count(path) == 250


def test_concurrent_adds_from_many_threads(store: SampleStore) -> None:
    def work(k: int) -> None:
        for i in range(300):
            store.add(full_sample(k * 1000 + i))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.flush(10)
    assert store.count() == 1200


# -- readers beside the writer ---------------------------------------------------------------


def test_readers_in_other_connections_and_processes_while_writing(store: SampleStore, db: Path) -> None:
    stop = threading.Event()

    def writer() -> None:
        i = 0
        while not stop.is_set():
            store.add(full_sample(i))
            i += 1
            if i % 50 == 0:
                time.sleep(0.001)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        seen: list[int] = []
        reader = open_readonly(db)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and (len(seen) < 3 or seen[-1] == seen[0]):
            seen.append(reader.count())  # a separate read-only connection
            store.samples(limit=5)  # the writer's own thread-local readers
            time.sleep(0.05)
        assert seen[-1] > seen[0], seen
        code = (
            "import sys; from llmscope_tui.store import open_readonly\n"
            f"r = open_readonly({str(db)!r}); print(r.count(), len(r.targets())); r.close()\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        count, targets = map(int, result.stdout.split())
        assert count > 0 and targets == 3
        reader.close()
    finally:
        stop.set()
        thread.join()
    assert store.flush(10)


def test_reads_from_many_threads(store: SampleStore) -> None:
    store.add_many(full_sample(i) for i in range(300))
    store.flush(5)
    results: list[int] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            for _ in range(20):
                results.append(len(store.samples(target="t1")))
                store.metric_series("t1", Metric.TTFT)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert set(results) == {100}
    assert len(store._readers) <= 1  # connections of finished threads are let go


# -- queries --------------------------------------------------------------------------------


def test_queries_filter_and_order(store: SampleStore) -> None:
    # Added out of order: reads are ordered by ts.
    for i in reversed(range(30)):
        store.add(full_sample(i, source="probe" if i % 2 else "app"))
    store.flush(5)
    assert store.targets() == ["t0", "t1", "t2"]
    assert store.count() == 30
    assert store.count("t1") == 10
    assert store.count(since=T0 + 20) == 10
    t1 = store.samples("t1")
    assert [s.ts for s in t1] == sorted(s.ts for s in t1)
    assert len(store.samples(since=T0 + 10, until=T0 + 20)) == 10  # [since, until)
    assert all(s.source == "app" for s in store.samples(source="app"))
    last = store.samples("t0", limit=3)  # the newest 3, oldest first
    assert [s.request_id for s in last] == ["req_21", "req_24", "req_27"]
    assert store.samples(limit=0) == []
    with pytest.raises(ValueError):
        store.samples(limit=-1)


def test_metric_series_excludes_failures_and_honours_limit(store: SampleStore) -> None:
    for i in range(20):
        store.add(full_sample(i * 3, ttft_ms=float(i)))  # target t0 (i*3 % 3 == 0)
    store.add(failed_sample(1000))
    store.add(full_sample(1003, target="t0", ttft_ms=None, itl_ms=None))  # ok but no value (1 token)
    store.flush(5)
    ts, values = store.metric_series("t0", Metric.TTFT)
    assert values.dtype == np.float64 and ts.dtype == np.float64
    assert values.tolist() == [float(i) for i in range(20)]
    assert np.all(np.diff(ts) > 0)
    ts, values = store.metric_series("t0", "ttft_ms", limit=5)
    assert values.tolist() == [15.0, 16.0, 17.0, 18.0, 19.0]  # the LAST five, oldest first
    assert ts.tolist() == [full_sample(i * 3).ts for i in range(15, 20)]
    _, values = store.metric_series("t0", "ttft_ms", since=T0 + 30, until=T0 + 45)
    assert values.tolist() == [10.0, 11.0, 12.0, 13.0, 14.0]
    _, latency = store.metric_series("t0", "latency_ms")
    assert len(latency) == 21  # includes the ok sample without ttft, never the failed one
    ts, values = store.metric_series("nobody", "tps")
    assert ts.shape == values.shape == (0,)
    with pytest.raises(ValueError, match="unknown metric"):
        store.metric_series("t0", "ts; DROP TABLE samples")


def test_violations_round_trip_newest_last_and_survive_reopening(db: Path) -> None:
    v = [
        Violation(target="a", metric="ttft_ms", rule=1, ts=T0 + 3, value=900.0, z=3.4, center=300.0, sigma=50.0),
        Violation(target="a", metric="tps", rule=2, ts=T0 + 1, value=40.0, z=-0.5, center=45.0, sigma=2.0),
        Violation(target="b", metric="ttft_ms", rule=5, ts=T0 + 2, value=1.0, z=2.2, center=0.5, sigma=0.2),
    ]
    with SampleStore(db) as s:
        for x in v:
            s.add_violation(x)
        s.flush(5)
        assert s.violations() == [v[1], v[2], v[0]]
        assert s.violations(target="a", metric="ttft_ms") == [v[0]]
        assert s.violations(limit=2) == [v[2], v[0]]
        assert s.violations(since=T0 + 2) == [v[2], v[0]]
    with SampleStore(db) as s:
        assert s.violations() == [v[1], v[2], v[0]]


def test_baselines_replace_clear_and_survive_reopening(db: Path) -> None:
    with SampleStore(db) as s:
        first = s.save_baseline("a", "ttft_ms", 300.0, 40.0, 30, "none", T0, T0 + 100, T0 + 100)
        second = s.save_baseline("a", "ttft_ms", 5.7, 0.1, 29, "log", T0 + 200, T0 + 300, T0 + 300)
        other = s.save_baseline("b", "tps", 50.0, 3.0, np.int64(30), None, T0, T0 + 50, created_ts=T0 + 50)
        assert first < second < other
        s.flush(5)
        active = s.active_baselines()
        assert set(active) == {("a", "ttft_ms"), ("b", "tps")}
        row = active[("a", "ttft_ms")]
        assert row["id"] == second
        assert (row["center"], row["sigma"], row["n"], row["transform"]) == (5.7, 0.1, 29, "log")
        assert (row["window_start"], row["window_end"], row["created_ts"]) == (T0 + 200, T0 + 300, T0 + 300)
        assert active[("b", "tps")]["transform"] == "none" and active[("b", "tps")]["n"] == 30
        assert [b["active"] for b in s.baselines("a")] == [0, 1]  # history kept
    with SampleStore(db) as s:
        assert set(s.active_baselines()) == {("a", "ttft_ms"), ("b", "tps")}
        s.clear_baselines("a")
        s.flush(5)
        assert set(s.active_baselines()) == {("b", "tps")}
        new = s.save_baseline("a", "ttft_ms", 1.0, 1.0, 30, "none", T0, T0, T0)
        assert new > other  # ids keep growing across restarts
        s.clear_baselines()
        s.flush(5)
        assert s.active_baselines() == {}
    with SampleStore(db) as s:
        assert s.active_baselines() == {}
        assert len(s.baselines()) == 4


def test_baseline_changes_are_ordered_after_queued_samples(db: Path) -> None:
    s = SampleStore(db, flush_interval_s=60.0)
    seen: list[tuple[int, int]] = []
    real_apply = s._apply

    def spy(conn: sqlite3.Connection, op: Any) -> None:
        seen.append((conn.execute("SELECT count(*) FROM samples").fetchone()[0], op.params[0]))
        real_apply(conn, op)

    s._apply = spy  # type: ignore[method-assign]
    for i in range(50):
        s.add(full_sample(i))
    s.save_baseline("t0", "ttft_ms", 1.0, 1.0, 30, "none", T0, T0 + 50)
    s.add(full_sample(51))
    s.close()
    assert seen and seen[0][0] == 50  # the 50 samples before it were in place, not the 51st


def test_purge_older_than_removes_samples_and_violations(store: SampleStore) -> None:
    now = T0 + 30 * 86400
    for days in (10, 8, 6, 1):
        store.add(full_sample(0, ts=now - days * 86400))
        store.add_violation(
            Violation(target="t0", metric="tps", rule=1, ts=now - days * 86400, value=1, z=4, center=0, sigma=1)
        )
    # Purge while a writer keeps adding: nothing new may be lost or corrupted.
    stop = threading.Event()

    def keep_adding() -> None:
        i = 0
        while not stop.is_set():
            store.add(full_sample(i, ts=now + i))
            i += 1
            time.sleep(0.0005)

    thread = threading.Thread(target=keep_adding)
    thread.start()
    try:
        removed = store.purge_older_than(7, now=now)
    finally:
        stop.set()
        thread.join()
    assert removed == 4  # 2 samples + 2 violations
    store.flush(5)
    old = store.samples(until=now)
    assert [round((now - s.ts) / 86400) for s in old] == [6, 1]
    assert len(store.violations()) == 2
    assert store.purge_older_than(7, now=now) == 0
    with pytest.raises(ValueError):
        store.purge_older_than(0)


# -- never lose a sample -------------------------------------------------------------------------


def test_write_failures_hold_samples_report_once_and_recover(db: Path) -> None:
    errors: list[str] = []
    s = SampleStore(db, on_error=errors.append)
    s.retry_initial_s = 0.01
    s.retry_max_s = 0.02
    failures = {"left": 5}
    real_write = s._write

    def flaky(batch: Any, **kw: Any) -> None:
        if failures["left"] > 0:
            failures["left"] -= 1
            raise sqlite3.OperationalError("database or disk is full")
        real_write(batch, **kw)

    s._write = flaky  # type: ignore[method-assign]
    s.add_many(full_sample(i) for i in range(12))
    assert s.flush(timeout=10)
    assert failures["left"] == 0
    assert len(errors) == 1, errors  # once per streak, not per retry
    assert errors[0] == f"cannot write samples to {db}: database or disk is full; 12 samples held in memory, retrying"
    assert s.last_error is None and s.pending == 0
    assert s.count() == 12
    # A second streak is reported again.
    failures["left"] = 2
    s.add(full_sample(100))
    assert s.flush(timeout=10)
    assert len(errors) == 2 and "1 sample held" in errors[1]
    s.close()
    assert raw_count(db) == 13


def test_real_disk_full_then_space_again(db: Path) -> None:
    """SQLite's own SQLITE_FULL (a page limit on the writer's connection), then lifted."""
    errors: list[str] = []
    s = SampleStore(db, on_error=errors.append)
    s.retry_initial_s = 0.01
    s.retry_max_s = 0.05
    s.add(full_sample(0))
    assert s.flush(5)
    lift = threading.Event()
    failing = threading.Event()
    real_write = s._write

    def limited(batch: Any, **kw: Any) -> None:  # runs on the writer thread, which owns the connection
        conn = s._conn
        if lift.is_set():
            conn.execute("PRAGMA max_page_count = 1073741823")
        else:
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            conn.execute(f"PRAGMA max_page_count = {pages}")
        try:
            real_write(batch, **kw)
        except sqlite3.OperationalError:
            failing.set()
            raise

    s._write = limited  # type: ignore[method-assign]
    s.add_many(full_sample(i, error_message="x" * 2000) for i in range(1, 200))
    assert failing.wait(5)
    assert s.flush(timeout=0.2) is False
    assert s.pending == 199
    assert s.last_error == "database or disk is full"
    assert s.samples() == [full_sample(0)]  # readers still work meanwhile
    lift.set()
    assert s.flush(timeout=10)
    assert len(errors) == 1 and "database or disk is full" in errors[0] and "199 samples held" in errors[0]
    s.close()
    assert raw_count(db) == 200


def test_close_gives_up_only_after_its_timeout_and_says_so(db: Path) -> None:
    errors: list[str] = []
    s = SampleStore(db, on_error=errors.append)
    s.retry_initial_s = 0.01
    s.retry_max_s = 0.02

    def always_locked(batch: Any, **kw: Any) -> None:
        raise sqlite3.OperationalError("database is locked")

    s._write = always_locked  # type: ignore[method-assign]
    s.add_many(full_sample(i) for i in range(3))
    started = time.monotonic()
    s.close(timeout=0.3)
    assert 0.25 < time.monotonic() - started < 5
    assert not s._thread.is_alive()
    assert errors[0].startswith(f"cannot write samples to {db}: database is locked; 3 samples held")
    assert errors[-1] == f"cannot write to {db}: database is locked; 3 samples were not saved"
    assert s.unsaved_samples == 3  # what a run's exit code reads (exit 1, DESIGN 8)
    assert s.flush(timeout=1) is False


def test_purge_waits_behind_a_failing_batch_then_times_out(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    s = SampleStore(db)
    s.retry_initial_s = 0.01
    s.retry_max_s = 0.02
    s._write = lambda batch, **kw: (_ for _ in ()).throw(sqlite3.OperationalError("database is locked"))  # type: ignore[method-assign]
    s.add(full_sample(0))
    monkeypatch.setattr(store_writer, "CALL_TIMEOUT_S", 0.2)
    with pytest.raises(StoreError, match="retention purge on .* timed out after 0.2 s: database is locked"):
        s.purge_older_than(7)
    s.close(timeout=0.1)


# -- spend, usage and columns (costs, budgets, rollups) -------------------------------------------


def test_spend_usage_and_columns(store: SampleStore) -> None:
    store.add_many(
        [
            full_sample(0, target="a", provider="openai", model="m1", cost_usd=0.25, source="probe"),
            full_sample(1, target="a", provider="openai", model="m1", cost_usd=0.5, source="app"),
            full_sample(2, target="b", provider="anthropic", model="m2", cost_usd=None, tokens_cached=None),
            failed_sample(3, target="b"),
        ]
    )
    store.flush(5)
    assert store.spend() == 0.75
    assert store.spend(target="a", since=T0 + 1) == 0.5
    assert store.spend(provider="anthropic") == 0.0
    assert store.spend(source="app") == 0.5
    assert store.spend(until=T0) == 0.0
    assert store.spend_by("target") == {"a": 0.75, "b": 0.0}
    assert store.spend_by("source", since=T0 + 1) == {"app": 0.5, "probe": 0.0}
    with pytest.raises(ValueError):
        store.spend_by("cost_usd; DROP TABLE samples")
    usage = store.usage_by_model()
    assert usage == [("anthropic", "m2", 31, 16, 0, 5), ("openai", "m", 0, 0, 0, 0), ("openai", "m1", 62, 32, 16, 10)]
    cols = store.columns(["target", "ok", "ttft_ms", "tokens_cached"])
    assert cols["target"].dtype == object and cols["target"].tolist() == ["a", "a", "b", "b"]
    assert cols["ok"].dtype == np.int64 and cols["ok"].tolist() == [1, 1, 1, 0]
    assert cols["ttft_ms"].dtype == np.float64 and cols["ttft_ms"][3] == 999.0
    assert cols["tokens_cached"].dtype == np.float64 and np.isnan(cols["tokens_cached"][2:]).all()
    empty = store.columns(["target", "tps"], target="nobody")
    assert empty["target"].shape == empty["tps"].shape == (0,)
    assert store.columns(["ok"], source="app")["ok"].tolist() == [1, 1]
    with pytest.raises(ValueError, match="unknown sample columns"):
        store.columns(["nope"])
