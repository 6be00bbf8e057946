"""Shared fixtures: an isolated environment (no real keys, no user dirs) and the fake provider."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from llmscope_tui.monitor import Monitor
from real_server import free_port  # noqa: F401 - tests import it from here, benches from real_server

_PROVIDER_VARS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "OLLAMA_HOST",
    "OLLAMA_URL",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_ENDPOINT",
    "OPENROUTER_API_KEY",
    "GROQ_API_KEY",
    "MISTRAL_API_KEY",
    "DEEPSEEK_API_KEY",
    "TOGETHER_API_KEY",
    "FIREWORKS_API_KEY",
    "LLMSCOPE_CONFIG",
    "LLMSCOPE_DB",
    "LLMSCOPE_INTERVAL",
    "MONITORING_INTERVAL",
    "LLMSCOPE_RETENTION_DAYS",
    "DATA_RETENTION_DAYS",
    "LLMSCOPE_API_KEY",
    "LLMSCOPE_LOCATION",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_HEADERS",
)


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test sees no provider keys and private config/data dirs, never the user's."""
    for var in _PROVIDER_VARS:
        monkeypatch.delenv(var, raising=False)
    home = tmp_path / "home"
    for var, sub in (("XDG_CONFIG_HOME", "config"), ("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state")):
        monkeypatch.setenv(var, str(home / sub))
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def fake_provider() -> Iterator[object]:
    """A FakeProvider on 127.0.0.1 speaking all four protocols (see tests/fake_provider.py)."""
    from fake_provider import FakeProvider

    with FakeProvider() as fake:
        yield fake


def samples_in_the_file_alone(db: Path, elsewhere: Path) -> int:
    """After a clean stop: the -wal is gone or empty, and the data file copied alone (as a
    backup would) holds every sample; returns how many."""
    wal = Path(f"{db}-wal")
    assert not wal.exists() or wal.stat().st_size == 0, f"-wal left with {wal.stat().st_size} bytes"
    elsewhere.mkdir(exist_ok=True)
    copy = shutil.copy(db, elsewhere / db.name)
    with closing(sqlite3.connect(copy)) as conn:
        alone: int = conn.execute("SELECT count(*) FROM samples").fetchone()[0]
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM samples").fetchone()[0] == alone
    return alone


def fake_settings(tmp_path: Path, fake: Any, interval: str = "50ms", extra: str = "") -> Any:
    """Settings with one target on the fake provider: fast interval, 5-point baselines, rule 1,
    a made-up price so costs are non-zero; `extra` is appended TOML (budgets, ...)."""
    from llmscope_tui.config import load_settings

    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[monitor]
interval = "{interval}"
timeout = "3s"
db = "{tmp_path / 'samples.db'}"

[spc]
baseline_samples = 5
rules = [1]

[alerts]
bell = false

[[targets]]
name = "fake"
provider = "openai-compatible"
model = "fake-model"
base_url = "{fake.base_url}/v1"

[[prices]]
model = "fake-model"
input_per_mtok = 1000
output_per_mtok = 1000
{extra}
"""
    )
    return load_settings(config, env={})


def subprocess_env(**extra: str) -> dict[str, str]:
    """os.environ as the isolated_env fixture left it, plus extras, for running the CLI."""
    env = dict(os.environ)
    env.update(extra)
    return env


def ThreadedServer(handler: Any, *, name: str) -> Any:
    """A request handler (Request -> Response) served on the app's own stack in a thread, as the
    demo is: what the tests' fake webhook receivers and upstreams run on."""
    from llmscope_tui.server.app import endpoint
    from llmscope_tui.server.run import Limits, ThreadedHTTPServer

    app = endpoint(handler, max_body_bytes=1_000_000, body_timeout_s=30)
    return ThreadedHTTPServer(app, limits=Limits(shutdown_timeout_s=0), name=name)


class ScriptedProbes:
    """Stands in for ``probe_once`` (monkeypatch it into llmscope_tui.probe.scheduler): every
    target's n-th probe (from 0) has the TTFT ``ttft_ms(target name, n)`` gives.

    For tests of what the monitor does with what it measured (SPC, incidents, scope, restarts):
    the figures are the ones a server would have caused, free of the scheduling noise a busy test
    machine adds to a real stamp. How a real stream is measured is test_probe.py's subject."""

    def __init__(self, ttft_ms: Any) -> None:
        self.ttft_ms = ttft_ms
        self.count: dict[str, int] = {}

    async def __call__(self, client: Any, target: Any, api_key: Any, timeouts: Any, *, wall_clock: Any) -> Any:
        import anyio

        from llmscope_tui.model import Sample

        n = self.count.get(target.name, 0)
        self.count[target.name] = n + 1
        ttft = float(self.ttft_ms(target.name, n))
        await anyio.lowlevel.checkpoint()
        return Sample(
            ts=wall_clock(), target=target.name, provider=target.provider, model=target.model,
            ok=1, http_status=200, connect_ms=0.0, ttft_ms=ttft, latency_ms=ttft + 40.0,
            itl_ms=10.0, tps=100.0, tokens_in=12, tokens_out=5,
        )  # fmt: skip

    def install(self, monkeypatch: Any) -> ScriptedProbes:
        from llmscope_tui.probe import scheduler

        monkeypatch.setattr(scheduler, "probe_once", self)
        return self


def wait_for_stored_samples(db: Path, timeout: float = 30.0) -> int:
    """Wait until another process has committed samples to ``db`` (read-only, so it never
    blocks the writer); the count, or AssertionError after ``timeout``."""
    import sqlite3
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                    count = conn.execute("SELECT count(*) FROM samples").fetchone()[0]
                if count:
                    return int(count)
            except sqlite3.Error:  # not created or migrated yet
                pass
        time.sleep(0.1)
    raise AssertionError(f"no samples stored in {db} within {timeout:g} s")


class IdleMonitor(Monitor):
    """The real Monitor with no probing: the test hands the app its events. Its run ends when
    stop() is called from any thread (the app may stop it from the UI's loop)."""

    _stop_asked = False
    _loop: asyncio.AbstractEventLoop | None = None

    async def run(self, **_: Any) -> Any:
        self._idle = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        if not self._stop_asked:
            await self._idle.wait()
        return self.summary

    def stop(self, reason: str = "stopped", grace_s: float | None = None) -> None:
        super().stop(reason, grace_s)
        self._stop_asked = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._idle.set)


_EXIT_STATUS: list[int] = []


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _EXIT_STATUS.append(int(exitstatus))


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """End the test process right after pytest's own end, without interpreter finalization.

    Two whole-suite runs in about ten crashed with SIGSEGV *after* the summary line ("1373
    passed"), so CI read exit 139 for a green suite. The prime suspect was the TUI's monitor
    thread, left probing by apps that run_test shut down without an exit message (the app now
    stops and joins it on unmount, tests/test_tui_exit.py); until whole-suite runs show no crash
    without this, it stays. What threads were left is said in one line for whoever looks next. Nothing of ours runs at finalization: every store is
    closed and every server stopped by the fixtures before this point.
    """
    import sys
    import threading

    if not _EXIT_STATUS or os.environ.get("LLMSCOPE_TEST_FINALIZE"):  # opt out: find the crash
        return
    left = sorted(t.name for t in threading.enumerate() if t is not threading.main_thread())
    if left:
        print(f"threads left at the end of the session: {', '.join(left)}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_EXIT_STATUS[0])
