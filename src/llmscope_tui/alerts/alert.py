"""The Alert model and the alerts the monitor builds: incidents and budget thresholds.

An :class:`Alert` is one thing a human should hear about, with one plain-English line of text.
Incidents (DESIGN 6b: a sound and large enough change of a target, its errors, or it going down)
and budget thresholds are the only things that alert: single rule firings never do, so a person
is not flooded. The words of a budget alert are the costs package's (one place says them for
the log, the bar and the alert); this module only wraps them into an :class:`Alert`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from llmscope_tui.costs import budget_state, threshold_text

if TYPE_CHECKING:
    from llmscope_tui.costs import BudgetEvent
    from llmscope_tui.incidents import IncidentChange

AlertKind = Literal["incident", "budget"]
Severity = Literal["info", "warning", "critical"]

ALERT_KINDS: tuple[str, ...] = ("incident", "budget")
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")


@dataclass(frozen=True)
class Alert:
    """One thing to tell a human.

    kind: "incident" | "budget".
    target: the target it is about, or None (budgets).
    key: what the cooldown is keyed on, e.g. ``"incident:12:opened"``, ``"budget:all:0.8"``.
    text: one plain-English line, e.g. "demo-anthropic: incident #3 TTFT +82 % (520 -> 946 ms)".
    ts: epoch seconds of what happened. severity: "info" | "warning" | "critical".
    details: JSON-serialisable facts for machines (the log event and the webhook body carry it).
    """

    kind: AlertKind
    target: str | None
    key: str
    text: str
    ts: float
    severity: Severity = "warning"
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in ALERT_KINDS:
            kinds = ", ".join(ALERT_KINDS)
            raise ValueError(f"unknown alert kind {self.kind!r} (expected one of {kinds})")
        if self.severity not in SEVERITIES:
            levels = ", ".join(SEVERITIES)
            raise ValueError(f"unknown severity {self.severity!r} (expected one of {levels})")

    def to_event(self) -> dict[str, Any]:
        """The log event: ``{"event": "alert", "ts", "kind", "target", "severity", "text",
        "details"}``."""
        return {
            "event": "alert",
            "ts": self.ts,
            "kind": self.kind,
            "target": self.target,
            "severity": self.severity,
            "text": self.text,
            "details": dict(self.details),
        }

    def webhook_body(self) -> dict[str, Any]:
        """The Slack-compatible JSON body: ``text`` plus fields Slack ignores and others may use."""
        return {
            "text": self.text,
            "kind": self.kind,
            "target": self.target,
            "severity": self.severity,
            "ts": self.ts,
            "details": dict(self.details),
        }


def incident_alert(change: IncidentChange) -> Alert | None:
    """An incident that opened, grew worse or closed, as an alert; None for an update that
    does not change what a person should do (effects moving, a rule added).

    Opened: the incident's severity (critical when the target is down). Updated: only when it
    escalates (the target went down, errors joined a latency incident, the scope widened to the
    provider or to every target). Closed: info. Key: ``incident:<id>:<what>``.
    """
    incident = change.incident
    what: str = change.state
    if change.state == "updated":
        escalated = change.escalation
        if escalated is None:
            return None
        what = escalated
    severity: Severity = "info" if change.state == "closed" else incident.severity
    return Alert(
        kind="incident",
        target=incident.target,
        key=f"incident:{incident.id}:{what}",
        text=incident.text(change.ts),
        ts=float(change.ts),
        severity=severity,
        details={
            "id": incident.id,
            "state": change.state,
            "scope": incident.scope,
            "metrics": [m.as_dict() for m in incident.metrics.values()],
            "rules": sorted(incident.rules),
            "error_kind": incident.error_kind,
            "down": incident.down,
            "start_ts": incident.start_ts,
            "resolution": incident.resolution,
        },
    )


def _budget_severity(fraction: float) -> Severity:
    """The bar's state as an alert severity: critical at 100 %, warning from 80 %, else info."""
    state = budget_state(fraction)
    return "info" if state == "ok" else state


def budget_alert(
    name: str,
    threshold: float,
    spent: float,
    limit: float,
    period: str = "month",
    *,
    projected: float | None = None,
    ts: float | None = None,
) -> Alert:
    """A budget reached ``threshold`` (a fraction: 0.5, 0.8, 1.0) of its limit.

    Text: 'budget "all" reached 80 %: $40.00 of $50.00 this month, $61.20 projected'.
    Key: "budget:<name>:<threshold>". Severity: critical at 100 %, warning from 80 %, else info.
    """
    return Alert(
        kind="budget",
        target=None,
        key=f"budget:{name}:{threshold:g}",
        text=threshold_text(name, threshold, spent, limit, period, projected),
        ts=float(time.time() if ts is None else ts),
        severity=_budget_severity(threshold),
        details={
            "budget": name,
            "threshold": threshold,
            "spent_usd": spent,
            "limit_usd": limit,
            "period": period,
            "projected_usd": projected,
        },
    )


def budget_event_alert(event: BudgetEvent, *, ts: float | None = None) -> Alert:
    """A ``costs.BudgetEvent`` ("threshold", "paused" or "resumed") as an alert.

    Thresholds go through :func:`budget_alert`; "paused"/"resumed" keep the event's message,
    with key "budget:<name>:paused" / "budget:<name>:resumed".
    """
    status = event.status
    if event.kind == "threshold" and event.threshold is not None:
        return budget_alert(
            event.budget,
            event.threshold,
            status.spent,
            status.limit,
            status.period,
            projected=status.projected,
            ts=ts,
        )
    return Alert(
        kind="budget",
        target=None,
        key=f"budget:{event.budget}:{event.kind}",
        text=event.message,
        ts=float(time.time() if ts is None else ts),
        severity="warning" if event.kind == "paused" else "info",
        details={
            "budget": event.budget,
            "action": event.kind,
            "spent_usd": status.spent,
            "limit_usd": status.limit,
            "period": status.period,
        },
    )
