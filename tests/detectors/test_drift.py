import math

import numpy as np
import pytest

from detectors.drift import PSI_EMPTY_BIN_SHARE, NumericReference, psi_test


def test_reference_bins_are_deciles_of_the_reference_between_underflow_and_overflow():
    ref = NumericReference.fit(np.arange(1000.0), psi_bins=10)
    assert ref.kind == "continuous" and not any(ref.psi_atoms)
    assert ref.psi_shares == pytest.approx([0.0] + [0.1] * 10 + [0.0])
    assert NumericReference.from_state_dict(ref.state_dict()) == ref


def test_psi_of_a_window_all_in_one_bin():
    ref = NumericReference.fit(np.arange(1000.0), psi_bins=10)
    r = psi_test(ref, np.full(200, 5.0), threshold=0.25, min_n=100)
    eps, outer = PSI_EMPTY_BIN_SHARE, 1 / 1001  # the reference's floor: 1/(n+1) of new draws
    expected = (
        (1 - 0.1) * math.log(1 / 0.1)
        + 9 * (eps - 0.1) * math.log(eps / 0.1)
        + 2 * (eps - outer) * math.log(eps / outer)
    )
    assert r.statistic == pytest.approx(expected)
    assert r.drift and r.status == "ok" and r.n == 200


@pytest.mark.parametrize(
    "reference, window, kind",
    [
        (np.zeros(35_000), np.ones(5000), "constant"),  # above a constant reference
        (np.zeros(35_000), -np.ones(5000), "constant"),  # below it
        (np.full(35_000, 1280.0), np.full(5000, 1920.0), "constant"),  # image.width 1280 -> 1920
        (np.full(35_000, 1280.0), np.full(5000, 640.0), "constant"),
    ],
)
def test_psi_sees_a_window_outside_a_constant_reference(reference, window, kind):
    ref = NumericReference.fit(reference)
    r = psi_test(ref, window, threshold=0.25)
    assert ref.kind == kind
    # all of the window where the reference had nothing: (1 - eps)·ln(1/eps) twice
    assert r.statistic == pytest.approx(2 * (1 - 1e-4) * math.log(1e4), rel=1e-3) and r.drift


def test_psi_sees_a_binary_signal_rise_from_5_to_50_percent():
    rng = np.random.default_rng(3)
    ref = NumericReference.fit((rng.random(35_000) < 0.05).astype(float))
    same = psi_test(ref, (rng.random(5000) < 0.05).astype(float), threshold=0.25, alpha=0.05)
    risen = psi_test(ref, (rng.random(5000) < 0.5).astype(float), threshold=0.25, alpha=0.05)
    assert ref.kind == "binary" and ref.psi_points == (0.0, 1.0)
    # PSI of shares 0.05 -> 0.5 on two bins, computed by hand
    assert risen.statistic == pytest.approx(
        (0.5 - 0.05) * math.log(0.5 / 0.05) + (0.5 - 0.95) * math.log(0.5 / 0.95), abs=0.05
    )
    assert risen.drift and not same.drift


def test_a_discrete_signal_is_binned_on_its_values_and_a_new_value_is_seen():
    rng = np.random.default_rng(4)
    ref = NumericReference.fit(rng.integers(0, 5, 10_000).astype(float))
    assert ref.kind == "discrete" and ref.psi_points == (0.0, 1.0, 2.0, 3.0, 4.0) and all(ref.psi_atoms)
    assert not psi_test(ref, rng.integers(0, 5, 2000).astype(float), alpha=0.05).drift
    halves = rng.integers(0, 5, 2000) + 0.5  # values between the reference's: inner gaps
    assert psi_test(ref, halves, alpha=0.05).drift


def test_a_tied_quantile_is_a_bin_of_its_own():
    """A ceiling holding 30 % of the reference (e.g. saturated brightness): more mass at the
    ceiling is a drift even though every upper decile is the ceiling."""
    rng = np.random.default_rng(5)
    ref_values = np.minimum(rng.normal(200, 40, 20_000), 255.0)
    ref = NumericReference.fit(ref_values)
    assert ref.kind == "continuous"
    assert ref.psi_atoms[ref.psi_points.index(255.0)]
    brighter = np.minimum(rng.normal(240, 40, 5000), 255.0)  # 35 % -> 65 % at the ceiling
    same = np.minimum(rng.normal(200, 40, 5000), 255.0)
    assert psi_test(ref, brighter, threshold=0.25, alpha=0.05).drift
    assert not psi_test(ref, same, threshold=0.25, alpha=0.05).drift


def test_values_beyond_a_small_references_range_are_not_a_drift_by_themselves():
    """A window of the reference's own distribution has values beyond the reference's sample
    range about 2m/(n+1) times: the underflow and overflow bins must not make that a drift."""
    rng = np.random.default_rng(6)
    ref = NumericReference.fit(rng.normal(0, 1, 300))
    window = rng.normal(0, 1, 100)
    window[np.argmax(window)] = max(ref.values) + 1.0  # one value above the reference's range
    inside = np.clip(window, min(ref.values), max(ref.values))
    extra = psi_test(ref, window).statistic - psi_test(ref, inside).statistic
    assert abs(extra) < 0.01
    # as the signal_drift check decides (PSI >= 0.25 and p <= 0.05): at most the nominal rate
    false = sum(psi_test(ref, rng.normal(0, 1, 100), threshold=0.25, alpha=0.05).drift for _ in range(400))
    assert false / 400 <= 0.05
