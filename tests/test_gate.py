"""The CI gate: the end-of-run summary (table, JSON, schema), baseline files, and their errors."""

from __future__ import annotations

import io
import json
import math
import os
import random
import statistics
import time
from pathlib import Path
from typing import Any

import pytest

from llmscope_tui.cli import main
from llmscope_tui.gate import BaselineFileError, RunRecorder, build_summary, conclude, format_table
from llmscope_tui.gate.baselines import BaselineSet, from_store, load, save
from llmscope_tui.gate.summary import quantiles, schema_path
from llmscope_tui.model import Sample
from llmscope_tui.monitor import RunSummary
from llmscope_tui.spc import compute_baseline

try:
    import jsonschema as _jsonschema
except ImportError:  # the test extra installs it; the schema tests then skip, saying so
    _jsonschema = None


def assert_valid(name: str, doc: Any) -> None:
    """The document passes its schema (checked where jsonschema is installed, as in CI)."""
    if _jsonschema is not None:
        assert not list(validator(name).iter_errors(doc))


def validator(name: str) -> Any:
    jsonschema = pytest.importorskip("jsonschema", reason="the test extra installs jsonschema")
    schema = json.loads(schema_path(name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


def sample_event(target: str, ok: bool, ttft: float | None = None, latency: float | None = None, **extra: Any) -> dict[str, Any]:
    event = {"event": "sample", "ts": 1.0, "target": target, "provider": "openai", "model": "m", "ok": int(ok),
             "ttft_ms": ttft, "latency_ms": latency, "itl_ms": None, "tps": None, "source": "probe",
             "error_kind": None if ok else "network"}
    event.update(extra)
    return event


def recorded_run() -> tuple[RunRecorder, RunSummary, dict[str, list[float]]]:
    """A recorder fed a run by hand: two targets, failures of several kinds, app usage, an
    incident and rule firings; returns the TTFTs of each target's good probes."""
    rng = random.Random(7)
    clock = iter([1000.0, 1012.5]).__next__
    rec = RunRecorder(clock=clock)
    rec({"event": "start", "ts": 1000.0, "db": "/tmp/x.db", "targets": [
        {"name": "a", "provider": "openai", "model": "m", "enabled": True},
        {"name": "b", "provider": "anthropic", "model": "c", "enabled": True},
        {"name": "off", "provider": "openai", "model": "m", "enabled": False},
    ]})
    ttfts: dict[str, list[float]] = {"a": [], "b": []}
    for i in range(37):
        for name, scale in (("a", 200.0), ("b", 900.0)):
            ttft = rng.lognormvariate(math.log(scale), 0.4)
            ttfts[name].append(ttft)
            rec(sample_event(name, True, ttft, ttft + rng.uniform(10, 400)))
    for kind in ("network", "rate_limit", "rate_limit"):
        rec(sample_event("b", False, error_kind=kind))
    rec(sample_event("b", False, error_kind="cancelled"))  # our stop: not the provider's
    rec(sample_event("a", True, 1.0, 2.0, source="app"))  # application usage: not a probe
    rec({"event": "violation", "target": "a", "metric": "ttft_ms", "rule": 1})
    rec({"event": "violation", "target": "a", "metric": "ttft_ms", "rule": 5})
    rec({"event": "incident", "state": "opened", "target": "a", "text": "a: incident #1 TTFT +80 %"})
    rec({"event": "incident", "state": "updated", "target": "a", "text": "a: incident #1 TTFT +90 %"})
    rec({"event": "stop", "ts": 1012.5})
    run = RunSummary(samples=78, failed=4, errors=3, violations=2, incidents=1, reason="count reached",
                     errors_by={"b": {"network": 1, "rate_limit": 2}}, violations_by={"a ttft_ms": 2},
                     first_incident="a: incident #1 TTFT +80 %")
    return rec, run, ttfts


def test_quantiles_are_exact_against_an_independent_computation() -> None:
    rng = random.Random(3)
    for n in (1, 2, 3, 19, 20, 101, 1000):
        values = [rng.lognormvariate(5, 0.6) for _ in range(n)]
        got = quantiles(values)
        if n == 1:
            assert got == {"p50": values[0], "p95": values[0]}
            continue
        cut = statistics.quantiles(values, n=100, method="inclusive")  # R type 7, as numpy's default
        assert got["p50"] == pytest.approx(cut[49], rel=1e-12)
        assert got["p95"] == pytest.approx(cut[94], rel=1e-12)
    assert quantiles([]) == {"p50": None, "p95": None}


def test_summary_figures_come_from_the_runs_own_probes() -> None:
    rec, run, ttfts = recorded_run()
    summary = build_summary(rec, run, fail_on=("incident", "error", "violation"), code=1, count=80)
    a, b = summary["targets"]
    assert (a["target"], a["samples"], a["ok"], a["errors"], a["incidents"]) == ("a", 37, 37, 0, 1)
    assert (b["samples"], b["ok"], b["failed"], b["errors"]) == (41, 37, 4, 3)
    assert b["error_rate"] == pytest.approx(3 / 40)  # cancelled probes say nothing of the provider
    assert b["error_kinds"] == {"network": 1, "rate_limit": 2}
    for t in (a, b):
        cut = statistics.quantiles(ttfts[t["target"]], n=100, method="inclusive")
        assert t["ttft_ms"]["p50"] == pytest.approx(cut[49]) and t["ttft_ms"]["p95"] == pytest.approx(cut[94])
    assert a["violations"] == {"ttft_ms": 2}
    assert (summary["started"], summary["ended"], summary["duration_s"]) == (
        "1970-01-01T00:16:40.000Z", "1970-01-01T00:16:52.500Z", 12.5)
    assert summary["failures"] == [
        {"check": "incident", "target": "a", "detail": "a: incident #1 TTFT +80 %"},
        {"check": "error", "target": "b", "detail": "3 failed probes (1 network, 2 rate_limit)"},
        {"check": "violation", "target": "a", "detail": "ttft_ms: 2 rule firings (rules 1,5)"},
    ]
    assert_valid("summary", summary)


def test_the_shipped_schemas_are_valid_json_schemas() -> None:
    for name in ("summary", "baseline"):
        assert validator(name).schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize(
    ("breakage", "where"),
    [
        (lambda s: s.pop("exit_code"), "exit_code"),
        (lambda s: s["targets"][0].__setitem__("error_rate", 1.5), "error_rate"),
        (lambda s: s["failures"].append({"check": "mood", "target": None, "detail": "x"}), "check"),
        (lambda s: s.__setitem__("started", "yesterday"), "started"),
        (lambda s: s["targets"][0]["ttft_ms"].pop("p95"), "p95"),
    ],
)
def test_the_summary_schema_rejects_a_broken_summary(breakage: Any, where: str) -> None:
    rec, run, _ = recorded_run()
    summary = build_summary(rec, run, fail_on=("incident",), code=1)
    breakage(summary)
    errors = list(validator("summary").iter_errors(summary))
    assert errors and any(where in (e.message + str(list(e.path))) for e in errors)


def test_the_table_then_what_failed_then_the_json_file(tmp_path: Path) -> None:
    rec, run, _ = recorded_run()
    err = io.StringIO()
    out = tmp_path / "ci" / "summary.json"
    code = conclude(rec, run, fail_on=("error",), count=80, summary_json=out, stderr=err)
    assert code == 1
    lines = err.getvalue().splitlines()
    assert lines[0].startswith("llmscope-tui: summary: 78 probes in 12.5s (count reached)")
    assert lines[1].split() == ["target", "samples", "ok", "errors", "err", "%", "TTFT", "p50", "TTFT", "p95",
                                "lat", "p50", "lat", "p95", "incidents"]
    assert lines[3].split()[:6] == ["b", "41", "37", "3", "7.5%", f"{quantiles(_ttfts(rec, 'b'))['p50']:,.0f}"]
    assert lines[-1] == "llmscope-tui: --fail-on error: 3 failed probes (b: 1 network, 2 rate_limit)"
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    written = json.loads(out.read_text())
    assert written["exit_code"] == 1 and written["fail_on"] == ["error"]
    assert_valid("summary", written)
    err = io.StringIO()
    assert conclude(rec, run, fail_on=("budget",), duration_s=30.0, stderr=err) == 0
    assert err.getvalue().splitlines()[-1] == "llmscope-tui: --fail-on budget: passed"
    err = io.StringIO()
    assert conclude(rec, run, fail_on=("error",), stderr=err) == 1  # unbounded: no table, the reason stays
    assert err.getvalue().splitlines() == ["llmscope-tui: --fail-on error: 3 failed probes (b: 1 network, 2 rate_limit)"]


def _ttfts(rec: RunRecorder, target: str) -> list[float]:
    return rec.targets[target].values["ttft_ms"]


# -- baseline files ---------------------------------------------------------------------------


def make_data_file(db: Path, ttfts: list[float], *, baseline_n: int | None = 10, start: float = 1000.0) -> list[Sample]:
    """A data file with one target's probes and, with ``baseline_n``, the frozen baseline a run
    would have saved from its first ``baseline_n`` of them."""
    from llmscope_tui.store import SampleStore

    store = SampleStore(db)
    samples = [Sample(ts=start + i, target="t", provider="openai", model="m", ok=1, ttft_ms=v, latency_ms=v * 2)
               for i, v in enumerate(ttfts)]
    store.add_many(samples)
    if baseline_n:
        for metric in ("ttft_ms", "latency_ms"):
            values = [s.metric(metric) for s in samples[:baseline_n]]
            b = compute_baseline(values, transform="log")  # type: ignore[arg-type]
            store.save_baseline("t", metric, b.center, b.sigma, b.n_used, "log", start, start + baseline_n - 1)
    store.close()
    return samples


def spc_settings() -> Any:
    from llmscope_tui.config import SpcSettings

    return SpcSettings(baseline_samples=10, transform="log", metrics=("ttft_ms", "latency_ms"))


def test_save_the_frozen_baselines_of_a_data_file_and_read_them_back(tmp_path: Path) -> None:
    from llmscope_tui.store import open_readonly

    rng = random.Random(11)
    ttfts = [rng.lognormvariate(math.log(300), 0.1) for _ in range(40)]
    db = tmp_path / "ref.db"
    make_data_file(db, ttfts)
    with open_readonly(db) as reader:
        found = from_store(reader, spc_settings(), data_file=str(db), now=2000.0)
    path = tmp_path / "keep" / "baseline.json"
    save(path, found)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    doc = json.loads(path.read_text())
    assert_valid("baseline", doc)
    ttft = next(e for e in doc["baselines"] if e["metric"] == "ttft_ms")
    expected = compute_baseline(ttfts[:10], transform="log")
    assert ttft["center"] == pytest.approx(expected.center) and ttft["sigma"] == pytest.approx(expected.sigma)
    assert ttft["reference"] == pytest.approx(ttfts[:10], abs=5e-4)  # the window's points, the last one included
    assert f'"reference": [{ttft["reference"][0]}, ' in path.read_text()  # one line, not one per point
    assert ttft["ucl_value"] == pytest.approx(math.exp(expected.center + 3 * expected.sigma))
    back = load(path)
    assert [(lim.target, lim.metric) for lim in back.limits] == [("t", "latency_ms"), ("t", "ttft_ms")]
    lim = back.limits[1]
    assert (lim.center, lim.sigma, lim.n, lim.reference) == (ttft["center"], ttft["sigma"], 10, tuple(ttft["reference"]))


def test_save_limits_from_a_window_as_rebaseline_would(tmp_path: Path) -> None:
    from llmscope_tui.store import open_readonly

    ttfts = [100.0 + (i % 7) * 3 for i in range(30)]
    db = tmp_path / "ref.db"
    make_data_file(db, ttfts, baseline_n=None)
    with open_readonly(db) as reader:
        found = from_store(reader, spc_settings(), data_file=str(db), target="t", since=1005.0, until=1025.0)
    expected = compute_baseline(ttfts[5:25], transform="log")  # the half-open window [since, until)
    ttft = next(lim for lim in found.limits if lim.metric == "ttft_ms")
    assert (ttft.center, ttft.sigma, ttft.n, ttft.mr_bar) == pytest.approx(
        (expected.center, expected.sigma, expected.n_used, expected.mr_bar))
    doc = found.to_json()
    assert doc["source"] == "window"
    assert_valid("baseline", doc)


def good_baseline_doc() -> dict[str, Any]:
    lim = {"target": "t", "metric": "ttft_ms", "unit": "ms", "transform": "log", "center": 5.0, "sigma": 0.1,
           "mr_bar": 0.1128, "ucl": 5.3, "lcl": 4.7, "center_value": 148.4, "ucl_value": 200.3,
           "lcl_value": 109.9, "n": 30, "created": "2026-12-02T10:00:00.000Z", "window_start": None,
           "window_end": None, "reference": [150.0, 140.0, 160.0]}
    return {"format": "llmscope-tui/baselines", "format_version": 1, "version": "0.1.0",
            "created": "2026-12-02T10:00:00.000Z", "data_file": None, "source": "active", "window": None,
            "transform": "log", "baselines": [lim]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.__setitem__("format", "other"), "not an llmscope-tui baseline file"),
        (lambda d: d.__setitem__("format_version", 9), "format_version 9: this llmscope-tui reads 1"),
        (lambda d: d.__setitem__("baselines", []), "no baselines in the file"),
        (lambda d: d["baselines"][0].__setitem__("sigma", 0), "baselines[0].sigma: expected a finite number > 0"),
        (lambda d: d["baselines"][0].__setitem__("ucl", 9.0), "baselines[0].ucl: 9.0 is not center + 3 sigma"),
        (lambda d: d["baselines"][0].__setitem__("metric", "speed"), "baselines[0].metric: 'speed' is not one of"),
        (lambda d: d["baselines"][0].pop("center"), 'baselines[0]: missing "center"'),
        (lambda d: d["baselines"][0].__setitem__("center", "5"), "baselines[0].center: unexpected str '5'"),
        (lambda d: d["baselines"][0].__setitem__("created", "today"), "baselines[0].created: 'today' is not an ISO"),
        (lambda d: d["baselines"].append(dict(d["baselines"][0])), "baselines[1]: a second baseline for t ttft_ms"),
    ],
)
def test_a_broken_baseline_file_is_one_line_naming_what(tmp_path: Path, change: Any, message: str) -> None:
    doc = good_baseline_doc()
    path = tmp_path / "b.json"
    path.write_text(json.dumps(doc))
    assert load(path).limits[0].center == 5.0  # the good one loads
    assert_valid("baseline", doc)
    change(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(BaselineFileError) as raised:
        load(path)
    text = str(raised.value)
    assert text.startswith(f"{path}: ") and message in text and "\n" not in text


def test_the_baseline_schema_rejects_a_broken_file() -> None:
    doc = good_baseline_doc()
    doc["baselines"][0]["sigma"] = -1
    doc["baselines"][0].pop("reference")
    messages = " ".join(e.message for e in validator("baseline").iter_errors(doc))
    assert "reference" in messages and "-1" in messages


def test_bad_baseline_files_and_flags_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.json"
    assert main(["--headless", "--count", "1", "--demo", "--db", str(tmp_path / "d.db"), "--baseline-from", str(missing)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"llmscope-tui: {missing}: cannot read baseline file: No such file or directory"
    notjson = tmp_path / "b.json"
    notjson.write_text("{nope")
    assert main(["--headless", "--count", "1", "--demo", "--baseline-from", str(notjson)]) == 2
    assert capsys.readouterr().err.strip() == f"llmscope-tui: {notjson}: not JSON (Expecting property name enclosed in double quotes at line 1)"
    assert main(["--headless", "--count", "1", "--demo", "--summary-json", "-"]) == 2
    assert "stdout carries the log" in capsys.readouterr().err
    assert main(["--headless", "--demo", "--summary-json", str(tmp_path / "s.json")]) == 2  # unbounded
    assert capsys.readouterr().err == (
        "llmscope-tui: --summary-json summarises a bounded run: give --count N or --duration TIME too\n")
    assert main(["--headless", "--count", "1", "--demo", "--db", str(tmp_path / "d.db"),
                 "--summary-json", str(tmp_path)]) == 2
    assert f"{tmp_path}: cannot write the summary there" in capsys.readouterr().err
    # a file that fits no target of the run: the demo's targets are not in it
    notjson.write_text(json.dumps(good_baseline_doc()))
    assert main(["--headless", "--count", "1", "--demo", "--db", str(tmp_path / "d.db"), "--baseline-from", str(notjson)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"llmscope-tui: {notjson}: no limits for any target of this run (the file has t;")


def test_baseline_save_refuses_what_it_cannot_save(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "ref.db"
    make_data_file(db, [100.0, 110.0, 105.0], baseline_n=None)
    out = tmp_path / "b.json"
    assert main(["baseline", "save", str(out), "--db", str(db)]) == 2
    assert "no frozen baselines yet" in capsys.readouterr().err
    assert main(["baseline", "save", str(out), "--db", str(db), "--until", "1h"]) == 2
    assert "--until needs --since" in capsys.readouterr().err
    assert main(["baseline", "save", str(out), "--db", str(db), "--target", "x", "--since", "1h"]) == 2
    assert "--target x: no samples of it" in capsys.readouterr().err
    assert main(["baseline", "save", str(out), "--db", str(tmp_path / "none.db")]) == 2
    assert "no data file at" in capsys.readouterr().err
    with pytest.raises(SystemExit) as raised:
        main(["baseline"])
    assert raised.value.code == 2
    assert not out.exists()


def test_a_transform_the_run_does_not_chart_is_refused(tmp_path: Path) -> None:
    from llmscope_tui.config import Settings, SpcSettings

    doc = good_baseline_doc()
    path = tmp_path / "b.json"
    path.write_text(json.dumps(doc))
    baselines: BaselineSet = load(path)
    settings = Settings(config_file=None, targets=[], db_path=tmp_path / "x.db", spc=SpcSettings(transform="none"))
    with pytest.raises(BaselineFileError, match='limits taken with \\[spc\\] transform = "log", this config charts "none"'):
        baselines.check_against(settings)


def test_the_clock_of_a_summary_is_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    if hasattr(time, "tzset"):
        time.tzset()
    try:
        rec, run, _ = recorded_run()
        assert build_summary(rec, run, fail_on=(), code=0)["started"] == "1970-01-01T00:16:40.000Z"
    finally:
        monkeypatch.delenv("TZ")
        if hasattr(time, "tzset"):
            time.tzset()
    assert os.environ.get("TZ") is None


def test_the_run_beside_the_baseline_it_was_judged_against(tmp_path: Path) -> None:
    from llmscope_tui.gate import SavedLimits

    rec, run, ttfts = recorded_run()
    center, sigma = math.log(150.0), 0.1
    baselines = BaselineSet([SavedLimits("a", "ttft_ms", "log", center, sigma, 30, 0.0)], "log",
                            "2026-12-02T10:00:00.000Z", "/ref.db", path=tmp_path / "b.json")
    summary = build_summary(rec, run, fail_on=(), code=0, baselines=baselines)
    (row,) = summary["baseline"]["limits"]
    p50 = statistics.median(ttfts["a"])
    assert row["p50"] == pytest.approx(p50) and row["center"] == pytest.approx(150.0)
    assert row["change"] == pytest.approx(p50 / 150.0 - 1) and row["violations"] == 2
    assert row["ucl"] == pytest.approx(150.0 * math.exp(0.3))
    assert_valid("summary", summary)
    lines = format_table(summary).splitlines()
    assert lines[-2] == f"against the baselines of {tmp_path / 'b.json'} (taken 2026-12-02T10:00:00.000Z):"
    assert lines[-1] == (f"  a ttft_ms: p50 {p50:,.1f} ms ({(p50 / 150 - 1) * 100:+.0f} %) vs center 150.0 ms, "
                         f"UCL {150 * math.exp(0.3):,.1f} ms; 2 rule firings")


def test_the_summary_to_stdout_when_the_log_goes_to_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    rec, run, _ = recorded_run()
    assert conclude(rec, run, fail_on=(), count=80, summary_json=Path("-")) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)  # stdout holds the JSON alone; the table is on stderr
    assert summary["exit_code"] == 0
    assert_valid("summary", summary)
    assert captured.err.startswith("llmscope-tui: summary: 78 probes")


def test_baseline_save_from_a_window_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "ref.db"
    ttfts = [100.0 + (i % 5) * 4 for i in range(40)]
    make_data_file(db, ttfts, start=time.time() - 3600)  # one probe a second, an hour ago
    out = tmp_path / "b.json"
    assert main(["baseline", "save", str(out), "--db", str(db), "--since", "2h", "--until", "30m"]) == 0
    printed = capsys.readouterr().out
    assert f"saved 2 baselines of t to {out}" in printed
    assert "  t itl_ms: fewer than 2 usable samples in the window, not saved" in printed  # none stored
    doc = json.loads(out.read_text())
    assert doc["source"] == "window"
    assert_valid("baseline", doc)
    ttft = next(e for e in doc["baselines"] if e["metric"] == "ttft_ms")
    assert ttft["n"] == 40 and ttft["reference"] == ttfts
    expected = compute_baseline(ttfts, transform=doc["transform"])
    assert ttft["center"] == pytest.approx(expected.center) and ttft["sigma"] == pytest.approx(expected.sigma)


def test_a_real_run_writes_a_summary_the_schema_accepts(
    tmp_path: Path, fake_provider: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fake_provider import Script

    fake_provider.script(default=Script(first_token_delay_s=0.005, tokens=["a", "b"], token_gap_s=0.001))
    fake_provider.enqueue(Script(status=503))
    config = tmp_path / "c.toml"
    config.write_text(f"""
[monitor]
interval = "20ms"
timeout = "5s"

[[targets]]
name = "fake"
provider = "openai-compatible"
model = "m"
base_url = "{fake_provider.base_url}/v1"
""")
    out = tmp_path / "s.json"
    code = main(["--headless", "--config", str(config), "--db", str(tmp_path / "s.db"), "--count", "4",
                 "--log-file", str(tmp_path / "log.jsonl"), "--fail-on", "error", "--summary-json", str(out)])
    assert code == 1
    summary = json.loads(out.read_text())
    assert_valid("summary", summary)
    (target,) = summary["targets"]
    assert (target["samples"], target["ok"], target["errors"], target["error_rate"]) == (4, 3, 1, 0.25)
    assert summary["failures"] == [{"check": "error", "target": "fake", "detail": "1 failed probes (1 server_error)"}]
    assert capsys.readouterr().err.splitlines()[-1] == "llmscope-tui: --fail-on error: 1 failed probes (fake: 1 server_error)"
