"""Recommendations: cheaper alternatives to the models in use ("switch X to Y"), priced per month
at the current rate of use, with what the alternative's targets measured, each target named."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from llmscope_tui.costs.formatting import _percent, format_usd
from llmscope_tui.costs.prices import PriceBook


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Tokens one (provider, model) uses per month (at the current rate: the reader scales the
    last hour's use, DESIGN 7); tokens_in includes the cache reads and writes."""

    provider: str
    model: str
    tokens_in: float
    tokens_out: float
    tokens_cached: float = 0.0
    tokens_cache_write: float = 0.0


@dataclass(frozen=True, slots=True)
class Measured:
    """What probing one target measured: p50 TTFT in ms and error rate as a fraction.

    Figures belong to a target, not a model: two targets of one model (two gateways, two
    regions) can differ completely, so a recommendation quotes each by name."""

    target: str
    p50_ttft_ms: float | None = None
    error_rate: float | None = None


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A cheaper alternative for a model in use, priced per month at the current usage.

    ``price_ratio`` = alt_monthly / current_monthly (< 1). ``source``: "monitored" (one of our
    targets; ``alt_measured``: what each target of that model measured) or "catalogue"
    (genai-prices' price list for the same provider; see :func:`recommend`).
    """

    provider: str
    model: str
    alt_provider: str
    alt_model: str
    current_monthly: float
    alt_monthly: float
    saving_monthly: float
    price_ratio: float
    source: Literal["monitored", "catalogue"]
    alt_measured: tuple[Measured, ...]
    text: str

    @property
    def saving_fraction(self) -> float:
        return 1.0 - self.price_ratio


#: Catalogue ids with any of these are not general chat models (or not callable as one).
NON_CHAT_MARKERS: tuple[str, ...] = (
    "embed", "tts", "whisper", "transcribe", "audio", "realtime", "image", "dall-e", "banana",
    "moderation", "guard", "rerank", "search", "deep-research", "live", "computer-use", "robotics",
    "codex", "ft:", ".ft-", "babbage", "davinci", "curie",
)  # fmt: skip


def _chat_model(model_id: str) -> bool:
    text = model_id.lower()
    return text != "ada" and not any(marker in text for marker in NON_CHAT_MARKERS)


def _family(model_id: str) -> str:
    """The id's first word without its vendor prefix: 'gpt-4o' -> 'gpt', 'o4-mini' -> 'o'."""
    match = re.match(r"[a-z]+", model_id.lower().rpartition("/")[2])
    return match.group(0) if match else ""


def _vendor(model_id: str) -> str:
    """'meta-llama/Llama-3.3-70B' -> 'meta-llama' (aggregators list many vendors); '' if none."""
    head, sep, _ = model_id.partition("/")
    return head.lower() if sep else ""


def recommend(
    usage: Iterable[ModelUsage],
    price_book: PriceBook,
    monitored: Iterable[tuple[str, str]],
    measured: Mapping[tuple[str, str], Sequence[Measured]] | None = None,
    catalogue: bool = True,
    *,
    catalogue_floor: float = 0.25,
    max_catalogue: int = 3,
    min_saving: float = 0.01,
    when: datetime | None = None,
) -> list[Recommendation]:
    """Cheaper alternatives for each monitored model that has usage, biggest saving first.

    ``usage`` is per month (scale the current rate to a month before calling). Monthly costs
    are ``usage x unit prices at the base tier`` for both sides (monthly totals
    carry no per-request tier information), so the two numbers are comparable. An alternative
    must save at least ``min_saving`` (1 %).

    Alternatives:

    * **monitored**: every other priced monitored (provider, model), any provider; we show what
      each of its targets measured, naming the target (``measured[(provider, model)]``).
    * **catalogue** (``catalogue=True``): models from genai-prices' price list for the *same
      provider* (and, on aggregators like OpenRouter or Together, the same vendor prefix, e.g.
      "meta-llama/") that are of a **comparable class**, which here means, and only means:

      1. the same family: the id's first word (gpt, o, claude, gemini, gemma, llama, mistral...);
      2. a chat model priced per input and output token (ids naming embeddings, audio, images,
         realtime, search, moderation, fine-tunes or legacy completions are skipped, see
         :data:`NON_CHAT_MARKERS`) and not marked deprecated;
      3. a context window at least the current model's (when the current one's is known, an
         alternative whose window is unknown is skipped);
      4. costing at least ``catalogue_floor`` (a quarter) of the current model at this usage:
         a model more than 4x cheaper is nearly always a smaller tier (mini/nano/lite) and is
         not offered as a like-for-like swap; monitor it to have it compared.

      Quality is not judged. At most ``max_catalogue`` per model, biggest saving first.
    """
    totals: dict[tuple[str, str], list[float]] = {}
    for item in usage:
        acc = totals.setdefault((item.provider, item.model), [0.0, 0.0, 0.0, 0.0])
        acc[0] += max(float(item.tokens_in), 0.0)
        acc[1] += max(float(item.tokens_out), 0.0)
        acc[2] += max(float(item.tokens_cached or 0.0), 0.0)
        acc[3] += max(float(item.tokens_cache_write or 0.0), 0.0)
    watched = list(dict.fromkeys(monitored))
    watched_set = set(watched)
    measured = measured or {}

    out: list[Recommendation] = []
    for (provider, model), mix in totals.items():
        if (provider, model) not in watched_set:
            continue
        current = price_book.unit_prices(provider, model, when)
        if current is None:
            continue
        current_monthly = current.cost(*mix)
        if current_monthly <= 0:
            continue

        def make(
            alt_provider: str,
            alt_model: str,
            alt_monthly: float,
            source: str,
            provider: str = provider,
            model: str = model,
            current_monthly: float = current_monthly,
        ) -> Recommendation:
            """One recommendation against this (provider, model): bound now, called in this turn."""
            found = measured.get((alt_provider, alt_model), ()) if source == "monitored" else ()
            figures = tuple(sorted(found, key=lambda m: m.target))
            ratio = alt_monthly / current_monthly
            return Recommendation(
                provider=provider,
                model=model,
                alt_provider=alt_provider,
                alt_model=alt_model,
                current_monthly=current_monthly,
                alt_monthly=alt_monthly,
                saving_monthly=current_monthly - alt_monthly,
                price_ratio=ratio,
                source=source,  # type: ignore[arg-type]
                alt_measured=figures,
                text=_recommendation_text(
                    provider, model, alt_provider, alt_model, current_monthly, alt_monthly, figures
                ),
            )

        found: list[Recommendation] = []
        covered: set[tuple[str | None, str]] = {(current.provider_id, current.model_id)}
        for alt_provider, alt_model in watched:
            if (alt_provider, alt_model) == (provider, model):
                continue
            alt = price_book.unit_prices(alt_provider, alt_model, when)
            if alt is None:
                continue
            covered.add((alt.provider_id, alt.model_id))
            alt_monthly = alt.cost(*mix)
            if alt_monthly < current_monthly * (1 - min_saving):
                found.append(make(alt_provider, alt_model, alt_monthly, "monitored"))

        if catalogue and current.source == "genai-prices":
            vendor, family = _vendor(current.model_id), _family(current.model_id)
            candidates: list[Recommendation] = []
            for entry in price_book.catalogue(provider, when):
                prices = entry.prices
                if (prices.provider_id, entry.model) in covered or entry.deprecated:
                    continue
                if _vendor(entry.model) != vendor or _family(entry.model) != family or not _chat_model(entry.model):
                    continue
                if current.context_window and (prices.context_window or 0) < current.context_window:
                    continue
                alt_monthly = prices.cost(*mix)
                ratio = alt_monthly / current_monthly
                if catalogue_floor <= ratio < 1 - min_saving:
                    candidates.append(make(provider, entry.model, alt_monthly, "catalogue"))
            candidates.sort(key=lambda r: (-r.saving_monthly, r.alt_model))
            found.extend(candidates[: max(max_catalogue, 0)])
        out.extend(found)
    out.sort(key=lambda r: (-r.saving_monthly, r.provider, r.model, r.alt_provider, r.alt_model))
    return out


def _recommendation_text(
    provider: str,
    model: str,
    alt_provider: str,
    alt_model: str,
    current: float,
    alt: float,
    figures: Sequence[Measured],
) -> str:
    x, y = f"{provider}/{model}", f"{alt_provider}/{alt_model}"
    text = (
        f"switching {x} to {y}: {format_usd(current)} -> {format_usd(alt)} per month at the "
        f"current rate (-{_percent(1 - alt / current)})"
    )
    for m in figures:
        said = []
        if m.p50_ttft_ms is not None:
            said.append(f"p50 TTFT {m.p50_ttft_ms:.0f} ms")
        if m.error_rate is not None:
            said.append(f"error rate {_percent(m.error_rate)}")
        if said:
            text += f"; on target {m.target}: {', '.join(said)}"
    return text
