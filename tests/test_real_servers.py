"""A second opinion on our reading of the wire: servers nobody here wrote, installed from PyPI and
run offline on loopback (issue 12). fakellm speaks OpenAI and Anthropic; LiteLLM's proxy answers
with `mock_response` models. Each server starts once per module as a child process and is
stopped after; a test skips, saying why, when its server is not installed.

Install them with `bash .ci/real-servers fakellm litellm` (their own virtualenvs under
.venv-servers/), or point LLMSCOPE_FAKELLM / LLMSCOPE_LITELLM at a `fakellm` / `litellm`
executable. What each test checks is what a user reads off a sample, against the usage and
chunks the server itself sent, read here naively from the same request.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import free_port
from llmscope_tui.model import ErrorKind, Sample
from llmscope_tui.probe import stream as stream_module
from real_server import (
    KEY,
    PROMPT,
    Exchange,
    Server,
    ServerFailed,
    probe,
    read_wire,
    running,
    server_env,
)

pytestmark = [pytest.mark.slow, pytest.mark.anyio]

SERVERS = Path(__file__).resolve().parents[1] / ".venv-servers"
READY_S = {"fakellm": 60.0, "litellm": 240.0}  # LiteLLM takes 25-35 s to start on a busy machine
REPLY = "OK, this reply from a real server has exactly eleven words in it."
FAKELLM_CONFIG = f"""version: 1
rules:
  - name: probe
    when:
      messages_contain: "Reply with"
    respond:
      content: "{REPLY}"
"""
LITELLM_CONFIG = f"""model_list:
  - model_name: mock-gpt
    litellm_params: {{model: openai/mock-gpt, api_key: sk-unused, mock_response: "{REPLY}"}}
  - model_name: mock-claude
    litellm_params: {{model: anthropic/mock-claude, api_key: sk-unused, mock_response: "{REPLY}"}}
"""
#: LiteLLM offline: no telemetry, the bundled cost map (not a download), no database, a key.
LITELLM_ENV = {
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    "DISABLE_SCHEMA_UPDATE": "true",
    "LITELLM_MASTER_KEY": KEY,
}


def executable(name: str) -> Path:
    """The server's executable (LLMSCOPE_<NAME> or .venv-servers/<name>/bin/<name>), or a skip."""
    variable = f"LLMSCOPE_{name.upper()}"
    given = os.environ.get(variable)
    path = Path(given) if given else SERVERS / name / "bin" / name
    if not path.is_file():
        where = f"{variable}={given}" if given else str(path)
        ci = " (.ci/run installs it only with LLMSCOPE_CI_LITELLM=1)" if name == "litellm" else ""
        pytest.skip(f"{name} is not installed ({where} does not exist): run `bash .ci/real-servers {name}`"
                    f" or set {variable} to its executable{ci}")
    return path


@contextmanager
def serving(argv: list[str], cwd: Path, env: dict[str, str], ready_url: str, ready_s: float) -> Iterator[None]:
    """real_server.running, a server that dies or never gets ready failing the test."""
    try:
        with running(argv, cwd, env, ready_url, ready_s):
            yield
    except ServerFailed as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="module")
def fakellm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    exe = executable("fakellm")
    cwd, port = tmp_path_factory.mktemp("fakellm"), free_port()
    (cwd / "fakellm.yaml").write_text(FAKELLM_CONFIG)
    argv = [str(exe), "serve", "--host", "127.0.0.1", "--port", str(port), "--config", "fakellm.yaml"]
    base = f"http://127.0.0.1:{port}"
    with serving(argv, cwd, server_env(cwd, {}), f"{base}/_fakellm/stats", READY_S["fakellm"]):
        yield Server("fakellm", base, {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"})


@pytest.fixture(scope="module")
def litellm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    exe = executable("litellm")
    cwd, port = tmp_path_factory.mktemp("litellm"), free_port()
    (cwd / "config.yaml").write_text(LITELLM_CONFIG)
    argv = [str(exe), "--config", "config.yaml", "--host", "127.0.0.1", "--port", str(port)]
    base = f"http://127.0.0.1:{port}"
    with serving(argv, cwd, server_env(cwd, LITELLM_ENV), f"{base}/health/liveliness", READY_S["litellm"]):
        yield Server("litellm", base, {"openai": "mock-gpt", "anthropic": "mock-claude"})


# ------------------------------------------------------------------ what a user reads off a sample


def assert_healthy(sample: Sample) -> None:
    """What a user checks first: an ok sample whose times are in order, no failure kind."""
    assert sample.ok == 1, (sample.error_kind, sample.error_message)
    assert sample.error_kind not in (ErrorKind.MALFORMED, ErrorKind.EMPTY_RESPONSE)
    assert sample.ttft_ms is not None and sample.latency_ms is not None
    assert 0 < sample.ttft_ms <= sample.latency_ms


def assert_streamed(sample: Sample) -> None:
    """A multi-chunk stream: ITL and tps present, and consistent with each other."""
    assert sample.itl_ms is not None and sample.tps is not None
    assert sample.itl_ms > 0 and sample.tps == pytest.approx(1000 / sample.itl_ms)


# ------------------------------------------------------------------------------- fakellm


async def test_fakellm_openai_stream_without_usage_counts_its_chunks(fakellm: Server) -> None:
    """fakellm sends no usage even with include_usage: tokens are the content chunks, estimated."""
    target = fakellm.target("openai")
    wire = read_wire(target)
    assert wire.tokens_out is None and wire.content_chunks == len(REPLY.split())
    for sample in await probe(target):
        assert_healthy(sample)
        assert_streamed(sample)
        assert (sample.tokens_out, sample.tokens_estimated) == (wire.content_chunks, 1)


async def test_fakellm_anthropic_stream_usage_stands(fakellm: Server) -> None:
    """message_start's input and message_delta's output tokens are the server's: not estimated."""
    target = fakellm.target("anthropic")
    wire = read_wire(target)
    assert not wire.json_body and wire.tokens_out is not None and wire.content_chunks > 1
    for sample in await probe(target):
        assert_healthy(sample)
        assert_streamed(sample)
        assert (sample.tokens_in, sample.tokens_out, sample.tokens_estimated) == (
            wire.tokens_in, wire.tokens_out, 0)


# ------------------------------------------------------------------------------- LiteLLM


async def test_litellm_openai_stream_usage_stands_over_more_chunks(litellm: Server) -> None:
    """LiteLLM's mock streams more chunks than its usage counts tokens: the usage stands. The
    proxy sends no provider request id, only its own x-litellm-call-id: that is the request id."""
    target = litellm.target("openai")
    wire = read_wire(target)
    assert wire.tokens_out is not None and wire.content_chunks > wire.tokens_out > 1
    exchanges: list[Exchange] = []
    samples = await probe(target, exchanges=exchanges)
    for sample, exchange in zip(samples, exchanges, strict=True):
        assert_healthy(sample)
        assert_streamed(sample)
        assert (sample.tokens_in, sample.tokens_out, sample.tokens_estimated) == (
            wire.tokens_in, wire.tokens_out, 0)
        assert "x-request-id" not in exchange.headers
        assert sample.request_id == exchange.headers["x-litellm-call-id"]
    assert len({sample.request_id for sample in samples}) == len(samples)  # one id per call


async def test_litellm_anthropic_json_reply_is_one_whole_token(
    litellm: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """LiteLLM's mock ignores stream: true on /v1/messages and answers one JSON body: an ok
    sample timed by the whole body (TTFT = latency, no ITL or tps), noted once in the log."""
    target = litellm.target("anthropic")
    wire = read_wire(target)
    assert wire.json_body
    stream_module._NOTED_WHOLE_BODY.discard(target.name)
    with caplog.at_level(logging.WARNING, logger=stream_module.__name__):
        samples = await probe(target)
    for sample in samples:
        assert_healthy(sample)
        assert sample.ttft_ms == sample.latency_ms
        assert sample.itl_ms is None and sample.tps is None
        assert (sample.tokens_in, sample.tokens_out, sample.tokens_estimated) == (
            wire.tokens_in, wire.tokens_out, 0)
    notes = [r.getMessage() for r in caplog.records if "one JSON body" in r.getMessage()]
    assert len(notes) == 1 and notes[0].startswith(target.name)


# ------------------------------------------------------------------- the whole headless path


@pytest.mark.parametrize("server_name", ["fakellm", "litellm"])
def test_headless_run_against_the_server_stores_only_ok_samples(
    server_name: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """`--headless --count` with both protocols configured: every sample ok, none malformed."""
    server: Server = request.getfixturevalue(server_name)
    config = tmp_path / "config.toml"
    config.write_text("[monitor]\ninterval = \"100ms\"\ntimeout = \"60s\"\n" + "".join(
        f'\n[[targets]]\nname = "{server.name}-{protocol}"\nprovider = "{preset}"\n'
        f'model = "{server.models[protocol]}"\nbase_url = "{server.target(protocol).base_url}"\n'
        f'api_key_env = "REAL_SERVER_KEY"\nprompt = "{PROMPT}"\n'
        for protocol, preset in (("openai", "openai-compatible"), ("anthropic", "anthropic"))))
    result = subprocess.run(
        [sys.executable, "-m", "llmscope_tui", "--headless", "--config", str(config),
         "--db", str(tmp_path / "s.db"), "--count", "6"],
        capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL,
        env={**os.environ, "REAL_SERVER_KEY": KEY},
    )
    assert result.returncode == 0, result.stderr
    samples = [e for e in map(json.loads, result.stdout.splitlines()) if e["event"] == "sample"]
    assert len(samples) == 6
    assert {s["target"] for s in samples} == {f"{server.name}-openai", f"{server.name}-anthropic"}
    assert [(s["target"], s["error_kind"]) for s in samples if not s["ok"]] == []
