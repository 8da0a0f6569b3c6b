"""Per-slice metrics: crossing, signal bands, labelled-only error rates, insufficient data, BH."""

import numpy as np
import pytest
from scipy import stats

from detectors.slices import band_labels, benjamini_hochberg, slice_metrics


def _data(n=8000, seed=0):
    rng = np.random.default_rng(seed)
    device = rng.choice(["a", "b"], n)
    locale = rng.choice(["en", "de"], n)
    bad = (device == "b") & (locale == "de")
    errors = (rng.uniform(size=n) < np.where(bad, 0.3, 0.1)).astype(float)
    errors[rng.uniform(size=n) < 0.5] = np.nan  # half unlabelled
    abstained = rng.uniform(size=n) < 0.02
    conf = np.clip(rng.normal(np.where(bad, 0.7, 0.8), 0.1), 0, 1)
    brightness = rng.normal(120, 40, n)
    return device, locale, errors, abstained, conf, brightness


def test_crossed_slices_find_the_one_bad_combination():
    device, locale, errors, abstained, conf, _ = _data()
    rows = slice_metrics(
        {"device": device, "locale": locale}, errors, abstained, conf, cross=[("device", "locale")]
    )
    by = {(r.slice, r.metric): r for r in rows}
    worst = by[("device=b&locale=de", "error_rate")]
    assert worst.significant and worst.gap > 0.15 and worst.ci_low > 0.2
    assert worst.n == int(np.isfinite(errors[(device == "b") & (locale == "de")]).sum())  # labelled only
    assert by[("device=b&locale=de", "mean_confidence")].significant
    assert not by[("device=a&locale=en", "abstention_rate")].significant
    assert len({r.slice for r in rows}) == 2 + 2 + 4


def test_rate_gap_p_values_equal_the_two_proportion_z_test():
    device, locale, errors, abstained, conf, _ = _data(seed=3)
    rows = slice_metrics({"device": device}, errors, abstained, conf)
    r = next(x for x in rows if x.slice == "device=b" and x.metric == "error_rate")
    lab = np.isfinite(errors)
    inside, rest = errors[lab & (device == "b")], errors[lab & (device != "b")]
    table = np.array([[inside.sum(), inside.size - inside.sum()], [rest.sum(), rest.size - rest.sum()]])
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)  # = pooled z-test squared
    assert r.p_value == pytest.approx(p, rel=1e-9)


def test_signal_bands_slices_and_insufficient_data():
    device, locale, errors, abstained, conf, brightness = _data(n=3000, seed=5)
    bands = band_labels("image.brightness", brightness, [40, 80, 160, 200])
    rows = slice_metrics({"band": bands}, errors, abstained, conf, min_n=100)
    names = {r.slice for r in rows}
    assert "image.brightness=[80,160)" in names and "image.brightness=<40" in names
    tiny = [r for r in rows if r.slice == "image.brightness=<40" and r.metric == "error_rate"]
    assert tiny[0].status == "insufficient_data" and tiny[0].p_value is None and not tiny[0].significant


def test_benjamini_hochberg_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(1).uniform(0, 0.2, 300) ** 2
    rejected, adjusted = benjamini_hochberg(p, 0.05)
    ref_rej, ref_adj, _, _ = multipletests(p, alpha=0.05, method="fdr_bh")
    assert rejected.tolist() == ref_rej.tolist()
    np.testing.assert_allclose(adjusted, ref_adj, rtol=1e-12)
