"""Mann–Kendall against independent implementations: SciPy's Kendall tau and its p-value,
SciPy's Theil–Sen slope."""

import numpy as np
import pytest
from scipy import stats

from detectors.trend import mann_kendall


@pytest.mark.parametrize("seed", range(5))
def test_mann_kendall_equals_kendalls_tau_against_time_and_sens_slope(seed):
    rng = np.random.default_rng(seed)
    y = np.round(0.1 + 0.001 * seed * np.arange(40) + rng.normal(0, 0.01, 40), 3)  # rounding makes ties
    r = mann_kendall(y)
    tau, p = stats.kendalltau(np.arange(40), y, method="asymptotic")
    assert r.tau == pytest.approx(tau, abs=1e-12)
    # SciPy's asymptotic p has no continuity correction: ours is a little larger, never smaller
    assert p <= r.p_value <= p * 1.6 + 1e-12
    assert r.slope == pytest.approx(stats.theilslopes(y).slope, abs=1e-12)


def test_missing_values_insufficient_data_and_a_decreasing_series():
    y = np.array([0.9, 0.88, np.nan, 0.86, 0.85, 0.83, 0.84, 0.81, 0.8, 0.78, 0.77])
    r = mann_kendall(y)
    assert r.trend == "decreasing" and r.n == 10 and r.slope == pytest.approx(-0.012, abs=0.002)
    assert mann_kendall([0.1, 0.2, 0.3]).status == "insufficient_data"
    assert mann_kendall(np.full(12, 0.5)).trend == "none"  # all ties: no trend, no error
