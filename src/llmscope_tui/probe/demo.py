"""The built-in demo: a simulated LLM provider served over real HTTP on a loopback port.

With no config and no keys, llmscope-tui probes this server with the real protocol code, so
everything downstream (timing, framing, SPC, costs, the UI) runs exactly as it would against a
real provider. The server speaks four wire protocols on one port:

- OpenAI      POST /v1/chat/completions                              (SSE, ``data: [DONE]``)
- Anthropic   POST /v1/messages                                      (SSE with named events)
- Gemini      POST /v1beta/models/{model}:streamGenerateContent?alt=sse   (SSE, CRLF framed)
- Ollama      POST /api/chat                                         (NDJSON)

Each simulated model has a latency personality (log-normal time to first token and per-token
gaps drawn from a seeded numpy Generator, a token count, a chunking style, a rare background
error), and a scripted timeline of incidents repeats every few minutes so SPC has something to
find within about a minute of starting: a sustained latency shift on one model, a slow drift on
another, a burst of 429s on a third, while the fourth stays calm as a control.

The server runs in its own thread and event loop (``ThreadedServer``) so the app's loop and UI do
not perturb the latencies it simulates. It keeps no growing state: one RNG per model and a few
counters. The server ignores authentication headers.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from llmscope_tui.httpserver import Request, Response, StreamingResponse, ThreadedServer
from llmscope_tui.model import Target

__all__ = [
    "DEFAULT_PROFILES",
    "DemoProvider",
    "DemoTimeline",
    "ModelProfile",
    "count_tokens",
    "demo_targets",
]

DEFAULT_SEED = 20240617


# --------------------------------------------------------------------------------------------
# Personalities
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelProfile:
    """How one simulated model behaves."""

    model: str
    protocol: str  # which endpoint its demo target uses: openai | anthropic | gemini | ollama
    ttft_median_ms: float
    ttft_sigma: float  # sigma of log(TTFT)
    gap_median_ms: float  # per-token gap
    gap_sigma: float
    tokens_min: int
    tokens_max: int
    tokens_per_chunk: tuple[int, int] = (1, 1)  # Gemini streams several tokens per event
    prompt_overhead_tokens: int = 0  # chat template tokens added to the prompt's own
    error_rate: float = 0.0  # probability of a spontaneous error before the stream
    error_kind: str = "server_error"  # server_error | overloaded
    prompt: str = "Reply with the word OK."
    blurb: str = ""

    @property
    def target_name(self) -> str:
        return f"demo-{self.protocol}"


DEFAULT_PROFILES: tuple[ModelProfile, ...] = (
    ModelProfile(
        model="gpt-4o-mini-sim",
        protocol="openai",
        ttft_median_ms=330.0,
        ttft_sigma=0.22,
        gap_median_ms=12.0,
        gap_sigma=0.35,
        tokens_min=9,
        tokens_max=14,
        prompt_overhead_tokens=7,
        error_rate=0.002,
        error_kind="server_error",
        blurb="quick and steady; the calm control",
    ),
    ModelProfile(
        model="claude-haiku-sim",
        protocol="anthropic",
        ttft_median_ms=520.0,
        ttft_sigma=0.2,
        gap_median_ms=17.0,
        gap_sigma=0.3,
        tokens_min=10,
        tokens_max=16,
        prompt_overhead_tokens=8,
        error_rate=0.004,
        error_kind="overloaded",
        prompt="Reply with the word OK, then one short sentence.",
        blurb="slower start, smooth stream, now and then overloaded",
    ),
    ModelProfile(
        model="gemini-flash-sim",
        protocol="gemini",
        ttft_median_ms=270.0,
        ttft_sigma=0.28,
        gap_median_ms=9.0,
        gap_sigma=0.45,
        tokens_min=8,
        tokens_max=14,
        tokens_per_chunk=(2, 5),
        prompt_overhead_tokens=0,
        error_rate=0.002,
        error_kind="overloaded",
        blurb="fastest first token, jittery, streams in bursts of tokens",
    ),
    ModelProfile(
        model="llama3-sim",
        protocol="ollama",
        ttft_median_ms=650.0,
        ttft_sigma=0.15,
        gap_median_ms=28.0,
        gap_sigma=0.12,
        tokens_min=10,
        tokens_max=16,
        prompt_overhead_tokens=11,
        blurb="a local GPU: slow but very regular",
    ),
)


# --------------------------------------------------------------------------------------------
# Incidents
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Effect:
    """What the timeline does to one model at one moment."""

    ttft_factor: float = 1.0
    rate_limited: bool = False


@dataclass(frozen=True, slots=True)
class DemoTimeline:
    """Scripted incidents, in seconds since the demo started.

    Nothing happens for the first ``warmup_s`` (the 100 probes at 1 s that set SPC's baselines,
    plus a few): then a cycle of ``cycle_s`` repeats, its times counted from the cycle's start:
    a latency shift (0-75 s), a drift (15-105 s) and a 429 burst (35-45 s). So the first incident
    opens about 110 s after starting. ``scaled(k)`` compresses (k < 1) or stretches the script.
    """

    warmup_s: float = 105.0
    cycle_s: float = 210.0
    shift_model: str = "claude-haiku-sim"
    shift_start_s: float = 0.0
    shift_end_s: float = 75.0
    shift_factor: float = 1.8
    drift_model: str = "llama3-sim"
    drift_start_s: float = 15.0
    drift_end_s: float = 105.0
    drift_per_s: float = 0.01  # +1 % of TTFT per second, i.e. per probe at a 1 s interval
    burst_model: str = "gemini-flash-sim"
    burst_start_s: float = 35.0
    burst_end_s: float = 45.0
    retry_after_s: int = 1

    def scaled(self, factor: float) -> DemoTimeline:
        """The same script with every time multiplied by ``factor`` (the drift reaches the same height)."""
        if factor <= 0:
            raise ValueError("factor must be positive")
        return replace(
            self,
            warmup_s=self.warmup_s * factor,
            cycle_s=self.cycle_s * factor,
            shift_start_s=self.shift_start_s * factor,
            shift_end_s=self.shift_end_s * factor,
            drift_start_s=self.drift_start_s * factor,
            drift_end_s=self.drift_end_s * factor,
            drift_per_s=self.drift_per_s / factor,
            burst_start_s=self.burst_start_s * factor,
            burst_end_s=self.burst_end_s * factor,
        )

    def phase(self, elapsed: float) -> float:
        """Seconds into the current cycle; -1 during the warm-up."""
        since = elapsed - self.warmup_s
        if since < 0:
            return -1.0
        return since % self.cycle_s if self.cycle_s > 0 else since

    def effect(self, model: str, elapsed: float) -> Effect:
        p = self.phase(elapsed)
        factor = 1.0
        if model == self.shift_model and self.shift_start_s <= p < self.shift_end_s:
            factor *= self.shift_factor
        if model == self.drift_model and self.drift_start_s <= p < self.drift_end_s:
            factor *= 1.0 + self.drift_per_s * (p - self.drift_start_s)
        limited = model == self.burst_model and self.burst_start_s <= p < self.burst_end_s
        return Effect(factor, limited)

    def describe(self, elapsed: float, names: Mapping[str, str] | None = None) -> str | None:
        """The incidents active at ``elapsed``, in words naming the affected targets (``names``:
        model -> target name), or None."""
        p = self.phase(elapsed)
        known = names or {}

        def name(model: str) -> str:
            return known.get(model, model)

        parts: list[str] = []
        if self.shift_start_s <= p < self.shift_end_s:
            parts.append(
                f"latency shift: {name(self.shift_model)} TTFT x{self.shift_factor:g}"
                f" (ends in {math.ceil(self.shift_end_s - p)} s)"
            )
        if self.drift_start_s <= p < self.drift_end_s:
            rise = self.drift_per_s * (p - self.drift_start_s) * 100
            parts.append(f"slow drift: {name(self.drift_model)} TTFT creeping up, now +{rise:.0f}%")
        if self.burst_start_s <= p < self.burst_end_s:
            parts.append(
                f"429 burst: {name(self.burst_model)} rate-limited"
                f" (ends in {math.ceil(self.burst_end_s - p)} s)"
            )
        return "; ".join(parts) if parts else None


# --------------------------------------------------------------------------------------------
# Text and tokens
# --------------------------------------------------------------------------------------------

_SENTENCES = (
    "OK. All systems nominal on the simulated endpoint.",
    "OK. This reply comes from the built-in llmscope demo provider.",
    "OK, the demo model is streaming tokens at a steady pace.",
    "OK. Latency here follows a log-normal model with scripted incidents.",
    "OK! Nothing to worry about, just a friendly simulated answer.",
)
_TOKEN_RE = re.compile(r"\s?[A-Za-z0-9'-]+|[^\sA-Za-z0-9'-]")
_COUNT_RE = re.compile(r"[A-Za-z0-9'-]+|[^\sA-Za-z0-9'-]")
_SENTENCE_TOKENS = tuple(tuple(_TOKEN_RE.findall(s)) for s in _SENTENCES)


def count_tokens(text: str) -> int:
    """How many demo tokens ``text`` holds (each word and each punctuation mark is one)."""
    return len(_COUNT_RE.findall(text))


def _prompt_tokens(texts: Sequence[str], overhead: int) -> int:
    return overhead + sum(max(1, math.ceil(len(t) / 4)) for t in texts if t)


def _texts_from_content(content: Any) -> list[str]:
    """Strings in an OpenAI/Anthropic/Ollama message content (a string or a list of parts)."""
    if isinstance(content, str):
        return [content]
    out: list[str] = []
    if isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
    return out


@dataclass(slots=True)
class _Plan:
    """One simulated generation: what to send and when (seconds from request arrival)."""

    chunks: list[str]  # text of each content chunk
    sizes: list[int]  # tokens in each content chunk
    times: list[float]  # arrival offset of each content chunk
    first_event_s: float  # when the pre-content frames (role delta, message_start) go out
    tokens_in: int
    tokens_out: int
    truncated: bool


# --------------------------------------------------------------------------------------------
# The provider
# --------------------------------------------------------------------------------------------


class _BadRequest(Exception):
    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message


_STREAM_ONLY = "the llmscope demo provider only serves streamed requests (stream: true)"
_GEMINI_PATH = re.compile(r"^/v1beta/models/([^/:]+):([A-Za-z]+)$")


class DemoProvider:
    """The simulated provider: start it, probe ``demo_targets(provider.base_url)``, stop it.

    ``clock`` (seconds, monotonic) and ``timeline`` drive the incidents; ``latency_scale`` scales
    every simulated delay (tests use small values); ``seed`` makes each model's draws repeatable
    for a given order of requests to it.
    """

    def __init__(
        self,
        *,
        seed: int | None = DEFAULT_SEED,
        clock: Callable[[], float] = time.monotonic,
        timeline: DemoTimeline | None = None,
        latency_scale: float = 1.0,
        background_errors: bool = True,
        profiles: Sequence[ModelProfile] = DEFAULT_PROFILES,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.clock = clock
        self.timeline = timeline if timeline is not None else DemoTimeline()
        self.latency_scale = latency_scale
        self.background_errors = background_errors
        self.profiles: dict[str, ModelProfile] = {p.model: p for p in profiles}
        root = np.random.SeedSequence(seed)
        self._rngs: dict[str, np.random.Generator] = {
            p.model: np.random.default_rng(child) for p, child in zip(profiles, root.spawn(len(profiles)))
        }
        self._server = ThreadedServer(self.handle, host, port, name="llmscope-demo")
        self._t0: float | None = None
        #: Bounded counters, for the UI or tests.
        self.requests = 0
        self.rate_limited = 0

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> DemoProvider:
        self._t0 = self.clock()
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> DemoProvider:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._server.running

    @property
    def base_url(self) -> str:
        return self._server.base_url

    @property
    def server(self) -> ThreadedServer:
        return self._server

    def targets(self, interval_s: float = 1.0) -> list[Target]:
        return demo_targets(self.base_url, interval_s=interval_s, profiles=tuple(self.profiles.values()))

    def elapsed(self) -> float:
        """Seconds since ``start()`` on the injected clock (0 before start)."""
        return 0.0 if self._t0 is None else self.clock() - self._t0

    def incident_now(self) -> str | None:
        """The scripted incident(s) active right now, in words, for the demo banner; None when calm."""
        return self.timeline.describe(self.elapsed(), {p.model: p.target_name for p in self.profiles.values()})

    # -- simulation ------------------------------------------------------------------------------

    def simulate(self, model: str, elapsed: float, prompt: str = "Reply with the word OK.") -> tuple[str | None, _Plan | None]:
        """Offline, what a request to ``model`` arriving ``elapsed`` s into the demo would get:
        (error kind, None) or (None, the plan of its stream). The same draws as over HTTP, for
        benchmarks that replay the demo faster than real time."""
        profile = self.profiles[model]
        failure, factor = self._admit(profile, elapsed)
        if failure:
            return failure, None
        return None, self._plan(profile, [prompt], 32, factor)

    def _plan(self, profile: ModelProfile, texts: Sequence[str], max_tokens: int | None, factor: float) -> _Plan:
        rng = self._rngs[profile.model]
        scale = self.latency_scale / 1000.0
        n = int(rng.integers(profile.tokens_min, profile.tokens_max + 1))
        truncated = max_tokens is not None and max_tokens < n
        if truncated:
            n = max(1, int(max_tokens))  # type: ignore[arg-type]
        sentence = int(rng.integers(len(_SENTENCE_TOKENS)))
        tokens: list[str] = []
        while len(tokens) < n:
            piece = _SENTENCE_TOKENS[sentence % len(_SENTENCE_TOKENS)]
            if tokens:
                piece = (" " + piece[0].lstrip(), *piece[1:])
            tokens.extend(piece)
            sentence += 1
        tokens = tokens[:n]

        ttft = float(rng.lognormal(math.log(profile.ttft_median_ms), profile.ttft_sigma)) * factor * scale
        gaps = rng.lognormal(math.log(profile.gap_median_ms), profile.gap_sigma, size=max(0, n - 1)) * scale
        token_times = np.concatenate(([ttft], ttft + np.cumsum(gaps))).tolist()

        lo, hi = profile.tokens_per_chunk
        chunks: list[str] = []
        sizes: list[int] = []
        times: list[float] = []
        i = 0
        while i < n:
            size = 1 if hi <= 1 else int(rng.integers(lo, hi + 1))
            j = min(n, i + size)
            chunks.append("".join(tokens[i:j]))
            sizes.append(j - i)
            times.append(token_times[j - 1])
            i = j
        # The role delta / message_start leaves once the request is "queued", well before content.
        first_event = ttft * float(rng.uniform(0.3, 0.6))
        return _Plan(
            chunks=chunks,
            sizes=sizes,
            times=times,
            first_event_s=first_event,
            tokens_in=_prompt_tokens(texts, profile.prompt_overhead_tokens),
            tokens_out=n,
            truncated=truncated,
        )

    def _admit(self, profile: ModelProfile, elapsed: float | None = None) -> tuple[str | None, float]:
        """Decide, at arrival, whether this request fails and how much the timeline slows it."""
        self.requests += 1
        effect = self.timeline.effect(profile.model, self.elapsed() if elapsed is None else elapsed)
        if effect.rate_limited:
            self.rate_limited += 1
            return "rate_limit", effect.ttft_factor
        if self.background_errors and profile.error_rate > 0:
            rng = self._rngs[profile.model]
            if float(rng.random()) < profile.error_rate:
                return profile.error_kind, effect.ttft_factor
        return None, effect.ttft_factor

    async def _error_delay(self) -> None:
        await asyncio.sleep(0.02 * self.latency_scale)

    def _profile(self, model: Any, protocol: str) -> ModelProfile:
        if not isinstance(model, str) or not model:
            raise _BadRequest(400, "bad_request", "model: field required")
        name = model.removeprefix("models/")
        if protocol == "ollama" and name.endswith(":latest"):
            name = name[: -len(":latest")]
        profile = self.profiles.get(name)
        if profile is None:
            known = ", ".join(sorted(self.profiles))
            raise _BadRequest(404, "not_found", f"model {model!r} not found; the demo serves: {known}")
        return profile

    async def _paced(self, start: float, events: list[tuple[float, bytes]]) -> AsyncIterator[bytes]:
        """Yield each payload at its offset from ``start`` (loop time); payloads due together go together."""
        loop = asyncio.get_running_loop()
        i = 0
        while i < len(events):
            at, payload = events[i]
            i += 1
            while i < len(events) and events[i][0] <= at:
                payload += events[i][1]
                i += 1
            delay = start + at - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            yield payload

    # -- HTTP ------------------------------------------------------------------------------------

    async def handle(self, request: Request) -> Response | StreamingResponse:
        """The HTTP handler (runs in the server's thread)."""
        start = asyncio.get_running_loop().time()
        path = request.path
        protocol = "openai"
        try:
            if request.method == "POST":
                if path == "/v1/chat/completions":
                    return await self._openai(request, start)
                if path == "/v1/messages":
                    protocol = "anthropic"
                    return await self._anthropic(request, start)
                if path == "/api/chat":
                    protocol = "ollama"
                    return await self._ollama(request, start)
                match = _GEMINI_PATH.match(path)
                if match:
                    protocol = "gemini"
                    return await self._gemini(request, start, match.group(1), match.group(2))
            elif request.method in ("GET", "HEAD"):
                if path == "/":
                    return Response.json(self._about())
                if path == "/v1/models":
                    return Response.json(
                        {
                            "object": "list",
                            "data": [
                                {"id": m, "object": "model", "created": 1700000000, "owned_by": "llmscope-demo"}
                                for m in self.profiles
                            ],
                        }
                    )
                if path == "/api/tags":
                    return Response.json({"models": [{"name": m, "model": m} for m in self.profiles]})
            raise _BadRequest(404, "not_found", f"no route for {request.method} {path} on the demo provider")
        except _BadRequest as exc:
            if path.startswith("/v1/messages"):
                protocol = "anthropic"
            elif path.startswith("/v1beta/"):
                protocol = "gemini"
            elif path.startswith("/api/"):
                protocol = "ollama"
            return _ERRORS[protocol](exc.status, exc.kind, exc.message, None)

    def _about(self) -> dict[str, Any]:
        return {
            "name": "llmscope-tui demo provider",
            "models": {
                p.model: {"protocol": p.protocol, "target": p.target_name, "personality": p.blurb}
                for p in self.profiles.values()
            },
            "incident": self.incident_now(),
        }

    @staticmethod
    def _json_object(request: Request) -> dict[str, Any]:
        try:
            body = json.loads(request.body) if request.body else None
        except (ValueError, UnicodeDecodeError) as exc:
            raise _BadRequest(400, "bad_request", f"could not parse the JSON body: {exc}") from None
        if not isinstance(body, dict):
            raise _BadRequest(400, "bad_request", "the request body must be a JSON object")
        return body

    async def _refuse(self, protocol: str, kind: str) -> Response:
        await self._error_delay()
        retry = self.timeline.retry_after_s if kind == "rate_limit" else None
        status = {"rate_limit": 429, "overloaded": 529 if protocol == "anthropic" else 503}.get(kind, 500)
        return _ERRORS[protocol](status, kind, _ERROR_MESSAGES.get(kind, "internal error"), retry)

    # OpenAI ---------------------------------------------------------------------------------------

    async def _openai(self, request: Request, start: float) -> Response | StreamingResponse:
        body = self._json_object(request)
        profile = self._profile(body.get("model"), "openai")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _BadRequest(400, "bad_request", "messages: expected a non-empty array")
        if body.get("stream") is not True:
            raise _BadRequest(400, "bad_request", _STREAM_ONLY)
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        texts = [t for m in messages if isinstance(m, dict) for t in _texts_from_content(m.get("content"))]

        failure, factor = self._admit(profile)
        if failure:
            return await self._refuse("openai", failure)
        plan = self._plan(profile, texts, _int_or_none(max_tokens), factor)

        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        usage_null = {"usage": None} if include_usage else {}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            obj = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": profile.model,
                "system_fingerprint": "fp_llmscope_demo",
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
                **usage_null,
            }
            return _sse(obj)

        events = [(plan.first_event_s, chunk({"role": "assistant", "content": "", "refusal": None}))]
        events += [(t, chunk({"content": text})) for t, text in zip(plan.times, plan.chunks)]
        end = plan.times[-1]
        events.append((end, chunk({}, "length" if plan.truncated else "stop")))
        if include_usage:
            usage = {
                "prompt_tokens": plan.tokens_in,
                "completion_tokens": plan.tokens_out,
                "total_tokens": plan.tokens_in + plan.tokens_out,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            }
            obj = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": profile.model,
                "system_fingerprint": "fp_llmscope_demo",
                "choices": [],
                "usage": usage,
            }
            events.append((end, _sse(obj)))
        events.append((end, b"data: [DONE]\n\n"))
        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("x-request-id", "req_" + uuid.uuid4().hex),
            ("x-ratelimit-limit-requests", "600"),
        ]
        return StreamingResponse(200, headers, self._paced(start, events))

    # Anthropic -----------------------------------------------------------------------------------

    async def _anthropic(self, request: Request, start: float) -> Response | StreamingResponse:
        body = self._json_object(request)
        profile = self._profile(body.get("model"), "anthropic")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _BadRequest(400, "bad_request", "messages: Field required")
        max_tokens = _int_or_none(body.get("max_tokens"))
        if max_tokens is None or max_tokens < 1:
            raise _BadRequest(400, "bad_request", "max_tokens: Field required")
        if body.get("stream") is not True:
            raise _BadRequest(400, "bad_request", _STREAM_ONLY)
        texts = _texts_from_content(body.get("system"))
        texts += [t for m in messages if isinstance(m, dict) for t in _texts_from_content(m.get("content"))]

        failure, factor = self._admit(profile)
        if failure:
            return await self._refuse("anthropic", failure)
        plan = self._plan(profile, texts, max_tokens, factor)

        def event(data: dict[str, Any]) -> bytes:
            # Anthropic names every SSE event after its payload's type.
            return b"event: " + data["type"].encode() + b"\n" + _sse(data)

        message_start = {
            "type": "message_start",
            "message": {
                "id": "msg_" + uuid.uuid4().hex[:24],
                "type": "message",
                "role": "assistant",
                "model": profile.model,
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": plan.tokens_in,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 1,
                },
            },
        }
        block_start = {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
        message_delta = {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens" if plan.truncated else "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": plan.tokens_out},
        }
        t0, end = plan.first_event_s, plan.times[-1]
        events = [(t0, event(message_start)), (t0, event(block_start)), (t0, event({"type": "ping"}))]
        events += [
            (t, event({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}))
            for t, text in zip(plan.times, plan.chunks)
        ]
        events += [
            (end, event({"type": "content_block_stop", "index": 0})),
            (end, event(message_delta)),
            (end, event({"type": "message_stop"})),
        ]
        headers = [
            ("content-type", "text/event-stream; charset=utf-8"),
            ("cache-control", "no-cache"),
            ("request-id", "req_" + uuid.uuid4().hex[:24]),
            ("anthropic-ratelimit-requests-limit", "1000"),
        ]
        return StreamingResponse(200, headers, self._paced(start, events))

    # Gemini --------------------------------------------------------------------------------------

    async def _gemini(self, request: Request, start: float, model: str, method: str) -> Response | StreamingResponse:
        if method != "streamGenerateContent":
            raise _BadRequest(
                400 if method == "generateContent" else 404,
                "bad_request" if method == "generateContent" else "not_found",
                f"the llmscope demo provider only serves :streamGenerateContent?alt=sse, not :{method}",
            )
        if request.query.get("alt") != "sse":
            raise _BadRequest(400, "bad_request", "the llmscope demo provider only serves alt=sse streams")
        profile = self._profile(model, "gemini")
        body = self._json_object(request)
        contents = body.get("contents")
        if not isinstance(contents, list) or not contents:
            raise _BadRequest(400, "bad_request", "* GenerateContentRequest.contents: contents is not specified")
        texts: list[str] = []
        for block in [body.get("systemInstruction") or body.get("system_instruction"), *contents]:
            if isinstance(block, dict):
                texts += _texts_from_content(block.get("parts"))
        config = body.get("generationConfig") or body.get("generation_config") or {}
        max_tokens = _int_or_none(config.get("maxOutputTokens", config.get("max_output_tokens")))

        failure, factor = self._admit(profile)
        if failure:
            return await self._refuse("gemini", failure)
        plan = self._plan(profile, texts, max_tokens, factor)

        response_id = uuid.uuid4().hex[:22]
        events: list[tuple[float, bytes]] = []
        sent = 0
        last = len(plan.chunks) - 1
        for i, (t, text, size) in enumerate(zip(plan.times, plan.chunks, plan.sizes)):
            sent += size
            candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
            if i == last:
                candidate["finishReason"] = "MAX_TOKENS" if plan.truncated else "STOP"
            usage = {
                "promptTokenCount": plan.tokens_in,
                "candidatesTokenCount": sent,
                "totalTokenCount": plan.tokens_in + sent,
            }
            obj = {"candidates": [candidate], "usageMetadata": usage, "modelVersion": profile.model,
                   "responseId": response_id}
            events.append((t, b"data: " + _dumps(obj) + b"\r\n\r\n"))
        headers = [
            ("content-type", "text/event-stream"),
            ("x-content-type-options", "nosniff"),
            ("server-timing", f"gfet4t7; dur={round(plan.first_event_s * 1000)}"),
        ]
        return StreamingResponse(200, headers, self._paced(start, events))

    # Ollama --------------------------------------------------------------------------------------

    async def _ollama(self, request: Request, start: float) -> Response | StreamingResponse:
        body = self._json_object(request)
        profile = self._profile(body.get("model"), "ollama")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _BadRequest(400, "bad_request", "messages are required")
        if body.get("stream", True) is not True:
            raise _BadRequest(400, "bad_request", "the llmscope demo provider only serves streamed requests")
        options = body.get("options") or {}
        num_predict = _int_or_none(options.get("num_predict"))
        if num_predict is not None and num_predict < 0:
            num_predict = None  # -1: unlimited
        texts = [t for m in messages if isinstance(m, dict) for t in _texts_from_content(m.get("content"))]

        failure, factor = self._admit(profile)
        if failure:
            return await self._refuse("ollama", failure)
        plan = self._plan(profile, texts, num_predict, factor)

        model_name = str(body.get("model"))

        def line(obj: dict[str, Any]) -> bytes:
            return _dumps(obj) + b"\n"

        def created_at() -> str:
            return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")

        ns = 1_000_000_000
        end = plan.times[-1]
        load = plan.first_event_s
        prompt_eval = plan.times[0] - load
        events = [
            (t, line({"model": model_name, "created_at": "", "message": {"role": "assistant", "content": text},
                      "done": False}))
            for t, text in zip(plan.times, plan.chunks)
        ]
        final = {
            "model": model_name,
            "created_at": "",
            "message": {"role": "assistant", "content": ""},
            "done_reason": "length" if plan.truncated else "stop",
            "done": True,
            "total_duration": int(end * ns),
            "load_duration": int(load * ns),
            "prompt_eval_count": plan.tokens_in,
            "prompt_eval_duration": int(prompt_eval * ns),
            "eval_count": plan.tokens_out,
            "eval_duration": int((end - plan.times[0]) * ns),
        }
        events.append((end, line(final)))

        async def stamped() -> AsyncIterator[bytes]:
            # created_at is stamped when each line leaves, as Ollama does.
            stamp = b'"created_at":""'
            paced = self._paced(start, events)
            try:
                async for payload in paced:
                    yield payload.replace(stamp, b'"created_at":"' + created_at().encode() + b'"')
            finally:
                await paced.aclose()

        headers = [("content-type", "application/x-ndjson")]
        return StreamingResponse(200, headers, stamped())



# --------------------------------------------------------------------------------------------
# Protocol-shaped errors
# --------------------------------------------------------------------------------------------

_ERROR_MESSAGES = {
    "rate_limit": "Rate limit reached for requests (simulated 429 burst). Please try again in 1s.",
    "overloaded": "Overloaded",
    "server_error": "The server had an error while processing your request. Sorry about that!",
}


def _retry_headers(retry_after: int | None) -> list[tuple[str, str]]:
    return [] if retry_after is None else [("retry-after", str(retry_after))]


def _openai_error(status: int, kind: str, message: str, retry_after: int | None) -> Response:
    type_, code = {
        "rate_limit": ("requests", "rate_limit_exceeded"),
        "overloaded": ("server_error", None),
        "server_error": ("server_error", None),
        "not_found": ("invalid_request_error", "model_not_found"),
    }.get(kind, ("invalid_request_error", None))
    if kind == "overloaded":
        message = "The engine is currently overloaded, please try again later."
    headers = [("x-request-id", "req_" + uuid.uuid4().hex), *_retry_headers(retry_after)]
    if kind == "rate_limit":
        headers += [
            ("x-ratelimit-limit-requests", "600"),
            ("x-ratelimit-remaining-requests", "0"),
            ("x-ratelimit-reset-requests", f"{retry_after or 1}s"),
        ]
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return Response.json(body, status, headers)


def _anthropic_error(status: int, kind: str, message: str, retry_after: int | None) -> Response:
    type_ = {
        "rate_limit": "rate_limit_error",
        "overloaded": "overloaded_error",
        "server_error": "api_error",
        "not_found": "not_found_error",
    }.get(kind, "invalid_request_error")
    if kind == "server_error":
        message = "Internal server error"
    request_id = "req_" + uuid.uuid4().hex[:24]
    headers = [("request-id", request_id), *_retry_headers(retry_after)]
    if kind == "rate_limit":
        headers += [("anthropic-ratelimit-requests-limit", "1000"), ("anthropic-ratelimit-requests-remaining", "0")]
    body = {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id}
    return Response.json(body, status, headers)


def _gemini_error(status: int, kind: str, message: str, retry_after: int | None) -> Response:
    status_name = {
        "rate_limit": "RESOURCE_EXHAUSTED",
        "overloaded": "UNAVAILABLE",
        "server_error": "INTERNAL",
        "not_found": "NOT_FOUND",
    }.get(kind, "INVALID_ARGUMENT")
    if kind == "rate_limit":
        message = "Resource has been exhausted (e.g. check quota)."
    elif kind == "overloaded":
        message = "The model is overloaded. Please try again later."
    error: dict[str, Any] = {"code": status, "message": message, "status": status_name}
    if retry_after is not None:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after}s"}]
    return Response.json({"error": error}, status, _retry_headers(retry_after))


def _ollama_error(status: int, kind: str, message: str, retry_after: int | None) -> Response:
    if kind == "rate_limit":
        message = "too many requests (simulated 429 burst)"
    return Response.json({"error": message}, status, _retry_headers(retry_after))


_ERRORS: dict[str, Callable[[int, str, str, int | None], Response]] = {
    "openai": _openai_error,
    "anthropic": _anthropic_error,
    "gemini": _gemini_error,
    "ollama": _ollama_error,
}


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def _sse(obj: Any) -> bytes:
    return b"data: " + _dumps(obj) + b"\n\n"


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


# --------------------------------------------------------------------------------------------
# Targets
# --------------------------------------------------------------------------------------------


def demo_targets(
    base_url: str, interval_s: float = 1.0, profiles: Sequence[ModelProfile] = DEFAULT_PROFILES
) -> list[Target]:
    """One target per simulated model, each through its own wire protocol, pointed at ``base_url``."""
    root = base_url.rstrip("/")
    targets = []
    for profile in profiles:
        base = f"{root}/v1" if profile.protocol == "openai" else root
        targets.append(
            Target(
                name=profile.target_name,
                provider=profile.protocol,
                model=profile.model,
                protocol=profile.protocol,
                base_url=base,
                api_key_env=None,
                prompt=profile.prompt,
                max_tokens=32,
                interval_s=interval_s,
                api_version="2023-06-01" if profile.protocol == "anthropic" else None,
            )
        )
    return targets
