"""Budget periods: the UTC day and the calendar month."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

PERIODS: tuple[str, ...] = ("day", "month")

#: "Per month" (probe overhead, recommendation savings) means 30 days.
DAYS_PER_MONTH = 30
SECONDS_PER_MONTH = DAYS_PER_MONTH * 86400.0


def _utc(moment: datetime) -> datetime:
    """Naive datetimes are UTC; aware ones are converted."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the UTC day or calendar month containing ``now`` (aware UTC datetimes)."""
    now = _utc(now)
    if period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    if period == "month":
        start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
        return start, end
    raise ValueError(f'period must be "day" or "month", got {period!r}')
