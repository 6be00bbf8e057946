"""OTLP export: what an OpenTelemetry collector receives, the config, and the extra's absence."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llmscope_tui.config import ConfigError, load_settings
from llmscope_tui.headless import HeadlessError, HeadlessOptions, run_headless
from llmscope_tui.otlp import INSTALL_HINT, missing_packages

NO_EXTRA = "the otlp extra is not installed (pip install 'llmscope-tui[otlp]')"


class Collector:
    """An OTLP/HTTP receiver on 127.0.0.1: keeps every POST /v1/metrics body, decoded."""

    def __init__(self) -> None:
        from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
            ExportMetricsServiceRequest,
        )

        self.requests: list[Any] = []
        self.headers: list[dict[str, str]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                request = ExportMetricsServiceRequest()
                request.ParseFromString(body)
                collector.requests.append(request)
                collector.headers.append({k.lower(): v for k, v in self.headers.items()})
                status = 200 if self.path == "/v1/metrics" else 404
                self.send_response(status)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)

    def metrics(self) -> dict[str, Any]:
        return {m.name: m for r in self.requests for rm in r.resource_metrics for sm in rm.scope_metrics for m in sm.metrics}


@pytest.fixture
def collector() -> Iterator[Collector]:
    pytest.importorskip("opentelemetry.sdk", reason=NO_EXTRA)
    pytest.importorskip("opentelemetry.proto", reason=NO_EXTRA)
    receiver = Collector()
    yield receiver
    receiver.close()


def sample(**changes: Any) -> dict[str, Any]:
    event = {"event": "sample", "ts": 1.0, "target": "claude", "provider": "anthropic", "model": "claude-haiku",
             "ok": 1, "error_kind": None, "ttft_ms": 250.0, "latency_ms": 800.0, "tokens_in": 12, "tokens_out": 30}  # fmt: skip
    event.update(changes)
    return event


def attributes(kvs: Any) -> dict[str, Any]:
    return {kv.key: kv.value.string_value or kv.value.int_value for kv in kvs}


def test_a_collector_receives_the_genai_histograms(collector: Collector, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmscope_tui.otlp import OtlpExporter

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=otlp-secret-123456")
    exporter = OtlpExporter(collector.url, "eu-west", interval_s=3600, version="9.9")
    exporter(sample())
    exporter(sample(ttft_ms=350.0, latency_ms=1200.0, tokens_in=8, tokens_out=10))
    exporter(sample(ok=0, error_kind="rate_limit", ttft_ms=None, latency_ms=None, tokens_in=None, tokens_out=None))
    exporter({"event": "incident", "state": "opened", "target": "claude"})  # not a measurement
    exporter.close()  # the final export, at once (the interval is an hour)

    assert collector.requests and collector.headers[0]["api-key"] == "otlp-secret-123456"
    assert collector.headers[0]["content-type"] == "application/x-protobuf"
    resource = attributes(collector.requests[0].resource_metrics[0].resource.attributes)
    assert resource["service.name"] == "llmscope-tui" and resource["llmscope.location"] == "eu-west"
    assert resource["service.version"] == "9.9"
    metrics = collector.metrics()
    assert set(metrics) == {
        "gen_ai.client.operation.duration", "gen_ai.client.operation.time_to_first_chunk", "gen_ai.client.token.usage"
    }  # fmt: skip
    duration, ttft, tokens = (metrics[n] for n in sorted(metrics))
    assert (duration.unit, ttft.unit, tokens.unit) == ("s", "s", "{token}")
    (point,) = ttft.histogram.data_points
    assert point.count == 2 and point.sum == pytest.approx(0.6)
    assert attributes(point.attributes) == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-haiku", "llmscope.target": "claude",
    }  # fmt: skip
    assert list(point.explicit_bounds)[:2] == [0.004922, 0.005524]  # the Prometheus buckets
    (point,) = duration.histogram.data_points  # the failure had no duration to record
    assert point.sum == pytest.approx(2.0) and point.count == 2
    by_type = {attributes(p.attributes)["gen_ai.token.type"]: p for p in tokens.histogram.data_points}
    assert (by_type["input"].sum, by_type["input"].count) == (20, 2)
    assert (by_type["output"].sum, by_type["output"].count) == (40, 2)


def test_the_provider_name_is_the_conventions(collector: Collector) -> None:
    from llmscope_tui.otlp import OtlpExporter

    exporter = OtlpExporter(collector.url + "/", "x", interval_s=3600)
    exporter(sample(provider="gemini"))
    exporter(sample(provider="ollama"))
    exporter.close()
    points = collector.metrics()["gen_ai.client.operation.duration"].histogram.data_points
    assert {attributes(p.attributes)["gen_ai.provider.name"] for p in points} == {"gcp.gemini", "ollama"}


def write(tmp_path: Path, text: str, name: str = "config.toml") -> Path:
    path = tmp_path / name
    path.write_text(text + '\n[[targets]]\nname = "a"\nprovider = "ollama"\nmodel = "m"\n')
    return path


def test_otlp_config_and_environment(tmp_path: Path) -> None:
    config = write(tmp_path, '[otlp]\nendpoint = "http://127.0.0.1:4318"\ninterval = "30s"\n')
    settings = load_settings(config, env={})
    assert (settings.otlp.endpoint, settings.otlp.interval_s) == ("http://127.0.0.1:4318", 30.0)
    settings = load_settings(config, env={"OTEL_EXPORTER_OTLP_ENDPOINT": "https://otlp.example.com"})
    assert settings.otlp.endpoint == "https://otlp.example.com"
    assert settings.sources["otlp"] == "OTEL_EXPORTER_OTLP_ENDPOINT"
    assert load_settings(write(tmp_path, "", "plain.toml"), env={}).otlp.endpoint is None  # off by default
    with pytest.raises(ConfigError, match=r":2: otlp.endpoint: expected an http\(s\) URL"):
        load_settings(write(tmp_path, '[otlp]\nendpoint = "grpc://collector:4317"\n', "bad.toml"), env={})
    with pytest.raises(ConfigError, match="^environment variable OTEL_EXPORTER_OTLP_ENDPOINT: "):
        load_settings(config, env={"OTEL_EXPORTER_OTLP_ENDPOINT": "collector:4318"})


def test_otlp_headers_are_secrets_redacted_everywhere(tmp_path: Path) -> None:
    from llmscope_tui import redaction

    load_settings(write(tmp_path, ""), env={"OTEL_EXPORTER_OTLP_HEADERS": "Authorization=Basic%20dXNlcjpvdGxwLXNlY3JldA,x-team=ops"})
    assert "dXNlcjpvdGxwLXNlY3JldA" not in redaction.scrub("sent dXNlcjpvdGxwLXNlY3JldA")


def test_configured_without_the_extra_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A missing package stops the run before it starts, naming the extra to install."""
    import importlib.util

    from llmscope_tui.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name.startswith("opentelemetry") else real(name, *a))
    assert missing_packages() == f"OTLP export is configured but its packages are not installed: {INSTALL_HINT}"
    settings = load_settings(None, env={"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}, db=tmp_path / "s.db")
    with pytest.raises(HeadlessError, match=r"^OTLP export is configured but its packages are not installed: pip install 'llmscope-tui\[otlp\]'$"):
        run_headless(settings, HeadlessOptions(count=1, log_file=tmp_path / "log"))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    assert main(["--headless", "--count", "1", "--db", str(tmp_path / "s.db"), "--log-file", str(tmp_path / "log")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"llmscope-tui: OTLP export is configured but its packages are not installed: {INSTALL_HINT}"]


def test_check_config_shows_otlp_and_refuses_it_without_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import importlib.util

    from llmscope_tui.cli import main

    assert main(["check-config"]) == 0
    assert "otlp:         off" in capsys.readouterr().out
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "api-key=never-shown-123456")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name.startswith("opentelemetry") else real(name, *a))
    assert main(["check-config"]) == 2
    captured = capsys.readouterr()
    assert "otlp:         http://127.0.0.1:4318/v1/metrics every 15s  (from OTEL_EXPORTER_OTLP_ENDPOINT)" in captured.out
    assert captured.err.strip() == f"llmscope-tui: OTLP export is configured but its packages are not installed: {INSTALL_HINT}"
    assert "never-shown" not in captured.out + captured.err


@pytest.mark.slow  # a short headless demo: seconds
def test_a_headless_run_exports_to_the_collector(collector: Collector, tmp_path: Path) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "LLMSCOPE_LOCATION": "lab"}
    settings = load_settings(None, env=env, db=tmp_path / "s.db")
    assert run_headless(settings, HeadlessOptions(count=4, log_file=tmp_path / "log")) == 0
    resource = attributes(collector.requests[-1].resource_metrics[0].resource.attributes)
    assert resource["llmscope.location"] == "lab"
    points = collector.metrics()["gen_ai.client.operation.duration"].histogram.data_points
    import json

    events = [json.loads(line) for line in (tmp_path / "log").read_text().splitlines()]
    timed = [e for e in events if e["event"] == "sample" and e["latency_ms"] is not None]
    assert timed and sum(p.count for p in points) == len(timed)  # every sample of the run, sent at its end
