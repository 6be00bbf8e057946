"""The simulated models: each one's latency personality, and the demo target that probes it.

A profile is data, not code: the server draws every generation from it (``generation.py``),
so a new simulated model is one more entry in ``DEFAULT_PROFILES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from llmscope_tui.model import Target

__all__ = ["DEFAULT_PROFILES", "ModelProfile", "demo_targets"]


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
        "gpt-4o-mini-sim", "openai", ttft_median_ms=330.0, ttft_sigma=0.22,
        gap_median_ms=12.0, gap_sigma=0.35, tokens_min=9, tokens_max=14,
        prompt_overhead_tokens=7, error_rate=0.002, error_kind="server_error",
        blurb="quick and steady; the calm control",
    ),
    ModelProfile(
        "claude-haiku-sim", "anthropic", ttft_median_ms=520.0, ttft_sigma=0.2,
        gap_median_ms=17.0, gap_sigma=0.3, tokens_min=10, tokens_max=16,
        prompt_overhead_tokens=8, error_rate=0.004, error_kind="overloaded",
        prompt="Reply with the word OK, then one short sentence.",
        blurb="slower start, smooth stream, now and then overloaded",
    ),
    ModelProfile(
        "gemini-flash-sim", "gemini", ttft_median_ms=270.0, ttft_sigma=0.28,
        gap_median_ms=9.0, gap_sigma=0.45, tokens_min=8, tokens_max=14,
        tokens_per_chunk=(2, 5), prompt_overhead_tokens=0, error_rate=0.002,
        error_kind="overloaded",
        blurb="fastest first token, jittery, streams in bursts of tokens",
    ),
    ModelProfile(
        "llama3-sim", "ollama", ttft_median_ms=650.0, ttft_sigma=0.15,
        gap_median_ms=28.0, gap_sigma=0.12, tokens_min=10, tokens_max=16,
        prompt_overhead_tokens=11,
        blurb="a local GPU: slow but very regular",
    ),
)


def demo_targets(
    base_url: str, interval_s: float = 1.0, profiles: Sequence[ModelProfile] = DEFAULT_PROFILES
) -> list[Target]:
    """One target per simulated model, each through its own wire protocol, pointed at
    ``base_url``."""
    root = base_url.rstrip("/")
    return [
        Target(
            name=profile.target_name,
            provider=profile.protocol,
            model=profile.model,
            protocol=profile.protocol,
            base_url=f"{root}/v1" if profile.protocol == "openai" else root,
            api_key_env=None,
            prompt=profile.prompt,
            max_tokens=32,
            interval_s=interval_s,
            api_version="2023-06-01" if profile.protocol == "anthropic" else None,
        )
        for profile in profiles
    ]
