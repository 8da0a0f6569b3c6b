import math

import pytest

from detectors.intervals import wilson_interval


def test_wilson_matches_published_value():
    # Wilson 95 % interval of 10/100 as printed to four decimals in tables: [0.0552, 0.1744].
    r = wilson_interval(10, 100)
    assert r.estimate == 0.1
    assert round(r.low, 4) == 0.0552
    assert round(r.high, 4) == 0.1744


@pytest.mark.parametrize("k,n", [(0, 10), (3, 10), (10, 10), (57, 400), (1, 10000)])
def test_wilson_endpoints_are_where_the_score_statistic_equals_z(k, n):
    # The Wilson interval is {p : |p_hat - p| <= z * sqrt(p (1 - p) / n)}; check the endpoints.
    r = wilson_interval(k, n)
    z = 1.959963984540054
    for p in (r.low, r.high):
        if 1e-9 < p < 1 - 1e-9:
            assert abs(k / n - p) == pytest.approx(z * math.sqrt(p * (1 - p) / n), rel=1e-9)
    assert r.low <= k / n <= r.high


def test_wilson_empty_and_invalid():
    r = wilson_interval(0, 0)
    assert math.isnan(r.estimate) and math.isnan(r.low) and math.isnan(r.high)
    with pytest.raises(ValueError):
        wilson_interval(5, 3)


@pytest.mark.parametrize("k1,n1,k2,n2", [(50, 250, 125, 1250), (30, 300, 310, 3000), (3, 40, 90, 1000)])
def test_two_proportion_p_equals_statsmodels(k1, n1, k2, n2):
    from statsmodels.stats.proportion import proportions_ztest

    from detectors.intervals import two_proportion_p

    for ours, theirs in (("greater", "larger"), ("two-sided", "two-sided")):
        _, p = proportions_ztest([k1, k2], [n1, n2], alternative=theirs)
        assert two_proportion_p(k1, n1, k2, n2, ours) == pytest.approx(p, rel=1e-9)
    assert two_proportion_p(0, 0, 5, 10) == 1.0
