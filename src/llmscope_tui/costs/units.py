"""Price value types: a ``[[prices]]`` override, base-tier unit prices and their cost, a
catalogue entry. Plain data (no genai-prices import), shared by PriceBook and recommendations."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MTOK = 1_000_000


@dataclass(frozen=True, slots=True)
class PriceOverride:
    """A ``[[prices]]`` entry: USD per million tokens for an exact model id.

    ``provider`` None applies to that model id on every provider; a provider-scoped override
    beats an unscoped one, and both beat genai-prices. Cached tokens cost
    ``cache_read_per_mtok``, or the input price when it is None. No tiers.
    """

    model: str
    provider: str | None = None
    input_per_mtok: float = 0.0
    output_per_mtok: float = 0.0
    cache_read_per_mtok: float | None = None


@dataclass(frozen=True, slots=True)
class UnitPrices:
    """Prices per million tokens at the base tier, for display and recommendations.

    ``cache_read_per_mtok`` (``cache_write_per_mtok``) None: cached tokens (cache writes) are
    billed at the input price. ``tiered``: larger
    prompts pay more (see genai-prices). ``source`` is "override" or "genai-prices";
    ``provider_id`` / ``model_id`` say what genai-prices matched (the override's model id and
    our provider name for an override).
    """

    input_per_mtok: float
    output_per_mtok: float
    cache_read_per_mtok: float | None
    tiered: bool = False
    source: Literal["override", "genai-prices"] = "genai-prices"
    provider_id: str | None = None
    model_id: str = ""
    context_window: int | None = None
    cache_write_per_mtok: float | None = None

    def cost(
        self, tokens_in: float, tokens_out: float, tokens_cached: float = 0.0, tokens_cache_write: float = 0.0
    ) -> float:
        """Base-tier price of these token counts (also used for monthly totals, which have no tier)."""
        tin = max(float(tokens_in), 0.0)
        cached = min(max(float(tokens_cached), 0.0), tin)
        written = min(max(float(tokens_cache_write), 0.0), tin - cached)
        read_price, write_price = (
            self.input_per_mtok if price is None else price
            for price in (self.cache_read_per_mtok, self.cache_write_per_mtok)
        )
        return (
            (tin - cached - written) * self.input_per_mtok
            + cached * read_price
            + written * write_price
            + max(float(tokens_out), 0.0) * self.output_per_mtok
        ) / MTOK


@dataclass(frozen=True, slots=True)
class CatalogueModel:
    """One model of a provider's genai-prices price list (for recommendations)."""

    model: str
    prices: UnitPrices
    deprecated: bool
