"""Statistical process control: I-MR baselines, Nelson rules 1-8, live charts, episodes.

This module implements DESIGN section 6 to the letter. It depends on numpy and the standard
library only (no Textual, no httpx, nothing else from the package), so the headless path, the
TUI, the tests and the benchmark all use the very same code.

Three layers, each usable on its own:

* :func:`evaluate` -- the batch, vectorised rule engine. Given values already on the charted
  scale plus a frozen center and sigma, it returns every firing of every requested rule.
* :func:`compute_baseline` -- phase I: the I-MR estimate of center and sigma with one round of
  outlier exclusion, then frozen.
* :class:`LiveChart` -- one target + metric, fed one point at a time: collects the baseline,
  freezes it, then tests each new point in O(1) against the frozen limits. It agrees exactly
  with :func:`evaluate` run over the phase II points.

Exact semantics (DESIGN 6), with z = (x - center) / sigma on the charted scale:

====  ==========================================================================================
rule  fires on point i when
====  ==========================================================================================
1     |z_i| > 3 (strict: z == 3 does not fire)
2     z_{i-8..i} all > 0, or all < 0 (9 points; z == 0 is on neither side and breaks the run)
3     x_{i-5} < x_{i-4} < ... < x_i, or all ">" (6 points = 5 steps; an equal step breaks it)
4     the 13 steps x_{i-13} -> ... -> x_i are all non-zero and alternate in sign (14 points)
5     z_i > 2 and at least one of z_{i-1}, z_{i-2} > 2 -- or the same with < -2 (needs 3 points)
6     z_i > 1 and at least 3 of z_{i-4..i-1} > 1 -- or the same with < -1 (needs 5 points)
7     |z_{i-14..i}| <= 1 (15 points; |z| == 1 counts as within)
8     |z_{i-7..i}| > 1 with at least one z > 1 and at least one z < -1 among them (8 points)
====  ==========================================================================================

A rule fires on the point that completes its pattern and again on every later point while the
pattern still holds (a 12-point run above the center fires rule 2 on points 9, 10, 11 and 12).
Windows never reach before the first value given: a series shorter than a rule's window gives
no firing for that rule, and in a :class:`LiveChart` the windows start at the first phase II
point (baseline points are not part of any phase II pattern).

Rules 3 and 4 compare the charted values themselves (not z), so two equal values are an equal
step. Every other rule uses z.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

__all__ = [
    "ALL_RULES",
    "D2",
    "D4",
    "RULE_TEXT",
    "RULE_WINDOW",
    "SIGMA_FLOOR_REL",
    "TRANSFORMS",
    "Baseline",
    "Firing",
    "Limits",
    "LiveChart",
    "LiveFiring",
    "compute_baseline",
    "evaluate",
    "evaluate_arrays",
    "rule_masks",
    "transform_values",
    "untransform_values",
]

#: All Nelson rules, in order.
ALL_RULES: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7, 8)

#: A short plain-words meaning of each rule, for the UI and the logs.
RULE_TEXT: dict[int, str] = {
    1: "1 point beyond 3σ from the center",
    2: "9 points in a row on one side of the center",
    3: "6 points in a row steadily rising or falling",
    4: "14 points in a row alternating up and down",
    5: "2 of 3 points beyond 2σ on the same side",
    6: "4 of 5 points beyond 1σ on the same side",
    7: "15 points in a row within 1σ of the center",
    8: "8 points in a row beyond 1σ, on both sides",
}

#: How many consecutive points each rule looks at (a shorter series cannot fire it).
RULE_WINDOW: dict[int, int] = {1: 1, 2: 9, 3: 6, 4: 14, 5: 3, 6: 5, 7: 15, 8: 8}

#: d2 for moving ranges of two points: sigma = MRbar / D2.
D2 = 1.128
#: D4 for moving ranges of two points: the upper limit of the MR chart is D4 x MRbar.
D4 = 3.267
#: When a baseline has no variation at all, sigma = SIGMA_FLOOR_REL * max(|center|, 1).
SIGMA_FLOOR_REL = 1e-9

#: The supported chart transforms: chart x itself, or chart log(x).
TRANSFORMS: tuple[str, ...] = ("none", "log")


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------


def _parse_rules(rules: Iterable[int]) -> tuple[int, ...]:
    """The rule numbers as a sorted tuple without duplicates; ValueError on anything else."""
    if isinstance(rules, (str, bytes)):
        raise ValueError(f"rules must be an iterable of rule numbers 1-8, got {rules!r}")
    try:
        items = list(rules)
    except TypeError:
        raise ValueError(f"rules must be an iterable of rule numbers 1-8, got {rules!r}") from None
    out: set[int] = set()
    for item in items:
        if isinstance(item, bool):
            raise ValueError(f"unknown Nelson rule {item!r}: rules are numbered 1 to 8")
        try:
            number = operator.index(item)
        except TypeError:
            raise ValueError(f"unknown Nelson rule {item!r}: rules are numbered 1 to 8") from None
        if not 1 <= number <= 8:
            raise ValueError(f"unknown Nelson rule {item!r}: rules are numbered 1 to 8")
        out.add(number)
    return tuple(sorted(out))


def _check_limits(center: float, sigma: float) -> tuple[float, float]:
    try:
        c = float(center)
    except (TypeError, ValueError):
        raise ValueError(f"center must be a finite number, got {center!r}") from None
    try:
        s = float(sigma)
    except (TypeError, ValueError):
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}") from None
    if not math.isfinite(c):
        raise ValueError(f"center must be a finite number, got {center!r}")
    if not math.isfinite(s) or s <= 0.0:
        raise ValueError(f"sigma must be a finite number > 0, got {sigma!r}")
    return c, s


def _check_transform(transform: str) -> str:
    if transform not in TRANSFORMS:
        expected = ", ".join(TRANSFORMS)
        raise ValueError(f"unknown transform {transform!r}: expected one of {expected}")
    return transform


def _as_series(values: Iterable[float], what: str = "values") -> np.ndarray:
    """A 1-D float64 array of finite numbers (a fresh copy); ValueError otherwise."""
    if isinstance(values, np.ndarray):
        arr = values
    else:
        if not hasattr(values, "__len__"):
            values = list(values)
        arr = np.asarray(values)
    try:
        arr = np.array(arr, dtype=np.float64)  # always a copy: callers may not alias ours
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numbers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"{what} must be a one-dimensional series, got shape {arr.shape}")
    finite = np.isfinite(arr)
    if not finite.all():
        bad = int(np.flatnonzero(~finite)[0])
        raise ValueError(
            f"{what} must be finite numbers: position {bad} (0-based) is {arr[bad]!r}"
        )
    return arr


def transform_values(values: Iterable[float], transform: str = "none") -> np.ndarray:
    """The values on the charted scale: a float64 copy ("none") or their natural log ("log").

    Raises ValueError for NaN/inf, for an unknown transform, and -- with "log" -- for any value
    <= 0 (the log of a non-positive number is undefined; such values are refused, never
    clipped or dropped silently, so the caller decides what a zero latency means).
    """
    _check_transform(transform)
    arr = _as_series(values)
    if transform == "log":
        bad = arr <= 0.0
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise ValueError(
                "the log transform needs values > 0: "
                f"position {pos} (0-based) is {arr[pos]!r}"
            )
        np.log(arr, out=arr)
    return arr


def untransform_values(values: Iterable[float], transform: str = "none") -> np.ndarray:
    """The inverse of :func:`transform_values`: charted scale -> original unit (exp for log)."""
    _check_transform(transform)
    arr = np.array(values, dtype=np.float64)
    if transform == "log":
        with np.errstate(over="ignore"):
            np.exp(arr, out=arr)
    return arr


# --------------------------------------------------------------------------------------------
# Batch rule engine (vectorised)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Firing:
    """One rule firing on one point: ``index`` is the 0-based position in the series."""

    index: int
    rule: int
    z: float


def _all_last(cond: np.ndarray, k: int) -> np.ndarray:
    """out[i] = cond[i-k+1], ..., cond[i] are all True (False where i < k - 1).

    Log-time doubling of shifted ANDs: A(2m)[i] = A(m)[i] & A(m)[i-m], and for the remainder
    A(k)[i] = A(m)[i] & A(m)[i-(k-m)] with k - m <= m (the two windows overlap or touch).
    """
    n = cond.size
    if k > n:
        return np.zeros(n, dtype=bool)
    cur, m = cond, 1
    while 2 * m <= k:
        nxt = np.zeros(n, dtype=bool)
        np.logical_and(cur[m:], cur[:-m], out=nxt[m:])
        cur, m = nxt, 2 * m
    if m < k:
        s = k - m
        nxt = np.zeros(n, dtype=bool)
        np.logical_and(cur[s:], cur[:-s], out=nxt[s:])
        cur = nxt
    return cur


def _any_last(cond: np.ndarray, k: int) -> np.ndarray:
    """out[i] = any of cond[max(0, i-k+1)], ..., cond[i] is True."""
    n = cond.size
    cur, m = cond, 1
    while 2 * m <= k and m < n:
        nxt = cur.copy()
        np.logical_or(cur[m:], cur[:-m], out=nxt[m:])
        cur, m = nxt, 2 * m
    if m < k and k - m < n:
        s = k - m
        nxt = cur.copy()
        np.logical_or(cur[s:], cur[:-s], out=nxt[s:])
        cur = nxt
    return cur


def _z_scores(y: np.ndarray, center: float, sigma: float) -> np.ndarray:
    with np.errstate(over="ignore"):
        z = np.subtract(y, center)
        np.divide(z, sigma, out=z)
    return z


def _masks(y: np.ndarray, z: np.ndarray, rules: tuple[int, ...]) -> dict[int, np.ndarray]:
    n = y.size
    out: dict[int, np.ndarray] = {}
    want = set(rules)
    if want & {5}:
        a2 = z > 2.0
        b2 = z < -2.0
    if want & {6, 7, 8}:
        a1 = z > 1.0
        b1 = z < -1.0
        beyond1 = a1 | b1
    if 1 in want:
        out[1] = np.abs(z) > 3.0
    if 2 in want:
        out[2] = _all_last(z > 0.0, 9) | _all_last(z < 0.0, 9)
    if want & {3, 4}:
        up = y[1:] > y[:-1]  # step j goes from point j to point j + 1
        down = y[1:] < y[:-1]
    if 3 in want:
        m = np.zeros(n, dtype=bool)
        if n >= 6:
            m[1:] = _all_last(up, 5) | _all_last(down, 5)
        out[3] = m
    if 4 in want:
        m = np.zeros(n, dtype=bool)
        if n >= 14:
            # alt[k]: steps k and k + 1 are both non-zero and of opposite sign; ends at point k+2
            alt = (up[1:] & down[:-1]) | (down[1:] & up[:-1])
            m[2:] = _all_last(alt, 12)
        out[4] = m
    if 5 in want:
        m = np.zeros(n, dtype=bool)
        if n >= 3:
            m[2:] = (a2[2:] & (a2[1:-1] | a2[:-2])) | (b2[2:] & (b2[1:-1] | b2[:-2]))
        out[5] = m
    if 6 in want:
        m = np.zeros(n, dtype=bool)
        if n >= 5:
            for side in (a1, b1):
                u = side.view(np.uint8)
                prev4 = u[3:-1] + u[2:-2]
                prev4 += u[1:-3]
                prev4 += u[:-4]
                m[4:] |= side[4:] & (prev4 >= 3)
        out[6] = m
    if 7 in want:
        out[7] = _all_last(~beyond1, 15)
    if 8 in want:
        out[8] = _all_last(beyond1, 8) & _any_last(a1, 8) & _any_last(b1, 8)
    return out


def rule_masks(
    values: Iterable[float],
    center: float,
    sigma: float,
    rules: Iterable[int] = ALL_RULES,
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """(z, {rule: boolean mask over the points}) -- the raw output of the rule engine."""
    c, s = _check_limits(center, sigma)
    wanted = _parse_rules(rules)
    y = _as_series(values)
    z = _z_scores(y, c, s)
    return z, _masks(y, z, wanted)


def evaluate_arrays(
    values: Iterable[float],
    center: float,
    sigma: float,
    rules: Iterable[int] = ALL_RULES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`evaluate`, but as three parallel arrays (index, rule, z), no Python objects.

    Sorted by (index, rule). Use it for bulk work (replays, the benchmark).
    """
    z, masks = rule_masks(values, center, sigma, rules)
    n = z.size
    parts = [np.flatnonzero(mask) * 8 + (rule - 1) for rule, mask in masks.items()]
    if not parts or n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty.copy(), np.zeros(0, dtype=np.float64)
    key = np.concatenate(parts)
    key.sort()
    index = key >> 3
    rule = (key & 7) + 1
    return index, rule, z[index]


def evaluate(
    values: Iterable[float],
    center: float,
    sigma: float,
    rules: Iterable[int] = range(1, 9),
) -> list[Firing]:
    """Every firing of the requested Nelson rules on a series, sorted by (index, rule).

    ``values`` are on the charted scale (already log-transformed when charting log(x));
    ``center`` and ``sigma`` are the frozen phase I estimates on that scale. Vectorised: cost is
    a few dozen numpy passes over the series whatever its length.

    ValueError for NaN/inf values, a non-finite center, a sigma that is not a finite number
    > 0, or a rule number outside 1-8.
    """
    index, rule, z = evaluate_arrays(values, center, sigma, rules)
    return [Firing(i, r, zz) for i, r, zz in zip(index.tolist(), rule.tolist(), z.tolist())]


# --------------------------------------------------------------------------------------------
# Phase I baseline
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Baseline:
    """A frozen phase I estimate, on the charted scale (log(x) when transform == "log").

    center, sigma: the limits every phase II point is tested against.
    n_used / n_input: baseline points kept after the exclusion step / points given.
    mr_bar: mean of the kept moving ranges (sigma = mr_bar / 1.128 unless floored).
    n_mr_used: how many moving ranges were kept (of n_input - 1).
    exclusion_skipped: the exclusion step would have left fewer than 2 points or no moving
        range (the baseline itself was out of control, e.g. a step change inside it), so the
        unfiltered estimates are used; a sign the baseline should be retaken.
    sigma_floored: the kept points had no variation at all (MRbar == 0); sigma was set to
        SIGMA_FLOOR_REL * max(|center|, 1) so that z stays defined: any later change in value
        then fires rule 1 at once, and identical values keep z == 0 exactly.
    """

    center: float
    sigma: float
    n_used: int
    n_input: int
    mr_bar: float
    transform: str = "none"
    n_mr_used: int = 0
    exclusion_skipped: bool = False
    sigma_floored: bool = False

    @property
    def ucl(self) -> float:
        return self.center + 3.0 * self.sigma

    @property
    def lcl(self) -> float:
        return self.center - 3.0 * self.sigma


def compute_baseline(values: Iterable[float], *, transform: str = "none") -> Baseline:
    """Phase I: I-MR center and sigma from the values (original unit), one exclusion round.

    1. y = transform_values(values, transform); n >= 2 points are needed (else ValueError).
    2. center0 = mean(y); MR_j = |y_{j+1} - y_j| for each consecutive pair; MRbar0 = mean(MR);
       sigma0 = MRbar0 / 1.128.
    3. A point is kept if |y - center0| <= 3 sigma0. A moving range is kept if both of its
       points were kept (a range touching a dropped outlier measures the outlier, not the
       common-cause noise). Ranges between kept points are never dropped for their size:
       dropping those above 3.267 MRbar0 from clean data made sigma about 3 % too small and
       rule 1 fire about 40 % too often (DESIGN 6).
    4. center = mean of the kept points; MRbar = mean of the kept moving ranges;
       sigma = MRbar / 1.128. Done once, then frozen (no iteration).

    If step 3 keeps fewer than 2 points or no moving range, the exclusion is not applied and
    ``exclusion_skipped`` is set. If the final MRbar is 0 (no variation), sigma is floored --
    see :class:`Baseline`.
    """
    y = transform_values(values, transform)
    n = int(y.size)
    if n < 2:
        raise ValueError(f"a baseline needs at least 2 points, got {n}")
    with np.errstate(over="ignore", invalid="ignore"):
        mr = np.abs(np.diff(y))
        center0 = float(np.mean(y))
        mr_bar0 = float(np.mean(mr))
    if not (math.isfinite(center0) and math.isfinite(mr_bar0)):
        raise ValueError("baseline values are too large to estimate limits (overflow)")
    sigma0 = mr_bar0 / D2
    skipped = False
    if mr_bar0 == 0.0:
        keep_pt = np.ones(n, dtype=bool)
        keep_mr = np.ones(n - 1, dtype=bool)
    else:
        keep_pt = np.abs(y - center0) <= 3.0 * sigma0
        keep_mr = keep_pt[1:] & keep_pt[:-1]
        if int(keep_pt.sum()) < 2 or not keep_mr.any():
            skipped = True
            keep_pt = np.ones(n, dtype=bool)
            keep_mr = np.ones(n - 1, dtype=bool)
    kept = y[keep_pt]
    if kept.min() == kept.max():
        center = float(kept[0])  # exact, so identical later values get z == 0 exactly
    else:
        center = float(np.mean(kept))
    mr_bar = float(np.mean(mr[keep_mr]))
    sigma = mr_bar / D2
    floored = False
    if sigma == 0.0:
        sigma = SIGMA_FLOOR_REL * max(abs(center), 1.0)
        floored = True
    return Baseline(
        center=center,
        sigma=sigma,
        n_used=int(keep_pt.sum()),
        n_input=n,
        mr_bar=mr_bar,
        transform=transform,
        n_mr_used=int(keep_mr.sum()),
        exclusion_skipped=skipped,
        sigma_floored=floored,
    )


# --------------------------------------------------------------------------------------------
# Live, incremental chart
# --------------------------------------------------------------------------------------------


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
        self._rules = _parse_rules(rules)
        self._transform = _check_transform(transform)
        self._collected: list[float] = []
        self._baseline: Baseline | None = None
        self._reset_state()

    # -- construction ---------------------------------------------------------------------

    @staticmethod
    def _check_size(baseline_size: int) -> int:
        if isinstance(baseline_size, bool):
            raise ValueError(f"baseline_size must be an integer >= 2, got {baseline_size!r}")
        try:
            size = operator.index(baseline_size)
        except TypeError:
            raise ValueError(
                f"baseline_size must be an integer >= 2, got {baseline_size!r}"
            ) from None
        if size < 2:
            raise ValueError(f"baseline_size must be an integer >= 2, got {baseline_size!r}")
        return size

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
        c, s = _check_limits(center, sigma)
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

    @property
    def center(self) -> float | None:
        """Center line on the charted scale (None while collecting a baseline)."""
        return None if self._baseline is None else self._baseline.center

    @property
    def sigma(self) -> float | None:
        return None if self._baseline is None else self._baseline.sigma

    @property
    def ucl(self) -> float | None:
        return None if self._baseline is None else self._baseline.ucl

    @property
    def lcl(self) -> float | None:
        return None if self._baseline is None else self._baseline.lcl

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
