"""A plain, per-point reference implementation of the Nelson rules (DESIGN 6), used as an oracle.

Written straight from the DESIGN text with loops and no cleverness: for every point i and
every rule, look at the window of points ending at i and ask whether the pattern holds there.
A window that would reach before the first point does not exist, so the rule cannot fire.
It shares nothing with llmscope_tui.spc.
"""

from __future__ import annotations

WINDOW = {1: 1, 2: 9, 3: 6, 4: 14, 5: 3, 6: 5, 7: 15, 8: 8}


def z_scores(values: list[float], center: float, sigma: float) -> list[float]:
    return [(float(x) - center) / sigma for x in values]


def rule_fires(rule: int, x: list[float], z: list[float], i: int) -> bool:
    """Does `rule` fire on point i (0-based)? Only points 0..i are looked at."""
    size = WINDOW[rule]
    if i + 1 < size:
        return False
    xs = x[i - size + 1 : i + 1]  # the window, oldest first; the newest point is last
    zs = z[i - size + 1 : i + 1]

    if rule == 1:  # one point with |z| > 3
        return abs(zs[0]) > 3

    if rule == 2:  # 9 in a row on the same side; z == 0 is on no side
        return all(v > 0 for v in zs) or all(v < 0 for v in zs)

    if rule == 3:  # 6 points strictly increasing or strictly decreasing
        increasing = all(xs[k] < xs[k + 1] for k in range(size - 1))
        decreasing = all(xs[k] > xs[k + 1] for k in range(size - 1))
        return increasing or decreasing

    if rule == 4:  # 14 points alternating up and down: 13 non-zero steps alternating in sign
        steps = []
        for k in range(size - 1):
            if xs[k + 1] > xs[k]:
                steps.append(1)
            elif xs[k + 1] < xs[k]:
                steps.append(-1)
            else:
                return False  # an equal step breaks it
        return all(steps[k] != steps[k + 1] for k in range(len(steps) - 1))

    if rule == 5:  # 2 of 3 beyond 2 sigma on one side; the newest is one of them
        above = [v > 2 for v in zs]
        below = [v < -2 for v in zs]
        return (above[-1] and sum(above) >= 2) or (below[-1] and sum(below) >= 2)

    if rule == 6:  # 4 of 5 beyond 1 sigma on one side; the newest is one of them
        above = [v > 1 for v in zs]
        below = [v < -1 for v in zs]
        return (above[-1] and sum(above) >= 4) or (below[-1] and sum(below) >= 4)

    if rule == 7:  # 15 in a row within 1 sigma (|z| == 1 is within)
        return all(abs(v) <= 1 for v in zs)

    if rule == 8:  # 8 in a row beyond 1 sigma, at least one on each side
        return (
            all(abs(v) > 1 for v in zs)
            and any(v > 1 for v in zs)
            and any(v < -1 for v in zs)
        )

    raise ValueError(f"unknown rule {rule}")


def reference_evaluate(
    values: list[float], center: float, sigma: float, rules=range(1, 9)
) -> list[tuple[int, int]]:
    """Every (index, rule) firing, sorted by index then rule."""
    x = [float(v) for v in values]
    z = z_scores(x, center, sigma)
    out = []
    for i in range(len(x)):
        for rule in sorted(set(rules)):
            if rule_fires(rule, x, z, i):
                out.append((i, rule))
    return out
