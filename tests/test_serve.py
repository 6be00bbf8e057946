"""`llmscope-tui serve`: the TUI reaches a browser through textual-serve (loopback only)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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
        seen = ""
        async with session.ws_connect(f"http://127.0.0.1:{port}/ws?width=100&height=30") as ws:
            while "Targets" not in seen and time.monotonic() < deadline:
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
