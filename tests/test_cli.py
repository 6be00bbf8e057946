"""The command as users and scripts meet it: exit codes, one-line errors, headless runs, export."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import free_port, samples_in_the_file_alone
from llmscope_tui.cli import main
from llmscope_tui.headless import CLOCK_WORDS
from llmscope_tui.model import SAMPLE_FIELDS
from llmscope_tui.probe.netclock import clock_in_use


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmscope_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def config_for(tmp_path: Path, base_url: str, *, extra: str = "", interval: str = "200ms") -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[monitor]
interval = "{interval}"
timeout = "5s"

[[targets]]
name = "fake-openai"
provider = "openai-compatible"
model = "gpt-4o-mini"
base_url = "{base_url}/v1"
api_key_env = "FAKE_KEY"
{extra}
"""
    )
    return path


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["--count", "zero"],
        ["--duration", "soon"],
        ["--metrics-port", "70000"],
        ["--fail-on", "everything"],
        ["export"],
    ],
)
def test_bad_flags_give_one_line_and_exit_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("llmscope-tui") and "\n" not in err and "Traceback" not in err


@pytest.mark.slow
def test_bad_config_is_one_line_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[monitor]\ninterval = 'often'\n")
    result = run_cli("--headless", "--config", str(path))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert f"{path}:2: monitor.interval" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_config_names_key_variables_never_keys(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_for(tmp_path, "http://127.0.0.1:9")
    os.environ["FAKE_KEY"] = "sk-very-secret-value"
    try:
        assert main(["check-config", "--config", str(path)]) == 0
    finally:
        del os.environ["FAKE_KEY"]
    out = capsys.readouterr().out
    assert "fake-openai" in out and "FAKE_KEY (set)" in out
    assert "sk-very-secret-value" not in out


def test_check_config_when_no_target_can_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config_for(tmp_path, "http://127.0.0.1:9", extra="")
    text = path.read_text().replace('provider = "openai-compatible"', 'provider = "openai"')
    path.write_text(text)
    assert main(["check-config", "--config", str(path)]) == 2
    captured = capsys.readouterr()
    assert "DISABLED: FAKE_KEY is not set" in captured.out
    assert "no target can run" in captured.err


def test_check_config_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check-config"]) == 0
    assert "demo" in capsys.readouterr().out


def test_check_config_shows_the_location(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSCOPE_LOCATION", "eu-west-1")
    assert main(["check-config"]) == 0
    assert "location:     eu-west-1  (from LLMSCOPE_LOCATION)" in capsys.readouterr().out


@pytest.mark.slow  # a real process or real-time stream: seconds
def test_headless_count_writes_json_lines_and_the_data_file(tmp_path: Path, fake_provider: object) -> None:
    db = tmp_path / "s.db"
    config = config_for(tmp_path, fake_provider.base_url)  # type: ignore[attr-defined]
    result = run_cli(
        "--headless", "--config", str(config), "--db", str(db), "--count", "3", env={"FAKE_KEY": "sk-secret-123456"}
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[-1]["event"] == "stop"
    samples = [e for e in events if e["event"] == "sample"]
    assert len(samples) == 3 and all(s["ok"] == 1 for s in samples)
    assert set(SAMPLE_FIELDS) <= set(samples[0])
    assert "sk-secret-123456" not in result.stdout + result.stderr
    assert samples_in_the_file_alone(db, tmp_path / "backup") == 3  # the WAL checkpointed at the stop
    with sqlite3.connect(db) as conn:
        dump = "\n".join(conn.iterdump())
    assert "sk-secret-123456" not in dump


@pytest.mark.slow  # a real process or real-time stream: seconds
def test_fail_on_error_exits_1(tmp_path: Path) -> None:
    config = config_for(tmp_path, "http://127.0.0.1:9")  # nothing listens on the discard port
    result = run_cli(
        "--headless",
        "--config",
        str(config),
        "--db",
        str(tmp_path / "s.db"),
        "--count",
        "2",
        "--fail-on",
        "error",
        env={"FAKE_KEY": "k"},
    )
    assert result.returncode == 1, result.stderr
    kinds = {json.loads(line).get("error_kind") for line in result.stdout.splitlines()}
    assert "network" in kinds
    # the reason is one line on stderr naming the check, the count and where
    assert "--fail-on error: 2 failed probes (fake-openai: 2 network)" in result.stderr


@pytest.mark.slow
def test_fail_on_incident_names_it_and_report_lists_it(tmp_path: Path, fake_provider: object) -> None:
    from fake_provider import Script

    # 100 ms calm, then 600 ms: tens of ms of a busy machine's delay in a stamp stay well under
    # the 15 % effect floor of the calm level, the shift is far above it
    fake_provider.enqueue(*[Script(first_token_delay_s=0.1 + 0.002 * (i % 3)) for i in range(10)])  # type: ignore[attr-defined]
    fake_provider.script(default=Script(first_token_delay_s=0.6))  # type: ignore[attr-defined]
    config = config_for(tmp_path, fake_provider.base_url, interval="50ms",  # type: ignore[attr-defined]
                        extra="\n[spc]\nbaseline_samples = 5\n")
    db = tmp_path / "s.db"
    result = run_cli("--headless", "--config", str(config), "--db", str(db), "--count", "18",
                     "--fail-on", "incident", "--fail-on", "budget", env={"FAKE_KEY": "k"})
    assert result.returncode == 1, result.stderr
    (line,) = [ln for ln in result.stderr.splitlines() if "--fail-on" in ln]
    assert line.startswith("llmscope-tui: --fail-on incident: fake-openai: incident #1 TTFT +")
    events = [json.loads(x) for x in result.stdout.splitlines()]
    assert next(e["state"] for e in events if e["event"] == "incident") == "opened"
    assert events[-1]["event"] == "stop" and events[-1]["incidents"] == 1
    report = run_cli("report", "--config", str(config), "--db", str(db), "--window", "1h")
    assert report.returncode == 0, report.stderr
    assert "Incidents over the last 1h: 1 (1 open)" in report.stdout
    assert "#1    OPEN" in report.stdout and "fake-openai: TTFT +" in report.stdout
    # a rebaseline closes the open incident in the data file
    assert run_cli("rebaseline", "--config", str(config), "--db", str(db)).returncode == 0
    with sqlite3.connect(db) as conn:
        assert conn.execute("select resolution from incidents").fetchall() == [("rebaselined",)]


@pytest.mark.slow  # a real process or real-time stream: seconds
def test_sigterm_stops_cleanly_with_every_sample_on_disk(tmp_path: Path, fake_provider: object) -> None:
    db = tmp_path / "s.db"
    log = tmp_path / "probe.jsonl"
    config = config_for(tmp_path, fake_provider.base_url, interval="100ms")  # type: ignore[attr-defined]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmscope_tui", "--headless", "--config", str(config), "--db", str(db),
         "--log-file", str(log)],
        env={**os.environ, "FAKE_KEY": "k"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count('"event":"sample"') >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[-1]["event"] == "stop" and lines[-1]["reason"] == "signal SIGTERM"
    logged = sum(1 for e in lines if e["event"] == "sample")
    with sqlite3.connect(db) as conn:
        stored = conn.execute("select count(*) from samples").fetchone()[0]
    assert logged >= 3 and stored == logged


@pytest.mark.slow
def test_export_csv(tmp_path: Path, fake_provider: object) -> None:
    db = tmp_path / "s.db"
    config = config_for(tmp_path, fake_provider.base_url)  # type: ignore[attr-defined]
    assert run_cli("--headless", "--config", str(config), "--db", str(db), "--count", "2",
                   env={"FAKE_KEY": "k"}).returncode == 0
    out = tmp_path / "out.csv"
    result = run_cli("export", "--csv", str(out), "--db", str(db), "--since", "1h")
    assert result.returncode == 0, result.stderr
    assert "wrote 2 samples" in result.stderr
    rows = list(csv.reader(out.open()))
    assert tuple(rows[0]) == SAMPLE_FIELDS and len(rows) == 3
    assert rows[1][0].endswith("Z")
    assert run_cli("export", "--csv", str(out), "--db", str(tmp_path / "none.db")).returncode == 2


@pytest.mark.slow
def test_no_config_runs_the_demo_headless(tmp_path: Path) -> None:
    result = run_cli("--headless", "--count", "4", "--db", str(tmp_path / "d.db"))
    assert result.returncode == 0, result.stderr
    assert "DEMO" in result.stderr
    start = json.loads(result.stdout.splitlines()[0])
    assert start["demo"] is True and len(start["targets"]) == 4
    assert result.stdout.count('"event":"sample"') == 4
    events = [json.loads(line) for line in result.stdout.splitlines()]
    demo = [e for e in events if e["event"] == "demo"]  # which scripted incident runs: none yet
    assert demo and demo[0]["incident"] is None and demo[0]["running"] == []


@pytest.mark.slow
def test_text_format_is_readable(tmp_path: Path) -> None:
    result = run_cli("--demo", "--count", "4", "--db", str(tmp_path / "d.db"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split(" ", 1)[1].startswith("probing demo-openai")
    assert lines[0].endswith(f"({CLOCK_WORDS[clock_in_use()]})")
    assert sum(" ok " in line or " FAIL " in line for line in lines) == 4


@pytest.mark.slow
def test_ingest_file_report_and_rebaseline(tmp_path: Path, fake_provider: object) -> None:
    db = tmp_path / "s.db"
    config = config_for(tmp_path, fake_provider.base_url)  # type: ignore[attr-defined]
    config.write_text(config.read_text() + "\n[spc]\nbaseline_samples = 5\n")
    assert run_cli("--headless", "--config", str(config), "--db", str(db), "--count", "6",
                   env={"FAKE_KEY": "k"}).returncode == 0

    usage = tmp_path / "usage.jsonl"
    usage.write_text(
        '{"provider": "openai", "model": "gpt-4o-mini", "tokens_in": 1000, "tokens_out": 200, "project": "shop"}\n'
        "\n"
        '{"provider": "openai", "model": "gpt-4o-mini", "tokens_in": -5}\n'
        "not json\n"
    )
    result = run_cli("ingest", str(usage), "--config", str(config), "--db", str(db))
    assert result.returncode == 1  # some lines were refused
    assert "took 1" in result.stderr and ":3: tokens_in" in result.stderr and ":4:" in result.stderr
    with sqlite3.connect(db) as conn:
        cost = conn.execute("select cost_usd from samples where source = 'app'").fetchone()[0]
    assert cost and cost > 0  # priced like probes (gpt-4o-mini is in the price database)

    report = run_cli("report", "--config", str(config), "--db", str(db), "--window", "1h")
    assert report.returncode == 0, report.stderr
    assert "fake-openai" in report.stdout and "100.0%" in report.stdout
    assert "by source: app" in report.stdout and "unpriced" in report.stdout  # the fake's model

    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from baselines where active = 1").fetchone()[0] > 0
    cleared = run_cli("rebaseline", "--config", str(config), "--db", str(db))
    assert cleared.returncode == 0 and "cleared the baselines" in cleared.stdout
    with sqlite3.connect(db) as conn:
        assert conn.execute("select count(*) from baselines where active = 1").fetchone()[0] == 0
    frozen = run_cli("rebaseline", "--config", str(config), "--db", str(db), "--target", "fake-openai",
                     "--since", "1h")
    assert frozen.returncode == 0 and "froze 4 baselines" in frozen.stdout
    assert run_cli("rebaseline", "--db", str(tmp_path / "missing.db")).returncode == 2


def test_text_lines_for_incidents_and_the_checks_that_name_what_failed() -> None:
    from llmscope_tui.headless import failed_checks, format_event
    from llmscope_tui.monitor import RunSummary

    event = {"event": "incident", "state": "opened", "ts": 0.0, "text": "a: incident #1 TTFT +80 % (100 -> 180 ms)"}
    assert format_event(event).endswith("INCIDENT: a: incident #1 TTFT +80 % (100 -> 180 ms)")  # type: ignore[union-attr]
    assert format_event({**event, "state": "updated"}) is None  # figures moving: no line
    assert "resolved: " in format_event({**event, "state": "closed"})  # type: ignore[operator]
    alert = {"event": "alert", "ts": 0.0, "kind": "incident", "severity": "warning", "text": "t", "details": {"state": "opened"}}
    assert format_event(alert) is None  # the incident's own line says it
    assert "ALERT (critical)" in format_event({**alert, "severity": "critical", "details": {"state": "updated"}})  # type: ignore[operator]
    summary = RunSummary(violations=3, violations_by={"a ttft_ms": 3}, budgets_exceeded=["daily"])
    assert failed_checks(summary, ("violation", "budget", "incident", "error")) == [
        "violation: 3 SPC rule firings (a ttft_ms 3)",
        "budget: daily reached 100 %",
    ]
    assert failed_checks(summary, ("error",)) == []


def test_text_lines_run_forward_in_time_when_probes_end_out_of_order() -> None:
    """A slow probe started first ends after a fast one started later: its line is written later
    and shows when it was written, so the text log never steps back in time."""
    import io

    from llmscope_tui.headless import TextWriter

    written_at = iter([1000.9, 1001.2])  # the clock when each line is written
    out = io.StringIO()
    writer = TextWriter(out, clock=lambda: next(written_at))
    base = {"event": "sample", "provider": "p", "model": "m", "ok": 1, "ttft_ms": 5.0, "latency_ms": 9.0}
    writer({**base, "ts": 1000.8, "target": "fast"})  # started 1000.8, ended at once
    writer({**base, "ts": 999.5, "target": "slow"})  # started 999.5, ended 1001.2
    stamps = [line.split()[0] for line in out.getvalue().splitlines()]
    assert stamps == sorted(stamps) and len(set(stamps)) == 2, stamps


def test_a_config_file_with_no_targets_is_an_error_not_the_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """It used to run the demo silently (exit 0): the user meant their own file."""
    path = tmp_path / "config.toml"
    path.write_text("[monitor]\ninterval = '5s'\n")
    assert main(["check-config", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{path}: no [[targets]] to probe" in err and "--demo" in err
    assert main(["--headless", "--count", "1", "--config", str(path), "--db", str(tmp_path / "x.db")]) == 2
    assert "--ingest-port" in capsys.readouterr().err
    assert not (tmp_path / "x.db").exists()


def test_an_empty_config_path_is_an_error_not_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--headless", "--count", "1", "--config", ""]) == 2
    err = capsys.readouterr().err
    assert err == "llmscope-tui: --config: empty path; name a config file, or use --demo for the simulated provider\n"


def test_a_base_url_from_the_environment_is_checked_and_named(capsys: pytest.CaptureFixture[str]) -> None:
    from llmscope_tui.config import ConfigError, load_settings

    with pytest.raises(ConfigError, match=r"^OPENAI_BASE_URL: not a valid URL \(Invalid IPv6 URL\)"):
        load_settings(None, env={"OPENAI_API_KEY": "k", "OPENAI_BASE_URL": "http://[::1"})


def test_a_duration_flag_past_ten_years_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--headless", "--demo", "--duration", "99999999999999999999d"])
    assert info.value.code == 2
    assert "at most 3650d" in capsys.readouterr().err


@pytest.mark.slow  # a real process or real-time stream: seconds
def test_no_targets_with_an_ingest_port_runs_ingest_only(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("# ingest only\n")
    port = free_port()
    result = run_cli("--headless", "--config", str(path), "--ingest-port", str(port), "--duration", "1s", "--db", str(tmp_path / "i.db"))
    assert result.returncode == 0, result.stderr
    assert f"ingest only, on port {port}" in result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events[0]["event"] == "start" and events[0]["targets"] == []
    assert events[-1]["event"] == "stop" and events[-1]["reason"] == "duration reached"


def test_rebaseline_of_an_unknown_target_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It said "cleared the baselines of nosuch" and exited 0."""
    from llmscope_tui.store import SampleStore

    path = config_for(tmp_path, "http://127.0.0.1:9")
    db = tmp_path / "s.db"
    SampleStore(db).close()
    assert main(["rebaseline", "--target", "nosuch", "--config", str(path), "--db", str(db)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llmscope-tui: --target nosuch: no such target") and "fake" in err


def test_a_bug_of_ours_while_probing_is_one_line_on_stderr_and_a_traceback_in_the_log_file(
    tmp_path: Path, fake_provider: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """DESIGN 5: `internal`, one line to the user, the traceback to the log file (it reached
    stderr as a Python traceback before)."""
    from llmscope_tui import logfile
    from llmscope_tui.probe import stream

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("our own bug, quoting sk-canary-0123456789abcdef")

    monkeypatch.setattr(stream, "_build_sample", broken)
    monkeypatch.setenv("FAKE_KEY", "sk-canary-0123456789abcdef")
    path = config_for(tmp_path, fake_provider.base_url)  # type: ignore[attr-defined]
    assert main(["--headless", "--count", "2", "--config", str(path), "--db", str(tmp_path / "s.db")]) == 0
    captured = capsys.readouterr()
    events = [json.loads(line) for line in captured.out.splitlines()]
    samples = [e for e in events if e["event"] == "sample"]
    assert [s["error_kind"] for s in samples] == ["internal", "internal"]
    assert "Traceback" not in captured.err and "sk-canary" not in captured.err + captured.out
    assert "failed unexpectedly (a bug of llmscope-tui)" in captured.err and "details in" in captured.err
    log = logfile.default_log_file().read_text()
    assert "Traceback" in log and "RuntimeError" in log and "sk-canary" not in log
