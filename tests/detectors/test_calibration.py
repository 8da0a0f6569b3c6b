import numpy as np
import pytest

from detectors.calibration import (
    bin_index,
    brier_multiclass,
    calibration,
    calibration_drift,
    classwise_ece,
)


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
    r = calibration(conf, correct, min_n=10)
    assert r.ece == pytest.approx(0.1)
    assert r.accuracy == pytest.approx(0.8) and r.variant == "top_label_equal_width_15"


def test_matches_the_definition_including_bin_edges():
    rng = np.random.default_rng(3)
    conf = np.concatenate([rng.uniform(0, 1, 500), np.array([0.0, 1.0, 1 / 15, 2 / 15, 0.5])])
    correct = rng.uniform(0, 1, conf.size) < conf
    r = calibration(conf, correct, bins=15, min_n=1)
    assert r.ece == pytest.approx(_ece_loop(list(conf), list(correct), 15), abs=1e-12)


def test_insufficient_and_invalid():
    assert calibration([0.5] * 5, [True] * 5, min_n=10).status == "insufficient_data"
    with pytest.raises(ValueError):
        calibration([1.5], [True], min_n=1)


def _multiclass(n=4000, k=4, seed=0, temperature=1.0):
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 2, (n, k))
    p = np.exp(logits / temperature)
    p /= p.sum(axis=1, keepdims=True)
    labels = np.array([rng.choice(k, p=row) for row in np.exp(logits) / np.exp(logits).sum(1, keepdims=True)])
    return p, labels


@pytest.mark.parametrize("temperature", [1.0, 0.5, 2.0])
def test_top_label_ece_and_mce_equal_torchmetrics_multiclass(temperature):
    import torch
    from torchmetrics.functional.classification import multiclass_calibration_error

    p, labels = _multiclass(temperature=temperature)
    conf, pred = p.max(axis=1), p.argmax(axis=1)
    assert not np.any(np.isin(np.round(conf * 15, 9), np.arange(16)))  # no confidence on an edge
    ours = calibration(conf, pred == labels, bins=15)
    for norm, value in (("l1", ours.ece), ("max", ours.mce)):
        theirs = multiclass_calibration_error(
            torch.tensor(p, dtype=torch.float64), torch.tensor(labels), num_classes=4, n_bins=15, norm=norm
        )
        assert value == pytest.approx(float(theirs), abs=1e-6)  # torchmetrics works in float32


def test_classwise_ece_of_a_binary_task_equals_torchmetrics_binary():
    import torch
    from torchmetrics.functional.classification import binary_calibration_error

    rng = np.random.default_rng(3)
    p1 = rng.uniform(0.01, 0.99, 3000)
    y = (rng.uniform(size=3000) < p1**1.3).astype(int)
    theirs = float(
        binary_calibration_error(torch.tensor(p1, dtype=torch.float64), torch.tensor(y), n_bins=10)
    )
    assert calibration(p1, y == 1, bins=10).ece == pytest.approx(theirs, abs=1e-6)
    probs = np.column_stack([1 - p1, p1])
    both = classwise_ece(probs, y, bins=10)
    assert both == pytest.approx(np.mean([calibration(1 - p1, y == 0, 10).ece, theirs]), abs=1e-12)


def test_edge_conventions_equal_mass_bins_and_brier():
    conf = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0] * 20)
    idx, _ = bin_index(conf, 5)
    assert idx[:6].tolist() == [0, 0, 1, 2, 3, 4]  # (k/B, (k+1)/B]: 0.2 in the first bin, 1.0 in the last
    ties = np.array([0.9] * 70 + [0.5] * 30)
    idx, edges = bin_index(ties, 4, "equal_mass")
    assert len(set(idx[ties == 0.9])) == 1 and len(set(idx[ties == 0.5])) == 1  # ties stay together
    r = calibration(
        ties, np.r_[np.ones(63), np.zeros(7), np.ones(15), np.zeros(15)], bins=4, scheme="equal_mass"
    )
    assert r.ece == pytest.approx(0.0) and r.variant == "top_label_equal_mass_4"
    assert sum(b.n for b in r.bins) == 100
    p, labels = _multiclass(n=500)
    onehot = np.eye(4)[labels]
    assert brier_multiclass(p, labels) == pytest.approx(np.mean(np.sum((p - onehot) ** 2, axis=1)))


def test_calibration_drift_is_quiet_when_nothing_changed_and_reproducible():
    rng = np.random.default_rng(12)
    false_alarms = 0
    for _ in range(40):
        rc = rng.uniform(0.5, 1, 7000)  # a week of reference against a day: ECE's size bias must not count
        wc = rng.uniform(0.5, 1, 1000)
        d = calibration_drift(rc, rng.uniform(size=7000) < rc, wc, rng.uniform(size=1000) < wc, n_boot=300)
        false_alarms += d.drift
    assert false_alarms <= 3  # one-sided 2.5 %: ~1 in 40 expected
    args = (rc, rc > 0.7, wc, wc > 0.8)
    assert calibration_drift(*args, seed=5) == calibration_drift(*args, seed=5)
    assert calibration_drift(rc[:50], rc[:50] > 0.7, wc, wc > 0.8).status == "insufficient_data"


def _event_bootstrap(rc, rok, size, n_boot, rng, bins=15):
    """The oracle: ECEs of resamples of the reference's events, drawn one by one."""
    out = []
    for _ in range(n_boot):
        pick = rng.integers(0, rc.size, size)
        out.append(calibration(rc[pick], rok[pick], bins=bins, min_n=1).ece)
    return np.array(out)


@pytest.mark.parametrize(
    "size, skew",
    [(150, 0.0), (1000, 0.0), (5000, 0.0), (1000, 0.15)],  # skew: the reference over-confident
)
def test_the_null_from_bin_sums_matches_resampling_the_events(size, skew):
    """The size-matched null drawn from the reference's bin sums has the quantiles of the one
    drawn by resampling its events (what the drift interval and p-value are read from), at small
    and large windows and with a reference that is not calibrated itself."""
    rng = np.random.default_rng(size)
    rc = rng.beta(5, 2, 20000)
    rok = rng.uniform(size=rc.size) < np.clip(rc - skew, 0, 1)
    events = _event_bootstrap(rc, rok, size, 2000, rng)
    d = calibration_drift(rc, rok, rc[:size], rok[:size], n_boot=4000, seed=1)
    from detectors.calibration import _null_ece, bin_sums

    sums = _null_ece(bin_sums(rc, rok), size, 4000, np.random.default_rng(2))
    for q in (0.025, 0.5, 0.975):
        a, b = np.quantile(sums, q), np.quantile(events, q)
        assert a == pytest.approx(b, rel=0.06, abs=0.002), (q, a, b)
    assert d.reference_ece == pytest.approx(events.mean(), rel=0.03)


def test_bin_sums_merge_by_addition_and_give_the_events_ece():
    rng = np.random.default_rng(4)
    conf = rng.uniform(0, 1, 3000)
    ok = rng.uniform(size=3000) < conf**2
    from detectors.calibration import bin_sums, ece_of_sums

    parts = bin_sums(conf[:1000], ok[:1000]) + bin_sums(conf[1000:], ok[1000:])
    assert np.allclose(parts, bin_sums(conf, ok))
    # what the events give, computed here from them directly
    idx = np.clip(np.ceil(conf * 15).astype(int) - 1, 0, 14)
    count = np.bincount(idx, minlength=15)
    gap = np.abs(np.bincount(idx, weights=ok, minlength=15) - np.bincount(idx, weights=conf, minlength=15))
    assert ece_of_sums(parts) == pytest.approx(gap.sum() / 3000, rel=1e-12)
    from detectors.calibration import calibration_of_sums

    r = calibration_of_sums(parts)
    assert (r.ece, r.mce, r.brier, r.accuracy, r.mean_confidence, r.n) == pytest.approx(
        (
            gap.sum() / 3000,
            np.max(gap[count > 0] / count[count > 0]),
            np.mean((conf - ok) ** 2),
            ok.mean(),
            conf.mean(),
            3000,
        ),
        rel=1e-9,
    )
    assert [b.n for b in r.bins] == count.tolist()
