"""Money and percentages as text: :func:`format_usd` for every face, ``_percent`` for messages."""

from __future__ import annotations

import math


def format_usd(value: float) -> str:
    """$1,234 / $12.34 / $0.42 / $0.0042: two significant digits below a cent."""
    if math.isnan(value):
        return "$?"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value >= 1000:
        return f"{sign}${value:,.0f}"
    if value >= 0.01 or value == 0:
        return f"{sign}${value:,.2f}"
    digits = min(-math.floor(math.log10(value)) + 1, 8)
    return f"{sign}${value:.{digits}f}"


def _percent(fraction: float) -> str:
    pct = fraction * 100
    return f"{pct:.0f} %" if abs(pct) >= 10 or pct == 0 else f"{pct:.1f} %"
