"""Trends across successive evaluation intervals of one metric ("aging": slow decay that never
crosses a threshold in any single window).

``mann_kendall``: the Mann–Kendall test — S = Σ_{i<j} sign(x_j − x_i), its variance corrected
for ties, the continuity-corrected z and a two-sided p-value — with Kendall's tau and Sen's slope
(the median of the pairwise slopes, in units of the metric per interval). Missing values (NaN)
are left out with their positions kept, so the slope stays per interval. Below ``min_n`` points
the answer is ``insufficient_data``.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> aging = 0.10 + 0.002 * np.arange(30) + rng.normal(0, 0.004, 30)  # +0.2 points a day
>>> r = mann_kendall(aging)
>>> r.trend, round(r.slope, 4), r.p_value < 0.001
('increasing', 0.002, True)
>>> mann_kendall(rng.normal(0.1, 0.004, 30)).trend
'none'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class TrendResult:
    s: float
    z: float
    p_value: float
    tau: float
    slope: float  # Sen's slope, per interval
    trend: Literal["increasing", "decreasing", "none"]
    n: int
    status: Literal["ok", "insufficient_data"]


def mann_kendall(values, alpha: float = 0.05, min_n: int = 8) -> TrendResult:
    y = np.asarray(values, dtype=float)
    t = np.arange(y.size, dtype=float)
    keep = np.isfinite(y)
    y, t = y[keep], t[keep]
    n = int(y.size)
    if n < min_n:
        nan = math.nan
        return TrendResult(nan, nan, nan, nan, nan, "none", n, "insufficient_data")
    i, j = np.triu_indices(n, k=1)
    diff = y[j] - y[i]
    s = float(np.sign(diff).sum())
    _, counts = np.unique(y, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - float(np.sum(counts * (counts - 1) * (2 * counts + 5)))) / 18.0
    z = 0.0 if s == 0 or var <= 0 else (s - math.copysign(1.0, s)) / math.sqrt(var)
    p = math.erfc(abs(z) / math.sqrt(2))
    pairs = n * (n - 1) / 2
    ties = float(np.sum(counts * (counts - 1) / 2))
    tau = s / math.sqrt(pairs * (pairs - ties)) if pairs > ties else 0.0  # tau-b (time has no ties)
    slope = float(np.median(diff / (t[j] - t[i])))
    trend = "none" if p > alpha else ("increasing" if s > 0 else "decreasing")
    return TrendResult(s, z, p, tau, slope, trend, n, "ok")
