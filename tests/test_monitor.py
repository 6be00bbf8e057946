"""The monitor end to end against the fake provider: SPC, persistence, budgets, alerts, ingestion."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from conftest import ScriptedProbes, fake_settings
from fake_provider import FakeProvider, Script, Usage
from llmscope_tui.costs import PriceBook
from llmscope_tui.ingest import IngestOptions
from llmscope_tui.monitor import Monitor
from llmscope_tui.probe.netclock import clock_in_use
from llmscope_tui.report import cost_summary
from llmscope_tui.rollups import rollups
from llmscope_tui.server import Endpoints
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


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_a_latency_shift_becomes_violations_and_one_incident_with_one_alert(
    tmp_path: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    ScriptedProbes(lambda name, n: 20 + 2 * (n % 3) if n < 8 else 400).install(monkeypatch)
    settings = fake_settings(tmp_path, fake_provider)
    monitor, events = await run_monitor(settings, count=14)
    violations = [v for v in kinds(events, "violation") if v["metric"] == "ttft_ms"]
    assert violations and all(v["rule"] == 1 and v["z"] > 3 for v in violations)
    assert violations[0]["text"] == "1 point beyond 3σ from the center"
    incidents = kinds(events, "incident")
    opened = [e for e in incidents if e["state"] == "opened"]
    assert len(opened) == 1  # every firing of a sustained shift belongs to one incident
    (ttft,) = [m for m in opened[0]["metrics"] if m["metric"] == "ttft_ms"]
    assert ttft["effect"] > 5  # 20 ms -> 400 ms: +1900 %
    assert 1 in opened[0]["rules"] and opened[0]["scope"] == "target" and opened[0]["target"] == "fake"
    alerts = [a for a in kinds(events, "alert") if a["kind"] == "incident"]
    assert len(alerts) == 1 and "TTFT +" in alerts[0]["text"]
    assert monitor.summary.violations == len(kinds(events, "violation"))
    assert monitor.summary.incidents == 1
    with open_readonly(settings.db_path) as store:
        stored = store.violations(target="fake", metric="ttft_ms")
        assert len(stored) == len(violations)
        assert ("fake", "ttft_ms") in store.active_baselines()
        (incident,) = store.incidents()
        assert incident.open and incident.id == opened[0]["id"] and 1 in incident.rules


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
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
    should_pause = monitor.budgets.should_pause
    paused_turns: list[str] = []  # the scheduler came round for a probe and held it back

    def counting_should_pause(target: Any) -> bool:
        paused = should_pause(target)
        if paused:
            paused_turns.append(target.name)
        return paused

    monitor.budgets.should_pause = counting_should_pause  # type: ignore[method-assign]
    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor.run)
        with anyio.fail_after(10):
            while len(paused_turns) < 3:  # three turns due after the pause, none probed
                await anyio.sleep(0.02)
        monitor.stop()
    budget_events = kinds(events, "budget")
    thresholds = [e["threshold"] for e in budget_events if e["kind"] == "threshold"]
    assert thresholds == [0.5, 0.8, 1.0]
    assert len(kinds(events, "sample")) == 3
    assert any(a["kind"] == "budget" for a in kinds(events, "alert"))


async def test_application_usage_is_ingested_priced_and_reported(tmp_path: Path, fake_provider: FakeProvider) -> None:
    settings = fake_settings(tmp_path, fake_provider)
    monitor = Monitor(settings)
    # The face composes monitor and server: bound now, served once the monitor has started.
    options = IngestOptions(port=0, host="127.0.0.1", api_key="secret-ingest-key")
    endpoints = Endpoints(ingest=options, sink=monitor.ingest, clock=monitor.wall_clock)
    url = monitor.ingest_url = endpoints.events_url
    events: list[dict[str, Any]] = []
    monitor.subscribe(events.append)
    started = anyio.Event()
    monitor.subscribe(lambda event: started.set() if event["event"] == "start" else None)
    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor.run)
        async with anyio.create_task_group() as http:
            await http.start(endpoints.serve, started)
            record = {"provider": "openai", "model": "fake-model", "tokens_in": 1000, "tokens_out": 500, "project": "shop"}
            async with httpx.AsyncClient() as client:
                refused = await client.post(url, json=record)
                taken = await client.post(url, json=[record, record], headers={"authorization": "Bearer secret-ingest-key"})
            http.cancel_scope.cancel()
        monitor.stop()
    assert (refused.status_code, taken.status_code) == (401, 202)
    app = [e for e in kinds(events, "sample") if e["source"] == "app"]
    assert len(app) == 2 and app[0]["target"] == "app:shop"
    assert app[0]["cost_usd"] == pytest.approx(1.5)  # 1500 tokens at $1000 per million
    assert monitor.summary.samples == len(kinds(events, "sample")) - 2  # app usage is not a probe
    assert kinds(events, "start")[0]["ingest"] == url
    assert kinds(events, "start")[0]["clock"] == clock_in_use()  # who stamps response arrivals
    assert kinds(events, "start")[0]["location"] == settings.location  # where this probe runs
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


@pytest.mark.slow
async def test_an_open_incident_survives_a_restart_and_closes_when_calm_returns(
    tmp_path: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    calm_again = [False]
    ScriptedProbes(lambda name, n: 20 + 2 * (n % 3) if n < 8 or calm_again[0] else 300).install(monkeypatch)
    settings = fake_settings(tmp_path, fake_provider)
    settings.spc.close_after = 5
    _first, events = await run_monitor(settings, count=14)
    (opened,) = [e for e in kinds(events, "incident") if e["state"] == "opened"]

    calm_again[0] = True
    _second, events = await run_monitor(settings, count=30)
    incidents = kinds(events, "incident")
    assert [e["state"] for e in incidents if e["state"] != "updated"] == ["closed"]  # no second incident
    closed = incidents[-1]
    assert closed["id"] == opened["id"] and closed["resolution"] == "recovered"
    with open_readonly(settings.db_path) as store:
        (incident,) = store.incidents()
    assert not incident.open and incident.closed_ts == closed["ts"]


@pytest.mark.slow
async def test_loopback_jitter_opens_nothing_and_a_provider_wide_shift_is_scoped(
    tmp_path: Path, fake_provider: FakeProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four targets whose only noise is jitter: no incident. Then the two targets of one provider
    double their TTFT: one incident each within 5 probes, scope = that provider."""
    import random

    from llmscope_tui.config import load_settings

    shift_at = 45

    def ttft(name: str, n: int) -> float:
        jitter = random.Random(f"{name}-{n}").lognormvariate(0.0, 0.15)
        factor = 2.0 if n >= shift_at and name in ("a1", "a2") else 1.0
        return 100.0 * jitter * factor

    ScriptedProbes(ttft).install(monkeypatch)
    targets = "".join(
        f'\n[[targets]]\nname = "{m}"\nprovider = "{p}"\nmodel = "{m}"\nbase_url = "{fake_provider.base_url}/v1"\n'
        for m, p in (("a1", "openai-compatible"), ("a2", "openai-compatible"), ("b1", "vllm"), ("b2", "vllm"))
    )
    config = tmp_path / "config.toml"
    config.write_text(
        f'[monitor]\ninterval = "50ms"\ntimeout = "5s"\ndb = "{tmp_path / "s.db"}"\n'
        f"[spc]\nbaseline_samples = 20\n{targets}"
    )
    monitor = Monitor(load_settings(config, env={}))
    events: list[dict[str, Any]] = []
    monitor.subscribe(events.append)

    def samples(name: str) -> list[dict[str, Any]]:
        return [e for e in kinds(events, "sample") if e["target"] == name]

    async with anyio.create_task_group() as tg:
        tg.start_soon(monitor.run)
        with anyio.fail_after(60):
            while min(len(samples(n)) for n in ("a1", "a2", "b1", "b2")) < shift_at + 10:
                await anyio.sleep(0.05)
        monitor.stop()
    shifted_at = {n: samples(n)[shift_at]["ts"] for n in ("a1", "a2")}
    assert [e for e in kinds(events, "incident") if e["ts"] < min(shifted_at.values())] == []  # jitter alone
    opened = {e["target"]: e for e in kinds(events, "incident") if e["state"] == "opened"}
    assert set(opened) == {"a1", "a2"}
    for name, event in opened.items():
        caught_after = sum(1 for e in samples(name)[shift_at:] if e["ts"] <= event["ts"])
        assert caught_after <= 5, (name, caught_after)
    scopes = {e["target"]: e["scope"] for e in kinds(events, "incident")}  # the latest event of each
    assert scopes == {"a1": "provider:openai-compatible", "a2": "provider:openai-compatible"}


@pytest.mark.slow  # about a second on a busy machine: the full run (CI) has it
async def test_an_event_source_publishes_between_start_and_stop(
    tmp_path: Path, fake_provider: FakeProvider
) -> None:
    """What publishes beside the probes (the demo's incident script) reaches every subscriber
    after the start event, and is cancelled with the run."""
    fake_provider.script(default=Script(first_token_delay_s=0.01))
    ended: list[bool] = []

    async def source(publish: Any) -> None:
        publish({"event": "demo", "ts": 1.0, "incident": None, "running": []})
        try:
            await anyio.sleep_forever()
        finally:
            ended.append(True)

    _, events = await run_monitor(fake_settings(tmp_path, fake_provider), count=2, sources=[source])
    order = [e["event"] for e in events]
    assert order.count("demo") == 1 and order[0] == "start" and order[-1] == "stop"
    assert ended == [True]
