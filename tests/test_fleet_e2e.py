"""docs/fleet.md end to end, opt-in: two headless probes at different locations (the demo, and
a config file probing the fake provider with a budget), one real Prometheus scraping them with
deploy/prometheus's config and rules, dashboard queries over both, a budget alert raised.

Runs only with LLMSCOPE_PROMETHEUS=1 and Debian's `prometheus` package installed (.ci/run
installs it with LLMSCOPE_CI_PROMETHEUS=1). Every wait is bounded; every process is stopped in
``finally``. It prints what it saw (pytest -s) for docs/fleet.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
PROMETHEUS_BIN = shutil.which("prometheus") or "/usr/bin/prometheus"
LOCATIONS = ("e2e-north", "e2e-south")  # a demo probe, and one of a config file
WAIT_S = 90.0

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("LLMSCOPE_PROMETHEUS") != "1", reason="opt-in: LLMSCOPE_PROMETHEUS=1"),
    pytest.mark.skipif(not Path(PROMETHEUS_BIN).exists(), reason="no prometheus (apt-get install prometheus)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def scrape_config(ports: list[int]) -> str:
    """deploy/prometheus/prometheus.yml with a 1 s scrape and its probe addresses replaced by
    ours, in order (the file's own `location` labels stay: the probes' must win over them)."""
    head, scrapes, text = (ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text().partition("\nscrape_configs:")
    head = re.sub(r"(scrape_interval|evaluation_interval): \S+", r"\1: 1s", head) + scrapes
    entries = list(re.finditer(r'( +)- targets: \["[^"]+"\]\n(?:\1  .*\n)*', text))
    assert len(entries) >= len(ports), "the scrape config lists fewer probes than the test runs"
    kept = [re.sub(r'\["[^"]+"\]', f'["127.0.0.1:{port}"]', m.group(0)) for m, port in zip(entries, ports, strict=False)]
    text = text[: entries[0].start()] + "".join(kept) + text[entries[-1].end() :]
    return head + text


def wait_for(what: str, check: Callable[[], Any], procs: dict[subprocess.Popen[bytes], Path]) -> Any:
    """``check()``'s first truthy answer, asked every 0.5 s for at most WAIT_S; a process that
    ends meanwhile fails the test with the end of its log."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        for proc, log in procs.items():
            ended = f"{proc.args[0]} ended ({proc.returncode}) while waiting for {what}: "
            assert proc.poll() is None, ended + log.read_text(errors="replace")[-2000:]
        try:
            found = check()
        except httpx.HTTPError:
            found = None
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {WAIT_S:.0f} s")


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


class PromAPI:
    """The few calls of Prometheus' HTTP API the test makes."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = self.client.get("/api/v1/query", params={"query": expr}).raise_for_status().json()
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def by_location(self, expr: str) -> dict[str, list[dict[str, Any]]]:
        """``expr``'s series by location once every location of the test has one ({} before)."""
        found: dict[str, list[dict[str, Any]]] = {}
        for series in self.query(expr):
            found.setdefault(series["metric"].get("location", ""), []).append(series)
        return found if set(LOCATIONS) <= set(found) else {}

    def get(self, path: str) -> Any:
        return self.client.get(path).raise_for_status().json()["data"]


def dashboard_expr(title: str) -> str:
    """The first query of the dashboard panel ``title``, Grafana's variables given values."""
    board = json.loads((ROOT / "deploy" / "grafana" / "llmscope-tui.json").read_text())
    expr: str = next(p for p in board["panels"] if p["title"] == title)["targets"][0]["expr"]
    for name, value in (("$__rate_interval", "1m"), ("$location", ".*"), ("$target", ".*")):
        expr = expr.replace(name, value)
    return expr


def south_config(tmp_path: Path, base_url: str) -> Path:
    """The second probe: a config file (its location in [monitor]), one OpenAI target on the
    fake provider priced as gpt-4o-mini, and a budget it spends in a couple of probes."""
    config = tmp_path / "south.toml"
    config.write_text(f"""
[monitor]
interval = "1s"
location = "{LOCATIONS[1]}"

[[targets]]
name = "fake-mini"
provider = "openai"
model = "gpt-4o-mini"
base_url = "{base_url}/v1"
api_key_env = "E2E_FAKE_KEY"

[[budgets]]
name = "tiny"
limit_usd = 0.00001
period = "day"
""")
    return config


def test_two_probes_at_two_locations_reach_one_prometheus_with_rules_and_dashboard(
    tmp_path: Path, fake_provider: Any
) -> None:
    probe_ports = [free_port() for _ in LOCATIONS]
    web = free_port()
    (tmp_path / "prometheus.yml").write_text(scrape_config(probe_ports))
    shutil.copy(ROOT / "deploy" / "prometheus" / "rules.yml", tmp_path / "rules.yml")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    north = ["--demo"], {"LLMSCOPE_LOCATION": LOCATIONS[0]}  # the demo, its location from the environment
    south = ["--config", str(south_config(tmp_path, fake_provider.base_url))], {"E2E_FAKE_KEY": "e2e-not-a-key"}
    procs: dict[subprocess.Popen[bytes], Path] = {}
    started = time.monotonic()
    try:
        for location, port, (args, extra_env) in zip(LOCATIONS, probe_ports, (north, south), strict=True):
            with open(tmp_path / f"{location}.log", "wb") as log:
                procs[subprocess.Popen(
                    [sys.executable, "-m", "llmscope_tui", *args, "--headless", "--db", str(tmp_path / f"{location}.db"),
                     "--duration", "150s", "--metrics-port", str(port), "--metrics-host", "127.0.0.1"],
                    env={**env, **extra_env}, stdout=subprocess.DEVNULL, stderr=log)] = Path(log.name)  # fmt: skip
        with open(tmp_path / "prometheus.log", "wb") as log:
            procs[subprocess.Popen(
                [PROMETHEUS_BIN, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                 f"--web.listen-address=127.0.0.1:{web}", "--log.level=warn"],
                stdout=log, stderr=subprocess.STDOUT)] = Path(log.name)  # fmt: skip
        with httpx.Client(base_url=f"http://127.0.0.1:{web}", timeout=5, trust_env=False) as client:
            api = PromAPI(client)
            probes = wait_for("probes from both locations", lambda: api.by_location("llmscope_probes_total"), procs)
            seen_after = time.monotonic() - started
            # the probes' own label won over the scrape config's (honor_labels); Prometheus' `up`
            # for each probe carries the config's label
            assert set(probes) == set(LOCATIONS), set(probes)
            up = {s["metric"]["location"]: s["value"][1] for s in api.query('up{job="llmscope"}')}
            assert up == {"eu-west": "1", "us-east": "1"}, up

            def rules_evaluated() -> list[dict[str, Any]]:
                rules: list[dict[str, Any]] = [r for g in api.get("/api/v1/rules")["groups"] for r in g["rules"]]
                return rules if rules and all(r["health"] == "ok" for r in rules) else []

            rules = wait_for("every rule evaluated without error", rules_evaluated, procs)
            assert {r["name"] for r in rules} == set(re.findall(r"- alert: (\w+)", (tmp_path / "rules.yml").read_text()))

            p95_expr = dashboard_expr("TTFT p95 by target and location")

            def p95_everywhere() -> dict[str, list[tuple[str, float]]]:
                """TTFT p95 per location and target once each location has one (a histogram's
                first scrape has no rate yet: NaN) and the demo 3 of its 4 targets."""
                found = {loc: sorted((s["metric"]["target"], round(float(s["value"][1]), 3)) for s in series
                                     if s["value"][1] != "NaN")
                         for loc, series in api.by_location(p95_expr).items()}  # fmt: skip
                enough = found and len(found[LOCATIONS[0]]) >= 3 and found[LOCATIONS[1]]
                return found if enough else {}

            figures = wait_for("the dashboard's TTFT p95 for both locations", p95_everywhere, procs)
            assert all(0 < v < 30 for targets in figures.values() for _, v in targets), figures
            budget = wait_for("the budget on the dashboard", lambda: api.query(dashboard_expr("Budget used this period")), procs)
            assert [(b["metric"]["location"], b["metric"]["budget"], b["metric"]["period"]) for b in budget] == [
                (LOCATIONS[1], "tiny", "day")]  # fmt: skip

            def budget_alert() -> list[dict[str, Any]]:
                alerts = api.get("/api/v1/alerts")["alerts"]
                return [a for a in alerts if a["labels"]["alertname"] == "LlmscopeBudgetExhausted"]

            alert = wait_for("LlmscopeBudgetExhausted pending or firing", budget_alert, procs)
            assert alert[0]["labels"]["location"] == LOCATIONS[1] and alert[0]["labels"]["budget"] == "tiny", alert
            per_scrape = api.query('scrape_samples_scraped{job="llmscope"}')
            active = sorted({a["labels"]["alertname"] for a in api.get("/api/v1/alerts")["alerts"]})
            print(f"\nfleet e2e: both locations in Prometheus {seen_after:.1f} s after start; "
                  f"{len(rules)} rules, all health ok; pending or firing: {', '.join(active)}; "
                  f"budget tiny at {float(budget[0]['value'][1]):.0%}; "
                  f"series per scrape: {[s['value'][1] for s in per_scrape]}")  # fmt: skip
            for loc, targets in figures.items():
                print(f"fleet e2e: TTFT p95 at {loc}: " + ", ".join(f"{t} {v} s" for t, v in targets))
    finally:
        codes = [stop(proc) for proc in procs]
    assert codes[: len(LOCATIONS)] == [0] * len(LOCATIONS), (codes, (tmp_path / f"{LOCATIONS[1]}.log").read_text())
