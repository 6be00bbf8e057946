"""Running a third-party LLM server on loopback and reading its wire naively: shared by
tests/test_real_servers.py (fakellm, LiteLLM's proxy) and bench/bench_llamacpp.py (llama.cpp's
server through llama-cpp-python), so both start, stop and account for a server the same way.

Nothing here uses pytest: a server that dies or never gets ready raises ServerFailed with the
end of its output, which the tests turn into a failure and the bench into exit 1.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from llmscope_tui.model import Sample, Target
from llmscope_tui.probe.netclock import arrival_ns
from llmscope_tui.probe.scheduler import make_client
from llmscope_tui.probe.stream import Timeouts, probe_once
from llmscope_tui.wire import PROTOCOLS

TIMEOUTS = Timeouts(connect_s=10, first_token_s=30, total_s=60)
KEY = "sk-llmscope-real-server-key-0123456789abcdef"
PROMPT = "Reply with the word OK."


def free_port() -> int:
    """A loopback port nothing listens on right now (for a server started as a process)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerFailed(Exception):
    """The server exited or did not answer its readiness URL in time (message: its last output)."""


@dataclass(frozen=True)
class Server:
    """A running server: where it listens and the model each protocol asks for."""

    name: str
    base_url: str
    models: dict[str, str]

    def target(self, protocol: str, **overrides: Any) -> Target:
        base = self.base_url + ("/v1" if protocol == "openai" else "")
        fields: dict[str, Any] = {"name": f"{self.name}-{protocol}", "provider": protocol,
                                  "model": self.models[protocol], "protocol": protocol,
                                  "base_url": base, "prompt": PROMPT}
        return Target(**(fields | overrides))


def server_env(home: Path, extra: dict[str, str]) -> dict[str, str]:
    """Our environment less proxies and keys, with a private HOME: loopback only, nothing of ours."""
    env = {k: v for k, v in os.environ.items()
           if not k.lower().endswith("_proxy") and not k.endswith("_API_KEY") and k != "DATABASE_URL"}
    return {**env, "HOME": str(home), "XDG_CACHE_HOME": str(home / "cache"), "NO_PROXY": "127.0.0.1",
            **extra}


@contextmanager
def running(argv: list[str], cwd: Path, env: dict[str, str], ready_url: str, ready_s: float) -> Iterator[None]:
    """Start argv in its own process group, wait (bounded) until ready_url answers 200, and stop
    it (SIGTERM, then SIGKILL) on the way out, whatever happened. Output goes to cwd/server.log."""
    log = cwd / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + ready_s
        while not _answers(ready_url):
            tail = log.read_text(errors="replace")[-3000:]
            if proc.poll() is not None:
                raise ServerFailed(f"{argv[0]} exited with {proc.returncode} before it was ready:\n{tail}")
            if time.monotonic() > deadline:
                raise ServerFailed(f"{argv[0]} not ready within {ready_s:g} s:\n{tail}")
            time.sleep(0.25)  # polling a readiness URL, not waiting for "nothing happened"
        yield
    finally:
        _stop(proc)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2, headers={"authorization": f"Bearer {KEY}"}).status_code == 200
    except httpx.TransportError:
        return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    for sig, wait_s in ((signal.SIGTERM, 15.0), (signal.SIGKILL, 15.0)):
        if proc.poll() is not None:
            return
        os.killpg(proc.pid, sig)  # our own process group: start_new_session above
        try:
            proc.wait(wait_s)
        except subprocess.TimeoutExpired:
            continue


# ------------------------------------------------------------------ the server's own account


@dataclass
class Wire:
    """What the server sent for one request, read naively: JSON lines after `data:`."""

    json_body: bool
    content_chunks: int
    tokens_in: int | None
    tokens_out: int | None
    finish: str | None = None  # the last finish_reason / stop_reason the server gave
    ids: set[str] = field(default_factory=set)  # the `id` fields of its chunks (OpenAI)
    text: str = ""  # the content it streamed, joined


def account(content_type: str, body: str) -> Wire:
    """The server's own account of one response body, independently of our wire readers."""
    if content_type.startswith("application/json"):
        usage = json.loads(body)["usage"]
        return Wire(True, 1, usage["input_tokens"], usage["output_tokens"])
    wire = Wire(False, 0, None, None)
    for line in body.splitlines():
        if not line.startswith("data:") or line[5:].strip() == "[DONE]":
            continue
        obj: dict[str, Any] = json.loads(line[5:])
        usage = (obj.get("message") or obj).get("usage") or {}
        wire.tokens_in = usage.get("prompt_tokens", usage.get("input_tokens", wire.tokens_in))
        wire.tokens_out = usage.get("completion_tokens", usage.get("output_tokens", wire.tokens_out))
        choice = (obj.get("choices") or [{}])[0]
        delta = choice.get("delta") or obj.get("delta") or {}
        piece = delta.get("content") or delta.get("text")
        wire.content_chunks += bool(piece)
        wire.text += piece if isinstance(piece, str) else ""
        wire.finish = choice.get("finish_reason") or delta.get("stop_reason") or wire.finish
        if isinstance(obj.get("id"), str):
            wire.ids.add(obj["id"])
    return wire


def read_wire(target: Target) -> Wire:
    """Send our probe's own request and count what came back."""
    spec = PROTOCOLS[target.protocol].build_request(target, KEY)
    with httpx.Client(timeout=60) as client:
        response = client.post(spec.url, headers=spec.headers, json=spec.body)
    response.raise_for_status()
    return account(response.headers["content-type"], response.text)


@dataclass
class Exchange:
    """One response as the probe received it: its headers, every byte of its body, and per chunk
    the probe read (one HTTP chunk, or one network read) its size and its arrival stamp, taken
    as the probe takes it (the kernel's, else perf_counter_ns)."""

    headers: httpx.Headers
    body: bytearray = field(default_factory=bytearray)
    chunks: list[tuple[int, int]] = field(default_factory=list)

    def wire(self) -> Wire:
        return account(self.headers.get("content-type", ""), self.body.decode("utf-8", "replace"))


class _Tee(httpx.AsyncByteStream):
    """A response stream that keeps a copy of each chunk as the probe reads it."""

    def __init__(self, response: httpx.Response, exchange: Exchange) -> None:
        self._inner, self._exchange = response.stream, exchange
        self._network = response.extensions.get("network_stream")

    async def __aiter__(self) -> Any:
        async for chunk in self._inner:
            stamp = arrival_ns(self._network) or time.perf_counter_ns()
            self._exchange.body += chunk
            self._exchange.chunks.append((len(chunk), stamp))
            yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


async def probe(target: Target, times: int = 3, exchanges: list[Exchange] | None = None) -> list[Sample]:
    """Probe target `times` times in a row through the monitor's own client and probe; with
    `exchanges`, each probe's response (headers and raw body bytes) is appended to it."""

    async def keep(response: httpx.Response) -> None:
        assert exchanges is not None
        exchanges.append(Exchange(response.headers))
        response.stream = _Tee(response, exchanges[-1])

    async with make_client(1, TIMEOUTS) as client:
        if exchanges is not None:
            client.event_hooks["response"].append(keep)
        return [await probe_once(client, target, KEY, TIMEOUTS) for _ in range(times)]
