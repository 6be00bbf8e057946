"""Rollups per target or provider over a window (1 h, 24 h, 7 d): counts, availability, error
rate by kind, and mean / p50 / p95 / p99 of each metric.

The store hands over plain columns (one SQL read, no Sample objects); the arithmetic is numpy,
so a week of a busy monitor rolls up in milliseconds, fast enough for a live UI refresh.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmscope_tui.model import Metric, not_the_providers_fault

WINDOWS: dict[str, float] = {"1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0}
METRICS: tuple[str, ...] = tuple(m.value for m in Metric)


@dataclass(frozen=True, slots=True)
class MetricStats:
    n: int
    mean: float
    p50: float
    p95: float
    p99: float


@dataclass(slots=True)
class Rollup:
    """One target's (or provider's) numbers over one window."""

    key: str
    window: str
    count: int
    ok: int
    errors_by_kind: dict[str, int] = field(default_factory=dict)
    metrics: dict[str, MetricStats] = field(default_factory=dict)

    @property
    def failed(self) -> int:
        """Failed probes, not counting those cancelled by a stop or failed by a bug of ours
        (they say nothing of the provider)."""
        return sum(n for kind, n in self.errors_by_kind.items() if not not_the_providers_fault(kind))

    @property
    def availability(self) -> float | None:
        """Share of attempts that succeeded (cancelled and internal ones left out); None with none."""
        attempts = self.ok + self.failed
        return self.ok / attempts if attempts else None

    @property
    def error_rate(self) -> float | None:
        availability = self.availability
        return None if availability is None else 1.0 - availability


def metric_stats(values: np.ndarray) -> MetricStats | None:
    """Mean and p50/p95/p99 of the finite values, or None when there are none."""
    picked = values[np.isfinite(values)]
    if not picked.size:
        return None
    p50, p95, p99 = np.percentile(picked, [50, 95, 99])
    return MetricStats(int(picked.size), float(picked.mean()), float(p50), float(p95), float(p99))


def rollups(store: Any, window: str = "24h", group_by: str = "target", now: float | None = None) -> list[Rollup]:
    """Rollups of probe samples over the named window, read from the store (blocking).

    Counts come from one GROUP BY in SQL; metric values from each target's covering index, so
    no row becomes a Python object beyond four floats.
    """
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}; expected one of {list(WINDOWS)}")
    if group_by not in ("target", "provider"):
        raise ValueError(f"group_by must be 'target' or 'provider', got {group_by!r}")
    since = (time.time() if now is None else now) - WINDOWS[window]
    groups: dict[str, Rollup] = {}
    members: dict[str, set[str]] = {}
    for target, provider, ok, kind, n in store.outcome_counts(since=since, source="probe"):
        key = target if group_by == "target" else provider
        rollup = groups.setdefault(key, Rollup(key=key, window=window, count=0, ok=0))
        members.setdefault(key, set()).add(target)
        rollup.count += n
        if ok:
            rollup.ok += n
        else:
            kind = kind or "unknown"
            rollup.errors_by_kind[kind] = rollup.errors_by_kind.get(kind, 0) + n
    for key, rollup in groups.items():
        tables = [store.metric_table(target, since=since) for target in sorted(members[key])]
        for metric in METRICS:
            stats = metric_stats(np.concatenate([t[metric] for t in tables]))
            if stats is not None:
                rollup.metrics[metric] = stats
    return [groups[key] for key in sorted(groups)]
