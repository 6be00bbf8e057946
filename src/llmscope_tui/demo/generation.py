"""One simulated generation: which tokens a reply holds and when each chunk of it arrives.

Every protocol streams the same plan, so the four wire encodings (``encoders.py``) differ only
in how they dress it; the draws come from the model's own seeded generator, so a seed and an
order of requests give the same replies.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from llmscope_tui.demo.profiles import ModelProfile

__all__ = ["Plan", "count_tokens", "draw_plan", "prompt_tokens"]

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


def prompt_tokens(texts: Sequence[str], overhead: int) -> int:
    """Input tokens a prompt costs: about four characters a token, plus the chat template's."""
    return overhead + sum(max(1, math.ceil(len(t) / 4)) for t in texts if t)


@dataclass(slots=True)
class Plan:
    """One simulated generation: what to send and when (seconds from request arrival)."""

    chunks: list[str]  # text of each content chunk
    sizes: list[int]  # tokens in each content chunk
    times: list[float]  # arrival offset of each content chunk
    first_event_s: float  # when the pre-content frames (role delta, message_start) go out
    tokens_in: int
    tokens_out: int
    truncated: bool

    @property
    def end_s(self) -> float:
        """When the last content chunk goes out (the closing frames go with it)."""
        return self.times[-1]


def _reply_tokens(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` tokens of canned sentences, starting at a random one."""
    sentence = int(rng.integers(len(_SENTENCE_TOKENS)))
    tokens: list[str] = []
    while len(tokens) < n:
        piece = _SENTENCE_TOKENS[sentence % len(_SENTENCE_TOKENS)]
        if tokens:
            piece = (" " + piece[0].lstrip(), *piece[1:])
        tokens.extend(piece)
        sentence += 1
    return tokens[:n]


def draw_plan(
    profile: ModelProfile,
    rng: np.random.Generator,
    texts: Sequence[str],
    max_tokens: int | None,
    factor: float,
    latency_scale: float,
) -> Plan:
    """Draw one reply from ``profile``: TTFT scaled by the timeline's ``factor``, every delay
    by ``latency_scale``, at most ``max_tokens`` tokens (None: the profile's own length)."""
    scale = latency_scale / 1000.0
    n = int(rng.integers(profile.tokens_min, profile.tokens_max + 1))
    truncated = max_tokens is not None and max_tokens < n
    if max_tokens is not None and truncated:
        n = max(1, int(max_tokens))
    tokens = _reply_tokens(rng, n)

    ttft = (
        float(rng.lognormal(math.log(profile.ttft_median_ms), profile.ttft_sigma)) * factor * scale
    )
    gaps = (
        rng.lognormal(math.log(profile.gap_median_ms), profile.gap_sigma, size=max(0, n - 1))
        * scale
    )
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
    return Plan(
        chunks=chunks,
        sizes=sizes,
        times=times,
        first_event_s=first_event,
        tokens_in=prompt_tokens(texts, profile.prompt_overhead_tokens),
        tokens_out=n,
        truncated=truncated,
    )
