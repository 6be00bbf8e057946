"""PromQL's histogram_quantile, as Prometheus 2.42 computes it (promql/quantile.go bucketQuantile),
for tests that check what a dashboard will show from our buckets without running Prometheus."""

from __future__ import annotations

import math

from prometheus_client.parser import text_string_to_metric_families


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> float:
    """``buckets``: (upper bound ``le``, cumulative count), +Inf included, in any order.

    Linear interpolation inside the bucket that holds rank q * count (the lowest bucket starts
    at 0); a rank past every finite bucket gives the highest finite bound, as Prometheus does."""
    ordered = sorted(buckets)
    if len(ordered) < 2 or not math.isinf(ordered[-1][0]):
        return math.nan
    counts = []  # ensureMonotonic: a count never falls as le grows
    for _, count in ordered:
        counts.append(max(count, counts[-1]) if counts else count)
    total = counts[-1]
    if total == 0:
        return math.nan
    rank = q * total
    b = next((i for i in range(len(ordered) - 1) if counts[i] >= rank), len(ordered) - 1)
    if b == len(ordered) - 1:
        return ordered[-2][0]
    if b == 0 and ordered[0][0] <= 0:
        return ordered[0][0]
    start, end, count = 0.0, ordered[b][0], counts[b]
    if b > 0:
        start = ordered[b - 1][0]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)


def buckets_of(exposition: str, name: str, **labels: str) -> list[tuple[float, float]]:
    """The (le, cumulative count) pairs of histogram ``name`` for the series with ``labels``."""
    found = []
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name != f"{name}_bucket":
                continue
            if all(sample.labels.get(k) == v for k, v in labels.items()):
                found.append((float(sample.labels["le"]), float(sample.value)))
    return found
