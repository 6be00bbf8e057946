"""deploy/: the systemd unit, the Dockerfile, the Prometheus config and rules, the Grafana
dashboard. Each is checked against what the program really accepts and serves: flags by our
argument parser, metric and label names by the exporter's own exposition, PromQL by promtool
(skipped, saying so, where Debian's `prometheus` package is not installed)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmscope_tui.cli.parser import build_parser
from llmscope_tui.costs import Budget, BudgetTracker
from llmscope_tui.metrics import MetricsExporter
from llmscope_tui.server.routes import HEALTHZ_PATH

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "llmscope-tui.service"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"
PROMETHEUS = DEPLOY / "prometheus"
DASHBOARD = DEPLOY / "grafana" / "llmscope-tui.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
#: Grafana's variables, as a query would see them with every location and target selected.
GRAFANA_VARS = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$location": ".*", "$target": ".*"}


def served_series() -> dict[str, set[str]]:
    """Every series name the exporter serves, with its label names: an exporter fed one sample
    of each kind as the demo makes them, a failure, a rule firing, an incident, a store error,
    with a budget and the loop's pace to watch."""
    exporter = MetricsExporter("eu-west")
    sample = {"event": "sample", "ts": 1_800_000_000.0, "target": "demo-openai", "provider": "openai",
              "model": "gpt-4o-mini-sim", "ok": 1, "error_kind": None, "http_status": 200, "connect_ms": 2.5,
              "ttft_ms": 558.4, "latency_ms": 713.5, "itl_ms": 11.9, "tps": 83.8, "tokens_in": 13, "tokens_out": 14,
              "tokens_cached": 4, "tokens_cache_write": 2, "tokens_reasoning": 3, "tokens_estimated": 0,
              "cost_usd": 1.035e-05, "source": "probe"}  # fmt: skip
    exporter(sample)
    exporter({**sample, "ok": 0, "error_kind": "rate_limit", "ttft_ms": None, "latency_ms": None})
    exporter({"event": "violation", "target": "demo-openai", "metric": "ttft_ms", "rule": 1})
    exporter({"event": "incident", "state": "opened", "target": "demo-openai", "scope": "target", "severity": "warning"})
    exporter({"event": "error", "where": "store", "message": "disk full"})
    exporter.watch_budgets(BudgetTracker([Budget("all", 50.0, "month")]).spent_now)
    exporter.watch_pace(lambda: False)
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(exporter.render().decode()):
        for s in family.samples:
            names.setdefault(s.name, set()).update(s.labels)
    return names


def metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\b(llmscope_[a-z_]+)\b", expr))


def matcher_labels(expr: str) -> list[tuple[str, str]]:
    """(metric, label) for every label matcher written in a selector, e.g. foo{location=~"x"}."""
    found = []
    for metric, body in re.findall(r"\b(llmscope_[a-z_]+)\{([^}]*)\}", expr):
        found += [(metric, label) for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", body)]
    return found


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *map(str, args)], capture_output=True, text=True, timeout=60)


# --- systemd -------------------------------------------------------------------------------


def unit_entries() -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current = ""
    for line in UNIT.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        sections.setdefault(current, []).append((key, value))
    return sections


def test_the_unit_runs_headless_as_a_throwaway_user_with_its_state_directory_only() -> None:
    service = dict(unit_entries()["Service"])  # the last value of a key, as systemd reads it
    for key, value in {"DynamicUser": "yes", "StateDirectory": "llmscope-tui", "Restart": "on-failure",
                       "ProtectSystem": "strict", "ProtectHome": "yes", "NoNewPrivileges": "yes",
                       "PrivateTmp": "yes", "RestartPreventExitStatus": "2"}.items():  # fmt: skip
        assert service.get(key) == value, key
    assert 1 <= int(service["RestartSec"].removesuffix("s")) <= 60
    assert service["LoadCredential"] == "config.toml:/etc/llmscope-tui/config.toml"
    argv = shlex.split(service["ExecStart"].replace("%d", "/run/credentials/x").replace("%S", "/var/lib"))
    assert argv[0].endswith("/llmscope-tui")
    args = build_parser().parse_args(argv[1:])  # a flag the program lacks would exit 2 here
    assert args.headless and args.metrics_port == 9464 and args.metrics_host == "0.0.0.0"
    assert args.config == "/run/credentials/x/config.toml" and args.db == "/var/lib/llmscope-tui/samples.db"


def test_no_key_is_written_in_the_unit_it_comes_from_an_environment_file() -> None:
    entries = [e for section in unit_entries().values() for e in section]
    assert ("EnvironmentFile", "-/etc/llmscope-tui/keys.env") in entries
    env = " ".join(value for key, value in entries if key == "Environment")
    assert not re.search(r"(KEY|TOKEN|SECRET)\w*=", env), env


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verifies_the_unit(tmp_path: Path) -> None:
    """verify checks every key and value; the program it starts must exist, so a stand-in
    takes the install path's place."""
    program = tmp_path / "llmscope-tui"
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text().replace("/opt/llmscope-tui/bin/llmscope-tui", str(program)))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and unit.name not in done.stderr, done.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_the_system_call_filter_lets_through_what_a_probe_calls() -> None:
    """A probe run under strace called these beyond the basics (numpy's OpenBLAS calls mbind at
    import): a filter that denies one would kill the service at start, or fail it later."""
    service = unit_entries()["Service"]
    denied: set[str] = set()
    for key, value in service:
        if key == "SystemCallFilter" and value.startswith("~"):
            for group in value[1:].split():
                denied |= syscall_group(group)
    assert not denied & {"mbind", "sched_getaffinity", "recvmsg", "setsockopt", "fdatasync", "clone3"}
    assert ("SystemCallErrorNumber", "EPERM") in service


def syscall_group(group: str) -> set[str]:
    """The system calls of a systemd group such as @privileged, nested groups expanded."""
    if not group.startswith("@"):
        return {group}
    out = subprocess.run(["systemd-analyze", "syscall-filter", group], capture_output=True, text=True, timeout=60)
    names: set[str] = set()
    for line in out.stdout.splitlines()[1:]:
        line = line.strip()
        if line and not line.startswith("#"):
            names |= syscall_group(line)
    return names


# --- Docker --------------------------------------------------------------------------------


def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions (continuation lines joined), one list per FROM."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        stages[-1].append((word.upper(), rest.strip()))
    return stages


def test_the_image_runs_as_a_non_root_user_with_data_on_a_volume_and_a_healthcheck() -> None:
    stages = dockerfile_stages()
    assert all(stage[0] == ("FROM", "python:3.11-slim") or stage[0][1].startswith("python:3.11-slim ")
               for stage in stages)  # fmt: skip
    final = dict(stages[-1])
    assert final["USER"].split(":")[0] not in ("root", "0")
    assert json.loads(final["VOLUME"]) == ["/data"]
    assert re.search(r"\bLLMSCOPE_DB=/data/", final["ENV"])
    command = json.loads(final["ENTRYPOINT"]) + json.loads(final["CMD"])
    assert command[0] == "llmscope-tui"
    args = build_parser().parse_args(command[1:])
    assert args.headless and args.metrics_host == "0.0.0.0"
    assert final["EXPOSE"] == str(args.metrics_port)
    health = final["HEALTHCHECK"]
    assert f"http://127.0.0.1:{args.metrics_port}{HEALTHZ_PATH}" in health and "CMD" in health


def test_the_build_context_keeps_what_pip_install_needs_and_drops_the_rest() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", "*.db", ".venv*"} <= ignored
    assert not ignored & {"pyproject.toml", "README.md", "src", "themes", "LICENSE"}
    build = dict(dockerfile_stages()[0])
    assert build["COPY"] == ". /src" and 'pip install "/src${EXTRAS:+[$EXTRAS]}"' in build["RUN"]


# --- Prometheus ----------------------------------------------------------------------------


@needs_promtool
def test_promtool_accepts_the_scrape_config_and_its_rules() -> None:
    done = promtool("check", "config", PROMETHEUS / "prometheus.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout and "rules found" in done.stdout


@needs_promtool
@pytest.mark.slow
def test_every_alert_fires_on_the_series_we_export_in_promtools_unit_tests() -> None:
    rules = (PROMETHEUS / "rules.yml").read_text()
    tests = (PROMETHEUS / "rules.test.yml").read_text()
    alerts = set(re.findall(r"- alert: (\w+)", rules))
    firing = set(re.findall(r"alertname: (\w+)\s*\n\s*exp_alerts:\s*\n\s*- exp_labels", tests))
    assert len(alerts) >= 10 and firing == alerts, alerts - firing
    done = promtool("test", "rules", PROMETHEUS / "rules.test.yml")
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


def test_rules_name_only_series_the_exporter_serves() -> None:
    served = served_series()
    rules = (PROMETHEUS / "rules.yml").read_text()
    assert metric_names(rules) and metric_names(rules) <= set(served), metric_names(rules) - set(served)
    assert all(label in served[m] for m, label in matcher_labels(rules)), matcher_labels(rules)


# --- Grafana -------------------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def dashboard_exprs() -> list[str]:
    board = dashboard()
    exprs = [t["expr"] for p in board["panels"] if p["type"] != "row" for t in p["targets"]]
    return exprs + [a["expr"] for a in board["annotations"]["list"] if "expr" in a]


def concrete(expr: str) -> str:
    for name in sorted(GRAFANA_VARS, key=len, reverse=True):  # $__rate_interval before $__range...
        expr = expr.replace("${" + name[1:] + "}", GRAFANA_VARS[name]).replace(name, GRAFANA_VARS[name])
    return expr


def test_the_dashboard_has_its_variables_and_every_panel_a_query() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 36 and board["uid"] and board["id"] is None
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    for name in ("location", "target"):
        assert variables[name]["includeAll"] and variables[name]["allValue"] == ".*"
        assert variables[name]["definition"].startswith("label_values(")
    panels = [p for p in board["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    for p in panels:
        assert p["datasource"]["uid"] == "${datasource}" and p["targets"], p["title"]
        assert all(t["expr"].strip() and t["datasource"]["uid"] == "${datasource}" for t in p["targets"]), p["title"]
        assert p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
    text = " ".join(dashboard_exprs())
    for needed in ("llmscope_ttft_seconds_bucket", "llmscope_latency_seconds_bucket", "llmscope_probe_errors_total",
                   "llmscope_up", "llmscope_cost_usd_total", "llmscope_budget_spent_usd", "llmscope_incident_open",
                   "llmscope_violations_total", "llmscope_tokens_per_second"):  # fmt: skip
        assert needed in text, needed
    assert 'location=~"$location"' in text and 'target=~"$target"' in text


def test_grafanas_own_dashboard_model_reads_every_panel_query_and_variable() -> None:
    """Grafana's Foundation SDK (its generated dashboard schema) parses the file and writes it
    back with every panel, query and variable kept: nothing is in a place Grafana does not read.
    What it drops are export details its model leaves out (__requires, id, a query variable's
    definition, Prometheus annotation options), checked here by name."""
    model = pytest.importorskip("grafana_foundation_sdk.models.dashboard", reason="pip install grafana-foundation-sdk")
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    board = dashboard()
    back = json.loads(json.dumps(model.Dashboard.from_json(board), cls=JSONEncoder))
    assert back["uid"] == board["uid"] and back["title"] == board["title"]
    assert [(p["id"], p["type"], p["title"]) for p in back["panels"]] == [
        (p["id"], p["type"], p["title"]) for p in board["panels"]
    ]
    for ours, theirs in zip(board["panels"], back["panels"], strict=True):
        assert [t["expr"] for t in ours.get("targets", [])] == [t["expr"] for t in theirs.get("targets", [])]
        assert ours["gridPos"] == theirs["gridPos"]
    assert [v["name"] for v in back["templating"]["list"]] == [v["name"] for v in board["templating"]["list"]]

    def dropped(ours: Any, theirs: Any, path: str = "") -> list[str]:
        if isinstance(ours, dict):
            return [f"{path}/{k}" for k in ours if not isinstance(theirs, dict) or k not in theirs] + [
                d for k in ours if isinstance(theirs, dict) and k in theirs for d in dropped(ours[k], theirs[k], f"{path}/{k}")
            ]
        if isinstance(ours, list):
            return [d for i, (a, b) in enumerate(zip(ours, theirs)) for d in dropped(a, b, f"{path}[{i}]")]
        return []

    export_details = {"__requires", "id", "builtIn", "definition", "step", "titleFormat", "textFormat", "useValueForTime"}
    assert {path.rsplit("/", 1)[-1] for path in dropped(board, back)} <= export_details


def test_the_dashboard_names_only_series_and_labels_the_exporter_serves() -> None:
    served = served_series()
    board = dashboard()
    queries = dashboard_exprs() + [v["definition"] for v in board["templating"]["list"] if v["type"] == "query"]
    used = set().union(*map(metric_names, queries))
    assert used <= set(served), used - set(served)
    wrong = [(m, label) for q in queries for m, label in matcher_labels(q) if label not in served[m]]
    assert not wrong


@needs_promtool
def test_promtool_parses_every_dashboard_expression(tmp_path: Path) -> None:
    """Each query, with Grafana's variables given values, as a recording rule: promtool parses
    and type-checks it (a range where an instant vector belongs, a bad matcher, a typo)."""
    rules = ["groups:", "  - name: dashboard", "    rules:"]
    for i, expr in enumerate(dashboard_exprs()):
        rules += [f"      - record: dashboard:expr_{i}", f"        expr: {json.dumps(concrete(expr))}"]
    path = tmp_path / "dashboard.rules.yml"
    path.write_text("\n".join(rules) + "\n")
    done = promtool("check", "rules", path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(dashboard_exprs())} rules found" in done.stdout
    assert "$" not in path.read_text()
