"""Costs: prices, budgets, projections and recommendations (DESIGN 7).

Pure logic, no I/O of its own: the monitor prices samples with a :class:`PriceBook`, the store
sums spend per period, and this module turns spend into budget states, alerts, projections and
"switch X to Y" recommendations. It imports nothing from the UI (no Textual) and nothing from
the probe.

Prices
------
Every price comes from `genai-prices`_ (the ``genai_prices`` package) and its *bundled* data
snapshot, or from ``[[prices]]`` overrides in the config. There is no price table in this code.
genai-prices only goes to the network when someone starts its ``UpdatePrices`` background task
(or runs its CLI with an update flag); nothing here does, and importing this module does not
even import genai-prices (it is loaded on the first price lookup, ~0.2 s).

    cost = (tokens_in - tokens_cached) x input price
           + tokens_cached x cache-read price
           + tokens_out x output price                     (prices per million tokens)

computed by genai-prices itself: we pass ``input_tokens`` = all input (cached included, as
DESIGN 4 defines tokens_in) and ``cache_read_tokens`` = the cached part, which is exactly its
``Usage`` semantics (the cache-read unit is a descendant of the input unit, so the input price
applies to ``input_tokens - cache_read_tokens``). Consequences worth knowing:

* Tiers are genai-prices' "cliff" tiers, chosen by the request's total input tokens: a Gemini
  2.5 Pro prompt of 200 000 tokens pays the base prices, one of 200 001 tokens pays the tier
  prices on *every* token (input, cached and output).
* A model whose price list has no cache-read price bills cached tokens at the input price.
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

Budgets
-------
:class:`Budget` + :func:`budget_status` + :class:`BudgetAlerter`: warning at 80 %, critical at
100 %, an alert when 50 %, 80 % and 100 % are first reached in a period, and optional probe
pausing. See :class:`BudgetAlerter` for what happens across restarts.

.. _genai-prices: https://github.com/pydantic/genai-prices
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from llmscope_tui.model import Target

__all__ = [
    "BUDGET_THRESHOLDS",
    "DAYS_PER_MONTH",
    "PROVIDER_IDS",
    "Budget",
    "BudgetAlerter",
    "BudgetEvent",
    "BudgetStatus",
    "CatalogueModel",
    "CostConfigError",
    "ModelUsage",
    "OverheadLine",
    "PriceBook",
    "PriceOverride",
    "Recommendation",
    "UnitPrices",
    "budget_status",
    "estimate_prompt_tokens",
    "format_usd",
    "overhead_totals",
    "parse_budget",
    "parse_budgets",
    "parse_price",
    "period_bounds",
    "probe_overhead",
    "projected_period_spend",
    "recommend",
]

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

#: Alert thresholds, as fractions of a budget's limit (DESIGN 7).
BUDGET_THRESHOLDS: tuple[float, ...] = (0.5, 0.8, 1.0)
#: Budget bar states: warning from this fraction, critical from 1.0.
WARNING_AT = 0.8
CRITICAL_AT = 1.0
#: "Per month" in probe overhead means 30 days.
DAYS_PER_MONTH = 30
#: Tokens a chat request adds around the prompt text (role markers, template), for estimates.
PROMPT_OVERHEAD_TOKENS = 8

# Sums of many float costs land a hair below a round limit (39.99999999 of 40): compare with slack.
_EPS = 1e-9
_MTOK = 1_000_000


# --------------------------------------------------------------------------------------------
# Config errors and parsing ([[budgets]], [[prices]])
# --------------------------------------------------------------------------------------------


class CostConfigError(ValueError):
    """A bad ``[[budgets]]`` or ``[[prices]]`` entry: ``key`` names the offending key.

    The config loader adds the file and line. ``index`` is the entry's position in its list
    when the error came from :func:`parse_budgets`.
    """

    def __init__(self, key: str, message: str, index: int | None = None) -> None:
        super().__init__(key, message)
        self.key = key
        self.message = message
        self.index = index

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


_BUDGET_KEYS = ("name", "limit_usd", "period", "scope", "pause_probes_at")
_PRICE_KEYS = ("model", "provider", "input_per_mtok", "output_per_mtok", "cache_read_per_mtok")
PERIODS: tuple[str, ...] = ("day", "month")
_SCOPE_HELP = 'expected "all", "provider:NAME", "target:NAME", "source:probe" or "source:app"'


def _check_keys(data: Any, allowed: tuple[str, ...], what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise CostConfigError(what, f"each [[{what}]] entry must be a table, got {type(data).__name__}")
    for key in data:
        if key not in allowed:
            raise CostConfigError(str(key), f"unknown key in [[{what}]] (expected one of: {', '.join(allowed)})")
    return data


def _number(data: Mapping[str, Any], key: str, *, minimum: float, strict: bool = False) -> float:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CostConfigError(key, f"must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise CostConfigError(key, f"must be a finite number, got {value!r}")
    if number < minimum or (strict and number == minimum):
        raise CostConfigError(key, f"must be {'>' if strict else '>='} {minimum:g}, got {value!r}")
    return number


def _text(data: Mapping[str, Any], key: str) -> str:
    value = data[key]
    if not isinstance(value, str) or not value.strip():
        raise CostConfigError(key, f"must be a non-empty string, got {value!r}")
    return value.strip()


def _parse_scope(scope: Any) -> tuple[str, str | None]:
    """'all' -> ('all', None); 'provider:openai' -> ('provider', 'openai'); CostConfigError else."""
    if not isinstance(scope, str):
        raise CostConfigError("scope", f"{_SCOPE_HELP}, got {scope!r}")
    text = scope.strip()
    if text == "all":
        return "all", None
    kind, sep, value = text.partition(":")
    kind, value = kind.strip(), value.strip()
    if not sep or kind not in ("provider", "target", "source") or not value:
        raise CostConfigError("scope", f"{_SCOPE_HELP}, got {scope!r}")
    if kind == "source" and value not in ("probe", "app"):
        raise CostConfigError("scope", f'source must be "probe" or "app", got {value!r}')
    return kind, value


def parse_budget(data: Mapping[str, Any]) -> Budget:
    """One ``[[budgets]]`` table -> :class:`Budget`; :class:`CostConfigError` naming the key.

    ``name`` and ``limit_usd`` (> 0) are required; ``period`` defaults to "month", ``scope`` to
    "all"; ``pause_probes_at`` is a fraction of the limit (1.0 = pause at 100 %), in (0, 10].
    """
    data = _check_keys(data, _BUDGET_KEYS, "budgets")
    for key in ("name", "limit_usd"):
        if key not in data:
            raise CostConfigError(key, "is required in [[budgets]]")
    name = _text(data, "name")
    limit = _number(data, "limit_usd", minimum=0.0, strict=True)
    period = data.get("period", "month")
    if period not in PERIODS:
        raise CostConfigError("period", f'must be "day" or "month", got {period!r}')
    scope = data.get("scope", "all")
    kind, value = _parse_scope(scope)
    pause: float | None = None
    if data.get("pause_probes_at") is not None:
        pause = _number(data, "pause_probes_at", minimum=0.0, strict=True)
        if pause > 10:
            raise CostConfigError(
                "pause_probes_at", f"is a fraction of limit_usd (1.0 = 100 %), got {data['pause_probes_at']!r}"
            )
    return Budget(name, limit, period, "all" if kind == "all" else f"{kind}:{value}", pause)


def parse_budgets(items: Iterable[Mapping[str, Any]]) -> list[Budget]:
    """Every ``[[budgets]]`` table, rejecting duplicate names (alerts are keyed by name)."""
    budgets: list[Budget] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        try:
            budget = parse_budget(item)
        except CostConfigError as exc:
            raise CostConfigError(exc.key, exc.message, index) from None
        if budget.name in seen:
            raise CostConfigError("name", f"duplicate budget name {budget.name!r}", index)
        seen.add(budget.name)
        budgets.append(budget)
    return budgets


def parse_price(data: Mapping[str, Any]) -> PriceOverride:
    """One ``[[prices]]`` table -> :class:`PriceOverride`; :class:`CostConfigError` naming the key."""
    data = _check_keys(data, _PRICE_KEYS, "prices")
    for key in ("model", "input_per_mtok", "output_per_mtok"):
        if key not in data:
            raise CostConfigError(key, "is required in [[prices]]")
    model = _text(data, "model")
    provider = _text(data, "provider") if data.get("provider") is not None else None
    cache_read = (
        _number(data, "cache_read_per_mtok", minimum=0.0) if data.get("cache_read_per_mtok") is not None else None
    )
    return PriceOverride(
        model=model,
        provider=provider,
        input_per_mtok=_number(data, "input_per_mtok", minimum=0.0),
        output_per_mtok=_number(data, "output_per_mtok", minimum=0.0),
        cache_read_per_mtok=cache_read,
    )


# --------------------------------------------------------------------------------------------
# Prices
# --------------------------------------------------------------------------------------------


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

    ``cache_read_per_mtok`` None: cached tokens are billed at the input price. ``tiered``: larger
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

    def cost(self, tokens_in: float, tokens_out: float, tokens_cached: float = 0.0) -> float:
        """Base-tier price of these token counts (also used for monthly totals, which have no tier)."""
        tin = max(float(tokens_in), 0.0)
        cached = min(max(float(tokens_cached), 0.0), tin)
        cache_price = self.input_per_mtok if self.cache_read_per_mtok is None else self.cache_read_per_mtok
        return (
            (tin - cached) * self.input_per_mtok
            + cached * cache_price
            + max(float(tokens_out), 0.0) * self.output_per_mtok
        ) / _MTOK


@dataclass(frozen=True, slots=True)
class CatalogueModel:
    """One model of a provider's genai-prices price list (for recommendations)."""

    model: str
    prices: UnitPrices
    deprecated: bool


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
    return number if number > 0 else 0


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
        self._memo: dict[tuple[int, int, int, int], float] = {}
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
    ) -> float | None:
        """USD for one call (DESIGN 7), or None when unpriced or when no usage is known at all.

        ``tokens_in`` includes the cached tokens (DESIGN 4); a missing count is taken as 0 when
        the other one is known; negative counts are taken as 0 and a cached count above
        ``tokens_in`` as ``tokens_in``. ``when`` selects time-dependent prices (default now).
        """
        if tokens_in is None and tokens_out is None:
            return None
        entry = self._entry(provider, model)
        tin = _count(tokens_in)
        tout = _count(tokens_out)
        cached = min(_count(tokens_cached), tin)
        ov = entry.override
        if ov is not None:
            cache_price = ov.input_per_mtok if ov.cache_read_per_mtok is None else ov.cache_read_per_mtok
            return ((tin - cached) * ov.input_per_mtok + cached * cache_price + tout * ov.output_per_mtok) / _MTOK
        if entry.info is None:
            return None
        price = self._model_price(entry, when)
        if price is None:
            return None
        key = (id(price), tin, tout, cached)  # ModelPrice objects live as long as the snapshot
        hit = self._memo.get(key)
        if hit is not None:
            return hit
        from genai_prices import Usage

        usage = Usage(input_tokens=tin, output_tokens=tout, cache_read_tokens=cached)
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
    raw = tuple(getattr(price, key, None) for key in ("input_mtok", "output_mtok", "cache_read_mtok"))
    return UnitPrices(
        _base(raw[0]) or 0.0,
        _base(raw[1]) or 0.0,
        _base(raw[2]),
        tiered=any(hasattr(v, "tiers") and v.tiers for v in raw if v is not None),
        source="genai-prices",
        provider_id=provider_id,
        model_id=info.id,
        context_window=info.context_window,
    )


# --------------------------------------------------------------------------------------------
# Periods and projections
# --------------------------------------------------------------------------------------------


def _utc(moment: datetime) -> datetime:
    """Naive datetimes are UTC; aware ones are converted."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the UTC day or calendar month containing ``now`` (aware UTC datetimes)."""
    now = _utc(now)
    if period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    if period == "month":
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start, end
    raise ValueError(f'period must be "day" or "month", got {period!r}')


def projected_period_spend(
    spent: float,
    period_start: datetime,
    period_end: datetime,
    now: datetime,
    *,
    min_elapsed: timedelta | None = None,
) -> float:
    """Spend at the end of the period if the rate so far continues.

    projected = spent + (spent / elapsed) x (end - now). So that the first minutes of a period
    do not extrapolate one early call into a fortune, elapsed is taken as at least
    ``min_elapsed``, by default the larger of one hour and 1/30 of the period (one day for a
    month, one hour for a day): a projection made on the first day of a month is at most about
    30 x the spend so far. After the period (or with nothing spent) it is the spend itself.
    """
    start, end, now = _utc(period_start), _utc(period_end), _utc(now)
    spent = float(spent)
    total = (end - start).total_seconds()
    if spent <= 0 or total <= 0 or now >= end:
        return spent
    floor = max(3600.0, total / 30) if min_elapsed is None else max(min_elapsed.total_seconds(), 1e-9)
    elapsed = max((now - start).total_seconds(), floor)
    remaining = min((end - now).total_seconds(), total)
    return spent + spent / elapsed * remaining


# --------------------------------------------------------------------------------------------
# Budgets
# --------------------------------------------------------------------------------------------


def _field(obj: Any, name: str) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name)
    return getattr(obj, name, None)


@dataclass(frozen=True, slots=True)
class Budget:
    """A spending limit (DESIGN 7), e.g. ``Budget("all", 50.0, "month", "all", 1.0)``.

    ``scope``: "all" | "provider:NAME" | "target:NAME" | "source:probe" | "source:app".
    ``pause_probes_at``: pause the probes in scope once spend reaches this fraction of the
    limit (None: never pause). Build from config with :func:`parse_budget`.
    """

    name: str
    limit_usd: float
    period: str = "month"
    scope: str = "all"
    pause_probes_at: float | None = None
    _scope: tuple[str, str | None] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.period not in PERIODS:
            raise CostConfigError("period", f'must be "day" or "month", got {self.period!r}')
        object.__setattr__(self, "_scope", _parse_scope(self.scope))

    def matches(self, sample_like: Any) -> bool:
        """Does a sample (or a mapping with provider/target/source) count against this budget?

        A missing ``source`` counts as "probe" (the Sample default).
        """
        kind, value = self._scope
        if kind == "all":
            return True
        if kind == "provider":
            return _field(sample_like, "provider") == value
        if kind == "target":
            return _field(sample_like, "target") == value
        return (_field(sample_like, "source") or "probe") == value

    def matches_target(self, target: Target) -> bool:
        """Do this target's probes count against this budget?"""
        return self.matches({"provider": target.provider, "target": target.name, "source": "probe"})

    def bounds(self, now: datetime) -> tuple[datetime, datetime]:
        return period_bounds(self.period, now)


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Where one budget stands now. ``fraction`` = spent / limit; state "ok" | "warning" | "critical"."""

    name: str
    spent: float
    limit: float
    fraction: float
    projected: float
    state: Literal["ok", "warning", "critical"]
    period_start: datetime
    period_end: datetime
    period: str = "month"
    pause_probes: bool = False


def budget_status(budget: Budget, spent: float, now: datetime) -> BudgetStatus:
    """The status of ``budget`` given ``spent`` USD so far in the period containing ``now``."""
    start, end = budget.bounds(now)
    spent = max(float(spent), 0.0)
    limit = float(budget.limit_usd)
    if limit > 0:
        fraction = spent / limit
    else:
        fraction = math.inf if spent > 0 else 0.0
    if fraction >= CRITICAL_AT - _EPS:
        state: Literal["ok", "warning", "critical"] = "critical"
    elif fraction >= WARNING_AT - _EPS:
        state = "warning"
    else:
        state = "ok"
    pause = budget.pause_probes_at is not None and fraction >= budget.pause_probes_at - _EPS
    return BudgetStatus(
        name=budget.name,
        spent=spent,
        limit=limit,
        fraction=fraction,
        projected=projected_period_spend(spent, start, end, now),
        state=state,
        period_start=start,
        period_end=end,
        period=budget.period,
        pause_probes=pause,
    )


@dataclass(frozen=True, slots=True)
class BudgetEvent:
    """Something to tell the user about a budget.

    kind "threshold": spend reached ``threshold`` (0.5, 0.8 or 1.0) of the limit for the first
    time this period. "paused" / "resumed": probes in the budget's scope stop / may start again.
    """

    kind: Literal["threshold", "paused", "resumed"]
    budget: str
    threshold: float | None
    status: BudgetStatus
    message: str


@dataclass(slots=True)
class _AlertState:
    period_start: datetime
    announced: set[float]
    paused: bool


class BudgetAlerter:
    """Turns budget statuses over time into threshold alerts and a probe-pause decision.

    Feed it each budget's latest :class:`BudgetStatus` with :meth:`update`. Each threshold
    (50 %, 80 %, 100 %) yields one "threshold" event the first time it is reached in a period
    (a jump from 30 % to 110 % yields all three, in order); a status from a new period re-arms
    them. "paused"/"resumed" events mark changes of the pause decision, which
    :meth:`should_pause` answers per target.

    Restarts: the alerter keeps no file. Seed it at startup with the statuses computed from
    the spend already in the store (``initial=`` or :meth:`seed`): every threshold the spend
    has already reached this period counts as announced, silently, and the pause state is
    restored, also silently (ask :meth:`should_pause`). The choice: a restart never repeats
    an alert; the price is that a threshold crossed while llmscope-tui was not running is not
    announced when it comes back (its bar still shows the state).
    """

    def __init__(
        self,
        budgets: Iterable[Budget] = (),
        initial: Iterable[BudgetStatus] = (),
        thresholds: Sequence[float] = BUDGET_THRESHOLDS,
    ) -> None:
        self._budgets: dict[str, Budget] = {b.name: b for b in budgets}
        self._thresholds = tuple(sorted(thresholds))
        self._state: dict[str, _AlertState] = {}
        for status in initial:
            self.seed(status)

    @property
    def budgets(self) -> list[Budget]:
        return list(self._budgets.values())

    def _reached(self, status: BudgetStatus) -> set[float]:
        return {t for t in self._thresholds if status.fraction >= t - _EPS}

    def _should_pause(self, status: BudgetStatus) -> bool:
        budget = self._budgets.get(status.name)
        if budget is None or budget.pause_probes_at is None:
            return status.pause_probes
        return status.fraction >= budget.pause_probes_at - _EPS

    def seed(self, status: BudgetStatus) -> None:
        """Take ``status`` as already announced (see the class docstring); emits nothing."""
        self._state[status.name] = _AlertState(status.period_start, self._reached(status), self._should_pause(status))

    def update(self, status: BudgetStatus) -> list[BudgetEvent]:
        """The events this status causes (usually none)."""
        state = self._state.get(status.name)
        if state is None or state.period_start != status.period_start:
            was_paused = state.paused if state is not None else False
            state = _AlertState(status.period_start, set(), was_paused)
            self._state[status.name] = state
        events: list[BudgetEvent] = []
        for threshold in sorted(self._reached(status) - state.announced):
            state.announced.add(threshold)
            message = _threshold_message(status, threshold)
            events.append(BudgetEvent("threshold", status.name, threshold, status, message))
        pause = self._should_pause(status)
        if pause != state.paused:
            state.paused = pause
            word = "paused" if pause else "resumed"
            scope = self._budgets[status.name].scope if status.name in self._budgets else "its scope"
            message = f'budget "{status.name}": probes in {scope} {word} ({_spent_text(status)})'
            events.append(BudgetEvent(word, status.name, None, status, message))
        return events

    def is_paused(self, budget_name: str) -> bool:
        state = self._state.get(budget_name)
        return state is not None and state.paused

    def paused_budgets(self) -> list[str]:
        return [name for name, state in self._state.items() if state.paused]

    def should_pause(self, target: Target | Any) -> bool:
        """Should this target's probes (or this sample-like's calls) be held back now?"""
        for name, state in self._state.items():
            budget = self._budgets.get(name)
            if not state.paused or budget is None:
                continue
            if budget.matches_target(target) if isinstance(target, Target) else budget.matches(target):
                return True
        return False


def _spent_text(status: BudgetStatus) -> str:
    period = "today" if status.period == "day" else "this month"
    return f"{format_usd(status.spent)} of {format_usd(status.limit)} {period}"


def _threshold_message(status: BudgetStatus, threshold: float) -> str:
    text = f'budget "{status.name}" reached {threshold * 100:.0f} %: {_spent_text(status)}'
    if status.period_end > status.period_start and status.projected > status.spent:
        text += f", {format_usd(status.projected)} projected"
    return text


# --------------------------------------------------------------------------------------------
# What monitoring itself costs
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OverheadLine:
    """What probing one target costs. ``cost_per_probe`` is an upper bound (tokens_out =
    max_tokens); None for an unpriced target. Per month = per day x :data:`DAYS_PER_MONTH`."""

    target: str
    provider: str
    model: str
    interval_s: float
    probes_per_day: float
    tokens_in: int
    tokens_out: int
    cost_per_probe: float | None
    per_day: float | None
    per_month: float | None

    @property
    def priced(self) -> bool:
        return self.cost_per_probe is not None


def estimate_prompt_tokens(prompt: str) -> int:
    """About 4 characters a token, plus the chat template around it."""
    return math.ceil(len(prompt) / 4) + PROMPT_OVERHEAD_TOKENS


def probe_overhead(
    targets: Iterable[Target],
    price_book: PriceBook,
    est_tokens_in: Mapping[str, int] | None = None,
    est_tokens_out: Mapping[str, int] | None = None,
    *,
    when: datetime | None = None,
) -> list[OverheadLine]:
    """The cost of monitoring: one line per enabled target, in the order given.

    Probes a day = 86400 / interval_s. Tokens in: ``est_tokens_in[target.name]`` (e.g. the
    measured median) or :func:`estimate_prompt_tokens`; tokens out: ``est_tokens_out[...]`` or
    the target's max_tokens (an upper bound; reasoning models may bill more).
    """
    lines: list[OverheadLine] = []
    for target in targets:
        if not target.enabled:
            continue
        tin = (est_tokens_in or {}).get(target.name)
        tout = (est_tokens_out or {}).get(target.name)
        tin = estimate_prompt_tokens(target.prompt) if tin is None else int(tin)
        tout = int(target.max_tokens) if tout is None else int(tout)
        per_day_n = 86400.0 / target.interval_s if target.interval_s > 0 else 0.0
        one = price_book.cost(target.provider, target.model, tin, tout, 0, when)
        per_day = None if one is None else one * per_day_n
        lines.append(
            OverheadLine(
                target=target.name,
                provider=target.provider,
                model=target.model,
                interval_s=float(target.interval_s),
                probes_per_day=per_day_n,
                tokens_in=tin,
                tokens_out=tout,
                cost_per_probe=one,
                per_day=per_day,
                per_month=None if per_day is None else per_day * DAYS_PER_MONTH,
            )
        )
    return lines


def overhead_totals(lines: Iterable[OverheadLine]) -> tuple[float, float, list[str]]:
    """(per day, per month) over the priced lines, and the names of the unpriced targets."""
    day = month = 0.0
    unpriced: list[str] = []
    for line in lines:
        if line.per_day is None or line.per_month is None:
            unpriced.append(line.target)
        else:
            day += line.per_day
            month += line.per_month
    return day, month, unpriced


# --------------------------------------------------------------------------------------------
# Recommendations
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Tokens one (provider, model) used in a month; tokens_in includes tokens_cached."""

    provider: str
    model: str
    tokens_in: float
    tokens_out: float
    tokens_cached: float = 0.0


@dataclass(frozen=True, slots=True)
class Recommendation:
    """A cheaper alternative for a model in use, priced at the current usage mix.

    ``price_ratio`` = alt_monthly / current_monthly (< 1). ``source``: "monitored" (one of our
    targets: measured p50 TTFT in ms and error rate as a fraction, when known) or "catalogue"
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
    alt_p50_ttft_ms: float | None
    alt_error_rate: float | None
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
    measured: Mapping[tuple[str, str], tuple[float | None, float | None] | None] | None = None,
    catalogue: bool = True,
    *,
    catalogue_floor: float = 0.25,
    max_catalogue: int = 3,
    min_saving: float = 0.01,
    when: datetime | None = None,
) -> list[Recommendation]:
    """Cheaper alternatives for each monitored model that has usage, biggest saving first.

    Monthly costs are ``usage x unit prices at the base tier`` for both sides (monthly totals
    carry no per-request tier information), so the two numbers are comparable. An alternative
    must save at least ``min_saving`` (1 %).

    Alternatives:

    * **monitored**: every other priced monitored (provider, model), any provider; we show its
      measured p50 TTFT and error rate (``measured[(provider, model)]``, error rate a fraction).
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
        acc = totals.setdefault((item.provider, item.model), [0.0, 0.0, 0.0])
        acc[0] += max(float(item.tokens_in), 0.0)
        acc[1] += max(float(item.tokens_out), 0.0)
        acc[2] += max(float(item.tokens_cached or 0.0), 0.0)
    watched = list(dict.fromkeys(monitored))
    watched_set = set(watched)
    measured = measured or {}

    out: list[Recommendation] = []
    for (provider, model), (tin, tout, cached) in totals.items():
        if (provider, model) not in watched_set:
            continue
        current = price_book.unit_prices(provider, model, when)
        if current is None:
            continue
        current_monthly = current.cost(tin, tout, cached)
        if current_monthly <= 0:
            continue

        def make(alt_provider: str, alt_model: str, alt_monthly: float, source: str) -> Recommendation:
            stats = measured.get((alt_provider, alt_model)) if source == "monitored" else None
            p50, err = stats if stats is not None else (None, None)
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
                alt_p50_ttft_ms=p50,
                alt_error_rate=err,
                text=_recommendation_text(
                    provider, model, alt_provider, alt_model, current_monthly, alt_monthly, p50, err
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
            alt_monthly = alt.cost(tin, tout, cached)
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
                alt_monthly = prices.cost(tin, tout, cached)
                ratio = alt_monthly / current_monthly
                if catalogue_floor <= ratio < 1 - min_saving:
                    candidates.append(make(provider, entry.model, alt_monthly, "catalogue"))
            candidates.sort(key=lambda r: (-r.saving_monthly, r.alt_model))
            found.extend(candidates[: max(max_catalogue, 0)])
        out.extend(found)
    out.sort(key=lambda r: (-r.saving_monthly, r.provider, r.model, r.alt_provider, r.alt_model))
    return out


def format_usd(value: float) -> str:
    """$1,234 / $12.34 / $0.42 / $0.0042: two significant digits below a cent."""
    if value != value:  # NaN
        return "$?"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1000:
        return f"{sign}${value:,.0f}"
    if value >= 0.01 or value == 0:
        return f"{sign}${value:,.2f}"
    digits = min(-math.floor(math.log10(value)) + 1, 8)
    return f"{sign}${value:.{digits}f}"


def _percent(fraction: float) -> str:
    pct = fraction * 100
    return f"{pct:.0f} %" if abs(pct) >= 10 or pct == 0 else f"{pct:.1f} %"


def _recommendation_text(
    provider: str,
    model: str,
    alt_provider: str,
    alt_model: str,
    current: float,
    alt: float,
    p50: float | None,
    err: float | None,
) -> str:
    x, y = f"{provider}/{model}", f"{alt_provider}/{alt_model}"
    text = (
        f"switching {x} to {y}: {format_usd(current)} -> {format_usd(alt)} per month at your usage "
        f"(-{_percent(1 - alt / current)})"
    )
    if p50 is not None and err is not None:
        text += f"; {y}'s p50 TTFT is {p50:.0f} ms, error rate {_percent(err)}"
    elif p50 is not None:
        text += f"; {y}'s p50 TTFT is {p50:.0f} ms"
    elif err is not None:
        text += f"; {y}'s error rate is {_percent(err)}"
    return text
