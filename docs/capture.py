"""Print the TUI's screen as text, from the running app on the snapshot tests' fixed replay.

The screen captures in docs/tui.md come from here:

    .venv/bin/python docs/capture.py 160x48            # the whole screen at 160x48
    .venv/bin/python docs/capture.py 80x24 m           # after pressing keys (here: maximise)

The app is the real LLMScopeApp; the monitor is tests/test_tui_snapshots.py's ReplayMonitor
(the real Monitor fed fixed samples), so the picture is the same on every machine.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

import test_tui_snapshots as replay
from llmscope_tui.config import load_settings
from llmscope_tui.tui import state as state_module
from llmscope_tui.tui.app import LLMScopeApp


def main(size: str, keys: list[str]) -> None:
    os.environ["TZ"] = "UTC"
    time.tzset()
    folder = Path(tempfile.mkdtemp())
    (folder / "config.toml").write_text(replay.CONFIG)
    os.chdir(folder)  # the status line shows the paths: short and fixed
    settings = load_settings(folder / "config.toml", env={})
    settings = dataclasses.replace(settings, config_file=Path("config.toml"), db_path=Path("samples.db"))
    monitor = replay.ReplayMonitor(settings, replay.script_samples(settings))
    clock = replay._ReplayTime(replay.T0)
    state_module.time = clock  # type: ignore[assignment]
    app = LLMScopeApp(settings, fps=10, store_every_s=3600, monitor=monitor)
    for event in monitor.recorded:
        if event["event"] == "sample":
            clock.now = float(event["ts"])
        app.state.apply(event)
    app.snapshot_store_result = replay.store_result(settings, monitor)  # type: ignore[attr-defined]
    width, height = (int(n) for n in size.split("x"))

    async def show() -> None:
        async with app.run_test(size=(width, height)) as pilot:
            await replay.show_live(pilot, *keys)
            print(replay.screen_text(app))

    asyncio.run(show())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "160x48", sys.argv[2:])
