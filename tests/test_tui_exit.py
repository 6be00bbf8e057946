"""The way out of the UI when a browser or a service ends it: SIGTERM and Textual's own exit."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
from textual import messages

from llmscope_tui.config import load_settings
from llmscope_tui.tui.app import LLMScopeApp
from test_tui import _IdleMonitor

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


class _RecordingMonitor(_IdleMonitor):
    def __init__(self) -> None:
        super().__init__()
        self.reasons: list[str] = []

    def stop(self, reason: str = "", grace_s: float | None = None) -> None:
        self.reasons.append(reason)
        super().stop(reason, grace_s)


async def _until(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_sigterm_is_honoured_when_the_ui_reads_no_more_messages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An exit under way (or a screen that never yields) no longer reads Textual's message
    queue: SIGTERM must still stop the monitor and end the process within a bound."""
    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)
    monitor = _RecordingMonitor()
    app = LLMScopeApp(load_settings(demo=True, db=tmp_path / "x.db"), monitor=monitor,  # type: ignore[arg-type]
                      store_every_s=60, exit_watchdog=True, shutdown_timeout_s=0.2)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        async with app.run_test(size=(100, 30)):
            handler = signal.getsignal(signal.SIGTERM)
            assert callable(handler)
            monkeypatch.setattr(app, "call_next", lambda *args, **kwargs: None)  # the queue is not read
            handler(signal.SIGTERM, None)
            await _until(lambda: "signal SIGTERM" in monitor.reasons, "the monitor told to stop")
            await _until(lambda: exits == [0], "the watchdog ending the process")
    finally:
        signal.signal(signal.SIGTERM, previous)


async def test_textual_s_own_exit_stops_the_monitor_first(tmp_path: Path) -> None:
    """In a browser, closing the tab makes the web driver post ExitApp (not our quit)."""
    monitor = _RecordingMonitor()
    app = LLMScopeApp(load_settings(demo=True, db=tmp_path / "x.db"), monitor=monitor,  # type: ignore[arg-type]
                      store_every_s=60)
    async with app.run_test(size=(100, 30)) as pilot:
        app.post_message(messages.ExitApp())
        await pilot.pause(0.1)
        await _until(lambda: monitor.reasons != [], "the monitor told to stop")
    assert monitor.reasons[0] == "exit"
    assert app._monitor_done.is_set()


async def test_an_app_shut_down_without_an_exit_message_leaves_no_monitor_thread(tmp_path: Path) -> None:
    """A host that shuts the app down directly (run_test does) gets no ExitApp: the monitor still
    stops and its thread ends, so no probe loop outlives the app (nor runs into interpreter exit)."""
    monitor = _RecordingMonitor()
    app = LLMScopeApp(load_settings(demo=True, db=tmp_path / "x.db"), monitor=monitor,  # type: ignore[arg-type]
                      store_every_s=60)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(0.1)
        thread = app.monitor_thread._thread
        assert thread.is_alive()
    assert monitor.reasons == ["exit"]
    assert app._monitor_done.is_set()
    assert not thread.is_alive()
