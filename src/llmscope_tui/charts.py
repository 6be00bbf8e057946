"""Live SPC for every target and metric: feeds samples to LiveCharts, persists baselines and
turns firings into Violations (the evidence incidents are built from, DESIGN 6 and 6b).

Pure bookkeeping on the event loop (each sample costs O(1) per metric); the store calls it
makes are the non-blocking writer queue, except restore(), which reads and so runs in a thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from llmscope_tui.config import SpcSettings
from llmscope_tui.model import Sample, Violation
from llmscope_tui.spc import RULE_TEXT, Baseline, LiveChart, compute_baseline

#: Phase II points replayed after a restart so run-based rules keep their state.
RESTORE_RECENT = 20


@dataclass(slots=True)
class ChartUpdate:
    """What one sample changed: its rule firings, and its z on each monitored chart."""

    violations: list[Violation] = field(default_factory=list)
    zs: dict[str, float] = field(default_factory=dict)


class ChartBank:
    """One LiveChart per (target, metric), created on first sight."""

    def __init__(self, settings: SpcSettings, store: Any | None = None) -> None:
        self.settings = settings
        self.store = store
        self.charts: dict[tuple[str, str], LiveChart] = {}
        self._baseline_start: dict[tuple[str, str], float] = {}

    def _new_chart(self) -> LiveChart:
        return LiveChart(
            baseline_size=self.settings.baseline_samples,
            rules=self.settings.rules,
            transform=self.settings.transform,
        )

    def chart(self, target: str, metric: str) -> LiveChart | None:
        return self.charts.get((target, metric))

    # -- restart ----------------------------------------------------------------------------

    def restore(self) -> int:
        """Load the frozen baselines the data file holds (blocking reads: call from a thread).

        A baseline taken with another transform than the one configured now is not used: the
        chart starts a new baseline instead. Returns how many charts were restored.
        """
        if self.store is None:
            return 0
        restored = 0
        for (target, metric), row in self.store.active_baselines().items():
            if metric not in self.settings.metrics or row.get("transform", "none") != self.settings.transform:
                continue
            _, recent = self.store.metric_series(target, metric, since=row.get("window_end"), limit=RESTORE_RECENT)
            values = [v for v in recent.tolist() if _usable(v, self.settings.transform)]
            self.charts[(target, metric)] = LiveChart.from_baseline(
                row["center"],
                row["sigma"],
                baseline_size=self.settings.baseline_samples,
                rules=self.settings.rules,
                transform=self.settings.transform,
                recent=values,
            )
            restored += 1
        return restored

    # -- live -------------------------------------------------------------------------------

    def observe(self, sample: Sample) -> ChartUpdate:
        """Feed one sample's metrics to their charts (successful samples only, DESIGN 6)."""
        update = ChartUpdate()
        if not sample.ok:
            return update
        for metric in self.settings.metrics:
            value = sample.metric(metric)
            if value is None or not _usable(value, self.settings.transform):
                continue
            key = (sample.target, metric)
            chart = self.charts.get(key)
            if chart is None:
                chart = self.charts[key] = self._new_chart()
            was_collecting = chart.phase == "baseline"
            if was_collecting:
                self._baseline_start.setdefault(key, sample.ts)
            firings = chart.add(value, sample.ts)
            if was_collecting and chart.phase == "monitoring" and chart.baseline is not None:
                self._persist_baseline(key, chart.baseline, sample.ts)
            for firing in firings:
                update.violations.append(
                    Violation(
                        target=sample.target,
                        metric=metric,
                        rule=firing.rule,
                        ts=sample.ts,
                        value=float(value),
                        z=float(firing.z),
                        center=float(chart.center),  # type: ignore[arg-type]
                        sigma=float(chart.sigma),  # type: ignore[arg-type]
                    )
                )
            if chart.phase == "monitoring" and chart.last_z is not None and not was_collecting:
                update.zs[metric] = chart.last_z
        return update

    def _persist_baseline(self, key: tuple[str, str], baseline: Baseline, ts: float) -> None:
        start = self._baseline_start.pop(key, ts)
        if self.store is not None:
            self.store.save_baseline(
                key[0], key[1], baseline.center, baseline.sigma, baseline.n_used, baseline.transform, start, ts, ts
            )

    def rebaseline(self, target: str | None = None) -> list[tuple[str, str]]:
        """Start new baselines for one target (or all): the next N good samples set the limits."""
        keys = [k for k in self.charts if target is None or k[0] == target]
        for key in keys:
            self.charts[key].rebaseline(self.settings.baseline_samples)
            self._baseline_start.pop(key, None)
        if self.store is not None:
            self.store.clear_baselines(target)
        return keys

    def baseline_from_window(self, target: str, start: float, end: float) -> list[tuple[str, Baseline]]:
        """Freeze limits from the target's samples in [start, end] (blocking reads: use a thread)."""
        if self.store is None:
            raise RuntimeError("a baseline from a time window needs the data file")
        frozen: list[tuple[str, Baseline]] = []
        for metric in self.settings.metrics:
            _, values = self.store.metric_series(target, metric, since=start, until=end)
            usable = [v for v in values.tolist() if _usable(v, self.settings.transform)]
            if len(usable) < 2:
                continue
            baseline = compute_baseline(usable, transform=self.settings.transform)
            self.charts[(target, metric)] = LiveChart.from_baseline(
                baseline.center,
                baseline.sigma,
                baseline_size=self.settings.baseline_samples,
                rules=self.settings.rules,
                transform=self.settings.transform,
            )
            self.store.save_baseline(
                target, metric, baseline.center, baseline.sigma, baseline.n_used, baseline.transform, start, end, end
            )
            frozen.append((metric, baseline))
        return frozen


def _usable(value: float, transform: str) -> bool:
    return math.isfinite(value) and (value > 0 or transform != "log")


def violation_event(v: Violation) -> dict[str, Any]:
    """The JSON-log shape of a violation (DESIGN 8), with the rule in plain words."""
    return {
        "event": "violation",
        "ts": v.ts,
        "target": v.target,
        "metric": v.metric,
        "rule": v.rule,
        "text": RULE_TEXT[v.rule],
        "value": v.value,
        "z": v.z,
        "center": v.center,
        "sigma": v.sigma,
    }
