"""Prometheus exposition as a scraper sees it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmscope_tui.metrics import MetricsExporter
from llmscope_tui.server import Endpoints


def sample_event(**changes: object) -> dict[str, object]:
    event: dict[str, object] = {
        "event": "sample",
        "ts": 1_800_000_000.0,
        "target": "gpt",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "ok": 1,
        "error_kind": None,
        "ttft_ms": 250.0,
        "latency_ms": 600.0,
        "itl_ms": 20.0,
        "tps": 50.0,
        "tokens_in": 12,
        "tokens_out": 8,
        "cost_usd": 0.0001,
    }
    event.update(changes)
    return event


def families(text: str) -> dict[str, object]:
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_samples_become_histograms_in_seconds_and_counters() -> None:
    exporter = MetricsExporter("here")
    exporter(sample_event())
    exporter(sample_event(ok=0, error_kind="rate_limit", ttft_ms=None, latency_ms=None))
    exporter({"event": "violation", "target": "gpt", "metric": "ttft_ms", "rule": 1})
    text = exporter.render().decode()
    fams = families(text)
    ttft = fams["llmscope_ttft_seconds"]
    count = next(s for s in ttft.samples if s.name.endswith("_count"))  # type: ignore[attr-defined]
    total = next(s for s in ttft.samples if s.name.endswith("_sum"))  # type: ignore[attr-defined]
    assert count.value == 1 and total.value == 0.25
    assert count.labels == {"target": "gpt", "provider": "openai", "model": "gpt-4o-mini", "location": "here"}
    assert "llmscope_probes_total" in text and 'error_kind="rate_limit"' in text
    assert 'llmscope_violations_total{location="here",metric="ttft_ms",rule="1",target="gpt"} 1.0' in text
    assert "llmscope_up" in fams


def test_every_series_carries_the_location() -> None:
    """A fleet's Prometheus tells its probes apart by ``location``: no series may lack it."""
    exporter = MetricsExporter("eu-west")
    exporter(sample_event())
    exporter(sample_event(ok=0, error_kind="network"))
    exporter({"event": "violation", "target": "gpt", "metric": "ttft_ms", "rule": 1})
    exporter({"event": "incident", "state": "opened", "target": "gpt", "scope": "target", "severity": "warning"})
    exporter({"event": "error", "where": "store", "message": "disk full"})
    series = [s for f in text_string_to_metric_families(exporter.render().decode()) for s in f.samples]
    assert len({s.name for s in series}) >= 20
    assert all(s.labels.get("location") == "eu-west" for s in series), [s for s in series if "location" not in s.labels]
    assert any(s.name == "llmscope_build_info" for s in series)


@pytest.mark.anyio
async def test_metrics_endpoint_serves_text_format_0_0_4() -> None:
    exporter = MetricsExporter()
    exporter(sample_event())
    endpoints = Endpoints(metrics=(exporter.registry, "127.0.0.1", 0))
    async with anyio.create_task_group() as tg:
        await tg.start(endpoints.serve)
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(endpoints.metrics_url or "")
            openmetrics = await client.get(
                endpoints.metrics_url or "", headers={"accept": "application/openmetrics-text; version=1.0.0"}
            )
            post = await client.post(endpoints.metrics_url or "")
        tg.cancel_scope.cancel()
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert "llmscope_latency_seconds_bucket" in response.text
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")
    assert post.status_code == 405  # as prometheus_client's own server answered


def test_incidents_are_counted_and_the_open_one_is_a_gauge() -> None:
    exporter = MetricsExporter("x")
    opened = {"event": "incident", "state": "opened", "target": "gpt", "scope": "provider:openai", "severity": "warning"}
    exporter(opened)
    exporter({**opened, "state": "updated", "severity": "critical"})
    text = exporter.render().decode()
    assert 'llmscope_incidents_total{location="x",scope="provider",severity="warning",target="gpt"} 1.0' in text
    assert 'llmscope_incident_open{location="x",severity="critical",target="gpt"} 1.0' in text
    assert 'llmscope_incident_open{location="x",severity="warning",target="gpt"} 0.0' in text
    exporter({**opened, "state": "closed", "severity": "critical"})
    text = exporter.render().decode()
    assert 'llmscope_incident_open{location="x",severity="critical",target="gpt"} 0.0' in text



def test_a_scrape_is_what_prometheus_clients_own_server_gives() -> None:
    """Our /metrics renders in a worker thread; what it renders (encoding, name[] filter, gzip)
    matches prometheus_client's own exposition for the same request."""
    import gzip
    from urllib.parse import parse_qs

    from prometheus_client.exposition import _bake_output

    from llmscope_tui.metrics import MetricsExporter
    from llmscope_tui.server.routes import render_metrics

    exporter = MetricsExporter()
    exporter({"event": "sample", "ts": 1.0, "target": "t", "provider": "openai", "model": "m", "ok": 1,
              "ttft_ms": 120.0, "latency_ms": 300.0, "itl_ms": 10.0, "tps": 50.0, "tokens_in": 3, "tokens_out": 4,
              "cost_usd": 1e-5})  # fmt: skip
    for accept, encoding, query in (
        ("", "", ""),
        ("application/openmetrics-text; version=1.0.0", "", ""),
        ("", "gzip, deflate", ""),
        ("", "", "name[]=llmscope_probes_total&name[]=llmscope_ttft_seconds"),
    ):
        headers, body = render_metrics(exporter.registry, accept, encoding, query)
        status, their_headers, their_body = _bake_output(exporter.registry, accept, encoding, parse_qs(query), False)
        assert status.startswith("200")
        assert dict(headers) == {k.lower().encode(): v.encode() for k, v in their_headers}
        if encoding:
            body, their_body = gzip.decompress(body), gzip.decompress(their_body)
        assert body == their_body and body
    filtered = render_metrics(exporter.registry, "", "", "name[]=llmscope_probes_total")[1].decode()
    assert "llmscope_probes_total" in filtered and "llmscope_ttft" not in filtered


def test_tokens_are_counted_in_every_direction() -> None:
    exporter = MetricsExporter("x")
    exporter(sample_event(tokens_in=100, tokens_out=40, tokens_cached=60, tokens_cache_write=30, tokens_reasoning=25))
    text = exporter.render().decode()
    for direction, value in (("in", 100), ("out", 40), ("cached", 60), ("cache_write", 30), ("reasoning", 25)):
        line = (f'llmscope_tokens_total{{direction="{direction}",location="x",model="gpt-4o-mini",'
                f'provider="openai",target="gpt"}} {value:.1f}')  # fmt: skip
        assert line in text


def test_budgets_show_from_the_first_scrape_not_only_after_an_alert() -> None:
    """Spend at 10 % of a budget (no threshold crossed, no budget event) is on the gauge;
    a sample adds to it; a period that ended since reads 0 until the next sample."""
    from datetime import UTC, datetime

    from llmscope_tui.costs import Budget, BudgetTracker

    now = [datetime(2026, 3, 10, 12, tzinfo=UTC).timestamp()]
    tracker = BudgetTracker([Budget("all", 50.0, "month"), Budget("openai-daily", 2.0, "day", "provider:openai")],
                            clock=lambda: now[0])  # fmt: skip
    tracker.seed(lambda budget, since: 5.0 if budget.name == "all" else 0.0)
    exporter = MetricsExporter("x")
    exporter.watch_budgets(tracker.spent_now)
    text = exporter.render().decode()
    assert 'llmscope_budget_spent_usd{budget="all",location="x",period="month"} 5.0' in text
    assert 'llmscope_budget_limit_usd{budget="all",location="x",period="month"} 50.0' in text
    assert 'llmscope_budget_spent_usd{budget="openai-daily",location="x",period="day"} 0.0' in text
    assert not tracker.observe(type("S", (), {"cost_usd": 0.25, "provider": "openai", "target": "gpt"})())
    text = exporter.render().decode()
    assert 'llmscope_budget_spent_usd{budget="openai-daily",location="x",period="day"} 0.25' in text
    now[0] += 86400  # the next day: the daily budget starts again
    text = exporter.render().decode()
    assert 'llmscope_budget_spent_usd{budget="openai-daily",location="x",period="day"} 0.0' in text
    assert 'llmscope_budget_spent_usd{budget="all",location="x",period="month"} 5.25' in text


@pytest.mark.slow  # a real headless run against the fake provider: about a second
def test_a_headless_run_serves_its_budgets_and_location(
    tmp_path: Path, fake_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The headless face wires the budgets into the exporter it serves, with the run's location."""
    from llmscope_tui import headless
    from llmscope_tui.config import load_settings

    made: list[MetricsExporter] = []
    monkeypatch.setattr(headless, "MetricsExporter", lambda location: made.append(MetricsExporter(location)) or made[-1])
    config = tmp_path / "config.toml"
    config.write_text(
        f'[monitor]\ninterval = "100ms"\nlocation = "lab-2"\n'
        f'[[budgets]]\nname = "probes"\nlimit_usd = 20\nperiod = "day"\n'
        f'[[targets]]\nname = "fake"\nprovider = "openai-compatible"\nmodel = "gpt-4o-mini"\n'
        f'base_url = "{fake_provider.base_url}/v1"\n'
    )
    settings = load_settings(config, env={}, db=tmp_path / "s.db")
    options = headless.HeadlessOptions(count=2, metrics_port=0, log_file=tmp_path / "log")
    assert headless.run_headless(settings, options) == 0
    text = made[0].render().decode()
    assert 'llmscope_budget_limit_usd{budget="probes",location="lab-2",period="day"} 20.0' in text
    assert 'llmscope_probes_total{location="lab-2",model="gpt-4o-mini",provider="openai-compatible",target="fake"} 2.0' in text
    assert 'llmscope_probe_loop_saturated{location="lab-2"} 0.0' in text  # two probes keep their pace


def test_a_saturated_probe_loop_shows_on_its_gauge_at_each_scrape() -> None:
    saturated = [False]
    exporter = MetricsExporter("x")
    exporter.watch_pace(lambda: saturated[0])
    assert 'llmscope_probe_loop_saturated{location="x"} 0.0' in exporter.render().decode()
    saturated[0] = True
    assert 'llmscope_probe_loop_saturated{location="x"} 1.0' in exporter.render().decode()


def test_the_monitor_says_whether_its_loop_reads_responses_itself() -> None:
    from llmscope_tui.monitor import Monitor
    from llmscope_tui.probe.scheduler import ProbeScheduler

    monitor = Monitor.__new__(Monitor)  # only the scheduler matters here
    monitor.scheduler = None
    assert monitor.reads_on_loop() is False  # not started
    monitor.scheduler = ProbeScheduler([], lambda sample: None)
    assert monitor.reads_on_loop() is False
    monitor.scheduler.stats.reads_on_loop = True
    assert monitor.reads_on_loop() is True


def test_a_cancelled_or_internal_probe_leaves_the_target_up() -> None:
    """Our stop or our bug says nothing of the provider (DESIGN 5): counted by kind, up unchanged."""
    exporter = MetricsExporter("x")
    exporter(sample_event())
    for kind in ("cancelled", "internal"):
        exporter(sample_event(ok=0, error_kind=kind, ttft_ms=None, latency_ms=None))
    text = exporter.render().decode()
    assert 'llmscope_up{location="x",model="gpt-4o-mini",provider="openai",target="gpt"} 1.0' in text
    assert 'error_kind="cancelled"' in text and 'error_kind="internal"' in text
    exporter(sample_event(ok=0, error_kind="network", ttft_ms=None, latency_ms=None))
    assert 'llmscope_up{location="x",model="gpt-4o-mini",provider="openai",target="gpt"} 0.0' in exporter.render().decode()


def test_a_restart_serves_the_incident_it_took_up_from_the_first_scrape(
    tmp_path: Path, fake_provider: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An incident left open in the data file is open again after a restart: its gauge must not
    wait for the incident's next update."""
    from llmscope_tui import headless
    from llmscope_tui.config import load_settings
    from llmscope_tui.incidents import Incident, MetricEffect
    from llmscope_tui.store import SampleStore

    made: list[MetricsExporter] = []
    monkeypatch.setattr(headless, "MetricsExporter", lambda location: made.append(MetricsExporter(location)) or made[-1])
    db = tmp_path / "s.db"
    store = SampleStore(db)
    incident = Incident(id=7, target="fake", provider="openai-compatible", opened_ts=1_800_000_000.0,
                        start_ts=1_800_000_000.0 - 5, rules={1})
    incident.metrics["ttft_ms"] = MetricEffect("ttft_ms", 0.5, 200.0, 300.0)
    store.save_incident(incident)
    store.close()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[monitor]\ninterval = "100ms"\nlocation = "lab"\n'
        f'[[targets]]\nname = "fake"\nprovider = "openai-compatible"\nmodel = "gpt-4o-mini"\n'
        f'base_url = "{fake_provider.base_url}/v1"\n'
    )
    settings = load_settings(config, env={}, db=db)
    options = headless.HeadlessOptions(count=1, metrics_port=0, log_file=tmp_path / "log")
    assert headless.run_headless(settings, options) == 0
    assert 'llmscope_incident_open{location="lab",severity="warning",target="fake"} 1.0' in made[0].render().decode()
