"""Config parsing for the costs tables: ``[[budgets]]`` -> :class:`Budget`, ``[[prices]]`` ->
:class:`PriceOverride`, with :class:`CostConfigError` naming the offending key."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from llmscope_tui.costs.budgets import Budget, parse_scope
from llmscope_tui.costs.errors import CostConfigError
from llmscope_tui.costs.periods import PERIODS
from llmscope_tui.costs.units import PriceOverride

_BUDGET_KEYS = ("name", "limit_usd", "period", "scope", "pause_probes_at")
_PRICE_KEYS = ("model", "provider", "input_per_mtok", "output_per_mtok", "cache_read_per_mtok")


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
    kind, value = parse_scope(scope)
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
