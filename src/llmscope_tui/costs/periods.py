"""Budget periods (UTC day, calendar month) and end-of-period spend projections."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

PERIODS: tuple[str, ...] = ("day", "month")


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


def projected_period_spend(
    spent: float,
    period_start: datetime,
    period_end: datetime,
    now: datetime,
    *,
    min_elapsed: timedelta | None = None,
) -> float:
    """Spend at the end of the period if the rate so far continues.

    projected = spent + (spent / elapsed) x (end - now). So that the first minutes of a period
    do not extrapolate one early call into a fortune, elapsed is taken as at least
    ``min_elapsed``, by default the larger of one hour and 1/30 of the period (one day for a
    month, one hour for a day): a projection made on the first day of a month is at most about
    30 x the spend so far. After the period (or with nothing spent) it is the spend itself.
    """
    start, end, now = _utc(period_start), _utc(period_end), _utc(now)
    spent = float(spent)
    total = (end - start).total_seconds()
    if spent <= 0 or total <= 0 or now >= end:
        return spent
    floor = max(3600.0, total / 30) if min_elapsed is None else max(min_elapsed.total_seconds(), 1e-9)
    elapsed = max((now - start).total_seconds(), floor)
    remaining = min((end - now).total_seconds(), total)
    return spent + spent / elapsed * remaining
