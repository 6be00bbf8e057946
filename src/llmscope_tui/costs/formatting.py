"""Money and percentages as text: :func:`format_usd` for every face, ``_percent`` for messages;
:func:`usd_column` for a column of amounts that must line up."""

from __future__ import annotations

import math
from collections.abc import Iterable

#: A column of amounts shows at most this many decimals: a hundredth of a cent. Finer than
#: that is noise beside the rest of the column; such an amount reads ``<$0.0001``.
COLUMN_DECIMALS = 4


def format_usd(value: float, decimals: int | None = None) -> str:
    """$1,234 / $12.34 / $0.42 / $0.0042: two significant digits below a cent; ``decimals``:
    exactly that many (the places :func:`usd_column` chose for a whole column)."""
    if math.isnan(value):
        return "$?"
    sign = "-" if value < 0 else ""
    value = abs(value)
    if decimals is None:
        decimals = _decimals(value)
    elif value and round(value, decimals) == 0:
        return f"{sign}<${10.0 ** -decimals:.{decimals}f}"
    return f"{sign}${value:,.{decimals}f}"


def _decimals(value: float) -> int:
    """Places that show an amount to two significant digits below a cent, cents above."""
    if value >= 1000:
        return 0
    if value >= 0.01 or value == 0:
        return 2
    return min(-math.floor(math.log10(value)) + 1, 8)


def usd_column(values: Iterable[float]) -> list[str]:
    """The amounts with one number of decimals for them all (so that right-aligned, their
    points line up): what the smallest non-zero amount needs for two significant digits, at
    least cents and at most :data:`COLUMN_DECIMALS`. ``$0.02`` beside ``$0.0023`` and
    ``$0.0000096`` reads ``$0.0200``, ``$0.0023``, ``<$0.0001``."""
    amounts = list(values)
    finite = [abs(v) for v in amounts if v and math.isfinite(v) and abs(v) < 1000]
    places = min(COLUMN_DECIMALS, max((_decimals(v) for v in finite), default=2))
    return [format_usd(v, places) for v in amounts]


def _percent(fraction: float) -> str:
    pct = fraction * 100
    return f"{pct:.0f} %" if abs(pct) >= 10 or pct == 0 else f"{pct:.1f} %"
