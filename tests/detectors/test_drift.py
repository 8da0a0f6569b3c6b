import math

import numpy as np
import pytest

from detectors.drift import PSI_EMPTY_BIN_SHARE, NumericReference, psi_test


def test_reference_bins_are_deciles_of_the_reference():
    ref = NumericReference.fit(np.arange(1000.0), psi_bins=10)
    assert len(ref.psi_shares) == 10
    assert ref.psi_shares == pytest.approx([0.1] * 10)
    assert ref.psi_edges[0] == -math.inf and ref.psi_edges[-1] == math.inf


def test_psi_of_a_window_all_in_one_bin():
    ref = NumericReference.fit(np.arange(1000.0), psi_bins=10)
    r = psi_test(ref, np.full(200, 5.0), threshold=0.25, min_n=100)
    eps = PSI_EMPTY_BIN_SHARE
    expected = (1 - 0.1) * math.log(1 / 0.1) + 9 * (eps - 0.1) * math.log(eps / 0.1)
    assert r.statistic == pytest.approx(expected)
    assert r.drift and r.status == "ok" and r.n == 200


def test_psi_same_distribution_is_small_and_shift_is_large():
    rng = np.random.default_rng(1)
    ref = NumericReference.fit(rng.normal(0, 1, 5000))
    same = psi_test(ref, rng.normal(0, 1, 2000), threshold=0.25)
    moved = psi_test(ref, rng.normal(1, 1, 2000), threshold=0.25)
    assert same.statistic < 0.02 and not same.drift
    assert moved.statistic > 0.5 and moved.drift


def test_psi_below_min_n_is_insufficient_data_not_fine():
    ref = NumericReference.fit(np.arange(1000.0))
    r = psi_test(ref, np.array([1.0, 2.0, np.nan, np.inf]), threshold=0.25, min_n=100)
    assert r.status == "insufficient_data" and math.isnan(r.statistic) and not r.drift and r.n == 2
