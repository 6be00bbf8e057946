"""What an incident is: plain data, its log event (DESIGN 6b) and its one-line text."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from llmscope_tui.durations import format_duration

IncidentState = Literal["opened", "updated", "closed"]
Severity = Literal["info", "warning", "critical"]

#: Short names of the charted metrics, for one-line texts.
METRIC_SHORT: dict[str, str] = {"ttft_ms": "TTFT", "latency_ms": "latency", "itl_ms": "ITL", "tps": "tok/s"}
METRIC_UNIT: dict[str, str] = {"ttft_ms": "ms", "latency_ms": "ms", "itl_ms": "ms", "tps": "tok/s"}
#: For these a rise is bad news; for tps a fall is.
HIGHER_IS_WORSE: dict[str, bool] = {"ttft_ms": True, "latency_ms": True, "itl_ms": True, "tps": False}


@dataclass(slots=True)
class MetricEffect:
    """One metric of an incident: how far its median moved from the reference median."""

    metric: str
    effect: float  # now / baseline - 1 (+0.82 = 82 % higher)
    baseline: float | None
    current: float | None

    @property
    def worse(self) -> bool:
        return (self.effect > 0) == HIGHER_IS_WORSE.get(self.metric, True)

    def label(self) -> str:
        """``TTFT +82 %``."""
        return f"{METRIC_SHORT.get(self.metric, self.metric)} {self.effect * 100:+.0f} %"

    def as_dict(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "effect": _round(self.effect, 4),
            "baseline": _round(self.baseline, 4),
            "current": _round(self.current, 4),
        }


@dataclass(slots=True)
class Incident:
    """One per target at a time (DESIGN 6b). Times are UTC epoch seconds.

    start_ts: the estimated change point (where the evidence began); opened_ts: when it was
    judged real; closed_ts and resolution ("recovered", "accepted", "rebaselined") once over.
    scope: "target", "provider:<name>" or "all".
    """

    id: int
    target: str
    provider: str
    opened_ts: float
    start_ts: float
    scope: str = "target"
    metrics: dict[str, MetricEffect] = field(default_factory=dict)
    rules: set[int] = field(default_factory=set)
    peak_z: float = 0.0
    error_kind: str | None = None
    down: bool = False
    errors: int = 0  # failures seen while it was open
    updated_ts: float | None = None
    closed_ts: float | None = None
    resolution: str | None = None

    @property
    def open(self) -> bool:
        return self.closed_ts is None

    @property
    def severity(self) -> Severity:
        if self.down:
            return "critical"
        if self.error_kind is not None or any(m.worse for m in self.metrics.values()):
            return "warning"
        return "info"

    def duration(self, now: float) -> float:
        return max(0.0, (self.closed_ts if self.closed_ts is not None else now) - self.start_ts)

    def to_event(self, state: IncidentState, ts: float) -> dict[str, Any]:
        """The headless log line (DESIGN 6b), plus fields a reader of the log will want."""
        return {
            "event": "incident",
            "state": state,
            "id": self.id,
            "target": self.target,
            "provider": self.provider,
            "scope": self.scope,
            "severity": self.severity,
            "metrics": [m.as_dict() for m in self.metrics.values()],
            "rules": sorted(self.rules),
            "error_kind": self.error_kind,
            "down": self.down,
            "peak_z": _round(self.peak_z, 2),
            "start_ts": self.start_ts,
            "opened_ts": self.opened_ts,
            "closed_ts": self.closed_ts,
            "resolution": self.resolution,
            "text": self.text(ts),
            "ts": ts,
        }

    @classmethod
    def from_event(cls, event: dict[str, Any]) -> Incident:
        """Back from a log event or a stored row (the same keys)."""
        incident = cls(
            id=int(event["id"]),
            target=str(event["target"]),
            provider=str(event.get("provider") or ""),
            opened_ts=float(event["opened_ts"]),
            start_ts=float(event.get("start_ts") or event["opened_ts"]),
            scope=str(event.get("scope") or "target"),
            rules={int(r) for r in event.get("rules") or ()},
            peak_z=float(event.get("peak_z") or 0.0),
            error_kind=event.get("error_kind"),
            down=bool(event.get("down")),
            updated_ts=event.get("updated_ts"),
            closed_ts=event.get("closed_ts"),
            resolution=event.get("resolution"),
        )
        for m in event.get("metrics") or ():
            incident.metrics[m["metric"]] = MetricEffect(m["metric"], float(m["effect"]), m.get("baseline"), m.get("current"))
        return incident

    # -- words --------------------------------------------------------------------------------

    def what(self) -> str:
        """``TTFT +82 % (520 -> 946 ms), latency +64 %; down: rate_limit``."""
        parts = []
        for i, m in enumerate(sorted(self.metrics.values(), key=lambda m: -abs(m.effect))):
            text = m.label()
            if i == 0 and m.baseline is not None and m.current is not None:
                unit = METRIC_UNIT.get(m.metric, "")
                text += f" ({_num(m.baseline)} -> {_num(m.current)} {unit})"
            parts.append(text)
        if self.down:
            parts.append(f"down: {self.error_kind or 'errors'}")
        elif self.error_kind is not None:
            parts.append(f"errors: {self.error_kind}")
        return ", ".join(parts) or "a change"

    def scope_words(self) -> str:
        if self.scope == "all":
            return "every target changed at once: likely the network or this machine"
        if self.scope.startswith("provider:"):
            return f"every {self.scope.split(':', 1)[1]} target changed together: likely the provider"
        return ""

    def text(self, now: float) -> str:
        """One line for a person: who, what, since when, the evidence."""
        head = f"{self.target}: incident #{self.id}"
        if not self.open:
            how = {"accepted": "new level accepted", "rebaselined": "rebaselined"}.get(self.resolution or "", "recovered")
            return f"{head} closed after {format_duration(self.duration(now))} ({how}): {self.what()}"
        line = f"{head} {self.what()}"
        if self.rules:
            line += f"; rules {','.join(map(str, sorted(self.rules)))}"
        if self.peak_z:
            line += f"; peak |z| {self.peak_z:.1f}"
        words = self.scope_words()
        return f"{line} ({words})" if words else line


def _num(value: float) -> str:
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _round(value: float | None, digits: int) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)
