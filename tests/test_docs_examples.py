"""The Python examples in docs/ingest.md and docs/library.md run as written, against the fake
provider, so the pages cannot rot.

An example is a ```python block right after an ``<!-- example: NAME -->`` line. What a test
changes is only where the calls go: the SDKs' base-URL variables (OPENAI_BASE_URL, ...) point
at the fake, keys are set to a dummy, and ``instrument()`` posts to a test ingest endpoint
instead of 127.0.0.1:8787. Examples needing an SDK that is not installed skip.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import llmscope_tui.client
from fake_provider import FakeProvider, Script, Usage
from llmscope_tui.server import ThreadedHTTPServer
from test_client import Endpoint

DOCS = Path(__file__).resolve().parent.parent / "docs"
_EXAMPLE = re.compile(r"^<!-- example: ([\w.-]+) -->\n```python\n(.*?)^```", re.MULTILINE | re.DOTALL)
TEXT = "Hello there, OK."  # the fake's default reply
USAGE = Usage(input_tokens=20, output_tokens=5)


def examples(page: str) -> dict[str, str]:
    """NAME -> code of each tagged example of docs/<page>."""
    found = _EXAMPLE.findall((DOCS / page).read_text())
    names = [name for name, _ in found]
    assert len(names) == len(set(names)), f"{page}: example names repeat: {names}"
    return dict(found)


def run_example(code: str, name: str) -> None:
    exec(compile(code, f"<docs example {name}>", "exec"), {"__name__": "__docs_example__"})  # noqa: S102 - our own docs


INGEST = examples("ingest.md")
#: example -> (the module it needs, records it makes, the model they name)
INGEST_EXPECTED = {
    "openai": ("openai", 2, "gpt-4o-mini"),
    "anthropic": ("anthropic", 2, "claude-haiku-4-5"),
    "google-genai": ("google.genai", 2, "gemini-2.5-flash"),
    "openai-async": ("openai", 1, "gpt-4o-mini"),
}


def test_ingest_page_tags_its_examples() -> None:
    assert sorted(INGEST) == sorted(INGEST_EXPECTED)


@pytest.fixture
def fake() -> Iterator[FakeProvider]:
    with FakeProvider(default=Script(usage=USAGE)) as provider:
        yield provider


@pytest.fixture
def sdk_env(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> FakeProvider:
    """The SDKs' own variables, pointed at the fake."""
    monkeypatch.setenv("OPENAI_BASE_URL", f"{fake.base_url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-docs-openai")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-docs-anthropic")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.base_url)
    monkeypatch.setenv("GEMINI_API_KEY", "docs-gemini-key")
    return fake


@pytest.fixture
def ingest(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Endpoint, list[Any]]]:
    """A test ingest endpoint that instrument() posts to; the reporters it made."""
    ep = Endpoint()
    reporters: list[Any] = []
    real = llmscope_tui.client.instrument
    with ThreadedHTTPServer(ep, name="docs-ingest") as server:

        @functools.wraps(real)
        def instrument(client: Any, **kwargs: Any) -> Any:
            reporter = real(client, **{**kwargs, "endpoint": server.base_url + "/v1/events"})
            reporters.append(reporter)
            return reporter

        monkeypatch.setattr(llmscope_tui.client, "instrument", instrument)
        yield ep, reporters
        for reporter in reporters:
            reporter.close()


@pytest.mark.slow  # each SDK's first import takes a second or more
@pytest.mark.parametrize("name", list(INGEST_EXPECTED))
def test_ingest_example_runs_and_reports(
    name: str, sdk_env: FakeProvider, ingest: tuple[Endpoint, list[Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    module, records, model = INGEST_EXPECTED[name]
    pytest.importorskip(module, reason=f"{module} is not installed (pip install '.[test]')")
    ep, reporters = ingest
    run_example(INGEST[name], name)
    assert capsys.readouterr().out.splitlines() == [TEXT] * records
    assert len(reporters) == 1 and reporters[0].flush(10.0)
    assert len(ep.samples) == records
    for sample in ep.samples:
        assert (sample.target, sample.source, sample.model, sample.ok) == ("app:checkout", "app", model, 1)
        assert (sample.tokens_in, sample.tokens_out) == (20, 5)
        assert sample.latency_ms is not None
    assert sum(s.ttft_ms is not None for s in ep.samples) == records - 1  # the streamed call


LIBRARY = examples("library.md")
OWN_SERVER = "http://127.0.0.1:8000"  # the one URL the library page spells out
NUMBER = r"\d+(\.\d+)?"
#: example -> the lines it prints, as regular expressions
LIBRARY_EXPECTED = {
    "probe-sync": [rf"TTFT {NUMBER} ms, latency {NUMBER} ms, 5 tokens out"],
    "probe-async": [rf"openai/gpt-4o-mini: ok=1 ttft_ms={NUMBER}", rf"ollama/llama3\.2: ok=1 ttft_ms={NUMBER}"],
    "probe-own-server": ["1"],
    "watch": [r"ollama/llama3\.2 ok", "openai/gpt-4o-mini ok", "2 samples, 0 failed"],
    "monitor": ["start", "sample", "stop", "count reached"],
}


def test_library_page_tags_its_examples() -> None:
    assert sorted(LIBRARY) == sorted(LIBRARY_EXPECTED)
    assert [name for name, code in LIBRARY.items() if OWN_SERVER in code] == ["probe-own-server"]


@pytest.mark.parametrize(
    "name",
    # the watch example waits a second for its second target's first probe
    [pytest.param(n, marks=pytest.mark.slow) if n == "watch" else n for n in LIBRARY_EXPECTED],
)
def test_library_example_runs(
    name: str,
    fake: FakeProvider,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"{fake.base_url}/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-docs-openai")
    monkeypatch.setenv("OLLAMA_HOST", fake.base_url)
    monkeypatch.chdir(tmp_path)  # the watch example writes probes.db where it runs
    run_example(LIBRARY[name].replace(OWN_SERVER, fake.base_url), name)
    lines = capsys.readouterr().out.splitlines()
    if name == "watch":
        lines = sorted(lines[:2]) + lines[2:]  # the two targets' samples come in either order
    expected = LIBRARY_EXPECTED[name]
    assert len(lines) == len(expected), lines
    for line, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch(pattern, line), (line, pattern)
    assert len(fake.requests) == (2 if name in ("probe-async", "watch") else 1)
