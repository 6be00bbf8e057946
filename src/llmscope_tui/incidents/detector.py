"""One metric of one target: has its level really moved? A self-starting CUSUM on log(x).

Why this and not the Nelson rules: each rule fires by chance every few hundred points, so
alerting on them floods (docs/spc.md). A two-sided CUSUM accumulates evidence of a sustained
shift and stays quiet on isolated noise; on the log scale a shift is a ratio (2x is 2x at any
level) and latency's skew becomes a symmetric bell.

Why self-starting: limits estimated from a short baseline are uncertain, and charts whose sigma
came out small cry wolf (the false-alarm rate averaged over charts is dominated by them). Here
each new point is standardised against everything learned so far (the reference) with the
predictive Student t (Hawkins's self-starting CUSUM): under a stable process the standardised
values are N(0, 1) whatever the reference size, so the false-alarm rate is that of known limits
from the first point on, and detection sharpens as the reference grows. The reference starts
from the baseline points (the same first N successful samples as the control chart, minus those
beyond 3 sigma) and keeps learning from points that have aged ``lag`` probes while the detector
was quiet, up to ``REFERENCE_MAX`` points; then it is frozen, so a slow creep is measured against
where it started. A shifted point never enters it while the shift is being judged.

A shift only counts when it is large enough to matter: the median since the CUSUM run began must
differ from the reference median by at least ``min_effect`` (15 % by default), so a real but
tiny change (ITL 19.6 vs 20.2 ms) is left to the charts.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from statistics import median

#: Points the reference learns at most; then it is frozen.
REFERENCE_MAX = 1000
#: Standardised values are clipped here before they enter the sums, so one huge outlier (a cold
#: start) cannot make an incident alone.
CLIP = 3.5
#: A point joins the reference only after this many later probes found nothing.
LAG = 10
#: The smallest spread the reference may claim, on the log scale (1 %): a perfectly steady
#: series must not turn a 2 % wobble into an infinite z.
SD_FLOOR = 0.01
#: Points kept for the "now" median of a shift.
RECENT_MAX = 200


def t_to_z(t: float, df: float) -> float:
    """The standard normal quantile with the same tail probability as Student's t with df
    degrees of freedom (Wallace's approximation, within 0.01 for df >= 4 where |t| < 10)."""
    if df <= 0:
        return t
    z = (8.0 * df + 1.0) / (8.0 * df + 3.0) * math.sqrt(df * math.log1p(t * t / df))
    return z if t >= 0 else -z


@dataclass(frozen=True, slots=True)
class ShiftStatus:
    """What the detector makes of the latest point.

    alarm: +1 (up) or -1 (down) when a shift is statistically sound and at least min_effect,
    else 0. in_control: neither sum is past the decision interval. effect: now-median /
    reference-median - 1 for the run being judged; baseline/current: those medians in the
    metric's unit (effect, baseline and current are only worked out when a sum is past the
    decision interval: 0 and None otherwise). start_ts: when the run that carries the alarm
    began (the estimated change point).
    """

    alarm: int
    in_control: bool
    effect: float
    baseline: float | None
    current: float | None
    start_ts: float | None


_QUIET = ShiftStatus(0, True, 0.0, None, None, None)
_Start = tuple[int, float | None]


def _cusum(total: float, step: float, start: _Start | None, here: _Start, cap: float) -> tuple[float, _Start | None]:
    """One side's sum after one point, and where its run began (None once it is back at 0)."""
    total += step
    if total <= 0:
        return 0.0, None
    return min(total, cap), start if start is not None else here


class ShiftDetector:
    """Self-starting two-sided CUSUM on log(x) with an effect-size floor (module docstring)."""

    def __init__(
        self,
        baseline_size: int = 100,
        *,
        k: float = 0.9,
        h: float = 5.0,
        min_effect: float = 0.15,
        direction: int = 0,
        min_change: float = 0.0,
    ) -> None:
        """``direction``: +1 raises only rises, -1 only falls, 0 both (the sums run both ways
        regardless, so a change the other way still pauses the reference's learning).
        ``min_change``: the smallest change in the metric's own unit that counts, besides the
        relative ``min_effect`` (a 0.9 ms move of a 5.6 ms ITL is 16 %, and below what the
        timing resolves on a busy machine)."""
        if baseline_size < 2:
            raise ValueError(f"baseline_size must be at least 2, got {baseline_size}")
        if direction not in (-1, 0, 1):
            raise ValueError(f"direction must be -1, 0 or 1, got {direction}")
        self.baseline_size = int(baseline_size)
        self.k, self.h, self.min_effect = float(k), float(h), float(min_effect)
        self.direction = direction
        self.min_change = float(min_change)
        self._up_floor = math.log1p(self.min_effect)
        self._down_floor = math.log1p(-self.min_effect) if self.min_effect < 1 else -math.inf
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next ``baseline_size`` points start a new reference."""
        self._collected: list[float] = []
        self._ref: list[float] = []  # reference values (log scale), for the median
        self._n = 0
        self._sum = self._sumsq = 0.0
        self._ref_median: float | None = None
        self._up = self._down = 0.0
        self._up_start: tuple[int, float | None] | None = None  # (index, ts) where the run began
        self._down_start: tuple[int, float | None] | None = None
        self._i = 0
        self._recent: deque[tuple[int, float, float | None]] = deque(maxlen=RECENT_MAX)  # (index, y, ts)
        self._pending: deque[tuple[int, float, float]] = deque()  # (index, y, u) waiting to join
        self.last: ShiftStatus = _QUIET

    # -- state --------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Past the baseline: points are being judged."""
        return self._n > 0

    @property
    def reference_size(self) -> int:
        return self._n

    @property
    def reference_median(self) -> float | None:
        """The reference's median in the metric's unit."""
        if not self._ref:
            return None
        if self._ref_median is None:
            self._ref_median = math.exp(median(self._ref))
        return self._ref_median

    @property
    def sums(self) -> tuple[float, float]:
        """(upward, downward) CUSUM sums, in standard deviations."""
        return self._up, self._down

    def forget_evidence(self) -> None:
        """Zero the sums, keep the reference: after a restart, what led up to the stop (probes
        finishing while the process shut down) is no evidence about what comes next."""
        self._up = self._down = 0.0
        self._up_start = self._down_start = None
        self.last = _QUIET

    # -- feeding ------------------------------------------------------------------------------

    def add(self, value: float, ts: float | None = None, *, hold: bool = False) -> ShiftStatus:
        """Judge one point (the metric's unit, > 0). ``hold``: an incident is open on the target,
        so nothing may join the reference now. Values <= 0 or not finite are ignored."""
        if not (value > 0 and math.isfinite(value)):
            return self.last
        y = math.log(value)
        if self._n == 0:
            self._collected.append(y)
            if len(self._collected) >= self.baseline_size:
                self._start_reference(self._collected)
                self._collected = []
            return self.last
        i = self._i
        self._i += 1
        mean = self._sum / self._n
        var = (self._sumsq - self._sum * mean) / (self._n - 1) if self._n > 1 else 0.0
        sd = max(math.sqrt(max(var, 0.0)), SD_FLOOR)
        u = t_to_z((y - mean) / (sd * math.sqrt(1.0 + 1.0 / self._n)), self._n - 1)
        z = min(max(u, -CLIP), CLIP)
        cap = 2.0 * self.h  # bounded, so a shift that ends is recognised within a few points
        self._up, self._up_start = _cusum(self._up, z - self.k, self._up_start, (i, ts), cap)
        self._down, self._down_start = _cusum(self._down, -z - self.k, self._down_start, (i, ts), cap)
        self._recent.append((i, y, ts))
        self._pending.append((i, y, u))
        self._learn(hold)
        self.last = self._status()
        return self.last

    def seed(self, values: Iterable[float]) -> bool:
        """Start from a reference taken elsewhere (a saved baseline's points, in the metric's
        unit) instead of learning one: the next point is judged. False, and nothing changed,
        with fewer than 2 usable values."""
        ys = [math.log(v) for v in values if v > 0 and math.isfinite(v)]
        if len(ys) < 2:
            return False
        self.reset()
        self._start_reference(ys[-REFERENCE_MAX:])
        return True

    def _start_reference(self, values: list[float]) -> None:
        """The baseline: drop points beyond 3 sigma (moving-range sigma, as the charts do)."""
        n = len(values)
        center = sum(values) / n
        mr = sum(abs(b - a) for a, b in pairwise(values)) / max(n - 1, 1)
        sigma = mr / 1.128
        kept = [v for v in values if abs(v - center) <= 3.0 * sigma] if sigma > 0 else list(values)
        if len(kept) < 2:
            kept = list(values)
        for v in kept:
            self._join(v)

    def _join(self, y: float) -> None:
        self._n += 1
        self._sum += y
        self._sumsq += y * y
        self._ref.append(y)
        self._ref_median = None

    def _learn(self, hold: bool) -> None:
        quiet = not hold and self._up < self.h / 2 and self._down < self.h / 2
        while self._pending and self._i - self._pending[0][0] > LAG:
            i, y, u = self._pending.popleft()
            run_start = min(
                (s[0] for s in (self._up_start, self._down_start) if s is not None), default=self._i
            )
            if quiet and abs(u) < CLIP and i < run_start and self._n < REFERENCE_MAX:
                self._join(y)

    def _status(self) -> ShiftStatus:
        direction = 0
        start: tuple[int, float | None] | None = None
        if self._up > self.h and self.direction >= 0:
            direction, start = 1, self._up_start
        elif self._down > self.h and self.direction <= 0:
            direction, start = -1, self._down_start
        in_control = direction == 0
        if in_control:  # the common case costs no median
            return _QUIET
        effect_log = self._effect_log(start[0] if start is not None else None)
        base = self.reference_median
        current = None if base is None else base * math.exp(effect_log)
        big_enough = base is None or current is None or abs(current - base) >= self.min_change
        alarm = 0
        if direction > 0 and effect_log >= self._up_floor and big_enough:
            alarm = 1
        elif direction < 0 and effect_log <= self._down_floor and big_enough:
            alarm = -1
        return ShiftStatus(
            alarm=alarm,
            in_control=in_control,
            effect=math.expm1(effect_log),
            baseline=base,
            current=current,
            start_ts=start[1] if start is not None else None,
        )

    def _effect_log(self, since_index: int | None) -> float:
        """log(median of the points since ``since_index`` (the last 50 at most) / reference median)."""
        if not self._ref or not self._recent or since_index is None:
            return 0.0
        values = [y for i, y, _ in self._recent if i >= since_index][-50:]
        if not values:
            return 0.0
        return median(values) - math.log(self.reference_median or 1.0)

    def effect_since(self, ts: float | None, until: float | None = None) -> tuple[float, float | None, float | None]:
        """(effect, baseline, current) of the points from ``ts`` to ``until`` (the last
        RECENT_MAX at most): what an incident reports, e.g. "+45 % since 10:32". An incident
        passes the time its change was last seen as ``until``, so the quiet probes before it
        closes do not water down what it was."""
        base = self.reference_median
        if base is None:
            return 0.0, None, None
        values = [
            y for _, y, t in self._recent if t is None or ((ts is None or t >= ts) and (until is None or t <= until))
        ]
        if not values:
            return 0.0, base, None
        now = math.exp(median(values))
        return now / base - 1.0, base, now
