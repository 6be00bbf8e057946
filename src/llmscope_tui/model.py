"""Plain data shared by every layer: samples, targets, error kinds, metrics.

No I/O here, so the probe, the store, SPC, the headless face and the TUI all speak the same
names (DESIGN sections 4 and 5) without importing each other.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class ErrorKind(StrEnum):
    """Why a probe failed (DESIGN 5). Stored, logged and exported by value."""

    TIMEOUT_CONNECT = "timeout_connect"
    TIMEOUT_FIRST_TOKEN = "timeout_first_token"
    TIMEOUT_TOTAL = "timeout_total"
    NETWORK = "network"
    RATE_LIMIT = "rate_limit"
    AUTH = "auth"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    CLIENT_ERROR = "client_error"
    STREAM_ERROR = "stream_error"
    MALFORMED = "malformed"
    EMPTY_RESPONSE = "empty_response"
    CANCELLED = "cancelled"
    INTERNAL = "internal"


_NOT_THE_PROVIDERS = frozenset({ErrorKind.CANCELLED.value, ErrorKind.INTERNAL.value})


def not_the_providers_fault(error_kind: str | None) -> bool:
    """A failure that says nothing of the provider (DESIGN 5): a probe our stop cut short, or a
    bug of ours while probing. Left out of error counts, error rates, `down` and incidents."""
    return error_kind is not None and str(error_kind) in _NOT_THE_PROVIDERS


class Metric(StrEnum):
    """The per-sample measurements that SPC charts (DESIGN 6)."""

    TTFT = "ttft_ms"
    LATENCY = "latency_ms"
    ITL = "itl_ms"
    TPS = "tps"


#: The DESIGN 4 field names, in the order the CSV export and the samples table use.
SAMPLE_FIELDS: tuple[str, ...] = (
    "ts",
    "target",
    "provider",
    "model",
    "ok",
    "error_kind",
    "http_status",
    "connect_ms",
    "ttft_ms",
    "latency_ms",
    "itl_ms",
    "tps",
    "tokens_in",
    "tokens_out",
    "tokens_cached",
    "tokens_cache_write",
    "tokens_reasoning",
    "tokens_estimated",
    "cost_usd",
    "request_id",
    "source",
)

#: Stored and logged beside the DESIGN 4 fields; not part of the CSV contract.
EXTRA_SAMPLE_FIELDS: tuple[str, ...] = ("retry_after_s", "error_message")


@dataclass(slots=True)
class Sample:
    """One probe attempt (or one ingested application call): DESIGN 4, field for field."""

    ts: float
    target: str
    provider: str
    model: str
    ok: int = 0
    error_kind: str | None = None
    http_status: int | None = None
    connect_ms: float | None = None
    ttft_ms: float | None = None
    latency_ms: float | None = None
    itl_ms: float | None = None
    tps: float | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    tokens_cached: int | None = None
    tokens_cache_write: int = 0
    tokens_reasoning: int | None = None
    tokens_estimated: int = 0
    cost_usd: float | None = None
    request_id: str | None = None
    source: str = "probe"
    retry_after_s: float | None = None
    error_message: str | None = None

    @classmethod
    def of(cls, target: Target, ts: float, **fields: Any) -> Sample:
        """A sample of ``target`` (its name, provider and model) taken at ``ts``."""
        return cls(ts=ts, target=target.name, provider=target.provider, model=target.model, **fields)

    def as_row(self) -> tuple[Any, ...]:
        """Values in SAMPLE_FIELDS + EXTRA_SAMPLE_FIELDS order (the samples table's columns)."""
        return tuple(getattr(self, name) for name in SAMPLE_FIELDS + EXTRA_SAMPLE_FIELDS)

    def to_dict(self) -> dict[str, Any]:
        """All fields by name, for the JSON-lines log."""
        return dataclasses.asdict(self)

    def metric(self, metric: Metric | str) -> float | None:
        """The value of one charted metric, or None when this sample has none."""
        return getattr(self, str(metric))


@dataclass(slots=True, frozen=True)
class Target:
    """A thing to probe: a named provider + model, resolved from config (DESIGN 3)."""

    name: str
    provider: str
    model: str
    protocol: str
    base_url: str
    api_key_env: str | None = None
    prompt: str = "Reply with the word OK."
    max_tokens: int = 16
    interval_s: float = 15.0
    api_version: str | None = None
    disabled_reason: str | None = None
    extra_headers: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    @property
    def enabled(self) -> bool:
        return self.disabled_reason is None


@dataclass(slots=True, frozen=True)
class Violation:
    """One firing of one Nelson rule on one point (DESIGN 6)."""

    target: str
    metric: str
    rule: int
    ts: float
    value: float
    z: float
    center: float
    sigma: float
