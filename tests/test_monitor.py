"""The monitor end to end against the fake provider: SPC, persistence, budgets, alerts, ingestion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from conftest import fake_settings
from fake_provider import FakeProvider, Script, Usage

from llmscope_tui.ingest import IngestOptions
from llmscope_tui.monitor import Monitor
from llmscope_tui.report import cost_summary
from llmscope_tui.costs import PriceBook
from llmscope_tui.rollups import rollups
from llmscope_tui.store import open_readonly

pytestmark = pytest.mark.anyio


async def run_monitor(settings: Any, count: int, **kwargs: Any) -> tuple[Monitor, list[dict[str, Any]]]:
    monitor = Monitor(settings, **kwargs)
    events: list[dict[str, Any]] = []
    monitor.subscribe(events.append)
    with anyio.fail_after(30):
        await monitor.run(count=count)
    return monitor, events


def kinds(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == kind]


async def test_a_latency_shift_becomes_violations_an_episode_and_an_alert(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    calm = [Script(first_token_delay_s=0.02 + 0.002 * (i % 3)) for i in range(8)]
    fake_provider.enqueue(*calm)
    fake_provider.script(default=Script(first_token_delay_s=0.4))
    settings = fake_settings(tmp_path, fake_provider)
    monitor, events = await run_monitor(settings, count=11)
    violations = [v for v in kinds(events, "violation") if v["metric"] == "ttft_ms"]
    assert violations and all(v["rule"] == 1 and v["z"] > 3 for v in violations)
    assert violations[0]["text"] == "1 point beyond 3σ from the center"
    opened = [e for e in kinds(events, "episode") if e["state"] == "opened" and e["metric"] == "ttft_ms"]
    assert len(opened) == 1  # consecutive firings are one incident
    alerts = [a for a in kinds(events, "alert") if a["kind"] == "violation_episode"]
    assert any("TTFT rule 1" in a["text"] for a in alerts)
    assert monitor.summary.violations == len(kinds(events, "violation"))
    with open_readonly(settings.db_path) as store:
        stored = store.violations(target="fake", metric="ttft_ms")
        assert len(stored) == len(violations)
        assert ("fake", "ttft_ms") in store.active_baselines()


async def test_baselines_survive_a_restart_and_rebaseline_starts_over(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    fake_provider.script(default=Script(first_token_delay_s=0.02))
    settings = fake_settings(tmp_path, fake_provider)
    await run_monitor(settings, count=6)
    with open_readonly(settings.db_path) as store:
        saved = store.active_baselines()[("fake", "ttft_ms")]

    second = Monitor(settings)
    events: list[dict[str, Any]] = []
    second.subscribe(events.append)
    async with anyio.create_task_group() as tg:
        tg.start_soon(second.run)
        with anyio.fail_after(10):
            while not kinds(events, "sample"):
                await anyio.sleep(0.02)
        chart = second.charts.chart("fake", "ttft_ms")
        assert chart is not None and chart.phase == "monitoring"  # no new baseline needed
        assert chart.center == pytest.approx(saved["center"])
        second.rebaseline("fake")
        assert chart.phase == "baseline"
        second.stop()
    assert kinds(events, "rebaseline")[0]["target"] == "fake"
    with open_readonly(settings.db_path) as store:
        assert ("fake", "ttft_ms") not in store.active_baselines()


async def test_budget_thresholds_once_each_then_probes_pause(tmp_path: Path, fake_provider: FakeProvider) -> None:
    # each probe: 12 in + 5 out tokens at $1000/M = $0.017; a $0.05 budget is spent after 3 probes
    fake_provider.script(default=Script(usage=Usage(input_tokens=12, output_tokens=5)))
    budget = "[[budgets]]\nname = 'tiny'\nlimit_usd = 0.05\nperiod = 'day'\nscope = 'all'\npause_probes_at = 1.0\n"
    settings = fake_settings(tmp_path, fake_provider, extra=budget)
    monitor = Monitor(settings)
    events: list[dict[str, Any]] = []
    monitor.subscribe(events.append)
    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor.run)
        with anyio.fail_after(10):
            while not any(e.get("kind") == "paused" for e in kinds(events, "budget")):
                await anyio.sleep(0.02)
        await anyio.sleep(0.4)  # probing stays paused
        monitor.stop()
    budget_events = kinds(events, "budget")
    thresholds = [e["threshold"] for e in budget_events if e["kind"] == "threshold"]
    assert thresholds == [0.5, 0.8, 1.0]
    assert len(kinds(events, "sample")) == 3
    assert any(a["kind"] == "budget" for a in kinds(events, "alert"))


async def test_application_usage_is_ingested_priced_and_reported(tmp_path: Path, fake_provider: FakeProvider) -> None:
    settings = fake_settings(tmp_path, fake_provider)
    monitor = Monitor(settings, ingest=IngestOptions(port=0, host="127.0.0.1", api_key="secret-ingest-key"))
    events: list[dict[str, Any]] = []
    monitor.subscribe(events.append)
    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor.run)
        with anyio.fail_after(10):
            while monitor.ingest_server is None:
                await anyio.sleep(0.02)
        url = monitor.ingest_server.events_url
        record = {"provider": "openai", "model": "fake-model", "tokens_in": 1000, "tokens_out": 500, "project": "shop"}
        async with httpx.AsyncClient() as client:
            refused = await client.post(url, json=record)
            taken = await client.post(url, json=[record, record], headers={"authorization": "Bearer secret-ingest-key"})
        monitor.stop()
    assert (refused.status_code, taken.status_code) == (401, 202)
    app = [e for e in kinds(events, "sample") if e["source"] == "app"]
    assert len(app) == 2 and app[0]["target"] == "app:shop"
    assert app[0]["cost_usd"] == pytest.approx(1.5)  # 1500 tokens at $1000 per million
    assert monitor.summary.samples == len(kinds(events, "sample")) - 2  # app usage is not a probe
    assert kinds(events, "start")[0]["ingest"] == url
    with open_readonly(settings.db_path) as store:
        summary = cost_summary(store, PriceBook(settings.prices))
        assert summary.by_source["app"] == pytest.approx(3.0)
        targets = {r.key for r in rollups(store, "1h")}
        assert "app:shop" not in targets  # rollups are about probes


async def test_rollups_from_the_store(tmp_path: Path, fake_provider: FakeProvider) -> None:
    fake_provider.enqueue(Script.rate_limited("1"), Script.error(500))
    settings = fake_settings(tmp_path, fake_provider)
    await run_monitor(settings, count=6)
    with open_readonly(settings.db_path) as store:
        (rollup,) = rollups(store, "1h", "target")
        by_provider = rollups(store, "24h", "provider")
    assert (rollup.key, rollup.count, rollup.ok) == ("fake", 6, 4)
    assert rollup.errors_by_kind == {"rate_limit": 1, "server_error": 1}
    assert rollup.availability == pytest.approx(4 / 6)
    ttft = rollup.metrics["ttft_ms"]
    assert ttft.n == 4 and ttft.p50 <= ttft.p95 <= ttft.p99
    assert by_provider[0].key == "openai-compatible"
