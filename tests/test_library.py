"""The library API (llmscope_tui's __all__, docs/library.md): targets resolved as the config
resolves them, one probe as a Sample, the monitor's events as an async iterator, a cheap import
that never pulls in Textual."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

import llmscope_tui
from fake_provider import FakeProvider, Script, Usage
from llmscope_tui import (
    ErrorKind,
    Sample,
    Settings,
    Timeouts,
    make_target,
    probe_once,
    probe_once_sync,
    watch,
)
from llmscope_tui.store import StoreError

KEY = "sk-library-test-0123456789"
ENV = {"OPENAI_API_KEY": KEY}


@pytest.fixture
def fake() -> FakeProvider:
    with FakeProvider(default=Script(usage=Usage(input_tokens=20, output_tokens=5))) as provider:
        yield provider  # type: ignore[misc]


def _target(fake: FakeProvider, **kwargs: object) -> llmscope_tui.Target:
    return make_target("openai", "gpt-4o-mini", base_url=f"{fake.base_url}/v1", env=ENV, **kwargs)  # type: ignore[arg-type]


# -- the package root --------------------------------------------------------------------------


def test_every_public_name_resolves_and_is_documented() -> None:
    for name in llmscope_tui.__all__:
        value = getattr(llmscope_tui, name)
        assert value is not None
        if callable(value):
            assert value.__doc__, f"{name} has no docstring"
    assert set(llmscope_tui.__all__) <= set(dir(llmscope_tui))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = llmscope_tui.nope  # type: ignore[attr-defined]
    page = (Path(__file__).resolve().parent.parent / "docs" / "library.md").read_text()
    missing = [name for name in llmscope_tui.__all__ if f"`{name}" not in page]
    assert not missing, f"docs/library.md does not name {missing}"


@pytest.mark.slow  # a fresh interpreter (test_layering.py's fast check covers llmscope_tui.library)
def test_importing_the_package_loads_nothing_else_and_the_library_no_textual(fake: FakeProvider) -> None:
    """`import llmscope_tui` (every CLI start) imports no submodule and no dependency; using the
    library, a probe included, never imports Textual."""
    code = (
        "import sys\n"
        "before = set(sys.modules)\n"
        "import llmscope_tui\n"
        "print(sorted(set(sys.modules) - before))\n"
        "from llmscope_tui import *\n"
        f"t = make_target('openai', 'm', base_url={fake.base_url + '/v1'!r}, env={{'OPENAI_API_KEY': 'k'}})\n"
        "s = probe_once_sync(t, api_key='k', priced=False)\n"
        "print(s.ok, sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["['llmscope_tui']", "1 []"]


# -- make_target ---------------------------------------------------------------------------------


def test_make_target_resolves_like_the_config() -> None:
    t = make_target("openai", "gpt-4o-mini", env={"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://h:1/v1/"})
    assert (t.name, t.protocol, t.base_url, t.api_key_env, t.enabled) == (
        "openai/gpt-4o-mini", "openai", "http://h:1/v1", "OPENAI_API_KEY", True,
    )  # fmt: skip
    assert make_target("gemini", "g", env={"GOOGLE_API_KEY": "k"}).api_key_env == "GOOGLE_API_KEY"
    assert make_target("ollama", "llama3.2", env={}).base_url == "http://127.0.0.1:11434"
    azure = make_target("azure", "gpt-4o", base_url="https://x.openai.azure.com", env={"AZURE_OPENAI_API_KEY": "k"})
    assert azure.api_version == "2024-10-21"
    unset = make_target("anthropic", "claude-haiku-4-5", env={})
    assert unset.disabled_reason == "ANTHROPIC_API_KEY is not set"
    custom = make_target("vllm", "m", api_key_env="MY_KEY", name="mine", headers={"x-a": "1"}, env={})
    assert (custom.name, custom.disabled_reason, custom.extra_headers) == ("mine", "MY_KEY is not set", (("x-a", "1"),))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"provider": "opnai"}, "unknown provider 'opnai'; one of: anthropic, azure"),
        ({"provider": "azure"}, "provider 'azure' needs base_url"),
        ({"base_url": "ftp://x"}, "base_url: expected an http(s) URL"),
        ({"max_tokens": 0}, "max_tokens: expected 1 to"),
        ({"model": " "}, "model: expected a model id"),
        ({"interval_s": 0}, "interval_s: expected seconds above 0"),
    ],
)
def test_make_target_refuses_what_the_config_refuses(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"provider": "openai", "model": "m", "env": {}, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        make_target(**args)  # type: ignore[arg-type]


# -- probe_once ------------------------------------------------------------------------------------


def test_probe_once_sync_returns_the_sample_the_monitor_would_store(fake: FakeProvider) -> None:
    sample = probe_once_sync(_target(fake), env=ENV)
    assert isinstance(sample, Sample)
    assert (sample.target, sample.provider, sample.model, sample.source) == (
        "openai/gpt-4o-mini", "openai", "gpt-4o-mini", "probe",
    )  # fmt: skip
    assert (sample.ok, sample.http_status, sample.tokens_in, sample.tokens_out) == (1, 200, 20, 5)
    # the fake writes its first piece 10 ms after the request, its last 4 x 5 ms later
    assert sample.ttft_ms is not None and sample.latency_ms is not None
    assert 10 <= sample.ttft_ms <= sample.latency_ms and sample.latency_ms >= 30
    assert sample.connect_ms is not None and sample.itl_ms is not None and sample.tps is not None
    assert sample.cost_usd is not None and sample.cost_usd > 0  # gpt-4o-mini is in genai-prices
    request = fake.last_request
    assert request.headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.anyio
async def test_probe_once_reports_a_providers_failure_as_a_sample(fake: FakeProvider) -> None:
    fake.enqueue(Script.rate_limited(retry_after="7"))
    sample = await probe_once(_target(fake), api_key=KEY, priced=False)
    assert (sample.ok, sample.error_kind, sample.http_status, sample.retry_after_s) == (0, ErrorKind.RATE_LIMIT, 429, 7.0)
    assert sample.cost_usd is None
    fake.enqueue(Script(first_token_delay_s=2.0))
    slow = await probe_once(_target(fake), api_key=KEY, timeouts=Timeouts(first_token_s=0.2, total_s=5), priced=False)
    assert (slow.ok, slow.error_kind) == (0, ErrorKind.TIMEOUT_FIRST_TOKEN)


@pytest.mark.anyio
async def test_probe_once_refuses_a_target_it_cannot_probe(fake: FakeProvider) -> None:
    unset = make_target("openai", "m", base_url=f"{fake.base_url}/v1", env={})
    with pytest.raises(ValueError, match="is disabled: OPENAI_API_KEY is not set"):
        await probe_once(unset, env={})
    assert not fake.requests
    sample = await probe_once(unset, api_key=KEY, priced=False)  # a key given: probed
    assert sample.ok == 1
    later = await probe_once(unset, env={"OPENAI_API_KEY": KEY}, priced=False)  # set since
    assert later.ok == 1
    with pytest.raises(RuntimeError, match="inside a running event loop: use `await probe_once"):
        probe_once_sync(unset, api_key=KEY)


def test_the_key_never_reaches_the_sample(fake: FakeProvider) -> None:
    fake.enqueue(Script.error(401, error_message=f"bad key {KEY}"))
    sample = probe_once_sync(_target(fake), env=ENV, priced=False)
    assert sample.error_kind == ErrorKind.AUTH
    assert KEY not in str(sample.to_dict())


# -- watch -------------------------------------------------------------------------------------


def _settings(fake: FakeProvider, tmp_path: Path) -> Settings:
    return Settings(config_file=None, targets=[_target(fake, interval_s=0.05)], db_path=tmp_path / "lib.db")


@pytest.mark.anyio
async def test_watch_yields_the_runs_events_and_its_summary(fake: FakeProvider, tmp_path: Path) -> None:
    seen: list[str] = []
    async with watch(_settings(fake, tmp_path), count=3, env=ENV) as events:
        async for event in events:
            seen.append(event["event"])
            if event["event"] == "sample":
                assert event["ok"] == 1 and event["tokens_out"] == 5
    assert seen == ["start", "sample", "sample", "sample", "stop"]
    assert events.summary is not None
    assert (events.summary.samples, events.summary.reason, events.dropped) == (3, "count reached", 0)
    assert (tmp_path / "lib.db").exists()


@pytest.mark.anyio
async def test_leaving_the_block_stops_the_run(fake: FakeProvider, tmp_path: Path) -> None:
    async with watch(_settings(fake, tmp_path), env=ENV) as events:
        async for event in events:
            if event["event"] == "sample":
                break
    assert events.summary is not None and events.summary.reason == "stopped"
    assert events.summary.samples >= 1


@pytest.mark.anyio
async def test_an_error_in_the_block_stops_the_run_and_is_raised_as_itself(
    fake: FakeProvider, tmp_path: Path
) -> None:
    with pytest.raises(KeyError, match="the reader's own"):
        async with watch(_settings(fake, tmp_path), env=ENV) as events:
            async for event in events:
                if event["event"] == "sample":
                    raise KeyError("the reader's own")
    assert events.summary is not None and events.summary.reason == "stopped"


@pytest.mark.anyio
async def test_a_run_that_cannot_start_raises_its_error_at_the_blocks_end(fake: FakeProvider, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    settings = Settings(config_file=None, targets=[_target(fake)], db_path=blocker / "sub" / "x.db")
    seen: list[object] = []
    with pytest.raises(StoreError, match="cannot create the folder for data file") as caught:
        async with watch(settings, env=ENV) as events:
            seen.extend([event async for event in events])
    assert not isinstance(caught.value, BaseExceptionGroup)
    assert seen == [] and not fake.requests


@pytest.mark.anyio
async def test_a_reader_that_falls_behind_loses_events_and_is_told(fake: FakeProvider, tmp_path: Path) -> None:
    async with watch(_settings(fake, tmp_path), count=3, max_buffer=1, env=ENV) as events:
        while events.summary is None:  # read nothing until the run is over
            await asyncio.sleep(0.01)
        rest = [event["event"] async for event in events]
    assert rest == ["start"] and events.dropped == 4  # 3 samples and the stop event
