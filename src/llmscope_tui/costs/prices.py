"""Prices: :class:`PriceBook` (genai-prices + ``[[prices]]`` overrides) and its value types.

Every price comes from `genai-prices`_ (the ``genai_prices`` package) and its *bundled* data
snapshot, or from ``[[prices]]`` overrides in the config. There is no price table in this code.
genai-prices only goes to the network when someone starts its ``UpdatePrices`` background task
(or runs its CLI with an update flag); nothing here does, and importing this module does not
even import genai-prices (it is loaded on the first price lookup, ~0.2 s).

    cost = (tokens_in - tokens_cached - tokens_cache_write) x input price
           + tokens_cached x cache-read price + tokens_cache_write x cache-write price
           + tokens_out x output price                     (prices per million tokens)

computed by genai-prices itself: we pass ``input_tokens`` = all input (cached and cache writes
included, as DESIGN 4 defines tokens_in), ``cache_read_tokens`` and ``cache_write_tokens``,
which is exactly its ``Usage`` semantics (both cache units descend from the input unit, so the
input price applies to the rest). Consequences worth knowing:

* Tiers are genai-prices' "cliff" tiers, chosen by the request's total input tokens: a Gemini
  2.5 Pro prompt of 200 000 tokens pays the base prices, one of 200 001 tokens pays the tier
  prices on *every* token (input, cached and output).
* A model whose price list has no cache-read (cache-write) price bills those tokens at the
  input price; so do ``[[prices]]`` overrides for cache writes (they have no such price).
* Time-dependent prices (DeepSeek's off-peak hours, announced price changes) are resolved at
  the ``when`` given (default: now).
* Per-request fees, where a model has one, are included as genai-prices includes them.
* A model is *priced* when genai-prices knows it for that provider and its price list has an
  input or output token price. Otherwise it is *unpriced*: cost is ``None``, never a guess
  (so a model listed with no token prices at all, e.g. Gemma on the free Gemini API, is
  unpriced until a ``[[prices]]`` override says 0).

Provider names are ours (the config presets); :data:`PROVIDER_IDS` maps them onto
genai-prices' provider ids (``gemini`` -> ``google``). Self-hosted presets (ollama, vllm,
llamacpp, lmstudio, openai-compatible) are unpriced unless overridden. A provider name we do not
know is looked up only if it *equals* a genai-prices provider id: genai-prices' own fuzzy
provider matching would price ``openai-compatible`` as OpenAI, so it is never used.

Model ids are matched by genai-prices' own rules (dated ids, ``-latest`` aliases,
``models/`` prefixes...). If that fails and the id starts with ``<provider>/`` for our
provider name or its genai-prices id, the rest is tried once.

.. _genai-prices: https://github.com/pydantic/genai-prices
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from llmscope_tui.costs.units import MTOK, CatalogueModel, PriceOverride, UnitPrices

#: Our provider name (config preset) -> genai-prices provider id; None = unpriced by default.
PROVIDER_IDS: dict[str, str | None] = {
    "openai": "openai",
    "azure": "azure",
    "anthropic": "anthropic",
    "gemini": "google",
    "google": "google",
    "groq": "groq",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "together": "together",
    "fireworks": "fireworks",
    "openrouter": "openrouter",
    "ollama": None,
    "vllm": None,
    "llamacpp": None,
    "lmstudio": None,
    "openai-compatible": None,
}


@dataclass(slots=True)
class _Entry:
    """What a (provider, model) resolves to; cached so pricing a sample is a dict lookup."""

    override: PriceOverride | None = None
    info: Any = None  # genai_prices.types.ModelInfo
    provider_id: str | None = None
    static_price: Any = None  # the ModelPrice when the model has one unconditional price
    static_priced: bool = False

    @property
    def known(self) -> bool:
        return self.override is not None or self.info is not None


_UNPRICED = _Entry()


def _base(value: Any) -> float | None:
    """A genai-prices price (Decimal or TieredPrices) as a float at its base tier."""
    if value is None:
        return None
    return float(getattr(value, "base", value))


def _has_token_prices(model_price: Any) -> bool:
    return getattr(model_price, "input_mtok", None) is not None or getattr(model_price, "output_mtok", None) is not None


def _count(value: Any) -> int:
    if value is None:
        return 0
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return 0
    return max(0, number)


class PriceBook:
    """Prices from genai-prices' bundled snapshot, with config overrides on top.

    ``snapshot`` is a ``genai_prices.data_snapshot.DataSnapshot`` to use instead of
    ``genai_prices.data_snapshot.get_snapshot()`` (which is the bundled data unless someone in
    the process started genai-prices' updater; nothing in llmscope-tui does). Lookups are cached
    per (provider, model) and prices per distinct token counts, so pricing a probe sample
    costs a few microseconds after the first call. Overrides given later win over earlier
    ones for the same (provider, model).
    """

    def __init__(
        self,
        overrides: Iterable[PriceOverride] = (),
        *,
        snapshot: Any = None,
        memo_size: int = 4096,
    ) -> None:
        self._scoped: dict[tuple[str, str], PriceOverride] = {}
        self._unscoped: dict[str, PriceOverride] = {}
        for ov in overrides:
            if ov.provider is None:
                self._unscoped[ov.model] = ov
            else:
                self._scoped[(ov.provider.strip().lower(), ov.model)] = ov
        self._snapshot = snapshot
        self._entries: dict[tuple[str, str], _Entry] = {}
        self._memo: dict[tuple[int, int, int, int, int], float] = {}
        self._memo_size = max(int(memo_size), 16)
        self._catalogues: dict[str, list[Any]] = {}

    # -- lookups ---------------------------------------------------------------------------

    @property
    def overrides(self) -> list[PriceOverride]:
        return [*self._unscoped.values(), *self._scoped.values()]

    def snapshot(self) -> Any:
        """The genai-prices DataSnapshot in use (loaded on first need)."""
        if self._snapshot is None:
            from genai_prices import data_snapshot  # deferred: ~0.2 s, and only prices need it

            self._snapshot = data_snapshot.get_snapshot()
        return self._snapshot

    @staticmethod
    def provider_id(provider: str) -> str | None:
        """genai-prices' provider id for our provider name, or None when unpriced by default."""
        key = provider.strip().lower()
        if key in PROVIDER_IDS:
            return PROVIDER_IDS[key]
        return key or None  # used only if it is exactly a genai-prices id (see _lookup)

    def _override(self, provider: str, model: str) -> PriceOverride | None:
        if self._scoped:
            key = provider.strip().lower()
            ov = self._scoped.get((key, model))
            if ov is None:
                pid = self.provider_id(key)
                if pid is not None and pid != key:
                    ov = self._scoped.get((pid, model))
            if ov is not None:
                return ov
        return self._unscoped.get(model)

    def _entry(self, provider: str, model: str) -> _Entry:
        key = (provider, model)
        entry = self._entries.get(key)
        if entry is None:
            entry = self._resolve(provider, model)
            self._entries[key] = entry
        return entry

    def _resolve(self, provider: str, model: str) -> _Entry:
        ov = self._override(provider, model)
        if ov is not None:
            return _Entry(override=ov, provider_id=self.provider_id(provider))
        pid = self.provider_id(provider)
        if pid is None or not model.strip():
            return _UNPRICED
        snap = self.snapshot()
        if provider.strip().lower() not in PROVIDER_IDS and not any(p.id == pid for p in snap.providers):
            return _UNPRICED  # an unknown name is used only when it *is* a genai-prices id
        found = self._find(snap, pid, model.strip())
        if found is None:
            prefix, sep, rest = model.strip().partition("/")
            if sep and rest and prefix.lower() in {provider.strip().lower(), pid}:
                found = self._find(snap, pid, rest)
        if found is None:
            return _UNPRICED
        gp_provider, info = found
        entry = _Entry(info=info, provider_id=gp_provider.id)
        if not isinstance(info.prices, list):
            entry.static_price = info.prices
            entry.static_priced = _has_token_prices(info.prices)
        return entry

    @staticmethod
    def _find(snap: Any, pid: str, model: str) -> tuple[Any, Any] | None:
        try:
            return snap.find_provider_model(model, None, pid, None)
        except LookupError:
            return None

    def _model_price(self, entry: _Entry, when: datetime | None) -> Any:
        """The genai-prices ModelPrice in force at ``when``, or None if it has no token prices."""
        if entry.static_price is not None:
            return entry.static_price if entry.static_priced else None
        price = entry.info.get_prices(when or datetime.now(UTC))
        return price if _has_token_prices(price) else None

    # -- public API ------------------------------------------------------------------------

    def is_priced(self, provider: str, model: str, when: datetime | None = None) -> bool:
        """True when :meth:`cost` gives a number for this provider and model."""
        entry = self._entry(provider, model)
        if entry.override is not None:
            return True
        if entry.info is None:
            return False
        return self._model_price(entry, when) is not None

    def unit_prices(self, provider: str, model: str, when: datetime | None = None) -> UnitPrices | None:
        """Input, output and cache-read prices per million tokens at the base tier, or None."""
        entry = self._entry(provider, model)
        if entry.override is not None:
            ov = entry.override
            return UnitPrices(
                ov.input_per_mtok,
                ov.output_per_mtok,
                ov.cache_read_per_mtok,
                tiered=False,
                source="override",
                provider_id=provider,
                model_id=ov.model,
            )
        if entry.info is None:
            return None
        price = self._model_price(entry, when)
        if price is None:
            return None
        return _unit_prices_of(price, entry.provider_id, entry.info)

    def cost(
        self,
        provider: str,
        model: str,
        tokens_in: int | None,
        tokens_out: int | None,
        tokens_cached: int | None = None,
        when: datetime | None = None,
        *,
        tokens_cache_write: int | None = None,
    ) -> float | None:
        """USD for one call (DESIGN 7), or None when unpriced or when no usage is known at all.

        ``tokens_in`` includes the cached tokens and the cache writes (DESIGN 4); a missing count
        is taken as 0 when the other one is known; negative counts are taken as 0, and cache
        reads plus writes above ``tokens_in`` are cut to it (reads first), as genai-prices
        refuses such usage. ``when`` selects time-dependent prices (default now).
        """
        if tokens_in is None and tokens_out is None:
            return None
        entry = self._entry(provider, model)
        tin = _count(tokens_in)
        tout = _count(tokens_out)
        cached = min(_count(tokens_cached), tin)
        written = min(_count(tokens_cache_write), tin - cached)
        ov = entry.override
        if ov is not None:
            cache_price = ov.input_per_mtok if ov.cache_read_per_mtok is None else ov.cache_read_per_mtok
            fresh = tin - cached  # cache writes included: an override has no cache-write price
            return (fresh * ov.input_per_mtok + cached * cache_price + tout * ov.output_per_mtok) / MTOK
        if entry.info is None:
            return None
        price = self._model_price(entry, when)
        if price is None:
            return None
        key = (id(price), tin, tout, cached, written)  # ModelPrice objects live as long as the snapshot
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        from genai_prices import Usage

        usage = Usage(input_tokens=tin, output_tokens=tout, cache_read_tokens=cached, cache_write_tokens=written)
        try:
            value = float(price.calc_price(usage)["total_price"])
        except (ValueError, ArithmeticError):  # a price-data problem: say unpriced, not wrong
            return None
        if len(self._memo) >= self._memo_size:
            self._memo.clear()
        self._memo[key] = value
        return value

    def cost_sample(self, sample: Any) -> float | None:
        """:meth:`cost` for a :class:`~llmscope_tui.model.Sample` (or anything with its fields)."""
        ts = getattr(sample, "ts", None)
        when = datetime.fromtimestamp(ts, UTC) if isinstance(ts, (int, float)) else None
        return self.cost(
            sample.provider,
            sample.model,
            sample.tokens_in,
            sample.tokens_out,
            getattr(sample, "tokens_cached", None),
            when,
            tokens_cache_write=getattr(sample, "tokens_cache_write", None),
        )

    def catalogue(self, provider: str, when: datetime | None = None) -> list[CatalogueModel]:
        """Every model genai-prices lists for this provider with input and output token prices."""
        pid = self.provider_id(provider)
        if pid is None:
            return []
        models = self._catalogues.get(pid)
        if models is None:
            gp = next((p for p in self.snapshot().providers if p.id == pid), None)
            models = list(gp.models) if gp is not None else []
            self._catalogues[pid] = models
        moment = when or datetime.now(UTC)
        out: list[CatalogueModel] = []
        for info in models:
            price = info.get_prices(moment)
            if getattr(price, "input_mtok", None) is None or getattr(price, "output_mtok", None) is None:
                continue
            out.append(CatalogueModel(info.id, _unit_prices_of(price, pid, info), bool(info.deprecated)))
        return out


def _unit_prices_of(price: Any, provider_id: str | None, info: Any) -> UnitPrices:
    raw = tuple(
        getattr(price, key, None) for key in ("input_mtok", "output_mtok", "cache_read_mtok", "cache_write_mtok")
    )
    return UnitPrices(
        _base(raw[0]) or 0.0,
        _base(raw[1]) or 0.0,
        _base(raw[2]),
        tiered=any(hasattr(v, "tiers") and v.tiers for v in raw if v is not None),
        source="genai-prices",
        provider_id=provider_id,
        model_id=info.id,
        context_window=info.context_window,
        cache_write_per_mtok=_base(raw[3]),
    )
