"""Prometheus exposition of the monitor's events (DESIGN 8), via prometheus_client.

A plain scrape gets text format 0.0.4; a Prometheus that asks for OpenMetrics gets that.
Histograms are in seconds, counters end in _total, labels are target/provider/model/error_kind,
and every series carries ``location`` (``[monitor] location``): a fleet's probes differ by it.
Each exporter has its own registry, so tests and several monitors in one process do not collide.
It is served at /metrics by :mod:`llmscope_tui.server`, with the rest of what we serve.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from llmscope_tui import __version__
from llmscope_tui.config.settings import default_location

_LATENCY_BUCKETS = (0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 8.0, 13.0, 20.0, 30.0, 60.0)
_ITL_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.2, 0.5, 1.0)
_LABELS = ("target", "provider", "model", "location")


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
            "llmscope_probe_errors", "Failed probes by error kind", ("target", "provider", "model", "error_kind", "location"), registry=r
        )
        self.ttft = Histogram(
            "llmscope_ttft_seconds", "Time to first token", _LABELS, buckets=_LATENCY_BUCKETS, registry=r
        )
        self.latency = Histogram(
            "llmscope_latency_seconds", "Request start to last token", _LABELS, buckets=_LATENCY_BUCKETS, registry=r
        )
        self.itl = Histogram(
            "llmscope_itl_seconds", "Mean inter-token latency per probe", _LABELS, buckets=_ITL_BUCKETS, registry=r
        )
        self.tps = Gauge("llmscope_tokens_per_second", "Output tokens/s of the last successful probe", _LABELS, registry=r)
        self.tokens = Counter("llmscope_tokens", "Tokens used by probes", ("target", "provider", "model", "direction", "location"), registry=r)
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
        labels = (s["target"], s["provider"], s["model"], self.location)
        self.probes.labels(*labels).inc()
        self.last.labels(*labels).set(s["ts"])
        self.up.labels(*labels).set(1 if s["ok"] else 0)
        if not s["ok"]:
            self.errors.labels(*labels[:3], s["error_kind"] or "unknown", self.location).inc()
            return
        if s.get("ttft_ms") is not None:
            self.ttft.labels(*labels).observe(s["ttft_ms"] / 1000)
        if s.get("latency_ms") is not None:
            self.latency.labels(*labels).observe(s["latency_ms"] / 1000)
        if s.get("itl_ms") is not None:
            self.itl.labels(*labels).observe(s["itl_ms"] / 1000)
        if s.get("tps") is not None:
            self.tps.labels(*labels).set(s["tps"])
        if s.get("tokens_in"):
            self.tokens.labels(*labels[:3], "in", self.location).inc(s["tokens_in"])
        if s.get("tokens_out"):
            self.tokens.labels(*labels[:3], "out", self.location).inc(s["tokens_out"])
        if s.get("cost_usd"):
            self.cost.labels(*labels).inc(s["cost_usd"])

    def render(self) -> bytes:
        """The text exposition (format 0.0.4), as a scrape without Accept header gets it."""
        return generate_latest(self.registry)
