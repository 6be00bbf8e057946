"""Rollups per target or provider over a window (1 h, 24 h, 7 d): counts, availability, error
rate by kind, and mean / p50 / p95 / p99 of each metric.

The store hands over plain columns (one SQL read, no Sample objects); the arithmetic is numpy,
so a week of a busy monitor rolls up in milliseconds, fast enough for a live UI refresh.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmscope_tui.model import ErrorKind, Metric

WINDOWS: dict[str, float] = {"1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0}
METRICS: tuple[str, ...] = tuple(m.value for m in Metric)
ROLLUP_COLUMNS: tuple[str, ...] = ("target", "provider", "ok", "error_kind", *METRICS)


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
        """Failed probes, not counting those cancelled by a stop (they say nothing of the provider)."""
        return sum(n for kind, n in self.errors_by_kind.items() if kind != ErrorKind.CANCELLED)

    @property
    def availability(self) -> float | None:
        """Share of attempts that succeeded (cancelled ones left out); None with no attempts."""
        attempts = self.ok + self.failed
        return self.ok / attempts if attempts else None

    @property
    def error_rate(self) -> float | None:
        availability = self.availability
        return None if availability is None else 1.0 - availability


def compute_rollups(columns: dict[str, Any], group_by: str = "target", window: str = "") -> list[Rollup]:
    """Rollups from columns as returned by the store (ROLLUP_COLUMNS), one per group, sorted."""
    keys = np.asarray(columns[group_by], dtype=object)
    if keys.size == 0:
        return []
    ok = np.asarray(columns["ok"], dtype=np.int64)
    kinds = np.asarray(columns["error_kind"], dtype=object)
    values = {m: np.asarray(columns[m], dtype=np.float64) for m in METRICS}
    out: list[Rollup] = []
    for key in sorted(set(keys.tolist())):
        mask = keys == key
        good = mask & (ok == 1)
        rollup = Rollup(key=key, window=window, count=int(mask.sum()), ok=int(good.sum()))
        rollup.errors_by_kind = dict(Counter(k for k in kinds[mask & (ok == 0)].tolist() if k))
        for metric, series in values.items():
            picked = series[good]
            picked = picked[np.isfinite(picked)]
            if picked.size:
                p50, p95, p99 = np.percentile(picked, [50, 95, 99])
                rollup.metrics[metric] = MetricStats(
                    int(picked.size), float(picked.mean()), float(p50), float(p95), float(p99)
                )
        out.append(rollup)
    return out


def rollups(store: Any, window: str = "24h", group_by: str = "target", now: float | None = None) -> list[Rollup]:
    """Rollups of probe samples over the named window, read from the store (blocking)."""
    if window not in WINDOWS:
        raise ValueError(f"unknown window {window!r}; expected one of {list(WINDOWS)}")
    if group_by not in ("target", "provider"):
        raise ValueError(f"group_by must be 'target' or 'provider', got {group_by!r}")
    since = (time.time() if now is None else now) - WINDOWS[window]
    columns = store.columns(ROLLUP_COLUMNS, since=since, source="probe")
    return compute_rollups(columns, group_by, window)
