"""What the TUI knows, built from the monitor's events and the periodic store reads.

Plain Python (no Textual): the app feeds every event to :meth:`ViewState.apply` (O(1) each) and
the widgets read from it on the refresh timer. Keeping this apart from the widgets makes it
testable without a screen and keeps per-event work tiny.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llmscope_tui.incidents import Incident
from llmscope_tui.model import not_the_providers_fault

METRICS: tuple[str, ...] = ("ttft_ms", "latency_ms", "itl_ms", "tps")
METRIC_LABEL: dict[str, str] = {
    "ttft_ms": "TTFT ms",
    "latency_ms": "latency ms",
    "itl_ms": "ITL ms",
    "tps": "tokens/s",
}
#: Points kept per target and metric for the sparklines and the control chart.
HISTORY = 600
#: Recent attempts that decide a target's status.
RECENT = 10
#: Incidents the Incidents pane keeps (newest); the data file holds them all.
MAX_INCIDENTS = 200

#: status -> (symbol, word). The word is always shown: no state is told by colour alone.
STATUS: dict[str, tuple[str, str]] = {
    "up": ("●", "up"),
    "degraded": ("▲", "degraded"),
    "down": ("✖", "down"),
    "waiting": ("…", "waiting"),
    "disabled": ("-", "disabled"),
}


@dataclass(slots=True)
class TargetView:
    name: str
    provider: str = ""
    model: str = ""
    enabled: bool = True
    samples: int = 0
    failures: int = 0
    recent: deque[bool] = field(default_factory=lambda: deque(maxlen=RECENT))
    last: dict[str, float | None] = field(default_factory=dict)
    last_error: str | None = None
    last_ts: float | None = None
    #: metric -> deque of (ts, value), successful samples only (what SPC charts)
    series: dict[str, deque[tuple[float, float]]] = field(default_factory=dict)
    #: metric -> deque of (ts, value, rule) rule firings
    firings: dict[str, deque[tuple[float, float, int]]] = field(default_factory=dict)
    cost_live: float = 0.0  # spend seen in events since the last store read

    def configure(self, provider: str, model: str, disabled_reason: str | None) -> None:
        """What the configuration says of the target. A disabled one shows its reason where a
        target's last error goes (``OPENAI_API_KEY is not set``): it never probes, so nothing
        replaces it."""
        self.provider, self.model = provider, model
        self.enabled = disabled_reason is None
        if disabled_reason is not None:
            self.last_error = disabled_reason

    def status(self, incident: Incident | None = None) -> str:
        """down: the last 3 probes failed; degraded: an open incident that is bad news (not a
        speed-up); a stray failure or rule firing alone changes nothing (DESIGN 6b)."""
        if not self.enabled:
            return "disabled"
        if not self.recent:
            return "waiting"
        recent = list(self.recent)
        if not any(recent[-3:]):
            return "down"
        if incident is not None and incident.open and incident.severity != "info":
            return "degraded"
        return "up"

    @property
    def error_rate(self) -> float | None:
        """Share of failed probes among the recent ones."""
        if not self.recent:
            return None
        return 1.0 - sum(self.recent) / len(self.recent)


@dataclass(slots=True)
class ViewState:
    """Everything the panes show that comes from events."""

    targets: dict[str, TargetView] = field(default_factory=dict)
    #: incident id -> the incident as its last event described it, oldest first
    incidents: dict[int, Incident] = field(default_factory=dict)
    demo: bool = False
    #: the latest ``demo`` event: which scripted incident runs (the demo banner's words)
    demo_event: dict[str, Any] | None = None
    config: str | None = None
    db: str | None = None
    #: who stamps t0 and response arrivals (the start event's "clock"): "kernel", "kernel-rx" or "user"
    clock: str | None = None
    samples: int = 0
    errors: int = 0
    violations: int = 0
    stopped: str | None = None
    last_error: str | None = None
    alerts: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=50))
    budget_events: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=50))
    rebaselines: int = 0
    #: monotonic times of recent samples, for probes/s
    _arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=4096))
    _first_arrival: float | None = None
    version: int = 0  # bumped by every change, so widgets can skip identical refreshes
    incidents_version: int = 0  # bumped when an incident opens, changes or closes

    def target(self, name: str) -> TargetView:
        view = self.targets.get(name)
        if view is None:
            view = self.targets[name] = TargetView(name)
        return view

    def open_incident(self, target: str) -> Incident | None:
        """The target's open incident (one at a time), or None."""
        for incident in reversed(self.incidents.values()):
            if incident.target == target and incident.open:
                return incident
        return None

    @property
    def open_incidents(self) -> int:
        return sum(1 for i in self.incidents.values() if i.open)

    def probes_per_s(self, now: float | None = None, window: float = 10.0) -> float:
        now = time.monotonic() if now is None else now
        arrivals = self._arrivals
        while arrivals and arrivals[0] < now - window:
            arrivals.popleft()
        if self._first_arrival is None:
            return 0.0
        span = min(window, max(1.0, now - self._first_arrival))  # a fresh start is not diluted
        return len(arrivals) / span

    def backfill(
        self,
        series: dict[tuple[str, str], list[tuple[float, float]]],
        firings: list[Any],
        incidents: Sequence[Incident] = (),
    ) -> None:
        """Put stored history in front of what the live events brought (older points only), and
        the incidents from the data file (the live events' version of one wins)."""
        if incidents:
            restored = {i.id: i for i in incidents if i.id not in self.incidents}
            self.incidents = dict(sorted({**restored, **self.incidents}.items(), key=lambda kv: kv[1].opened_ts))
            while len(self.incidents) > MAX_INCIDENTS:
                self.incidents.pop(next(iter(self.incidents)))
            self.incidents_version += 1
        for (name, metric), points in series.items():
            view = self.target(name)
            live = view.series.get(metric) or deque()
            first_live = live[0][0] if live else float("inf")
            merged: deque[tuple[float, float]] = deque((p for p in points if p[0] < first_live), maxlen=HISTORY)
            merged.extend(live)
            view.series[metric] = merged
        first_firing = {
            (name, metric): f[0][0] for name, view in self.targets.items() for metric, f in view.firings.items() if f
        }
        stored: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
        for v in firings:
            if v.ts < first_firing.get((v.target, v.metric), float("inf")):
                stored.setdefault((v.target, v.metric), []).append((float(v.ts), float(v.value), int(v.rule)))
        for (name, metric), older in stored.items():
            view = self.target(name)
            view.firings[metric] = deque(sorted([*older, *view.firings.get(metric, ())]), maxlen=HISTORY)
        self.version += 1

    def apply(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(event)
            self.version += 1

    # -- per event ----------------------------------------------------------------------------

    def _on_start(self, event: dict[str, Any]) -> None:
        self.demo = bool(event.get("demo"))
        self.config = event.get("config")
        self.db = event.get("db")
        self.clock = event.get("clock")
        self.stopped = None
        for t in event.get("targets", []):
            reason = t.get("disabled_reason") or (None if t.get("enabled", True) else "disabled")
            self.target(t["name"]).configure(t.get("provider", ""), t.get("model", ""), reason)

    def _on_sample(self, event: dict[str, Any]) -> None:
        if event.get("source", "probe") != "probe":
            return
        view = self.target(event["target"])
        ok = bool(event.get("ok"))
        theirs = ok or not not_the_providers_fault(event.get("error_kind"))
        view.samples += 1
        if theirs:  # a stop or a bug of ours says nothing of the provider: not `down`, no error rate
            view.recent.append(ok)
        view.last_ts = event.get("ts")
        self.samples += 1
        arrived = time.monotonic()
        self._arrivals.append(arrived)
        if self._first_arrival is None:
            self._first_arrival = arrived
        if event.get("cost_usd"):
            view.cost_live += float(event["cost_usd"])
        if not ok:
            view.failures += 1
            if theirs:
                self.errors += 1
            view.last_error = event.get("error_kind")
            return
        view.last_error = None
        ts = float(event.get("ts") or 0.0)
        for metric in METRICS:
            value = event.get(metric)
            view.last[metric] = value
            if value is not None:
                series = view.series.get(metric)
                if series is None:
                    series = view.series[metric] = deque(maxlen=HISTORY)
                series.append((ts, float(value)))

    def _on_violation(self, event: dict[str, Any]) -> None:
        self.violations += 1
        view = self.target(event["target"])
        firings = view.firings.get(event["metric"])
        if firings is None:
            firings = view.firings[event["metric"]] = deque(maxlen=HISTORY)
        firings.append((float(event["ts"]), float(event["value"]), int(event["rule"])))

    def _on_incident(self, event: dict[str, Any]) -> None:
        self.incidents_version += 1
        incident = Incident.from_event(event)
        self.incidents.pop(incident.id, None)  # re-inserted: the dict stays in opening order
        self.incidents[incident.id] = incident
        self.incidents = dict(sorted(self.incidents.items(), key=lambda kv: kv[1].opened_ts))
        while len(self.incidents) > MAX_INCIDENTS:
            self.incidents.pop(next(iter(self.incidents)))

    def _on_rebaseline(self, event: dict[str, Any]) -> None:
        self.rebaselines += 1

    def _on_alert(self, event: dict[str, Any]) -> None:
        self.alerts.append(event)

    def _on_budget(self, event: dict[str, Any]) -> None:
        self.budget_events.append(event)

    def _on_error(self, event: dict[str, Any]) -> None:
        self.last_error = str(event.get("message", ""))

    def _on_demo(self, event: dict[str, Any]) -> None:
        self.demo_event = event

    def _on_stop(self, event: dict[str, Any]) -> None:
        self.stopped = str(event.get("reason", "stopped"))
