"""Alerts: incidents and budget thresholds -> the log, hooks and a webhook.

The monitor builds alerts with :func:`incident_alert`, :func:`budget_alert` and
:func:`budget_event_alert` and hands them to an :class:`AlertRouter`, which delivers them. The
modules, each with one job:

``alert``
    :class:`Alert` (one plain-English line for a human, plus facts for machines) and the
    constructors above.
``router``
    :class:`AlertRouter`: the per-key cooldown, the log sink, hooks, and the bounded webhook
    queue drained in order by one task.
``webhook``
    :class:`~llmscope_tui.alerts.webhook.Webhook`: one POST per attempt, bounded in time,
    retried with backoff (stamina) when worth it; :func:`redact_url` keeps the URL secret.

Nothing here imports Textual.
"""

from __future__ import annotations

from llmscope_tui.alerts.alert import (
    Alert,
    AlertKind,
    Severity,
    budget_alert,
    budget_event_alert,
    incident_alert,
)
from llmscope_tui.alerts.router import AlertRouter
from llmscope_tui.alerts.webhook import redact_url
from llmscope_tui.durations import format_duration

__all__ = [
    "Alert",
    "AlertKind",
    "AlertRouter",
    "Severity",
    "budget_alert",
    "budget_event_alert",
    "format_duration",
    "incident_alert",
    "redact_url",
]
