"""One target + metric fed one point at a time: collect a baseline, freeze it, then test each
new point in O(1) against the frozen limits.

The monitor feeds thousands of points a minute, so a chart keeps only the state each rule needs
(run lengths, the last four zone flags, the previous value and step) instead of re-running the
batch engine; tests prove it agrees exactly with :func:`~llmscope_tui.spc.rules.evaluate` over
the phase II points.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from llmscope_tui.spc.baseline import D2, Baseline, compute_baseline
from llmscope_tui.spc.rules import ALL_RULES, check_limits, parse_rules
from llmscope_tui.spc.transform import (
    check_transform,
    checked_int,
    transform_values,
    untransform_values,
)


@dataclass(frozen=True, slots=True)
class LiveFiring:
    """One rule firing on one live point.

    index: 0-based position among the phase II points of the current baseline (what
    :func:`evaluate` would report over those points); value: the point in its original unit;
    z: on the charted scale.
    """

    index: int
    rule: int
    z: float
    value: float
    ts: float | None


@dataclass(frozen=True, slots=True)
class Limits:
    """The chart's horizontal lines, lowest to highest."""

    lcl: float
    lower2: float
    lower1: float
    center: float
    upper1: float
    upper2: float
    ucl: float

    def as_tuple(self) -> tuple[float, ...]:
        return (self.lcl, self.lower2, self.lower1, self.center, self.upper1, self.upper2, self.ucl)


class LiveChart:
    """One target + metric, one point at a time.

    Phase "baseline": :meth:`add` collects points (returns []) until ``baseline_size`` have
    arrived; the last of them computes the baseline (:func:`compute_baseline`) and freezes it.
    Phase "monitoring": each new point is tested against the frozen limits in O(1), keeping
    only the state each rule needs (run lengths, the last four zone flags, the previous value
    and step). Rule windows start at the first phase II point, so the firings equal
    ``evaluate(transform_values(phase_ii_values), center, sigma, rules)`` exactly.
    """

    def __init__(
        self,
        baseline_size: int = 30,
        rules: Iterable[int] = ALL_RULES,
        transform: str = "none",
    ) -> None:
        self._baseline_size = self._check_size(baseline_size)
        self._rules = parse_rules(rules)
        self._transform = check_transform(transform)
        self._collected: list[float] = []
        self._baseline: Baseline | None = None
        self._reset_state()

    # -- construction ---------------------------------------------------------------------

    @staticmethod
    def _check_size(baseline_size: int) -> int:
        message = f"baseline_size must be an integer >= 2, got {baseline_size!r}"
        return checked_int(baseline_size, 2, None, message)

    @classmethod
    def from_baseline(
        cls,
        center: float,
        sigma: float,
        *,
        baseline_size: int = 30,
        rules: Iterable[int] = ALL_RULES,
        transform: str = "none",
        recent: Iterable[float] = (),
    ) -> LiveChart:
        """A chart already monitoring against a persisted frozen baseline (after a restart).

        ``center`` and ``sigma`` are on the charted scale (as stored from a :class:`Baseline`).
        ``recent`` optionally replays the latest phase II values (original unit, oldest first)
        to restore the rules' run state; they produce no firings. The restored baseline has
        n_used = n_input = 0 (unknown).
        """
        c, s = check_limits(center, sigma)
        chart = cls(baseline_size=baseline_size, rules=rules, transform=transform)
        chart._baseline = Baseline(
            center=c, sigma=s, n_used=0, n_input=0, mr_bar=s * D2, transform=chart._transform
        )
        for value in recent:
            chart._test(chart._chart_value(value), float(value), None)
        return chart

    def rebaseline(self, baseline_size: int | None = None) -> None:
        """Forget the frozen limits and start collecting a new baseline."""
        if baseline_size is not None:
            self._baseline_size = self._check_size(baseline_size)
        self._baseline = None
        self._collected = []
        self._reset_state()

    def _reset_state(self) -> None:
        self._i = 0  # phase II points seen
        self._prev: float | None = None  # previous charted value
        self._pos = self._neg = 0  # run of z > 0 / z < 0            (rule 2)
        self._up = self._down = 0  # run of rising / falling steps  (rule 3)
        self._alt = 0  # run of alternating non-zero steps      (rule 4)
        self._last_step = 0
        self._within = self._beyond = 0  # run of |z| <= 1 / |z| > 1  (rules 7, 8)
        self._last_a1 = self._last_b1 = -(10**9)  # last index with z > 1 / z < -1  (rule 8)
        # zone flags (z>1, z<-1, z>2, z<-2) of the last four points   (rules 5, 6)
        self._flags: deque[tuple[bool, bool, bool, bool]] = deque(maxlen=4)
        self._last_z: float | None = None

    # -- state ----------------------------------------------------------------------------

    @property
    def phase(self) -> Literal["baseline", "monitoring"]:
        return "baseline" if self._baseline is None else "monitoring"

    @property
    def progress(self) -> tuple[int, int]:
        """(k, N): baseline points collected of the N needed (N, N once monitoring)."""
        if self._baseline is not None:
            return (self._baseline_size, self._baseline_size)
        return (len(self._collected), self._baseline_size)

    @property
    def baseline_size(self) -> int:
        return self._baseline_size

    @property
    def rules(self) -> tuple[int, ...]:
        return self._rules

    @property
    def transform(self) -> str:
        return self._transform

    @property
    def baseline(self) -> Baseline | None:
        return self._baseline

    @property
    def n_monitored(self) -> int:
        """Phase II points tested against the current baseline."""
        return self._i

    @property
    def last_z(self) -> float | None:
        return self._last_z

    def _frozen(self, line: str) -> float | None:
        """A line of the frozen baseline ("center", "sigma", "ucl", "lcl"); None before one."""
        if self._baseline is None:
            return None
        value: float = getattr(self._baseline, line)
        return value

    @property
    def center(self) -> float | None:
        """Center line on the charted scale (None while collecting a baseline)."""
        return self._frozen("center")

    @property
    def sigma(self) -> float | None:
        return self._frozen("sigma")

    @property
    def ucl(self) -> float | None:
        return self._frozen("ucl")

    @property
    def lcl(self) -> float | None:
        return self._frozen("lcl")

    def limits(self, original_unit: bool = False) -> Limits | None:
        """Center, ±1σ, ±2σ and ±3σ lines; on the charted scale, or mapped back to the
        original unit (exp of each line for "log", so the zones are asymmetric there)."""
        if self._baseline is None:
            return None
        c, s = self._baseline.center, self._baseline.sigma
        lines = [c + k * s for k in (-3, -2, -1, 0, 1, 2, 3)]
        if original_unit:
            lines = self.to_original(lines).tolist()
        return Limits(*lines)

    def to_original(self, values: Iterable[float] | float) -> np.ndarray:
        """Charted scale -> original unit."""
        arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
        return untransform_values(arr, self._transform)

    def to_chart(self, values: Iterable[float] | float) -> np.ndarray:
        """Original unit -> charted scale (ValueError on NaN/inf, or <= 0 with "log")."""
        arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
        return transform_values(arr, self._transform)

    def z(self, value: float) -> float | None:
        """The z of a value (original unit) against the frozen limits (None before them)."""
        if self._baseline is None:
            return None
        return (self._chart_value(value) - self._baseline.center) / self._baseline.sigma

    # -- feeding --------------------------------------------------------------------------

    def _chart_value(self, value: float) -> float:
        try:
            v = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"a chart value must be a number, got {value!r}") from None
        if not math.isfinite(v):
            raise ValueError(f"a chart value must be finite, got {value!r}")
        if self._transform == "log":
            if v <= 0.0:
                raise ValueError(f"the log transform needs values > 0, got {value!r}")
            # the same numpy kernel as transform_values, so live and batch agree bit for bit
            return float(np.log(np.array([v]))[0])
        return v

    def add(self, value: float, ts: float | None = None) -> list[LiveFiring]:
        """Feed one point (original unit). Returns the firings on this point, by rule.

        ValueError (and no change of state) for NaN/inf, or a value <= 0 with "log".
        """
        y = self._chart_value(value)
        if self._baseline is None:
            self._collected.append(float(value))
            if len(self._collected) >= self._baseline_size:
                self._baseline = compute_baseline(self._collected, transform=self._transform)
                self._collected = []
                self._reset_state()
            return []
        return self._test(y, float(value), ts)

    def _test(self, y: float, raw: float, ts: float | None) -> list[LiveFiring]:
        assert self._baseline is not None
        i = self._i
        self._i = i + 1
        z = (y - self._baseline.center) / self._baseline.sigma
        self._last_z = z
        a1, b1, a2, b2 = z > 1.0, z < -1.0, z > 2.0, z < -2.0
        # rule 2: same side of the center; z == 0 is neither side
        self._pos = self._pos + 1 if z > 0.0 else 0
        self._neg = self._neg + 1 if z < 0.0 else 0
        # rules 7 and 8: runs within / beyond 1 sigma, and where each side was last seen
        beyond = a1 or b1
        self._within = 0 if beyond else self._within + 1
        self._beyond = self._beyond + 1 if beyond else 0
        if a1:
            self._last_a1 = i
        if b1:
            self._last_b1 = i
        # rules 3 and 4: steps between consecutive charted values
        prev = self._prev
        self._prev = y
        if prev is not None:
            step = 1 if y > prev else (-1 if y < prev else 0)
            if step > 0:
                self._up, self._down = self._up + 1, 0
            elif step < 0:
                self._up, self._down = 0, self._down + 1
            else:
                self._up = self._down = 0
            if step == 0:
                self._alt = 0
            elif self._last_step != 0 and step != self._last_step:
                self._alt += 1
            else:
                self._alt = 1
            self._last_step = step
        # rules 5 and 6 look at the flags of the previous points
        flags = self._flags
        fired: list[int] = []
        for rule in self._rules:
            if rule == 1:
                hit = z > 3.0 or z < -3.0
            elif rule == 2:
                hit = self._pos >= 9 or self._neg >= 9
            elif rule == 3:
                hit = self._up >= 5 or self._down >= 5
            elif rule == 4:
                hit = self._alt >= 13
            elif rule == 5:
                hit = i >= 2 and (
                    (a2 and (flags[-1][2] or flags[-2][2]))
                    or (b2 and (flags[-1][3] or flags[-2][3]))
                )
            elif rule == 6:
                hit = i >= 4 and (
                    (a1 and sum(f[0] for f in flags) >= 3)
                    or (b1 and sum(f[1] for f in flags) >= 3)
                )
            elif rule == 7:
                hit = self._within >= 15
            else:
                hit = self._beyond >= 8 and i - self._last_a1 < 8 and i - self._last_b1 < 8
            if hit:
                fired.append(rule)
        flags.append((a1, b1, a2, b2))
        return [LiveFiring(i, rule, z, raw, ts) for rule in fired]
