"""Mann–Kendall against independent implementations: SciPy's Kendall tau and its p-value,
SciPy's Theil–Sen slope, and pymannkendall's Hamed–Rao correction for serial correlation."""

import numpy as np
import pytest
from scipy import stats

from detectors.trend import mann_kendall


@pytest.mark.parametrize("seed", range(5))
def test_mann_kendall_equals_kendalls_tau_against_time_and_sens_slope(seed):
    rng = np.random.default_rng(seed)
    y = np.round(0.1 + 0.001 * seed * np.arange(40) + rng.normal(0, 0.01, 40), 3)  # rounding makes ties
    r = mann_kendall(y, autocorrelation="none")
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


def _ar1(rng, n, phi):
    e = np.zeros(n)
    for i in range(1, n):
        e[i] = phi * e[i - 1] + rng.normal()
    return e


@pytest.mark.parametrize("seed", range(12))
def test_hamed_rao_equals_pymannkendall_where_it_widens(seed):
    """The effective-sample-size correction as pymannkendall computes it; where pymannkendall's
    factor is below 1 (a negative correlation would make the trend more significant) ours stays
    at 1, the plain test."""
    import pymannkendall as pmk

    rng = np.random.default_rng(seed)
    y = 0.03 * (seed % 3) * np.arange(30) + _ar1(rng, 30, 0.7 if seed % 2 else -0.3)
    ours, theirs, plain = mann_kendall(y), pmk.hamed_rao_modification_test(y), pmk.original_test(y)
    factor = theirs.var_s / plain.var_s
    assert ours.slope == pytest.approx(theirs.slope, abs=1e-12)
    assert ours.variance_factor == pytest.approx(max(1.0, factor), rel=1e-9)
    if factor >= 1:
        assert ours.z == pytest.approx(theirs.z, rel=1e-9) and ours.p_value == pytest.approx(
            theirs.p, rel=1e-9
        )
    else:
        assert ours.p_value == pytest.approx(plain.p, rel=1e-9)


def test_serially_correlated_noise_is_a_trend_less_often_than_the_plain_test_says():
    """Quiet but correlated windows (a slowly wandering level, no trend): the plain test rejects
    far beyond its 5 %, the corrected one less; on independent windows both keep about 5 %. (At
    14 windows the correction is weak: the lags' bounds ±1.96/√n let little through — measured in
    the README; the rules' slope floor is what keeps quiet series quiet.)"""
    rng = np.random.default_rng(0)
    correlated = [_ar1(rng, 30, 0.8) for _ in range(2000)]
    plain = np.mean([mann_kendall(y, autocorrelation="none").p_value < 0.05 for y in correlated])
    corrected = np.mean([mann_kendall(y).p_value < 0.05 for y in correlated])
    assert plain > 0.35 and corrected < 0.75 * plain
    white = [rng.normal(size=14) for _ in range(2000)]
    assert np.mean([mann_kendall(y).p_value < 0.05 for y in white]) < 0.07
