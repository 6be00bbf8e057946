"""A sample queued while the writer gathers a batch does not wake it (a thread switch per probe)."""

from __future__ import annotations

import time
from pathlib import Path

from llmscope_tui.model import Sample, Target
from llmscope_tui.store import SampleStore

TARGET = Target(name="t", provider="openai", model="m", protocol="openai", base_url="http://x/v1")


def _sample(i: int) -> Sample:
    return Sample.of(TARGET, 1_790_000_000.0 + i, ttft_ms=100.0 + i)


def test_samples_wake_the_writer_only_to_start_or_fill_a_batch(tmp_path: Path) -> None:
    store = SampleStore(tmp_path / "d.db", batch_size=10, flush_interval_s=60.0)
    try:
        wakes: list[int] = []
        real_set = store._wake.set

        def counting_set() -> None:
            wakes.append(len(store._queue))
            real_set()

        store._wake.set = counting_set  # type: ignore[method-assign]
        store.add(_sample(0))  # wakes the idle writer, which opens a batch (room for 9 more)
        deadline = time.monotonic() + 30
        while store._room != 9:
            assert time.monotonic() < deadline, "the writer never started the batch"
            time.sleep(0.001)
        assert len(wakes) == 1
        for i in range(1, 9):
            store.add(_sample(i))
        assert len(wakes) == 1  # 8 more: the batch's window will take them, no wake each
        store.add(_sample(9))  # the tenth fills the batch: written now, not in 60 s
        assert len(wakes) == 2
        deadline = time.monotonic() + 30
        while store.pending:
            assert time.monotonic() < deadline, "a full batch waited for its window"
            time.sleep(0.001)
        assert store.count() == 10
    finally:
        store.close()
