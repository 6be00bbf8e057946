"""Reading the past back for the charts: long windows squeezed to chart width."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from llmscope_tui.model import Sample
from llmscope_tui.store import SampleStore, open_readonly

T0 = 1_700_000_000.0


def point(ts: float, ttft: float, target: str = "a", ok: bool = True) -> Sample:
    return Sample(
        ts=ts, target=target, provider="openai", model="m", ok=ok,
        ttft_ms=ttft if ok else None, latency_ms=ttft * 2 if ok else None, tokens_in=5, tokens_out=5,
        error_kind=None if ok else "timeout",
    )


def test_a_long_window_keeps_each_buckets_most_extreme_point(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(100, 5, size=10_000)
    values[1234] = 500.0  # one spike among 10k points must survive the squeeze
    values[8000] = 10.0
    with SampleStore(tmp_path / "s.db") as store:
        store.add_many(point(T0 + i, float(v)) for i, v in enumerate(values))
        store.add(point(T0 + 5000.5, 0.0, ok=False))  # failures are not charted
        store.add(point(T0 + 5000.7, 900.0, target="b"))  # another target is not mixed in
    with open_readonly(tmp_path / "s.db") as reader:
        ts, got = reader.metric_extremes("a", "ttft_ms", T0, T0 + 10_000, buckets=100, center=100.0)
        assert len(ts) == 100 and np.all(np.diff(ts) > 0)
        assert 500.0 in got and 10.0 in got and 900.0 not in got
        width = 100.0
        for k in (0, 37, 99):  # each bucket: the point furthest from the center, as a loop finds it
            chunk = values[int(k * width) : int((k + 1) * width)]
            assert got[k] == chunk[np.argmax(np.abs(chunk - 100.0))]
        _, highest = reader.metric_extremes("a", "ttft_ms", T0, T0 + 10_000, buckets=10)  # no center yet
        assert highest[1] == 500.0 and highest[0] == values[:1000].max()
        ts, got = reader.metric_extremes("a", "ttft_ms", T0 + 20_000, T0 + 30_000, buckets=50)
        assert len(ts) == 0
        with pytest.raises(ValueError):
            reader.metric_extremes("a", "ttft_ms; DROP TABLE samples", T0, T0 + 1, buckets=5)
