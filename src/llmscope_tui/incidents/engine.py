"""Evidence -> incidents: one per target at a time, opened, updated and closed with hysteresis.

The engine is fed every probe sample (with the chart's z of each metric and the Nelson rule
firings on it) and answers with the incident changes to publish. Per target it runs a
:class:`ShiftDetector` per metric and an :class:`ErrorDetector`; an incident opens when any of
them raises a sound and large enough change, gathers the metrics, rules and peak |z| while it
lasts, learns its scope (this target, its provider, every target), and closes once every
detector has been quiet for ``close_after`` probes in a row. Pure bookkeeping, no I/O: the
monitor stores and publishes what it returns.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from llmscope_tui.incidents.detector import ShiftDetector
from llmscope_tui.incidents.errors import ErrorDetector
from llmscope_tui.incidents.model import (
    HIGHER_IS_WORSE,
    Incident,
    IncidentState,
    MetricEffect,
)
from llmscope_tui.model import not_the_providers_fault

#: An open incident's effects are republished when one moves by this much (0.1 = 10 points).
EFFECT_STEP = 0.10
#: ... and its rules or peak at most this often (probes of the target), so a new incident's
#: first seconds are one or two updates, not one per rule.
UPDATE_EVERY = 5
#: Incidents whose changes began within this many of the slowest target's intervals (and at
#: least SCOPE_MIN_S) of each other are taken to have one cause.
SCOPE_INTERVALS = 6.0
SCOPE_MIN_S = 10.0
_SCOPE_RANK = {"target": 0, "provider": 1, "all": 2}


@dataclass(frozen=True, slots=True)
class PolicySettings:
    """The alerting policy's knobs ([spc] in the config; docs/spc.md says how each was chosen)."""

    baseline_samples: int = 100
    min_effect: float = 0.15
    cusum_k: float = 0.9
    cusum_h: float = 5.0
    close_after: int = 20
    accept_after_s: float | None = None
    metrics: tuple[str, ...] = ("ttft_ms", "latency_ms", "itl_ms", "tps")
    #: "worse": only changes for the worse open incidents (slower, or fewer tokens/s);
    #: "both": any change, a speed-up too
    alert_on: str = "worse"
    #: the smallest change of a time metric that counts, in ms (besides min_effect)
    min_change_ms: float = 2.0

    @classmethod
    def from_spc(cls, spc: Any) -> PolicySettings:
        return cls(
            baseline_samples=spc.baseline_samples,
            min_effect=spc.min_effect,
            cusum_k=spc.cusum_k,
            cusum_h=spc.cusum_h,
            close_after=spc.close_after,
            accept_after_s=spc.accept_after_s,
            metrics=tuple(spc.metrics),
            alert_on=spc.alert_on,
            min_change_ms=spc.min_change_ms,
        )


@dataclass(frozen=True, slots=True)
class IncidentChange:
    """One thing to publish: an incident opened, updated or closed at ``ts``.

    ``accepted``: it closed because the shift held for accept_after, so the target's charts
    must start a new baseline (the monitor does that). ``escalation``: for an update that should
    reach a person ("down", "errors", "scope"), None for one that only refreshes figures."""

    state: IncidentState
    incident: Incident
    ts: float
    accepted: bool = False
    escalation: str | None = None

    def event(self) -> dict[str, Any]:
        return self.incident.to_event(self.state, self.ts)


@dataclass(slots=True)
class _Target:
    name: str
    provider: str
    detectors: dict[str, ShiftDetector]
    errors: ErrorDetector = field(default_factory=ErrorDetector)
    incident: Incident | None = None
    quiet: int = 0
    since_publish: int = 0
    dirty: bool = False
    published: dict[str, float] = field(default_factory=dict)
    escalation: str | None = None
    warm: bool = False  # a probe of this target succeeded in this run
    last_alarm: float | None = None  # when the open incident's change was last seen
    firings: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=512))
    zs: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=512))


Row = tuple[float, bool, str | None, Mapping[str, float | None]]  # (ts, ok, error_kind, metrics)


class IncidentEngine:
    """Incidents for every target (module docstring). Call :meth:`observe` for every probe."""

    def __init__(self, policy: PolicySettings, targets: Iterable[Any] = (), *, next_id: int = 1) -> None:
        self.policy = policy
        self.next_id = next_id
        self._targets: dict[str, _Target] = {}
        self._enabled: set[str] = set()
        self._groups: dict[str, frozenset[str]] = {}
        self._window_s = SCOPE_MIN_S
        self.configure(targets)

    def configure(self, targets: Iterable[Any]) -> None:
        """Who is monitored: scope needs the enabled targets, grouped by provider and origin."""
        enabled = [t for t in targets if getattr(t, "enabled", True)]
        self._enabled = {t.name for t in enabled}
        by_group: dict[tuple[str, str], set[str]] = {}
        for t in enabled:
            by_group.setdefault((t.provider, _origin(t.base_url)), set()).add(t.name)
            self._state(t.name, t.provider)
        self._groups = {name: frozenset(group) for group in by_group.values() for name in group}
        slowest = max((float(t.interval_s) for t in enabled), default=10.0)
        self._window_s = max(SCOPE_MIN_S, SCOPE_INTERVALS * slowest)

    def _state(self, name: str, provider: str = "") -> _Target:
        state = self._targets.get(name)
        if state is None:
            p = self.policy
            detectors = {
                m: ShiftDetector(
                    p.baseline_samples,
                    k=p.cusum_k,
                    h=p.cusum_h,
                    min_effect=p.min_effect,
                    direction=0 if p.alert_on == "both" else (1 if HIGHER_IS_WORSE.get(m, True) else -1),
                    min_change=p.min_change_ms if m.endswith("_ms") else 0.0,
                )
                for m in p.metrics
            }
            state = self._targets[name] = _Target(name, provider, detectors)
        elif provider and not state.provider:
            state.provider = provider
        return state

    # -- queries -----------------------------------------------------------------------------

    def open_incidents(self) -> list[Incident]:
        return [s.incident for s in self._targets.values() if s.incident is not None and s.incident.open]

    def incident(self, target: str) -> Incident | None:
        state = self._targets.get(target)
        return state.incident if state is not None else None

    def detector(self, target: str, metric: str) -> ShiftDetector | None:
        state = self._targets.get(target)
        return state.detectors.get(metric) if state is not None else None

    def seed(self, target: str, metric: str, values: Sequence[float]) -> bool:
        """A metric's reference from a saved baseline (``--baseline-from``): its detector judges
        the target's next probe. False for an unknown target or metric, or too few values."""
        state = self._targets.get(target)
        detector = state.detectors.get(metric) if state is not None else None
        return detector.seed(values) if detector is not None else False

    # -- feeding -----------------------------------------------------------------------------

    def observe(
        self,
        sample: Any,
        zs: Mapping[str, float] | None = None,
        rules: Iterable[int] = (),
    ) -> list[IncidentChange]:
        """One probe sample (ok or not), the chart z of each metric on it and the Nelson rules it
        fired. Cancelled and internal failures and application usage are not the provider's
        behaviour: ignored."""
        if not_the_providers_fault(sample.error_kind) or getattr(sample, "source", "probe") != "probe":
            return []
        state = self._state(sample.target, sample.provider)
        ts = float(sample.ts)
        metrics = {m: sample.metric(m) for m in state.detectors} if sample.ok else {}
        if sample.ok and not state.warm:
            # A run's first good probe of a target carries its start: a new connection, a cold
            # process. It is stored and charted, but is no evidence of the provider's behaviour.
            state.warm, metrics = True, {}
        for rule in rules:
            state.firings.append((ts, int(rule)))
        if zs:
            state.zs.append((ts, max(abs(z) for z in zs.values())))
        return self._step(state, ts, bool(sample.ok), sample.error_kind, metrics, silent=False)

    def _step(
        self,
        state: _Target,
        ts: float,
        ok: bool,
        error_kind: str | None,
        metrics: Mapping[str, float | None],
        *,
        silent: bool,
    ) -> list[IncidentChange]:
        incident = state.incident
        hold = incident is not None
        errors = state.errors.add(ok, error_kind, hold=hold)
        alarms: dict[str, Any] = {}
        for metric, value in metrics.items():
            if value is None:
                continue
            status = state.detectors[metric].add(value, ts, hold=hold)
            if status.alarm:
                alarms[metric] = status
        changes: list[IncidentChange] = []
        if incident is None:
            if not alarms and not errors.active:
                return changes
            incident = self._open(state, ts, alarms, errors, silent)
            if not silent:
                changes.append(IncidentChange("opened", incident, ts))
                changes.extend(self._rescope(ts, exclude=state.name))
            return changes
        structural = self._grow(state, incident, ts, alarms, errors)
        if alarms or errors.active:
            state.quiet = 0
        else:
            state.quiet += 1
        if state.quiet >= self.policy.close_after:
            return [] if silent else [self._close(state, ts, "recovered")]
        accept = self.policy.accept_after_s
        if (
            accept is not None
            and alarms
            and not errors.active
            and incident.error_kind is None
            and ts - incident.start_ts >= accept
        ):
            change = self._close(state, ts, "accepted", accepted=True)
            for detector in state.detectors.values():
                detector.reset()
            return [] if silent else [change]
        if silent:
            return changes
        state.since_publish += 1
        if structural or (state.dirty and state.since_publish >= UPDATE_EVERY):
            changes.append(self._publish(state, incident, ts))
        return changes

    def _open(self, state: _Target, ts: float, alarms: Mapping[str, Any], errors: Any, silent: bool) -> Incident:
        starts = [s.start_ts for s in alarms.values() if s.start_ts is not None]
        if errors.active:
            starts.append(ts)  # the window's first failure is not kept; the judgement time is close
        start = min(starts) if starts else ts
        incident = Incident(
            id=0 if silent else self.next_id,
            target=state.name,
            provider=state.provider,
            opened_ts=ts,
            start_ts=min(start, ts),
        )
        if not silent:
            self.next_id += 1
        state.errors.hold_window()
        state.incident, state.quiet, state.since_publish, state.dirty = incident, 0, 0, False
        self._grow(state, incident, ts, alarms, errors)
        state.escalation, state.dirty = None, False
        state.published = {m: e.effect for m, e in incident.metrics.items()}
        return incident

    def _grow(self, state: _Target, incident: Incident, ts: float, alarms: Mapping[str, Any], errors: Any) -> bool:
        """Fold this probe's evidence into the open incident; True when its shape changed (a new
        metric, errors, going down) and the change must be published at once."""
        structural = False
        if alarms or errors.active:
            state.last_alarm = ts
        for metric in alarms:
            if metric not in incident.metrics:
                incident.metrics[metric] = MetricEffect(metric, 0.0, None, None)
                structural = True
        for metric, effect in incident.metrics.items():
            value, base, now = state.detectors[metric].effect_since(incident.start_ts, state.last_alarm)
            effect.effect, effect.baseline, effect.current = value, base, now
            if abs(value - state.published.get(metric, value)) >= EFFECT_STEP:
                state.dirty = True
        if errors.active:  # a stray failure during a latency incident is not an error incident
            if errors.down and not incident.down:
                structural, state.escalation = True, "down"
            elif incident.error_kind is None:
                structural, state.escalation = True, "errors"
            elif incident.error_kind != errors.kind:
                structural = True
            incident.error_kind = errors.kind
            incident.down = incident.down or errors.down
        # the evidence while the change was seen: the quiet probes before the close add none
        until = state.last_alarm if state.last_alarm is not None else ts
        rules = {rule for t, rule in state.firings if incident.start_ts <= t <= until}
        if not rules <= incident.rules:
            incident.rules |= rules
            state.dirty = True
        peak = max((z for t, z in state.zs if incident.start_ts <= t <= until), default=0.0)
        if peak >= incident.peak_z + 1.0 or (incident.peak_z == 0.0 and peak > 0):
            state.dirty = True
        incident.peak_z = max(incident.peak_z, peak)
        return structural

    def _publish(self, state: _Target, incident: Incident, ts: float) -> IncidentChange:
        incident.updated_ts = ts
        escalation, state.escalation = state.escalation, None
        state.since_publish, state.dirty = 0, False
        state.published = {m: e.effect for m, e in incident.metrics.items()}
        return IncidentChange("updated", incident, ts, escalation=escalation)

    def _close(self, state: _Target, ts: float, resolution: str, *, accepted: bool = False) -> IncidentChange:
        incident = state.incident
        assert incident is not None
        incident.closed_ts, incident.resolution = ts, resolution
        state.incident, state.quiet = None, 0
        return IncidentChange("closed", incident, ts, accepted=accepted)

    def _rescope(self, ts: float, exclude: str | None = None) -> list[IncidentChange]:
        """Widen the scope of open incidents whose changes began together; an update for each that grew
        (except ``exclude``, whose "opened" event already carries its scope)."""
        open_now = {s.name: s.incident for s in self._targets.values() if s.incident is not None and s.incident.open}
        changes = []
        for name, incident in open_now.items():
            peers = {n for n, other in open_now.items() if abs(other.start_ts - incident.start_ts) <= self._window_s}
            scope = "target"
            group = self._groups.get(name, frozenset({name}))
            distinct_groups = len(set(self._groups.values())) >= 2
            if len(self._enabled) >= 2 and distinct_groups and self._enabled <= peers:
                scope = "all"
            elif len(group) >= 2 and group <= peers:
                scope = f"provider:{incident.provider}"
            if _SCOPE_RANK[scope.split(":")[0]] > _SCOPE_RANK[incident.scope.split(":")[0]]:
                incident.scope = scope
                if name != exclude:
                    state = self._targets[name]
                    state.escalation = "scope"
                    changes.append(self._publish(state, incident, ts))
        return changes

    # -- rebaseline and restart ----------------------------------------------------------------

    def rebaseline(self, target: str | None, ts: float, resolution: str = "rebaselined") -> list[IncidentChange]:
        """New references for one target (or all): its open incident closes with ``resolution``."""
        changes = []
        for state in list(self._targets.values()):
            if target is not None and state.name != target:
                continue
            if state.incident is not None:
                changes.append(self._close(state, ts, resolution))
            for detector in state.detectors.values():
                detector.reset()
        return changes

    def restore(self, open_incidents: Sequence[Incident], history: Mapping[str, Sequence[Row]]) -> None:
        """After a restart: replay each target's stored probes (oldest first) so the references,
        sums and error windows are as they were, then take up the incidents that were open."""
        for name, rows in history.items():
            state = self._state(name)
            for ts, ok, error_kind, metrics in rows:
                if not_the_providers_fault(error_kind):
                    continue  # as observe() does
                self._step(state, float(ts), bool(ok), error_kind, metrics if ok else {}, silent=True)
            state.incident, state.quiet = None, 0
            if not any(i.target == name for i in open_incidents):
                for detector in state.detectors.values():
                    detector.forget_evidence()
        for incident in open_incidents:
            state = self._state(incident.target, incident.provider)
            state.incident, state.quiet = incident, 0
            state.published = {m: e.effect for m, e in incident.metrics.items()}
            self.next_id = max(self.next_id, incident.id + 1)


def _origin(url: str | None) -> str:
    try:
        parts = urlsplit(url or "")
        return f"{parts.scheme}://{parts.hostname}:{parts.port or ''}"
    except ValueError:
        return str(url)
