"""Live SPC for every target and metric: feeds samples to LiveCharts, persists baselines,
turns firings into Violations and groups them into episodes.

Pure bookkeeping on the event loop (each sample costs O(1) per metric); the store calls it
makes are the non-blocking writer queue, except restore(), which reads and so runs in a thread.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from llmscope_tui.config import SpcSettings
from llmscope_tui.model import Sample, Violation
from llmscope_tui.spc import RULE_TEXT, Baseline, Episode, EpisodeTracker, LiveChart, compute_baseline

#: Phase II points replayed after a restart so run-based rules keep their state.
RESTORE_RECENT = 20


@dataclass(slots=True)
class ChartUpdate:
    """What one sample changed: rule firings, episodes opened and closed."""

    violations: list[Violation] = field(default_factory=list)
    opened: list[Episode] = field(default_factory=list)
    closed: list[Episode] = field(default_factory=list)


class ChartBank:
    """One LiveChart per (target, metric), created on first sight."""

    def __init__(self, settings: SpcSettings, store: Any | None = None) -> None:
        self.settings = settings
        self.store = store
        self.charts: dict[tuple[str, str], LiveChart] = {}
        self.episodes = EpisodeTracker()
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
            rules = set()
            for firing in firings:
                rules.add(firing.rule)
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
            if chart.phase == "monitoring":
                for event in self.episodes.observe(sample.target, metric, sample.ts, rules):
                    (update.opened if event.kind == "opened" else update.closed).append(event.episode)
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
            self.episodes.close(*key)
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
            self.episodes.close(target, metric)
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


def episode_event(episode: Episode, state: str) -> dict[str, Any]:
    return {
        "event": "episode",
        "state": state,
        "ts": episode.last_ts if state == "opened" else (episode.end_ts or episode.last_ts),
        "target": episode.target,
        "metric": episode.metric,
        "rule": episode.rule,
        "text": RULE_TEXT[episode.rule],
        "start_ts": episode.start_ts,
        "last_ts": episode.last_ts,
        "count": episode.count,
    }



def past_episodes(store: Any, since: float | None = None, limit: int = 2000) -> list[Episode]:
    """Episodes rebuilt from the stored rule firings (the newest ``limit``), so a restart shows
    what happened before it. Two firings of one rule belong to one episode when no charted
    point lies between them, as :class:`EpisodeTracker` grouped them live (one index seek per
    pair). All come back closed: the live tracker starts afresh and reopens what still fires."""
    runs: dict[tuple[str, str, int], list[Any]] = {}  # -> [start_ts, last_ts, count]
    episodes: list[Episode] = []
    for v in store.violations(since=since, limit=limit):
        key = (v.target, v.metric, v.rule)
        run = runs.get(key)
        if run is not None and v.ts == run[1]:
            continue
        if run is not None and _neighbours(store, v.target, v.metric, run[1], v.ts):
            run[1], run[2] = v.ts, run[2] + 1
            continue
        if run is not None:
            episodes.append(Episode(*key, run[0], run[1], run[2], False))
        runs[key] = [v.ts, v.ts, 1]
    episodes.extend(Episode(*key, run[0], run[1], run[2], False) for key, run in runs.items())
    episodes.sort(key=lambda e: (e.start_ts or 0.0, e.target, e.metric, e.rule))
    return episodes


def _neighbours(store: Any, target: str, metric: str, earlier: float, later: float) -> bool:
    """No charted point of the series lies strictly between the two times."""
    ts, _ = store.metric_series(target, metric, since=earlier, until=later, limit=1)
    return not (len(ts) and ts[-1] > earlier)
