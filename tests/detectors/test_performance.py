"""Label-free performance estimation: close to the realised performance under covariate shift,
a band that covers it, incremental summaries, and calibration kept only when it helps."""

import numpy as np
import pytest
from sklearn.metrics import f1_score, roc_auc_score

from detectors.performance import ConfidenceCalibrator, PerformanceSummary


def _model(rng, n, low=0.5, high=1.0):
    """An over-confident binary classifier: P(right | conf) = conf ** 1.5."""
    conf = rng.uniform(low, high, n)
    right = rng.uniform(size=n) < conf**1.5
    pred_pos = rng.uniform(size=n) < 0.4
    truth = np.where(right, pred_pos, ~pred_pos)
    return conf, right, pred_pos, truth


def test_estimates_track_realised_accuracy_under_covariate_shift():
    rng = np.random.default_rng(0)
    conf, right, _, _ = _model(rng, 20_000)
    cal = ConfidenceCalibrator.fit(conf, right)
    assert cal.kind == "isotonic" and cal.brier_isotonic < cal.brier_raw
    covered, errors = 0, []
    for day in range(40):
        low = 0.5 + 0.01 * day  # the traffic drifts to easier inputs: accuracy rises
        c, r, _, _ = _model(np.random.default_rng(100 + day), 1000, low=low)
        est = PerformanceSummary.of(cal, c).estimate()
        covered += est.ci_low <= r.mean() <= est.ci_high
        errors.append(abs(est.accuracy - r.mean()))
    assert covered >= 36  # the 95 % band covers the realised accuracy
    assert np.mean(errors) < 0.015


def test_binary_estimates_of_f1_and_auc_are_close_to_the_realised_ones():
    rng = np.random.default_rng(1)
    conf, right, pos, truth = _model(rng, 20_000)
    cal = ConfidenceCalibrator.fit(conf, right)
    c, r, p, t = _model(np.random.default_rng(9), 20_000, low=0.6)
    est = PerformanceSummary.of(cal, c, predicted_positive=p).estimate()
    score = np.where(p, c, 1 - c)
    assert est.f1 == pytest.approx(f1_score(t, p), abs=0.02)
    assert est.roc_auc == pytest.approx(roc_auc_score(t, score), abs=0.02)
    assert est.accuracy == pytest.approx(r.mean(), abs=0.01)


def test_summaries_merge_exactly_and_calibration_is_skipped_when_it_does_not_help():
    rng = np.random.default_rng(2)
    conf = rng.uniform(0.5, 1, 4000)
    honest = ConfidenceCalibrator.fit(conf, rng.uniform(size=4000) < conf)  # already calibrated
    assert honest.kind == "identity"
    c, _, p, _ = _model(rng, 3000)
    whole = PerformanceSummary.of(honest, c, p)
    parts = PerformanceSummary.empty()
    for chunk in np.array_split(np.arange(3000), 7):
        parts = parts.merge(PerformanceSummary.of(honest, c[chunk], p[chunk]))
    assert parts.n == whole.n and parts.estimate().accuracy == pytest.approx(whole.estimate().accuracy)
    assert parts.estimate().roc_auc == pytest.approx(whole.estimate().roc_auc)
    fitted = ConfidenceCalibrator.fit(conf, rng.uniform(size=4000) < conf**3)
    again = ConfidenceCalibrator.from_state_dict(
        __import__("json").loads(__import__("json").dumps(fitted.state_dict()))
    )
    assert again.kind == "isotonic" and np.array_equal(again(c), fitted(c))
    assert PerformanceSummary.of(honest, c[:10]).estimate().status == "insufficient_data"
