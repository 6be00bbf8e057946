"""The batch, vectorised Nelson rule engine (rules 1-8, DESIGN 6).

Given values already on the charted scale plus a frozen center and sigma, :func:`evaluate`
returns every firing of every requested rule. The exact semantics are in the package docstring
(:mod:`llmscope_tui.spc`); :class:`~llmscope_tui.spc.live.LiveChart` applies the same rules one
point at a time and must agree with this module exactly.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from llmscope_tui.spc.transform import as_series, checked_int

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


def parse_rules(rules: Iterable[int]) -> tuple[int, ...]:
    """The rule numbers as a sorted tuple without duplicates; ValueError on anything else."""
    if isinstance(rules, (str, bytes)):
        msg = f"rules must be an iterable of rule numbers 1-8, got {rules!r}"
        raise ValueError(msg)  # noqa: TRY004 (ValueError is the API)
    try:
        items = list(rules)
    except TypeError:
        raise ValueError(f"rules must be an iterable of rule numbers 1-8, got {rules!r}") from None
    out: set[int] = set()
    for item in items:
        out.add(checked_int(item, 1, 8, f"unknown Nelson rule {item!r}: rules are numbered 1 to 8"))
    return tuple(sorted(out))


def check_limits(center: float, sigma: float) -> tuple[float, float]:
    """(center, sigma) as floats; ValueError unless finite, and sigma > 0."""
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
    c, s = check_limits(center, sigma)
    wanted = parse_rules(rules)
    y = as_series(values)
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

