"""Which scripted incident runs when: the demo's timeline, and the words that name it.

The timeline is a pure function of the seconds since the demo started, so the server (what a
request suffers), the ``demo`` monitor event (what runs now) and the banner (what a person is
told) all read the same script.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

__all__ = ["DemoTimeline", "Effect", "Running", "event_words", "incident_words"]


@dataclass(frozen=True, slots=True)
class Effect:
    """What the timeline does to one model at one moment."""

    ttft_factor: float = 1.0
    rate_limited: bool = False


@dataclass(frozen=True, slots=True)
class Running:
    """One scripted incident running now: its kind (``shift``, ``drift`` or ``burst``), the
    model it hits, which repetition of the script it is, and when it started and ends (on
    whatever clock the caller gave: the demo's elapsed seconds, or wall-clock time in events)."""

    kind: str
    model: str
    cycle: int
    since: float
    until: float
    factor: float = 1.0  # shift: the TTFT multiplier
    per_s: float = 0.0  # drift: the TTFT rise per second, as a fraction

    def moved(self, offset: float) -> Running:
        """The same incident on a clock ``offset`` seconds ahead."""
        return replace(self, since=self.since + offset, until=self.until + offset)

    def words(self, now: float, target: str) -> str:
        """This incident in words at ``now`` (same clock as since/until), naming ``target``."""
        left = math.ceil(round(self.until - now, 6))  # round: a clock offset adds float noise
        if self.kind == "shift":
            return f"latency shift: {target} TTFT x{self.factor:g} (ends in {left} s)"
        if self.kind == "drift":
            rise = self.per_s * (now - self.since) * 100
            return f"slow drift: {target} TTFT creeping up, now +{rise:.0f}%"
        return f"429 burst: {target} rate-limited (ends in {left} s)"


def incident_words(
    running: Sequence[Running], now: float, names: Mapping[str, str] | None = None
) -> str | None:
    """The running incidents in words at ``now``, naming targets (``names``: model -> target
    name, the model itself where missing); None when calm. The demo banner's text."""
    known = names or {}
    parts = [r.words(now, known.get(r.model, r.model)) for r in running]
    return "; ".join(parts) if parts else None


@dataclass(frozen=True, slots=True)
class DemoTimeline:
    """Scripted incidents, in seconds since the demo started.

    Nothing happens for the first ``warmup_s`` (the 100 probes at 1 s that set SPC's baselines,
    plus a few): then a cycle of ``cycle_s`` repeats, its times counted from the cycle's start:
    a latency shift (0-75 s), a drift (15-105 s) and a 429 burst (35-45 s). So the first incident
    opens about 110 s after starting. ``scaled(k)`` compresses (k < 1) or stretches the script.
    """

    warmup_s: float = 105.0
    cycle_s: float = 210.0
    shift_model: str = "claude-haiku-sim"
    shift_start_s: float = 0.0
    shift_end_s: float = 75.0
    shift_factor: float = 1.8
    drift_model: str = "llama3-sim"
    drift_start_s: float = 15.0
    drift_end_s: float = 105.0
    drift_per_s: float = 0.01  # +1 % of TTFT per second, i.e. per probe at a 1 s interval
    burst_model: str = "gemini-flash-sim"
    burst_start_s: float = 35.0
    burst_end_s: float = 45.0
    retry_after_s: int = 1

    def scaled(self, factor: float) -> DemoTimeline:
        """The same script with every time multiplied by ``factor`` (the drift reaches the
        same height)."""
        if factor <= 0:
            raise ValueError("factor must be positive")
        return replace(
            self,
            warmup_s=self.warmup_s * factor,
            cycle_s=self.cycle_s * factor,
            shift_start_s=self.shift_start_s * factor,
            shift_end_s=self.shift_end_s * factor,
            drift_start_s=self.drift_start_s * factor,
            drift_end_s=self.drift_end_s * factor,
            drift_per_s=self.drift_per_s / factor,
            burst_start_s=self.burst_start_s * factor,
            burst_end_s=self.burst_end_s * factor,
        )

    def phase(self, elapsed: float) -> float:
        """Seconds into the current cycle; -1 during the warm-up."""
        since = elapsed - self.warmup_s
        if since < 0:
            return -1.0
        return since % self.cycle_s if self.cycle_s > 0 else since

    def running(self, elapsed: float) -> list[Running]:
        """The incidents running at ``elapsed``, their times on the same clock."""
        p = self.phase(elapsed)
        if p < 0:
            return []
        cycle = int((elapsed - self.warmup_s) // self.cycle_s) if self.cycle_s > 0 else 0
        start = elapsed - p  # when this cycle began
        scripts = (
            ("shift", self.shift_model, self.shift_start_s, self.shift_end_s),
            ("drift", self.drift_model, self.drift_start_s, self.drift_end_s),
            ("burst", self.burst_model, self.burst_start_s, self.burst_end_s),
        )
        return [
            Running(
                kind,
                model,
                cycle,
                start + lo,
                start + hi,
                factor=self.shift_factor,
                per_s=self.drift_per_s,
            )
            for kind, model, lo, hi in scripts
            if lo <= p < hi
        ]

    def effect(self, model: str, elapsed: float) -> Effect:
        """What a request to ``model`` arriving at ``elapsed`` suffers."""
        p = self.phase(elapsed)
        factor, limited = 1.0, False
        for r in self.running(elapsed):
            if r.model != model:
                continue
            if r.kind == "shift":
                factor *= r.factor
            elif r.kind == "drift":
                factor *= 1.0 + r.per_s * (p - self.drift_start_s)
            else:
                limited = True
        return Effect(factor, limited)

    def describe(self, elapsed: float, names: Mapping[str, str] | None = None) -> str | None:
        """The incidents active at ``elapsed``, in words naming the affected targets (``names``:
        model -> target name), or None."""
        return incident_words(self.running(elapsed), elapsed, names)


def event_words(event: Mapping[str, Any] | None, now: float) -> str | None:
    """The words of a ``demo`` monitor event at wall-clock ``now`` (None: no event yet): what
    the banner shows, its countdowns kept current between events (which come only when an
    incident starts or ends)."""
    items = (event or {}).get("running") or []
    running = [
        Running(
            r["kind"],
            r["model"],
            int(r.get("cycle", 0)),
            float(r["since_ts"]),
            float(r["until_ts"]),
            factor=float(r.get("factor", 1.0)),
            per_s=float(r.get("per_s", 0.0)),
        )
        for r in items
    ]
    return incident_words(running, now, {r["model"]: r["target"] for r in items if "target" in r})
