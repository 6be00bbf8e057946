"""Canary keys: planted in every key variable, echoed back by the fake provider in every fault it
can produce, and looked for in every output (DESIGN 8: never a key in any output).

This file imports nothing of llmscope_tui on purpose: it drives the real command in
subprocesses, so it can be pointed at any checkout (PYTHONPATH) to show a leak before a fix.
"""

from __future__ import annotations

import base64
import itertools
import json
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote

import pytest

from conftest import subprocess_env
from fake_provider import FakeProvider, RecordedRequest, Script

#: One canary per key variable, in the shapes keys come in.
CANARIES = {
    "OPENAI_API_KEY": "sk-proj-CANARYo9Xq4Lm2Vt8Rb6Nw1Zc3Ky5Hd7Jf0Pg",
    "ANTHROPIC_API_KEY": "c4a7a2f91b0e5d3c8f6a9b2e1d4c7f0a3b6e9d2c",  # 40 hex characters
    "GEMINI_API_KEY": "eyJhbGciOiJIUzI1NiJ9.eyJjYW5hcnkiOiJnZW1pbmkifQ.Q2FuYXJ5U2lnbmF0dXJl",  # JWT-like
    "GOOGLE_API_KEY": "AIzaCANARYgoogle4k9m2x7q1w8e5r3t6y0u",
    "PROXY_CRED": "pxyCANz7q9bbcc",  # a custom api_key_env, short-ish, no known prefix
    "LLMSCOPE_API_KEY": "lsINGESTcanary5f2e9a7c",  # the ingest key
}
#: Which key each protocol's faults echo (besides the one it sent, it quotes another one too).
ECHOES = {
    "openai": ("OPENAI_API_KEY", "LLMSCOPE_API_KEY"),
    "anthropic": ("ANTHROPIC_API_KEY", "GOOGLE_API_KEY"),
    "gemini": ("GEMINI_API_KEY", "PROXY_CRED"),
    "ollama": ("PROXY_CRED", "OPENAI_API_KEY"),
}


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _partials(key: str) -> list[str]:
    """How providers and proxies echo a key in part."""
    return [
        f"{key[:6]}...{key[-4:]}",
        f"{key[:6]}****{key[-4:]}",
        f"{key[:8]}…",
        f"********{key[-6:]}",
        quote(key, safe=""),
        f"Basic {_b64('user:' + key)}",
    ]


def _looked_for(key: str) -> list[str]:
    """What must appear nowhere: the key, pieces of 8 characters of it from each end, the
    partial forms above, and the key's run in the base64 forms."""
    forms = {key, key[:8], key[-8:], *_partials(key)[:4]}
    if quote(key, safe="") != key:
        forms.add(quote(key, safe=""))
    forms.add(_b64("user:" + key)[8:-4])
    return sorted(forms)


def _full(key: str) -> str:
    return f"Incorrect API key provided: {key}. You can find your API key at https://example.invalid"


def _partial(key: str) -> str:
    return "Incorrect API key provided: " + " or ".join(_partials(key))


def _frame(protocol: str, text: str) -> bytes:
    return (text + "\n").encode() if protocol == "ollama" else f"data: {text}\n\n".encode()


def _wrong_shape(protocol: str, key: str) -> str:
    return {
        "openai": json.dumps({"choices": [{"delta": key}]}),
        "anthropic": json.dumps({"type": "content_block_delta", "delta": key}),
        "gemini": json.dumps({"candidates": [{"content": key}]}),
        "ollama": json.dumps({"message": key, "done": False}),
    }[protocol]


def _faults(protocol: str) -> list[Script]:
    sent, other = (CANARIES[name] for name in ECHOES[protocol])
    scripts = []
    for key in (sent, other):
        scripts += [
            Script(status=401, error_message=_full(key)),
            Script(status=500, error_body=f"upstream refused {key} ({_partial(key)})"),
            Script(status=429, error_message=_partial(key)),
            Script(fault="error_event", error_message=_full(key)),
            Script(fault="error_event", error_message=_partial(key)),
            Script(fault="malformed", malformed_frame=_frame(protocol, "{not json " + key)),
            Script(fault="malformed", malformed_frame=_frame(protocol, _wrong_shape(protocol, key))),
        ]
    return scripts


def _cycle(scripts: list[Script]) -> Callable[[RecordedRequest], Script]:
    it = itertools.cycle(scripts)
    return lambda _request: next(it)


def _config(tmp_path: Path, fake: FakeProvider) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f"""
[monitor]
interval = "30ms"
timeout = "5s"
db = "{tmp_path / 'samples.db'}"

[[targets]]
name = "oa"
provider = "openai"
model = "m"
base_url = "{fake.base_url}/v1"

[[targets]]
name = "an"
provider = "anthropic"
model = "m"
base_url = "{fake.base_url}"

[[targets]]
name = "ge"
provider = "gemini"
model = "m"
base_url = "{fake.base_url}"

[[targets]]
name = "ol"
provider = "ollama"
model = "m"
base_url = "{fake.base_url}"
api_key_env = "PROXY_CRED"
"""
    )
    return config


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmscope_tui", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@pytest.mark.slow
def test_no_canary_key_in_any_output(tmp_path: Path, fake_provider: FakeProvider) -> None:
    fake = fake_provider
    fake.script(**{p: _cycle(_faults(p)) for p in ECHOES})
    config = _config(tmp_path, fake)
    env = subprocess_env(**CANARIES)
    db = tmp_path / "samples.db"
    per_run = 4 * len(_faults("openai")) + 8
    outputs: dict[str, str] = {}

    def run(name: str, *args: str) -> None:
        done = _cli(*args, env=env)
        outputs[f"{name} stdout"], outputs[f"{name} stderr"] = done.stdout, done.stderr

    run("check-config", "check-config", "--config", str(config))
    run("json run", "--headless", "--config", str(config), "--count", str(per_run), "--log-file", str(tmp_path / "log.jsonl"))
    run("text run", "--headless", "--config", str(config), "--count", str(per_run), "--format", "text")
    records = tmp_path / "app.jsonl"
    records.write_text(
        json.dumps({"provider": "openai", "model": "m", "request_id": CANARIES["OPENAI_API_KEY"]}) + "\n"
        + json.dumps({"provider": "openai", "model": "m", "ok": CANARIES["PROXY_CRED"]}) + "\n"
        + json.dumps({"provider": "openai", "model": "m", "tag": _partials(CANARIES["ANTHROPIC_API_KEY"])[1]}) + "\n"
    )  # fmt: skip
    run("ingest", "ingest", "--config", str(config), str(records))
    run("export", "export", "--config", str(config), "--csv", str(tmp_path / "out.csv"))
    run("report", "report", "--config", str(config))

    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        kinds = {k for (k,) in conn.execute("SELECT DISTINCT error_kind FROM samples WHERE source = 'probe'")}
    assert {"auth", "server_error", "rate_limit", "stream_error", "malformed"} <= kinds, kinds
    for path in sorted(tmp_path.iterdir()):
        if path.is_file() and path.suffix not in (".toml",) and path != records:
            outputs[path.name] = path.read_bytes().decode("utf-8", errors="replace")

    leaks = [
        f"{name}: {where} holds {form!r}"
        for where, text in outputs.items()
        for name, key in CANARIES.items()
        for form in _looked_for(key)
        if form in text
    ]
    places = sorted({leak.split(": ")[1].split(" holds")[0] for leak in leaks})
    assert not leaks, f"{len(leaks)} leaks in {len(places)} places ({', '.join(places)}):\n" + "\n".join(leaks[:40])
    assert "samples.db-wal" in outputs or "samples.db" in outputs
