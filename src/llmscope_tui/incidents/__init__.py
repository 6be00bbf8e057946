"""Incidents: what a person is told (DESIGN 6b), built from the charts' evidence and the errors.

Nelson rule firings are evidence drawn on the charts; an incident is one sound, large enough
change of a target's behaviour, one per target at a time. Plain Python, no Textual.
"""

from llmscope_tui.incidents.detector import ShiftDetector, ShiftStatus, t_to_z
from llmscope_tui.incidents.engine import IncidentChange, IncidentEngine, PolicySettings
from llmscope_tui.incidents.errors import (
    ErrorDetector,
    ErrorStatus,
    burst_threshold,
    down_threshold,
)
from llmscope_tui.incidents.model import METRIC_SHORT, Incident, MetricEffect

__all__ = [
    "METRIC_SHORT",
    "ErrorDetector",
    "ErrorStatus",
    "Incident",
    "IncidentChange",
    "IncidentEngine",
    "MetricEffect",
    "PolicySettings",
    "ShiftDetector",
    "ShiftStatus",
    "burst_threshold",
    "down_threshold",
    "t_to_z",
]
