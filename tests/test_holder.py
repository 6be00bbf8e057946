"""One monitor per data file: a live monitor holds the file; a second one refuses or only views."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmscope_tui import cli
from llmscope_tui.config import load_settings
from llmscope_tui.incidents import Incident, MetricEffect
from llmscope_tui.model import Sample
from llmscope_tui.monitor import Monitor
from llmscope_tui.store import SampleStore
from llmscope_tui.store.holder import HeldError, Holder, hold, holder_of, lock_path
from llmscope_tui.tui.app import LLMScopeApp
from llmscope_tui.tui.widgets import IncidentsTable
from llmscope_tui.viewer import FileViewer, ViewerError


def _sample(ts: float, ttft: float = 200.0) -> Sample:
    return Sample(ts=ts, target="demo-openai", provider="openai", model="gpt-4o-mini", ok=True,
                  ttft_ms=ttft, latency_ms=ttft + 100, tokens_in=5, tokens_out=5)


def test_a_held_file_names_its_holder_and_a_killed_holder_leaves_no_lock(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    child = subprocess.Popen(
        [sys.executable, "-c", ("import sys; from pathlib import Path; from llmscope_tui.store.holder import hold;"
                                f" h = hold(Path({str(db)!r})); print('held', flush=True); sys.stdin.read()")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        assert oct(lock_path(db).stat().st_mode & 0o777) == "0o600"
        with pytest.raises(HeldError) as held:
            hold(db)
        assert held.value.holder.pid == child.pid
        assert f"(PID {child.pid}, since " in str(held.value) and "use --db for another data file" in str(held.value)
        assert holder_of(db) == held.value.holder
        child.send_signal(signal.SIGKILL)  # no clean-up runs: the OS drops the lock
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert holder_of(db) is None
    with hold(db):
        assert holder_of(db) is not None and holder_of(db).pid == os.getpid()  # type: ignore[union-attr]
    assert holder_of(db) is None


def test_a_second_headless_monitor_on_a_held_file_refuses_naming_the_holder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    with hold(db):
        assert cli.main(["--demo", "--db", str(db), "--format", "text", "--count", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith(f"llmscope-tui: {db} is being written by another llmscope-tui (PID {os.getpid()}, since ")
    assert not db.exists()  # the refused run wrote nothing


def test_reads_work_under_a_live_monitor_and_rebaseline_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "s.db"
    with SampleStore(db) as store:
        store.add_many(_sample(time.time() - 60 + i) for i in range(5))
    with hold(db):
        assert cli.main(["export", "--db", str(db), "--csv", str(tmp_path / "out.csv")]) == 0
        assert cli.main(["report", "--db", str(db)]) == 0
        capsys.readouterr()
        assert cli.main(["rebaseline", "--db", str(db)]) == 2
        err = capsys.readouterr().err
        assert f"is being written by another llmscope-tui (PID {os.getpid()}" in err and "b in its TUI" in err
    assert cli.main(["rebaseline", "--db", str(db)]) == 0  # nobody holds it now


def test_the_tui_on_a_held_file_is_a_viewer_and_holds_a_free_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db = tmp_path / "s.db"
    seen: list[tuple[type, Holder | None]] = []

    def fake_run(self: LLMScopeApp, *, mouse: bool = True) -> None:
        seen.append((type(self.monitor), holder_of(db)))

    monkeypatch.setattr(LLMScopeApp, "run", fake_run)
    assert cli.main(["--tui", "--demo", "--db", str(db)]) == 0
    assert seen[0][0] is Monitor and seen[0][1] is not None and seen[0][1].pid == os.getpid()
    with hold(db):
        assert cli.main(["--tui", "--demo", "--db", str(db)]) == 0
    assert seen[1][0] is FileViewer


async def _wait(pilot: Any, condition: Callable[[], bool], what: str, timeout: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await pilot.pause(0.05)


@pytest.mark.slow
@pytest.mark.anyio
async def test_a_viewer_shows_what_the_holder_writes_and_b_says_why_it_does_nothing(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    now = time.time()
    settings = load_settings(demo=True, db=db)
    store = SampleStore(db)
    try:
        store.add_many(_sample(now - 100 + i) for i in range(10))
        store.flush()
        viewer = FileViewer(settings, Holder(4242, now - 600), every_s=0.1)
        app = LLMScopeApp(settings, monitor=viewer, store_every_s=60)
        notes: list[str] = []
        app.notify = lambda message, **kw: notes.append(str(message))  # type: ignore[method-assign]
        async with app.run_test(size=(120, 40)) as pilot:
            await _wait(pilot, lambda: "VIEWER: PID 4242 writes this file" in str(app.query_one("#banner").render()),
                        "the viewer banner")
            # the viewer has marked where the file ends (samples written before that are history)
            await _wait(pilot, lambda: viewer._last_id >= 10 and app.state.demo, "the viewer's start event")
            assert str(app.query_one("#status").render()).startswith("VIEWER")
            app.bridge.render_status()
            assert "clock" not in app.bridge._status_line  # a viewer stamps no probes: it names no clock
            before = app.state.samples
            store.add_many(_sample(time.time() - 5 + i * 0.1, ttft=210.0) for i in range(7))
            incident = Incident(id=1, target="demo-openai", provider="openai", opened_ts=now - 3, start_ts=now - 4,
                                rules={1})
            incident.metrics["ttft_ms"] = MetricEffect("ttft_ms", 0.5, 200.0, 300.0)
            store.save_incident(incident)
            store.flush()
            await _wait(pilot, lambda: app.state.samples >= before + 7, "the holder's new samples")
            await _wait(pilot, lambda: app.query_one(IncidentsTable).row_count >= 1, "the holder's incident")
            await pilot.press("b")
            await _wait(pilot, lambda: any("does nothing in a viewer" in n for n in notes), "b's refusal")
            assert any("PID 4242" in n for n in notes)
            with pytest.raises(ViewerError):
                viewer.rebaseline(None)
    finally:
        store.close()
