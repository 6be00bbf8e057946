"""Statistical process control: I-MR baselines, Nelson rules 1-8, live charts.

This package implements DESIGN section 6 to the letter. Its engine modules depend on numpy and
the standard library only (no Textual, no httpx, nothing else from llmscope_tui), so the
headless path, the TUI, the tests and the benchmark all use the very same code:

* ``transform`` -- input checks and the charted scale (x or log(x)).
* ``rules`` -- :func:`evaluate`, the batch, vectorised rule engine. Given values already on the
  charted scale plus a frozen center and sigma, it returns every firing of every requested rule.
* ``baseline`` -- :func:`compute_baseline`, phase I: the I-MR estimate of center and sigma with
  one round of outlier exclusion, then frozen.
* ``live`` -- :class:`LiveChart`, one target + metric, fed one point at a time: collects the
  baseline, freezes it, then tests each new point in O(1) against the frozen limits. It agrees
  exactly with :func:`evaluate` run over the phase II points.

``bank`` (:class:`~llmscope_tui.spc.bank.ChartBank`, one LiveChart per target and metric, with
baseline persistence) is the one module that knows the rest of the package (settings, samples,
the store); it is not imported here, so ``import llmscope_tui.spc`` stays numpy-only.

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

from llmscope_tui.spc.baseline import D2, D4, SIGMA_FLOOR_REL, Baseline, compute_baseline
from llmscope_tui.spc.live import Limits, LiveChart, LiveFiring
from llmscope_tui.spc.rules import (
    ALL_RULES,
    RULE_TEXT,
    RULE_WINDOW,
    Firing,
    evaluate,
    evaluate_arrays,
    rule_masks,
)
from llmscope_tui.spc.transform import TRANSFORMS, transform_values, untransform_values

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
