"""Confidence intervals for proportions."""

from __future__ import annotations

import math
from dataclasses import dataclass

_Z95 = 1.959963984540054


@dataclass(frozen=True)
class WilsonInterval:
    """A proportion with its Wilson score interval. ``low``/``high`` are ``nan`` when n == 0."""

    successes: int
    n: int
    estimate: float
    low: float
    high: float
    confidence: float


def wilson_interval(successes: int, n: int, z: float = _Z95) -> WilsonInterval:
    """Wilson score interval for ``successes`` out of ``n`` (95 % by default).

    Coverage: over windows whose true rates vary (1–50 %), the 95 % interval covers the rate in
    ≥ 94 % of windows at n = 50, 200 and 1,000 (tests/detectors/test_statistics.py). At one fixed
    rate the exact coverage oscillates around 95 %: 0.935 at n = 50 and p = 0.5, 0.92 at n = 50 and
    p = 0.02, 0.944–0.951 at n = 1,000 — a property of every non-randomised binomial interval.

    >>> r = wilson_interval(10, 100)
    >>> round(r.low, 4), round(r.high, 4)
    (0.0552, 0.1744)
    """
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got successes={successes}, n={n}")
    confidence = math.erf(z / math.sqrt(2.0))
    if n == 0:
        nan = float("nan")
        return WilsonInterval(successes, n, nan, nan, nan, confidence)
    p = successes / n
    z2 = z * z
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # At k = 0 and k = n the bound is exactly 0 or 1 analytically; rounding must not put the
    # estimate outside its own interval.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return WilsonInterval(successes, n, p, low, high, confidence)


def two_proportion_p(k1: int, n1: int, k2: int, n2: int, alternative: str = "two-sided") -> float:
    """The pooled two-proportion z-test's p-value of k1/n1 against k2/n2 (``greater``: the first
    is higher). 1.0 when either side is empty or nothing varies.

    >>> f"{two_proportion_p(50, 250, 125, 1250, 'greater'):.2e}"  # 20 % of 250 against 10 % of 1250
    '3.46e-06'
    """
    if n1 == 0 or n2 == 0:
        return 1.0
    pooled = (k1 + k2) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 1.0
    z = (k1 / n1 - k2 / n2) / se
    if alternative == "greater":
        return 0.5 * math.erfc(z / math.sqrt(2))
    return math.erfc(abs(z) / math.sqrt(2))
