"""Phase I: the I-MR estimate of center and sigma, one outlier-exclusion round, then frozen.

Kept apart from the rule engine because it is the one place the limits are made; everything
else only tests points against them (DESIGN 6).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from llmscope_tui.spc.transform import transform_values

#: d2 for moving ranges of two points: sigma = MRbar / D2.
D2 = 1.128
#: D4 for moving ranges of two points: the upper limit of the MR chart is D4 x MRbar.
D4 = 3.267
#: When a baseline has no variation at all, sigma = SIGMA_FLOOR_REL * max(|center|, 1).
SIGMA_FLOOR_REL = 1e-9


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

