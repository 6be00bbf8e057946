"""The CI gate end to end against the fake provider: save limits from a fast deployment, then
a slowed one fails naming the target and metric, and the same fast one passes."""

from __future__ import annotations

import itertools
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from llmscope_tui.cli import main
from llmscope_tui.gate.summary import schema_path

# 200-240 ms to the first token, then 1 s: a 4x shift. The incident policy needs the median up
# by min_effect (90 % here) over consecutive probes, so the passing run would need ~180 ms of
# machine delay in a row to fail: not a timing margin a loaded CI machine eats.
FAST_S, SLOW_S = 0.2, 1.0


def config(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "ci.toml"
    path.write_text(
        f"""
[monitor]
interval = "50ms"
timeout = "10s"

[spc]
baseline_samples = 5
min_effect = 0.9

[[targets]]
name = "fake-openai"
provider = "openai-compatible"
model = "gpt-4o-mini"
base_url = "{base_url}/v1"
api_key_env = "FAKE_KEY"
"""
    )
    return path


def fast(fake: Any) -> None:
    turn = itertools.count()
    fake.script(default=lambda req: _script(FAST_S + 0.02 * (next(turn) % 3)))


def _script(delay: float) -> Any:
    from fake_provider import Script

    return Script(first_token_delay_s=delay)


def summary_errors(path: Path) -> list[str]:
    jsonschema = pytest.importorskip("jsonschema", reason="the test extra installs jsonschema")
    schema = json.loads(schema_path("summary").read_text())
    return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(json.loads(path.read_text()))]


@pytest.mark.slow  # three real runs against 0.2-1 s streams: about 10 s
def test_a_saved_baseline_catches_a_slowed_deployment_and_passes_the_same_one(
    tmp_path: Path, fake_provider: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FAKE_KEY", "k")
    cfg = str(config(tmp_path, fake_provider.base_url))
    ref_db, baseline = tmp_path / "ref.db", tmp_path / "baseline.json"
    fast(fake_provider)
    assert main(["--headless", "--config", cfg, "--db", str(ref_db), "--count", "7",
                 "--log-file", str(tmp_path / "ref.jsonl")]) == 0
    capsys.readouterr()
    assert main(["baseline", "save", str(baseline), "--config", cfg, "--db", str(ref_db)]) == 0
    out = capsys.readouterr().out
    assert f"saved 4 baselines of fake-openai to {baseline}" in out
    saved = {e["metric"]: e for e in json.loads(baseline.read_text())["baselines"]}
    assert FAST_S * 1000 < saved["ttft_ms"]["center_value"] < SLOW_S * 1000 / 2

    # the deployment regressed: TTFT 4x
    fake_provider.script(default=_script(SLOW_S))
    slow_json, slow_log = tmp_path / "slow.json", tmp_path / "slow.jsonl"
    code = main(["--headless", "--config", cfg, "--db", str(tmp_path / "slow.db"), "--count", "5",
                 "--log-file", str(slow_log), "--baseline-from", str(baseline), "--fail-on", "incident",
                 "--fail-on", "violation", "--summary-json", str(slow_json)])
    err = capsys.readouterr().err
    assert code == 1, err
    assert f"judging against {baseline} (4 limits of fake-openai" in err
    failed = [line for line in err.splitlines() if "--fail-on" in line]
    assert failed[0].startswith("llmscope-tui: --fail-on incident: fake-openai: incident #1 TTFT +")
    assert failed[1].startswith("llmscope-tui: --fail-on violation:") and "fake-openai ttft_ms" in failed[1]
    assert err.index("summary: 5 probes") < err.index("--fail-on incident")  # the table, then why
    summary = json.loads(slow_json.read_text())
    assert not summary_errors(slow_json)
    assert summary["exit_code"] == 1 and summary["baseline"]["file"] == str(baseline)
    checks = {(f["check"], f["target"]) for f in summary["failures"]}
    assert {("incident", "fake-openai"), ("violation", "fake-openai")} <= checks
    ttft = next(row for row in summary["baseline"]["limits"] if row["metric"] == "ttft_ms")
    assert ttft["p50"] > ttft["ucl"] and ttft["change"] > 2
    # judged from the very first probe: no baseline learnt in the run, the file's is in force
    events = [json.loads(line) for line in slow_log.read_text().splitlines()]
    first = next(e for e in events if e["event"] == "sample")
    assert any(e["event"] == "violation" and e["metric"] == "ttft_ms" and e["ts"] == first["ts"] for e in events)
    with sqlite3.connect(tmp_path / "slow.db") as conn:
        center = conn.execute("select center from baselines where active = 1 and metric = 'ttft_ms'").fetchone()[0]
    assert center == pytest.approx(saved["ttft_ms"]["center"])

    # the same fast deployment passes against the same file
    fast(fake_provider)
    ok_json = tmp_path / "ok.json"
    code = main(["--headless", "--config", cfg, "--db", str(tmp_path / "ok.db"), "--count", "6",
                 "--log-file", str(tmp_path / "ok.jsonl"), "--baseline-from", str(baseline),
                 "--fail-on", "incident", "--fail-on", "error", "--summary-json", str(ok_json)])
    err = capsys.readouterr().err
    assert code == 0, err
    assert err.splitlines()[-1] == "llmscope-tui: --fail-on incident, error: passed"
    summary = json.loads(ok_json.read_text())
    assert not summary_errors(ok_json)
    assert summary["exit_code"] == 0 and summary["failures"] == [] and summary["targets"][0]["ok"] == 6
