import numpy as np
import pytest

from detectors.calibration import expected_calibration_error


def _ece_loop(conf, correct, bins):
    # Straightforward definition: bins (k/B, (k+1)/B], confidence 0 in the first bin.
    total, n = 0.0, len(conf)
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        idx = [i for i, c in enumerate(conf) if (lo < c <= hi) or (b == 0 and c == 0)]
        if idx:
            acc = sum(correct[i] for i in idx) / len(idx)
            avg = sum(conf[i] for i in idx) / len(idx)
            total += len(idx) / n * abs(acc - avg)
    return total


def test_overconfident_model():
    conf = np.full(1000, 0.9)
    correct = np.arange(1000) < 800
    r = expected_calibration_error(conf, correct, min_n=10)
    assert r.ece == pytest.approx(0.1)
    assert r.accuracy == pytest.approx(0.8) and r.variant == "top_label_equal_width_15"


def test_matches_the_definition_including_bin_edges():
    rng = np.random.default_rng(3)
    conf = np.concatenate([rng.uniform(0, 1, 500), np.array([0.0, 1.0, 1 / 15, 2 / 15, 0.5])])
    correct = rng.uniform(0, 1, conf.size) < conf
    r = expected_calibration_error(conf, correct, bins=15, min_n=1)
    assert r.ece == pytest.approx(_ece_loop(list(conf), list(correct), 15), abs=1e-12)


def test_insufficient_and_invalid():
    assert expected_calibration_error([0.5] * 5, [True] * 5, min_n=10).status == "insufficient_data"
    with pytest.raises(ValueError):
        expected_calibration_error([1.5], [True], min_n=1)
