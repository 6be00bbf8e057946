"""The config file's shape as pydantic models: every table, its keys, types, bounds and choices.

Models are strict (a string is never a number) and forbid unknown keys, so a typo is an error.
Checks that need the environment (a provider's URL or key variable) are load.py's. Our own
wording travels in :class:`Problem`; messages.py turns every error into one line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainValidator,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from llmscope_tui.config.providers import PRESETS, url_problem
from llmscope_tui.config.settings import (
    FPS_RANGE,
    MAX_CONCURRENCY,
    MAX_INTERVAL_S,
    MAX_RETENTION_DAYS,
    MAX_TIMEOUT_S,
    MAX_TOKENS,
    location_problem,
)
from llmscope_tui.costs import Budget, CostConfigError, PriceOverride, parse_budgets, parse_price
from llmscope_tui.durations import MAX_DURATION_S, parse_duration
from llmscope_tui.model import Metric

Loc = tuple[str | int, ...]


class Problem(ValueError):
    """A value with the right type but the wrong content, in the words the user reads.

    ``sub`` extends the error's location (a key inside a list checked as a whole);
    ``at_parent`` reports it on the enclosing table (a required key left empty)."""

    def __init__(self, message: str, *, sub: Loc = (), at_parent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.sub = sub
        self.at_parent = at_parent


# --------------------------------------------------------------------------- value checks


def _duration(value: Any, max_s: float = MAX_DURATION_S) -> float:
    try:
        return parse_duration(value, max_s)
    except ValueError as exc:
        raise Problem(str(exc)) from None


def _at_most(max_s: float) -> BeforeValidator:
    return BeforeValidator(lambda value: _duration(value, max_s))


def _accept_after(value: Any) -> float | None:
    return None if value in ("off", "never") else _duration(value)


def _at_least_1(value: int) -> int:
    if value < 1:
        raise Problem(f"must be at least 1, got {value}")
    return value


def _count_up_to(high: int) -> AfterValidator:
    def check(value: int) -> int:
        if not 1 <= value <= high:
            raise Problem(f"expected 1 to {high:,}, got {value}")
        return value

    return AfterValidator(check)


def _within(ok: Callable[[float], bool], expected: str) -> WrapValidator:
    """A number (int or float) that ``ok`` accepts; the message quotes the value as written."""

    def check(value: Any, handler: ValidatorFunctionWrapHandler) -> float:
        number = handler(value)
        if not ok(number):
            raise Problem(f"{expected}, got {value}")
        return float(number)

    return WrapValidator(check)


def _one_of(*options: str) -> AfterValidator:
    def check(value: str) -> str:
        if value not in options:
            names = " or ".join(f'"{option}"' for option in options)
            raise Problem(f"expected {names}, got {value!r}")
        return value

    return AfterValidator(check)


def _required(key: str, *, strip: bool = False) -> AfterValidator:
    """An empty value counts as a missing one (a target needs a real name, provider, model)."""

    def check(value: str) -> str:
        if not value.strip():
            raise Problem(f"missing required key {key!r}", at_parent=True)
        return value.strip() if strip else value

    return AfterValidator(check)


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise Problem(f"expected an http(s) URL, got {value!r}")
    return value


def _table(name: str) -> BeforeValidator:
    def check(value: Any) -> Any:
        if not isinstance(value, dict):
            raise Problem(f"expected a table [{name}]")
        return value

    return BeforeValidator(check)


def _tables(name: str, value: Any) -> list[Any]:
    """An array of tables ``[[name]]``, entry by entry."""
    if not isinstance(value, list):
        raise Problem(f"expected an array of tables [[{name}]]")
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise Problem(f"expected a table [[{name}]]", sub=(index,))
    return value


Duration = Annotated[float, BeforeValidator(_duration)]
PositiveInt = Annotated[int, AfterValidator(_at_least_1)]
Interval = Annotated[float, _at_most(MAX_INTERVAL_S)]
Timeout = Annotated[float, _at_most(MAX_TIMEOUT_S)]


# --------------------------------------------------------------------------- tables


class _Table(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Days = Annotated[
    float,
    _within(lambda v: 0 < v <= MAX_RETENTION_DAYS, f"expected a number of days above 0 and at most {MAX_RETENTION_DAYS:g}"),
]


class MonitorTable(_Table):
    interval: Interval | None = None
    timeout: Timeout | None = None
    connect_timeout: Timeout | None = None
    first_token_timeout: Timeout | None = None
    concurrency: Annotated[int, _count_up_to(MAX_CONCURRENCY)] | None = None
    retention_days: Days | None = None
    db: str | None = None
    location: Annotated[str, AfterValidator(_location)] | None = None


def _location(value: str) -> str:
    problem = location_problem(value)
    if problem is not None:
        raise Problem(problem)
    return value.strip()


def _rules(value: list[Any]) -> list[Any]:
    if not value or any(
        isinstance(r, bool) or not isinstance(r, int) or not 1 <= r <= 8 for r in value
    ):
        raise Problem(f"expected a list of rule numbers 1-8, got {value!r}")
    return value


def _metrics(value: list[Any]) -> list[Any]:
    known = [m.value for m in Metric]
    if not value or any(m not in known for m in value):
        raise Problem(f"expected a list drawn from {known}, got {value!r}")
    return value


def _enough_samples(value: int) -> int:
    if value < 5:
        raise Problem(f"needs at least 5 samples, got {value}")
    return value


Fraction = Annotated[
    float, _within(lambda v: 0 <= v < 1, "expected a fraction from 0 to below 1 (0.15 = 15 %)")
]
Milliseconds = Annotated[
    float, _within(lambda v: 0 <= v <= 60_000, "expected milliseconds from 0 to 60000")
]
CusumK = Annotated[float, _within(lambda v: 0 < v <= 5, "expected a number above 0 and at most 5")]
CusumH = Annotated[
    float, _within(lambda v: 0.5 < v <= 50, "expected a number above 0.5 and at most 50")
]


class SpcTable(_Table):
    baseline_samples: Annotated[PositiveInt, AfterValidator(_enough_samples)] | None = None
    transform: Annotated[str, _one_of("none", "log")] | None = None
    rules: Annotated[list[Any], AfterValidator(_rules)] | None = None
    metrics: Annotated[list[Any], AfterValidator(_metrics)] | None = None
    min_effect: Fraction | None = None
    min_change_ms: Milliseconds | None = None
    cusum_k: CusumK | None = None
    cusum_h: CusumH | None = None
    close_after: PositiveInt | None = None
    alert_on: Annotated[str, _one_of("worse", "both")] | None = None
    #: absent, "off" or "never": a shift is never accepted by itself
    accept_after: Annotated[float | None, PlainValidator(_accept_after)] = None


class AlertsTable(_Table):
    webhook_url: Annotated[str, AfterValidator(_http_url)] | None = None
    cooldown: Duration | None = None
    bell: bool | None = None


def _base_url(value: str) -> str:
    problem = url_problem(value)
    if problem is not None:
        raise Problem(problem)
    return value


class OtlpTable(_Table):
    endpoint: Annotated[str, AfterValidator(_base_url)] | None = None
    interval: Interval | None = None


_LOW_FPS, _HIGH_FPS = FPS_RANGE
Fps = Annotated[
    float,
    _within(
        lambda v: _LOW_FPS <= v <= _HIGH_FPS,
        f"expected screen updates per second from {_LOW_FPS:g} to {_HIGH_FPS:g}",
    ),
]


class TuiTable(_Table):
    fps: Fps | None = None
    theme: str | None = None
    mouse: bool | None = None


def _known_provider(value: str) -> str:
    if value not in PRESETS:
        raise Problem(f"unknown provider {value!r} (expected one of: {', '.join(PRESETS)})")
    return value


def _names_a_variable(value: str) -> str:
    if not value.strip():
        raise Problem("names no variable; remove it to use the default")
    return value


def _string_values(value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        if not isinstance(item, str):
            raise Problem(f"header {key!r} must be a string")
    return value


class TargetTable(_Table):
    name: Annotated[str, _required("name", strip=True)]
    provider: Annotated[str, _required("provider"), AfterValidator(_known_provider)]
    model: Annotated[str, _required("model")]
    base_url: str | None = None
    api_key_env: Annotated[str, AfterValidator(_names_a_variable)] | None = None
    max_tokens: Annotated[int, _count_up_to(MAX_TOKENS)] | None = None
    prompt: str | None = None
    interval: Interval | None = None
    api_version: str | None = None
    headers: Annotated[dict[str, Any], AfterValidator(_string_values)] = {}


# --------------------------------------------------------------------------- costs tables


def _budgets(value: Any) -> list[Budget]:
    """``[[budgets]]`` through the costs package's own parser (it owns those rules)."""
    try:
        return parse_budgets(_tables("budgets", value))
    except CostConfigError as exc:
        raise Problem(exc.message, sub=(exc.index or 0, exc.key)) from None


def _prices(value: Any) -> list[PriceOverride]:
    prices = []
    for index, item in enumerate(_tables("prices", value)):
        try:
            prices.append(parse_price(item))
        except CostConfigError as exc:
            raise Problem(exc.message, sub=(index, exc.key)) from None
    return prices


def _unique_names(targets: list[TargetTable]) -> list[TargetTable]:
    seen: dict[str, int] = {}
    for index, target in enumerate(targets):
        if target.name in seen:
            first = seen[target.name]
            message = f"duplicate target name {target.name!r} (first at targets[{first}])"
            raise Problem(message, sub=(index, "name"))
        seen[target.name] = index
    return targets


class ConfigFile(_Table):
    """The whole file. Field order is the order problems are reported in."""

    monitor: Annotated[MonitorTable, _table("monitor")] = MonitorTable()
    spc: Annotated[SpcTable, _table("spc")] = SpcTable()
    alerts: Annotated[AlertsTable, _table("alerts")] = AlertsTable()
    tui: Annotated[TuiTable, _table("tui")] = TuiTable()
    otlp: Annotated[OtlpTable, _table("otlp")] = OtlpTable()
    budgets: Annotated[list[Budget], PlainValidator(_budgets)] = []
    prices: Annotated[list[PriceOverride], PlainValidator(_prices)] = []
    targets: Annotated[
        list[TargetTable],
        BeforeValidator(lambda value: _tables("targets", value)),
        AfterValidator(_unique_names),
    ] = []


#: The model behind each table, by location (``"*"``: any entry of an array of tables).
TABLES: dict[Loc, type[BaseModel]] = {
    (): ConfigFile,
    ("monitor",): MonitorTable,
    ("spc",): SpcTable,
    ("alerts",): AlertsTable,
    ("tui",): TuiTable,
    ("otlp",): OtlpTable,
    ("targets", "*"): TargetTable,
}
