"""`llmscope-tui serve`: the TUI reaches a browser through textual-serve (loopback only)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port
from llmscope_tui import cli

aiohttp = pytest.importorskip("aiohttp")  # installed with textual-serve (the [serve] and [test] extras)


pytestmark = pytest.mark.slow  # a real process in a pseudo-terminal or behind a web server: seconds each

async def first_screen(port: int, timeout: float) -> str:
    """Open the page, then its websocket as the browser does, and collect what the app draws."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            try:
                async with session.get(f"http://127.0.0.1:{port}/") as page:
                    assert page.status == 200
                    assert "llmscope-tui" in await page.text()
                    break
            except aiohttp.ClientConnectorError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        ws, seen = await _open_tab(session, port, "Targets", max(0.1, deadline - time.monotonic()))
        await ws.close()
        return seen


def test_serve_shows_the_tui_in_a_browser_session(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmscope_tui", "serve", "--demo", "--db", str(tmp_path / "s.db"), "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        start_new_session=True,
    )
    try:
        seen = asyncio.run(first_screen(port, timeout=40))
        assert "Targets" in seen and "demo-openai" in seen
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert f"http://127.0.0.1:{port}" in proc.stderr.read().decode()


def test_serve_refuses_an_address_other_machines_can_reach(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["serve", "--demo", "--host", "0.0.0.0"]) == 2
    err = capsys.readouterr().err
    assert "loopback" in err and "ssh -L 8000:127.0.0.1:8000" in err and "Traceback" not in err


async def _open_tab(session: Any, port: int, wanted: str, timeout: float) -> tuple[Any, str]:
    """A browser tab's websocket, left open, once its screen shows ``wanted``."""
    deadline = time.monotonic() + timeout
    ws = await session.ws_connect(f"http://127.0.0.1:{port}/ws?width=120&height=30")
    seen = ""
    while wanted not in seen and time.monotonic() < deadline:
        try:
            message = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
        except TimeoutError:
            break
        if message.type == aiohttp.WSMsgType.BINARY:
            seen += message.data.decode("utf-8", "replace")
        elif message.type == aiohttp.WSMsgType.TEXT:
            seen += message.data
        else:
            break
    return ws, seen


def _start_serve(tmp_path: Path, port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "llmscope_tui", "serve", "--demo", "--db", str(tmp_path / "s.db"), "--port", str(port)],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True,
    )


async def _page_up(session: Any, port: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            async with session.get(f"http://127.0.0.1:{port}/") as page:
                assert page.status == 200
                return
        except aiohttp.ClientConnectorError:
            assert time.monotonic() < deadline, "serve never answered"
            await asyncio.sleep(0.2)


def _gone(pids: list[int], timeout: float) -> list[int]:
    """The PIDs still running after ``timeout`` (polled)."""
    from llmscope_tui.processes import alive

    deadline = time.monotonic() + timeout
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.2)
        left = [p for p in left if alive(p)]
    return left


def _cleanup(proc: subprocess.Popen[bytes], pids: list[int]) -> None:
    for pid in [proc.pid, *pids]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    proc.wait(timeout=10)


def test_sigterm_to_serve_ends_it_and_every_tab_app_and_a_second_tab_is_a_viewer(tmp_path: Path) -> None:
    from llmscope_tui.processes import child_pids

    port = free_port()
    proc = _start_serve(tmp_path, port)
    apps: list[int] = []

    async def two_tabs() -> tuple[str, str]:
        async with aiohttp.ClientSession() as session:
            await _page_up(session, port, 40)
            first, seen1 = await _open_tab(session, port, "demo-openai", 60)
            second, seen2 = await _open_tab(session, port, "VIEWER", 60)
            apps.extend(child_pids(proc.pid))
            os.kill(proc.pid, signal.SIGTERM)  # with both tabs still open
            await asyncio.to_thread(proc.wait, 30)
            await first.close()
            await second.close()
            return seen1, seen2

    try:
        seen1, seen2 = asyncio.run(two_tabs())
        assert "demo-openai" in seen1 and "VIEWER" not in seen1
        assert "VIEWER" in seen2  # the first tab holds the data file: the second only views it
        assert len(apps) >= 2, apps
        assert proc.returncode is not None
        assert _gone(apps, 20) == [], "a tab's app outlived serve"
    finally:
        _cleanup(proc, apps)


def test_a_tab_app_ends_when_serve_is_killed(tmp_path: Path) -> None:
    from llmscope_tui.processes import child_pids

    port = free_port()
    proc = _start_serve(tmp_path, port)
    apps: list[int] = []

    async def one_tab() -> str:
        async with aiohttp.ClientSession() as session:
            await _page_up(session, port, 40)
            tab, seen = await _open_tab(session, port, "demo-openai", 60)
            apps.extend(child_pids(proc.pid))
            os.kill(proc.pid, signal.SIGKILL)  # no clean-up in serve: the app must notice alone
            await asyncio.to_thread(proc.wait, 10)
            await tab.close()
            return seen

    try:
        assert "demo-openai" in asyncio.run(one_tab())
        assert apps, "serve started no app"
        assert _gone(apps, 20) == [], "an orphaned app kept running"
    finally:
        _cleanup(proc, apps)
