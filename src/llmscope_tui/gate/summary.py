"""The end of a bounded run: a per-target table on stderr and the same figures as JSON.

Figures come from the run's own probes (the events the monitor published during this run, not
the data file, which may hold other runs): exact quantiles with numpy's default (linear
interpolation between order statistics, R's type 7), error rates over the provider's failures
as ``--fail-on error`` counts them. The JSON follows schemas/summary.schema.json.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from llmscope_tui import __version__
from llmscope_tui.gate.baselines import BaselineSet, utc
from llmscope_tui.gate.checks import EXIT_OK, EXIT_USAGE, exit_code, failure_records
from llmscope_tui.model import Metric, not_the_providers_fault
from llmscope_tui.monitor import RunSummary
from llmscope_tui.paths import private_dir, write_private

SUMMARY_FORMAT = "llmscope-tui/summary"
SUMMARY_FORMAT_VERSION = 1
QUANTILES = (50, 95)
_METRICS = tuple(m.value for m in Metric)


@dataclass(slots=True)
class TargetFigures:
    """One target's probes in this run."""

    provider: str | None = None
    model: str | None = None
    samples: int = 0
    ok: int = 0
    failed: int = 0
    errors: int = 0
    error_kinds: dict[str, int] = field(default_factory=dict)
    # every good probe's metrics, 8 bytes each: a day at 10 probes/s is 28 MB (exact quantiles)
    values: dict[str, array[float]] = field(default_factory=lambda: {m: array("d") for m in _METRICS})
    incidents: int = 0
    violations: dict[str, int] = field(default_factory=dict)


class RunRecorder:
    """Subscribes to a monitor's events and keeps what the summary needs (cheap: an append per
    sample on the monitor's loop)."""

    def __init__(self, clock: Any = time.time) -> None:
        self.clock = clock
        self.started = clock()
        self.ended: float | None = None
        self.data_file: str | None = None
        self.targets: dict[str, TargetFigures] = {}
        self.incidents: list[tuple[str, str]] = []  # (target, text) of each incident opened
        self.rules: dict[tuple[str, str], set[int]] = {}

    def _target(self, name: str) -> TargetFigures:
        figures = self.targets.get(name)
        if figures is None:
            figures = self.targets[name] = TargetFigures()
        return figures

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        if kind == "sample" and event.get("source", "probe") == "probe":
            self._sample(event)
        elif kind == "violation":
            figures = self._target(event["target"])
            figures.violations[event["metric"]] = figures.violations.get(event["metric"], 0) + 1
            self.rules.setdefault((event["target"], event["metric"]), set()).add(int(event["rule"]))
        elif kind == "incident" and event.get("state") == "opened":
            self._target(event["target"]).incidents += 1
            self.incidents.append((event["target"], str(event.get("text") or "")))
        elif kind == "start":
            self.started = float(event.get("ts") or self.started)
            self.data_file = event.get("db")
            for t in event.get("targets", []):
                if t.get("enabled", True):
                    figures = self._target(t["name"])
                    figures.provider, figures.model = t.get("provider"), t.get("model")
        elif kind == "stop":
            self.ended = float(event.get("ts") or self.clock())

    def _sample(self, event: dict[str, Any]) -> None:
        figures = self._target(event["target"])
        figures.provider = figures.provider or event.get("provider")
        figures.model = figures.model or event.get("model")
        figures.samples += 1
        if event.get("ok"):
            figures.ok += 1
            for metric in _METRICS:
                value = event.get(metric)
                if value is not None and math.isfinite(value):
                    figures.values[metric].append(float(value))
            return
        figures.failed += 1
        kind = str(event.get("error_kind"))
        if not not_the_providers_fault(kind):
            figures.errors += 1
            figures.error_kinds[kind] = figures.error_kinds.get(kind, 0) + 1


def quantiles(values: Sequence[float]) -> dict[str, float | None]:
    """p50 and p95 of the values (numpy's linear interpolation), None for no values."""
    if not len(values):
        return {f"p{q}": None for q in QUANTILES}
    found = np.percentile(np.asarray(values, dtype=np.float64), QUANTILES)
    return {f"p{q}": float(v) for q, v in zip(QUANTILES, found, strict=True)}


def build_summary(
    recorder: RunRecorder,
    run: RunSummary,
    *,
    fail_on: tuple[str, ...],
    code: int,
    count: int | None = None,
    duration_s: float | None = None,
    baselines: BaselineSet | None = None,
) -> dict[str, Any]:
    """The run as one JSON-ready dict (schemas/summary.schema.json)."""
    ended = recorder.ended if recorder.ended is not None else recorder.clock()
    targets = []
    for name, f in sorted(recorder.targets.items()):
        counted = f.ok + f.errors  # cancelled and internal failures say nothing of the provider
        targets.append(
            {
                "target": name,
                "provider": f.provider,
                "model": f.model,
                "samples": f.samples,
                "ok": f.ok,
                "failed": f.failed,
                "errors": f.errors,
                "error_rate": (f.errors / counted) if counted else None,
                "error_kinds": dict(sorted(f.error_kinds.items())),
                "ttft_ms": quantiles(f.values["ttft_ms"]),
                "latency_ms": quantiles(f.values["latency_ms"]),
                "incidents": f.incidents,
                "violations": dict(sorted(f.violations.items())),
            }
        )
    return {
        "format": SUMMARY_FORMAT,
        "format_version": SUMMARY_FORMAT_VERSION,
        "version": __version__,
        "started": utc(recorder.started),
        "ended": utc(ended),
        "duration_s": round(max(0.0, ended - recorder.started), 3),
        "reason": run.reason,
        "count": count,
        "duration_limit_s": duration_s,
        "data_file": recorder.data_file,
        "samples": run.samples,
        "failed": run.failed,
        "errors": run.errors,
        "violations": run.violations,
        "incidents": run.incidents,
        "unsaved": run.unsaved,
        "targets": targets,
        "baseline": None if baselines is None else _comparison(baselines, recorder),
        "fail_on": list(fail_on),
        "failures": failure_records(run, fail_on, recorder.incidents, recorder.rules),
        "exit_code": code,
    }


def _comparison(baselines: BaselineSet, recorder: RunRecorder) -> dict[str, Any]:
    """Each loaded limit beside this run's median of the same metric."""
    rows = []
    for limit in baselines.limits:
        f = recorder.targets.get(limit.target)
        values: Sequence[float] = f.values.get(limit.metric, ()) if f is not None else ()
        p50 = quantiles(values)["p50"]
        center = limit.value(limit.center)
        rows.append(
            {
                "target": limit.target,
                "metric": limit.metric,
                "center": center,
                "ucl": limit.value(limit.ucl),
                "lcl": limit.value(limit.lcl),
                "n": limit.n,
                "p50": p50,
                "change": None if p50 is None or not center else p50 / center - 1.0,
                "violations": f.violations.get(limit.metric, 0) if f is not None else 0,
            }
        )
    return {"file": str(baselines.path) if baselines.path else None, "created": baselines.created,
            "data_file": baselines.data_file, "transform": baselines.transform, "limits": rows}


# -- the table ------------------------------------------------------------------------------


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def format_table(summary: dict[str, Any]) -> str:
    """The summary for a person: one row per target, then the baseline comparison."""
    head = (
        f"llmscope-tui: summary: {summary['samples']} probes in {summary['duration_s']:.1f}s "
        f"({summary['reason']}), {_plural(summary['incidents'], 'incident')}, "
        f"{_plural(summary['violations'], 'rule firing')}"
    )
    columns = ("target", "samples", "ok", "errors", "err %", "TTFT p50", "TTFT p95", "lat p50", "lat p95", "incidents")
    rows = [
        (
            t["target"],
            str(t["samples"]),
            str(t["ok"]),
            str(t["errors"]),
            _rate(t["error_rate"]),
            _ms(t["ttft_ms"]["p50"]),
            _ms(t["ttft_ms"]["p95"]),
            _ms(t["latency_ms"]["p50"]),
            _ms(t["latency_ms"]["p95"]),
            str(t["incidents"]),
        )
        for t in summary["targets"]
    ]
    lines = [head, *_align(columns, rows)]
    base = summary.get("baseline")
    if base:
        lines.append(f"against the baselines of {base['file']} (taken {base['created']}):")
        for row in base["limits"]:
            change = "" if row["change"] is None else f" ({row['change'] * 100:+.0f} %)"
            unit = _unit(row["metric"])
            lines.append(
                f"  {row['target']} {row['metric']}: p50 {_num(row['p50'], unit)}{change} vs center "
                f"{_num(row['center'], unit)}, UCL {_num(row['ucl'], unit)}; {_plural(row['violations'], 'rule firing')}"
            )
    return "\n".join(lines)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _unit(metric: str) -> str:
    return " ms" if metric.endswith("_ms") else "/s"


def _num(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:,.1f}{unit}"


def _align(columns: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> list[str]:
    widths = [max(len(c), *(len(r[i]) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    out = []
    for row in (columns, *rows):
        cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:], strict=True)]
        out.append("  ".join(cells).rstrip())
    return out


# -- the JSON file --------------------------------------------------------------------------


def check_writable(path: Path) -> None:
    """Before the run: a summary that cannot be written is a bad argument (exit 2), found now
    rather than after the run. Raises OSError."""
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a directory")
    private_dir(path.parent)
    if not os.access(path.parent, os.W_OK):
        raise PermissionError(f"cannot write in {path.parent}")


def write_summary(path: Path, summary: dict[str, Any], stdout: IO[str] | None = None) -> None:
    """Write the summary JSON: 0600, through a temporary file, so a reader never sees half of
    it. ``-`` writes it to ``stdout``."""
    text = json.dumps(summary, indent=2) + "\n"
    if str(path) == "-":
        out = stdout if stdout is not None else sys.stdout
        out.write(text)
        out.flush()
        return
    write_private(path, text)


def conclude(
    recorder: RunRecorder,
    run: RunSummary,
    *,
    fail_on: tuple[str, ...],
    count: int | None = None,
    duration_s: float | None = None,
    baselines: BaselineSet | None = None,
    summary_json: Path | None = None,
    stderr: IO[str] | None = None,
) -> int:
    """After the run (its log closed): the table on stderr for a bounded run, then what failed,
    then the JSON file; returns DESIGN 8's exit code (2 if the summary file cannot be written)."""
    err = stderr if stderr is not None else sys.stderr
    bounded = count is not None or duration_s is not None
    summary = build_summary(recorder, run, fail_on=fail_on, code=EXIT_OK, count=count,
                            duration_s=duration_s, baselines=baselines)
    if bounded:
        print(format_table(summary), file=err)
    code = exit_code(run, fail_on, stderr=err)
    summary["exit_code"] = code
    if bounded and fail_on and code == EXIT_OK:
        print(f"llmscope-tui: --fail-on {', '.join(fail_on)}: passed", file=err)
    if summary_json is not None:
        try:
            write_summary(summary_json, summary)
        except OSError as exc:
            print(f"llmscope-tui: {summary_json}: cannot write the summary: {exc.strerror or exc}", file=err)
            return EXIT_USAGE
    return code


def schema_path(name: str) -> Path:
    """A JSON Schema shipped in the package: ``summary`` or ``baseline`` (docs/ci.md)."""
    return Path(__file__).resolve().parent.parent / "schemas" / f"{name}.schema.json"
