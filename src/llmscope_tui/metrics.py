"""Prometheus exposition of the monitor's events (DESIGN 8), via prometheus_client.

A plain scrape gets text format 0.0.4; a Prometheus that asks for OpenMetrics gets that.
Histograms are in seconds, counters end in _total, labels are target/provider/model/error_kind,
and every series carries ``location`` (``[monitor] location``): a fleet's probes differ by it.
Each exporter has its own registry, so tests and several monitors in one process do not collide.
It is served at /metrics by :mod:`llmscope_tui.server`, with the rest of what we serve.
docs/metrics.md ("Prometheus metrics") lists every series and why the buckets are what they are.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from llmscope_tui import __version__
from llmscope_tui.config.settings import default_location
from llmscope_tui.model import not_the_providers_fault

#: Bucket bounds per doubling: consecutive bounds differ by 2 ** (1/6) ~ 1.1225, so
#: histogram_quantile (linear inside a bucket) is off by at most 12.2 % whatever the data, and by
#: a few % for the spread real latencies have (docs/metrics.md derives and measures it).
BUCKETS_PER_DOUBLING = 6


def geometric_buckets(low: float, high: float, per_doubling: int = BUCKETS_PER_DOUBLING) -> tuple[float, ...]:
    """Bounds 2 ** (i / per_doubling) from the last one at or below ``low`` to the first at or
    above ``high``, rounded to 4 significant digits so that ``le`` labels stay readable."""
    first = math.floor(per_doubling * math.log2(low) + 1e-9)
    last = math.ceil(per_doubling * math.log2(high) - 1e-9)
    return tuple(float(f"{2 ** (i / per_doubling):.4g}") for i in range(first, last + 1))


#: TTFT and latency, 5 ms to 60 s (83 bounds); mean inter-token latency, 0.5 ms to 2 s (73).
LATENCY_BUCKETS = geometric_buckets(0.005, 60.0)
ITL_BUCKETS = geometric_buckets(0.0005, 2.0)
_LABELS = ("target", "provider", "model", "location")
#: Sample field -> the ``direction`` label of llmscope_tokens_total ("in" counts cached and
#: cache writes too, as tokens_in does; "out" counts reasoning, as tokens_out does).
TOKEN_DIRECTIONS = (
    ("tokens_in", "in"),
    ("tokens_out", "out"),
    ("tokens_cached", "cached"),
    ("tokens_cache_write", "cache_write"),
    ("tokens_reasoning", "reasoning"),
)

#: () -> [(budget name, period "day"|"month", spent so far this period, limit)], thread-safe.
BudgetSource = Callable[[], list[tuple[str, str, float, float]]]


class _BudgetCollector(Collector):
    """Budget spend and limits read at scrape time, so a budget shows from the first scrape
    (at 10 % as at 100 %), not only once a threshold alert has fired."""

    def __init__(self, source: BudgetSource, location: str) -> None:
        self.source = source
        self.location = location

    def describe(self) -> list[Metric]:
        return list(self._families([]))

    def collect(self) -> Iterator[Metric]:
        return self._families(self.source())

    def _families(self, budgets: list[tuple[str, str, float, float]]) -> Iterator[Metric]:
        labels = ("budget", "period", "location")
        spent = GaugeMetricFamily(
            "llmscope_budget_spent_usd", "Spend counted against the budget this period, US dollars", labels=labels
        )
        limit = GaugeMetricFamily("llmscope_budget_limit_usd", "The budget's limit per period, US dollars", labels=labels)
        for name, period, spent_usd, limit_usd in budgets:
            spent.add_metric((name, period, self.location), spent_usd)
            limit.add_metric((name, period, self.location), limit_usd)
        yield spent
        yield limit


class MetricsExporter:
    """Subscribes to monitor events and keeps Prometheus series up to date."""

    def __init__(self, location: str | None = None) -> None:
        self.location = default_location() if location is None else location
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.info = Gauge("llmscope_build_info", "llmscope-tui version", ("version", "location"), registry=r)
        self.info.labels(__version__, self.location).set(1)
        self.probes = Counter("llmscope_probes", "Probes completed, ok or not", _LABELS, registry=r)
        self.errors = Counter(
            "llmscope_probe_errors",
            "Failed probes by error kind",
            ("target", "provider", "model", "error_kind", "location"),
            registry=r,
        )
        self.ttft = Histogram(
            "llmscope_ttft_seconds", "Time to first token", _LABELS, buckets=LATENCY_BUCKETS, registry=r
        )
        self.latency = Histogram(
            "llmscope_latency_seconds", "Request start to last token", _LABELS, buckets=LATENCY_BUCKETS, registry=r
        )
        self.itl = Histogram(
            "llmscope_itl_seconds", "Mean inter-token latency per probe", _LABELS, buckets=ITL_BUCKETS, registry=r
        )
        self.tps = Gauge("llmscope_tokens_per_second", "Output tokens/s of the last successful probe", _LABELS, registry=r)
        self.tokens = Counter(
            "llmscope_tokens",
            "Tokens used by probes, by direction (in, out, cached, cache_write, reasoning)",
            ("target", "provider", "model", "direction", "location"),
            registry=r,
        )
        self.cost = Counter("llmscope_cost_usd", "Spend on probes in US dollars (priced models)", _LABELS, registry=r)
        self.up = Gauge("llmscope_up", "1 when the target's last probe succeeded", _LABELS, registry=r)
        self.last = Gauge(
            "llmscope_last_probe_timestamp_seconds", "Unix time of the target's last probe", _LABELS, registry=r
        )
        self.violations = Counter(
            "llmscope_violations", "SPC rule firings", ("target", "metric", "rule", "location"), registry=r
        )
        self.incidents = Counter(
            "llmscope_incidents", "Incidents opened (DESIGN 6b)", ("target", "scope", "severity", "location"), registry=r
        )
        self.incident_open = Gauge(
            "llmscope_incident_open",
            "1 while the target has an open incident, with its severity",
            ("target", "severity", "location"),
            registry=r,
        )
        self.store_errors = Counter(
            "llmscope_store_errors", "Failures to write the data file", ("location",), registry=r
        )
        self.store_errors.labels(self.location)  # a zero from the first scrape, as before the label

    def watch_budgets(self, source: BudgetSource) -> None:
        """Serve llmscope_budget_spent_usd and llmscope_budget_limit_usd from ``source``, called
        at each scrape (from the server's thread: it must only read)."""
        self.registry.register(_BudgetCollector(source, self.location))

    def watch_pace(self, saturated: Callable[[], bool]) -> None:
        """Serve llmscope_probe_loop_saturated from ``saturated``, read at each scrape: 1 while
        the probe loop is saturated and reads responses itself (probe/pace.py), when a first
        token read late may take the next one's stamp; a fleet can alert on it."""
        gauge = Gauge(
            "llmscope_probe_loop_saturated",
            "1 while the probe loop is saturated (busy and missing its schedule): responses read on the loop",
            ("location",),
            registry=self.registry,
        )
        gauge.labels(self.location).set_function(lambda: 1.0 if saturated() else 0.0)

    def seed_incidents(self, open_incidents: Iterable[Any]) -> None:
        """The incidents a previous run left open, taken up at start: their gauges show from the
        first scrape, not from each one's next update."""
        for incident in open_incidents:
            self._incident({"target": incident.target, "severity": incident.severity, "state": "restored"})

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "sample":
            self._sample(event)
        elif kind == "violation":
            self.violations.labels(event["target"], event["metric"], str(event["rule"]), self.location).inc()
        elif kind == "incident":
            self._incident(event)
        elif kind == "error" and event.get("where") == "store":
            self.store_errors.labels(self.location).inc()

    def _incident(self, event: dict[str, Any]) -> None:
        target, severity = event["target"], event.get("severity") or "warning"
        if event["state"] == "opened":
            scope = str(event.get("scope") or "target").split(":")[0]
            self.incidents.labels(target, scope, severity, self.location).inc()
        for level in ("info", "warning", "critical"):  # one series per target says the current severity
            self.incident_open.labels(target, level, self.location).set(
                1 if event["state"] != "closed" and level == severity else 0
            )

    def _sample(self, s: dict[str, Any]) -> None:
        target, provider, model = s["target"], s["provider"], s["model"]
        labels = (target, provider, model, self.location)
        self.probes.labels(*labels).inc()
        self.last.labels(*labels).set(s["ts"])
        if not s["ok"] and not_the_providers_fault(s["error_kind"]):
            # cancelled (we stopped) or internal (our bug): counted by kind, but says nothing of
            # the target, so its up stays what the last real probe said (DESIGN 5)
            self.errors.labels(target, provider, model, s["error_kind"], self.location).inc()
            return
        self.up.labels(*labels).set(1 if s["ok"] else 0)
        if not s["ok"]:
            self.errors.labels(target, provider, model, s["error_kind"] or "unknown", self.location).inc()
            return
        if s.get("ttft_ms") is not None:
            self.ttft.labels(*labels).observe(s["ttft_ms"] / 1000)
        if s.get("latency_ms") is not None:
            self.latency.labels(*labels).observe(s["latency_ms"] / 1000)
        if s.get("itl_ms") is not None:
            self.itl.labels(*labels).observe(s["itl_ms"] / 1000)
        if s.get("tps") is not None:
            self.tps.labels(*labels).set(s["tps"])
        for field, direction in TOKEN_DIRECTIONS:
            if s.get(field):
                self.tokens.labels(target, provider, model, direction, self.location).inc(s[field])
        if s.get("cost_usd"):
            self.cost.labels(*labels).inc(s["cost_usd"])

    def render(self) -> bytes:
        """The text exposition (format 0.0.4), as a scrape without Accept header gets it."""
        return generate_latest(self.registry)
