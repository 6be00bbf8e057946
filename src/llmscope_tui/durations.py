"""Human durations ("500ms", "15s", "2m", "24h", "7d", or a bare number of seconds)."""

from __future__ import annotations

import math
import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")


#: Longer than anything a monitor is asked to wait or keep (ten years): past it a value is a
#: typo (``99999999999999d``), and its arithmetic would overflow timers and dates.
MAX_DURATION_S = 3650 * 86400.0


def parse_duration(value: object, max_s: float = MAX_DURATION_S) -> float:
    """Seconds for a config or flag value, up to ``max_s``; ValueError with a readable reason
    (and the bound) otherwise."""
    # one ValueError for every bad shape (a bool, a list, "abc"): callers report the reason as is
    match = _PATTERN.match(value) if isinstance(value, str) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    elif match:
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    else:
        raise ValueError(f"expected a duration like 15s, 500ms or 2m, got {value!r}")
    if not 0 < seconds < math.inf:  # NaN fails too
        raise ValueError(f"a duration must be a positive number of seconds, got {value!r}")
    if seconds > max_s:
        raise ValueError(f"at most {format_duration(max_s)}, got {value!r}")
    return seconds


def format_duration(seconds: float) -> str:
    """45s, 2m 10s, 3h 5m, 2d 4h."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m" if minutes else f"{hours}h"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h" if hours else f"{days}d"
