"""ChartBank: live SPC for every target and metric. It feeds samples to LiveCharts, persists
baselines and turns firings into Violations (the evidence incidents are built from, DESIGN 6
and 6b).

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

    def _frozen_chart(
        self, center: float, sigma: float, recent: list[float] | None = None
    ) -> LiveChart:
        """A chart already monitoring against limits taken earlier (the data file, a window)."""
        return LiveChart.from_baseline(
            center,
            sigma,
            baseline_size=self.settings.baseline_samples,
            rules=self.settings.rules,
            transform=self.settings.transform,
            recent=recent or (),
        )

    def _usable(self, values: list[float]) -> list[float]:
        return [v for v in values if _usable(v, self.settings.transform)]

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
            transform = row.get("transform", "none")
            if metric not in self.settings.metrics or transform != self.settings.transform:
                continue
            values = self._usable(self._phase_ii(target, metric, row.get("window_end")))
            self.charts[(target, metric)] = self._frozen_chart(row["center"], row["sigma"], values)
            restored += 1
        return restored

    def _phase_ii(self, target: str, metric: str, window_end: float | None) -> list[float]:
        """The latest points tested against a stored baseline, oldest first.

        Only samples after window_end (a live baseline's last point; a window's end): that last
        baseline point replayed as a phase II point would lengthen every run by one and could
        make a rule fire that the chart which never stopped did not fire.
        """
        assert self.store is not None
        ts, values = self.store.metric_series(target, metric, since=window_end, limit=RESTORE_RECENT)
        if window_end is None:
            return list(values.tolist())
        return [v for t, v in zip(ts.tolist(), values.tolist(), strict=True) if t > window_end]

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
            baseline = chart.baseline
            if baseline is None:
                continue
            if was_collecting:
                self._persist_baseline(key, baseline, sample.ts)
            for firing in firings:
                update.violations.append(
                    Violation(
                        target=sample.target,
                        metric=metric,
                        rule=firing.rule,
                        ts=sample.ts,
                        value=float(value),
                        z=float(firing.z),
                        center=float(baseline.center),
                        sigma=float(baseline.sigma),
                    )
                )
            if chart.last_z is not None and not was_collecting:
                update.zs[metric] = chart.last_z
        return update

    def _persist_baseline(self, key: tuple[str, str], baseline: Baseline, ts: float) -> None:
        start = self._baseline_start.pop(key, ts)
        self._save(key, baseline, start, ts)

    def load(self, target: str, metric: str, baseline: Baseline, start: float | None, end: float | None) -> None:
        """Limits taken elsewhere (a baseline file, ``--baseline-from``): the chart tests the very
        next point against them, and they become the data file's active baseline."""
        key = (target, metric)
        self.charts[key] = self._frozen_chart(baseline.center, baseline.sigma)
        self._baseline_start.pop(key, None)
        self._save(key, baseline, start, end)

    def _save(self, key: tuple[str, str], baseline: Baseline, start: float | None, end: float | None) -> None:
        """Persist frozen limits, so a restart monitors against them at once."""
        if self.store is not None:
            b = baseline
            self.store.save_baseline(*key, b.center, b.sigma, b.n_used, b.transform, start, end, end)

    def rebaseline(self, target: str | None = None) -> list[tuple[str, str]]:
        """Start new baselines for one target (or all): the next N good samples set the limits."""
        keys = [k for k in self.charts if target is None or k[0] == target]
        for key in keys:
            self.charts[key].rebaseline(self.settings.baseline_samples)
            self._baseline_start.pop(key, None)
        if self.store is not None:
            self.store.clear_baselines(target)
        return keys

    def baseline_from_window(
        self, target: str, start: float, end: float
    ) -> list[tuple[str, Baseline]]:
        """Freeze limits from the target's samples in [start, end] (blocking reads: use a thread)."""
        if self.store is None:
            raise RuntimeError("a baseline from a time window needs the data file")
        frozen: list[tuple[str, Baseline]] = []
        for metric in self.settings.metrics:
            _, values = self.store.metric_series(target, metric, since=start, until=end)
            usable = self._usable(values.tolist())
            if len(usable) < 2:
                continue
            baseline = compute_baseline(usable, transform=self.settings.transform)
            self.charts[(target, metric)] = self._frozen_chart(baseline.center, baseline.sigma)
            self._save((target, metric), baseline, start, end)
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
