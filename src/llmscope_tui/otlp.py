"""Optional OpenTelemetry export: each probe's measurements, pushed over OTLP/HTTP (protobuf)
under the GenAI semantic conventions' names (docs/metrics.md), for backends that take OTLP
(an OpenTelemetry Collector, Datadog, Grafana Cloud; docs/fleet.md).

It needs the `otlp` extra (``pip install 'llmscope-tui[otlp]'``: opentelemetry-sdk and the
OTLP/HTTP exporter) and is imported only when ``[otlp] endpoint`` or OTEL_EXPORTER_OTLP_ENDPOINT
is set: nothing else in llmscope-tui imports opentelemetry. Headers (a hosted backend's key)
are read by the exporter itself from OTEL_EXPORTER_OTLP_HEADERS; we never log them.
"""

from __future__ import annotations

import importlib.util
from typing import Any

INSTALL_HINT = "pip install 'llmscope-tui[otlp]'"

#: Our provider presets -> the convention's well-known gen_ai.provider.name values; any
#: other preset (ollama, vllm, openrouter ...) is sent under its own name, as the convention allows.
PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "azure": "azure.ai.openai",
    "groq": "groq",
    "mistral": "mistral_ai",
    "deepseek": "deepseek",
}

DURATION = "gen_ai.client.operation.duration"
TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
TOKEN_USAGE = "gen_ai.client.token.usage"
#: The convention's advised token buckets (powers of 4).
TOKEN_BUCKETS = tuple(float(4**i) for i in range(14))


def missing_packages() -> str | None:
    """The one line to print when OTLP is configured but the extra is not installed, else None.
    Finds the packages without importing them."""
    for name in ("opentelemetry.sdk", "opentelemetry.exporter.otlp.proto.http"):
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"OTLP export is configured but its packages are not installed: {INSTALL_HINT}"
    return None


class OtlpExporter:
    """A monitor subscriber that records samples into OpenTelemetry histograms and exports them
    every ``interval_s`` from the SDK's own thread; :meth:`close` sends what is left."""

    def __init__(self, endpoint: str, location: str, interval_s: float = 15.0, version: str = "") -> None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
        from opentelemetry.sdk.resources import Resource

        from llmscope_tui.metrics import LATENCY_BUCKETS

        self.location = location
        exporter = OTLPMetricExporter(endpoint=endpoint.rstrip("/") + "/v1/metrics")
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=interval_s * 1000)
        resource = Resource.create(
            {"service.name": "llmscope-tui", "service.version": version, "llmscope.location": location}
        )
        views = [  # the Prometheus buckets: the same accuracy for a backend's percentiles
            View(instrument_name=name, aggregation=ExplicitBucketHistogramAggregation(LATENCY_BUCKETS))
            for name in (DURATION, TIME_TO_FIRST_CHUNK)
        ]
        views.append(View(instrument_name=TOKEN_USAGE, aggregation=ExplicitBucketHistogramAggregation(TOKEN_BUCKETS)))
        self.provider = MeterProvider(metric_readers=[reader], resource=resource, views=views)
        meter = self.provider.get_meter("llmscope_tui", version)
        self.duration = meter.create_histogram(DURATION, unit="s", description="GenAI operation duration.")
        self.ttft = meter.create_histogram(
            TIME_TO_FIRST_CHUNK, unit="s", description="Time to receive the first chunk of output."
        )
        self.tokens = meter.create_histogram(TOKEN_USAGE, unit="{token}", description="Number of input and output tokens used.")

    def __call__(self, event: dict[str, Any]) -> None:
        if event.get("event") != "sample":
            return
        attributes: dict[str, str] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": PROVIDER_NAMES.get(event["provider"], event["provider"]),
            "gen_ai.request.model": event["model"],
            "llmscope.target": event["target"],
        }
        if not event["ok"]:
            attributes["error.type"] = event.get("error_kind") or "unknown"
        if event.get("latency_ms") is not None:
            self.duration.record(event["latency_ms"] / 1000, attributes)
        if event["ok"] and event.get("ttft_ms") is not None:
            self.ttft.record(event["ttft_ms"] / 1000, attributes)
        for field, kind in (("tokens_in", "input"), ("tokens_out", "output")):
            if event.get(field) is not None:
                self.tokens.record(event[field], {**attributes, "gen_ai.token.type": kind})

    def close(self, timeout_s: float = 5.0) -> None:
        """Export what was recorded since the last export, then stop the SDK's thread."""
        self.provider.shutdown(timeout_millis=timeout_s * 1000)
