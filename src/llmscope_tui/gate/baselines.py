"""Saved SPC limits: ``baseline save FILE`` writes them from a data file, ``--baseline-from
FILE`` judges a run against them from its first probe.

Why a file: a CI job starts from an empty data file, so it would spend its first N probes
learning limits from the very deployment it is meant to judge. Limits taken from a known-good
run and committed beside the pipeline make a regression (TTFT above the UCL) fire the Nelson
rules and open an incident at once. Each entry also carries the baseline's points (at most
REFERENCE_MAX) so the incident policy's reference (incidents/detector.py) starts from the same
data as the chart. The format is schemas/baseline.schema.json; :func:`load` checks it by hand
(jsonschema is a test dependency only) and says what is wrong in one line.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llmscope_tui import __version__
from llmscope_tui.incidents.detector import REFERENCE_MAX
from llmscope_tui.model import Metric
from llmscope_tui.paths import write_private
from llmscope_tui.spc import D2, TRANSFORMS, Baseline, compute_baseline

BASELINE_FORMAT = "llmscope-tui/baselines"
BASELINE_FORMAT_VERSION = 1
_METRICS = tuple(m.value for m in Metric)


class BaselineFileError(Exception):
    """A baseline file that cannot be used: one line naming the file and what is wrong (exit 2)."""


def utc(ts: float) -> str:
    """ISO-8601 UTC with a Z, to the millisecond."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _epoch(text: str, where: str) -> float:
    try:
        stamp = datetime.fromisoformat(text)
    except ValueError:
        stamp = None
    if stamp is None or stamp.tzinfo is None:
        raise ValueError(f"{where}: {text!r} is not an ISO-8601 time with a zone (e.g. 2026-12-02T10:00:00Z)")
    return stamp.timestamp()


@dataclass(frozen=True, slots=True)
class SavedLimits:
    """One target + metric's frozen limits. center and sigma are on the charted scale (natural
    log of the metric with transform "log"); ``reference``: the points they came from (metric unit)."""

    target: str
    metric: str
    transform: str
    center: float
    sigma: float
    n: int | None
    created_ts: float
    window_start: float | None = None
    window_end: float | None = None
    mr_bar: float | None = None
    reference: tuple[float, ...] = ()

    @property
    def ucl(self) -> float:
        return self.center + 3.0 * self.sigma

    @property
    def lcl(self) -> float:
        return self.center - 3.0 * self.sigma

    def value(self, charted: float) -> float:
        """A line on the charted scale in the metric's own unit (ms, tokens/s)."""
        return math.exp(charted) if self.transform == "log" else charted

    def baseline(self) -> Baseline:
        n = self.n or 0
        mr = self.mr_bar if self.mr_bar is not None else self.sigma * D2
        return Baseline(center=self.center, sigma=self.sigma, n_used=n, n_input=n, mr_bar=mr, transform=self.transform)

    def to_json(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "metric": self.metric,
            "unit": "tokens/s" if self.metric == "tps" else "ms",
            "transform": self.transform,
            "center": self.center,
            "sigma": self.sigma,
            "mr_bar": self.mr_bar if self.mr_bar is not None else self.sigma * D2,
            "ucl": self.ucl,
            "lcl": self.lcl,
            "center_value": self.value(self.center),
            "ucl_value": self.value(self.ucl),
            "lcl_value": self.value(self.lcl),
            "n": self.n,
            "created": utc(self.created_ts),
            "window_start": None if self.window_start is None else utc(self.window_start),
            "window_end": None if self.window_end is None else utc(self.window_end),
            "reference": [round(v, 3) for v in self.reference],  # 1 us / 0.001 token/s: finer than any stamp
        }


@dataclass(slots=True)
class BaselineSet:
    """The limits of one baseline file."""

    limits: list[SavedLimits]
    transform: str
    created: str
    data_file: str | None = None
    source: str = "active"  # "active": the data file's baselines in force; "window": a time window
    window: dict[str, str] | None = None
    path: Path | None = None
    skipped: list[str] = field(default_factory=list)  # what from_store found no limits for

    def targets(self) -> list[str]:
        return sorted({lim.target for lim in self.limits})

    def to_json(self) -> dict[str, Any]:
        return {
            "format": BASELINE_FORMAT,
            "format_version": BASELINE_FORMAT_VERSION,
            "version": __version__,
            "created": self.created,
            "data_file": self.data_file,
            "source": self.source,
            "window": self.window,
            "transform": self.transform,
            "baselines": [lim.to_json() for lim in self.limits],
        }

    def check_against(self, settings: Any) -> list[str]:
        """Can a run with these settings use the file? Raises BaselineFileError when not at all;
        returns notes on what it will not use (targets, metrics) or will learn itself."""
        name = self.path or "baseline file"
        spc = settings.spc
        if self.transform != spc.transform:
            raise BaselineFileError(
                f"{name}: limits taken with [spc] transform = \"{self.transform}\", this config charts "
                f"\"{spc.transform}\"; use the same transform, or save the baseline again"
            )
        configured = {t.name for t in settings.targets if t.enabled}
        known = set(self.targets())
        if not configured & known:
            raise BaselineFileError(
                f"{name}: no limits for any target of this run (the file has {', '.join(sorted(known))}; "
                f"the run probes {', '.join(sorted(configured)) or 'nothing'})"
            )
        notes = []
        if known - configured:
            notes.append(f"not probed in this run, their limits unused: {', '.join(sorted(known - configured))}")
        if configured - known:
            notes.append(f"no limits in the file, learning them in this run: {', '.join(sorted(configured - known))}")
        unused = sorted({lim.metric for lim in self.limits} - set(spc.metrics))
        if unused:
            notes.append(f"metrics not charted by this config ([spc] metrics), unused: {', '.join(unused)}")
        return notes

    def apply(self, monitor: Any) -> None:
        """Freeze the monitor's charts at these limits (saved in its data file as the active
        baselines) and start its incident references from their points. Call before probing."""
        charted = set(monitor.settings.spc.metrics)
        for lim in self.limits:
            if lim.metric not in charted:
                continue
            monitor.charts.load(lim.target, lim.metric, lim.baseline(), lim.window_start, lim.window_end)
            monitor.incidents.seed(lim.target, lim.metric, lim.reference)


# -- from a data file -----------------------------------------------------------------------


def _usable(values: Iterable[float], transform: str) -> list[float]:
    return [float(v) for v in values if math.isfinite(v) and (v > 0 or transform != "log")]


def from_store(
    reader: Any,
    spc: Any,
    *,
    data_file: str,
    target: str | None = None,
    since: float | None = None,
    until: float | None = None,
    now: float | None = None,
) -> BaselineSet:
    """The limits a data file holds: its active (frozen) baselines, or with ``since`` new ones
    computed from the samples in [since, until) as ``rebaseline --since`` would (nothing is
    written to the data file). ``spc``: [spc] settings (transform and metrics for a window)."""
    now = time.time() if now is None else now
    limits: list[SavedLimits] = []
    skipped: list[str] = []
    if since is None:
        transforms = set()
        for (name, metric), row in sorted(reader.active_baselines().items()):
            if target is not None and name != target:
                continue
            start, end = row.get("window_start"), row.get("window_end")
            transform = str(row.get("transform") or "none")
            transforms.add(transform)
            reference: list[float] = []
            if start is not None and end is not None:
                _, values = reader.metric_series(name, metric, since=start, until=math.nextafter(end, math.inf),
                                                 limit=REFERENCE_MAX)
                reference = _usable(values.tolist(), transform)
            limits.append(SavedLimits(name, metric, transform, float(row["center"]), float(row["sigma"]),
                                      row.get("n"), float(row["created_ts"]), start, end, None, tuple(reference)))
        if len(transforms) > 1:
            raise BaselineFileError(f"the data file's baselines mix transforms ({', '.join(sorted(transforms))}); "
                                    "rebaseline, or save one target at a time")
        transform = transforms.pop() if transforms else spc.transform
        return BaselineSet(limits, transform, utc(now), data_file, "active", None, skipped=skipped)
    end = now if until is None else until
    for name in [target] if target else reader.targets():
        for metric in spc.metrics:
            _, values = reader.metric_series(name, metric, since=since, until=end)
            usable = _usable(values.tolist(), spc.transform)
            if len(usable) < 2:
                skipped.append(f"{name} {metric}")
                continue
            b = compute_baseline(usable, transform=spc.transform)
            limits.append(SavedLimits(name, metric, spc.transform, b.center, b.sigma, b.n_used, now, since, end,
                                      b.mr_bar, tuple(usable[-REFERENCE_MAX:])))
    return BaselineSet(limits, spc.transform, utc(now), data_file, "window",
                       {"since": utc(since), "until": utc(end)}, skipped=skipped)


def save(path: Path, baselines: BaselineSet) -> None:
    """Write the file 0600 through a temporary file (a half-written baseline is never read)."""
    write_private(path, _readable(baselines.to_json()))
    baselines.path = path


_NUMBER_LIST = re.compile(r"\[\s+([-+0-9.eE,\s]+?)\s+\]")


def _readable(doc: dict[str, Any]) -> str:
    """Indented JSON with each list of numbers on one line: the limits stay readable in a
    review, not buried under a thousand reference points one per line."""
    text = json.dumps(doc, indent=2)
    return _NUMBER_LIST.sub(lambda m: "[" + " ".join(m.group(1).split()) + "]", text) + "\n"


# -- reading one back -------------------------------------------------------------------------


def load(path: Path) -> BaselineSet:
    """Read and check a baseline file; BaselineFileError (one line) for anything wrong."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise BaselineFileError(f"{path}: cannot read baseline file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise BaselineFileError(f"{path}: not a baseline file (not UTF-8 text)") from None
    except json.JSONDecodeError as exc:
        raise BaselineFileError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    try:
        return _parse(doc, path)
    except (KeyError, TypeError, ValueError) as exc:
        raise BaselineFileError(f"{path}: {exc.args[0] if exc.args else exc}") from None


def _field(entry: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in entry:
        raise KeyError(f"{where}: missing \"{key}\"")
    value = entry[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{where}.{key}: unexpected {type(value).__name__} {value!r}")
    return value


def _number(entry: dict[str, Any], key: str, where: str, positive: bool = False) -> float:
    value = float(_field(entry, key, where, (int, float)))
    if not math.isfinite(value) or (positive and value <= 0):
        raise ValueError(f"{where}.{key}: expected a finite number{' > 0' if positive else ''}, got {value!r}")
    return value


def _parse(doc: Any, path: Path) -> BaselineSet:
    if not isinstance(doc, dict) or doc.get("format") != BASELINE_FORMAT:
        raise ValueError(f"not an llmscope-tui baseline file (\"format\" is not \"{BASELINE_FORMAT}\"; "
                         "write one with `llmscope-tui baseline save FILE`)")
    version = doc.get("format_version")
    if version != BASELINE_FORMAT_VERSION:
        raise ValueError(f"format_version {version!r}: this llmscope-tui reads {BASELINE_FORMAT_VERSION}")
    transform = _field(doc, "transform", "file", str)
    if transform not in TRANSFORMS:
        raise ValueError(f"transform {transform!r}: expected one of {', '.join(TRANSFORMS)}")
    entries = _field(doc, "baselines", "file", list)
    if not entries:
        raise ValueError("no baselines in the file")
    limits, seen = [], set()
    for i, entry in enumerate(entries):
        where = f"baselines[{i}]"
        if not isinstance(entry, dict):
            raise TypeError(f"{where}: expected an object")
        name = _field(entry, "target", where, str)
        metric = _field(entry, "metric", where, str)
        if metric not in _METRICS:
            raise ValueError(f"{where}.metric: {metric!r} is not one of {', '.join(_METRICS)}")
        if _field(entry, "transform", where, str) != transform:
            raise ValueError(f"{where}.transform: differs from the file's ({transform})")
        if (name, metric) in seen:
            raise ValueError(f"{where}: a second baseline for {name} {metric}")
        seen.add((name, metric))
        center, sigma = _number(entry, "center", where), _number(entry, "sigma", where, positive=True)
        for line, expected in (("ucl", center + 3 * sigma), ("lcl", center - 3 * sigma)):
            if line in entry and not math.isclose(_number(entry, line, where), expected, rel_tol=1e-6, abs_tol=1e-9):
                raise ValueError(f"{where}.{line}: {entry[line]} is not center {'+' if line == 'ucl' else '-'} "
                                 "3 sigma (center and sigma are what a run uses; edit those)")
        n = entry.get("n")
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 0):
            raise ValueError(f"{where}.n: expected a whole number >= 0 or null, got {n!r}")
        reference = entry.get("reference", [])
        if not isinstance(reference, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in reference
        ):
            raise ValueError(f"{where}.reference: expected a list of numbers")
        stamps = [None if entry.get(k) is None else _epoch(_field(entry, k, where, str), f"{where}.{k}")
                  for k in ("created", "window_start", "window_end")]
        mr_bar = entry.get("mr_bar")
        limits.append(SavedLimits(
            name, metric, transform, center, sigma, n, stamps[0] or 0.0, stamps[1], stamps[2],
            float(mr_bar) if isinstance(mr_bar, (int, float)) else None,
            tuple(float(v) for v in reference[-REFERENCE_MAX:]),
        ))
    window = doc.get("window") if isinstance(doc.get("window"), dict) else None
    return BaselineSet(limits, transform, str(doc.get("created") or ""), doc.get("data_file"),
                       str(doc.get("source") or "active"), window, path)
