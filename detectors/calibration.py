"""Calibration of a classifier: ECE (top-label, equal-width or equal-mass bins; classwise), the
maximum calibration error, Brier scores, the reliability diagram, and calibration drift with a
bootstrap interval from per-bin sums (``bin_sums``: mergeable). Every result names its variant.

Conventions (fixed, tested):

* equal-width bins are (k/B, (k+1)/B]: a confidence on an inner edge belongs to the lower bin,
  confidence 0 to the first bin and 1.0 to the last (torchmetrics uses [k/B, (k+1)/B) and gives
  1.0 a bin of its own, so values coincide when no confidence lies on an edge or equals 1);
* equal-mass bins: events sorted by confidence are cut into B groups of ⌊n/B⌋ or ⌈n/B⌉; ties
  straddling a cut stay together in the lower group (a group may then be larger, and the last
  ones smaller or empty); empty bins contribute nothing to ECE and are left out of MCE;
* ECE = Σ_b (n_b / n)·|acc_b − conf_b|; MCE = max_b |acc_b − conf_b|;
* top-label Brier = mean (conf − correct)²; multiclass Brier = mean Σ_k (p_k − 1[y = k])²
  (needs every class's probability);
* classwise ECE = the mean over classes k of the equal-width ECE of p_k against 1[y = k];
* calibration drift compares a window's ECE with the reference's at the window's sample size
  (ECE's small-sample bias would otherwise make every short window look worse).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> conf = rng.uniform(0.5, 1.0, 5000)
>>> honest = rng.uniform(size=5000) < conf
>>> coin = rng.uniform(size=5000) < 0.6
>>> round(calibration(conf, honest).ece, 3) < 0.02, round(calibration(conf, coin).ece, 2)
(True, 0.18)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Scheme = Literal["equal_width", "equal_mass"]


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    n: int
    mean_confidence: float
    accuracy: float


@dataclass(frozen=True)
class CalibrationResult:
    ece: float
    mce: float
    brier: float  # top-label
    accuracy: float
    mean_confidence: float
    n: int
    variant: str  # e.g. "top_label_equal_width_15"
    bins: tuple[ReliabilityBin, ...]
    status: Literal["ok", "insufficient_data"]


def _check(confidence, correct) -> tuple[np.ndarray, np.ndarray]:
    conf = np.asarray(confidence, dtype=float).ravel()
    ok = np.asarray(correct, dtype=float).ravel()
    if conf.shape != ok.shape:
        raise ValueError(f"confidence and correct differ in length: {conf.size} vs {ok.size}")
    if np.any(~np.isfinite(conf) | (conf < 0) | (conf > 1)):
        raise ValueError("confidence must lie in [0, 1]")
    return conf, ok


def bin_index(conf: np.ndarray, bins: int, scheme: Scheme = "equal_width") -> tuple[np.ndarray, np.ndarray]:
    """(bin of each confidence, bin edges) under the conventions above."""
    if scheme == "equal_width":
        idx = np.clip(np.ceil(conf * bins).astype(np.int64) - 1, 0, bins - 1)
        return idx, np.linspace(0.0, 1.0, bins + 1)
    if scheme == "equal_mass":
        n = conf.size
        order = np.argsort(conf, kind="stable")
        sorted_conf = conf[order]
        cuts = [int(round(n * k / bins)) for k in range(1, bins)]
        # a cut inside a run of equal values moves up to the end of that run
        cuts = [
            int(np.searchsorted(sorted_conf, sorted_conf[c - 1], side="right")) if 0 < c < n else c
            for c in cuts
        ]
        rank_bin = np.searchsorted(np.asarray(cuts), np.arange(n), side="right")
        idx = np.empty(n, np.int64)
        idx[order] = rank_bin
        edges = [0.0] + [float(sorted_conf[c - 1]) if 0 < c <= n else 1.0 for c in cuts] + [1.0]
        return idx, np.asarray(edges)
    raise ValueError(f"unknown binning scheme {scheme!r}")


def calibration(
    confidence, correct, bins: int = 15, scheme: Scheme = "equal_width", min_n: int = 100
) -> CalibrationResult:
    """Top-label calibration of confidences against 0/1 correctness (equal width: from
    ``bin_sums``, as a window's summaries give it)."""
    conf, ok = _check(confidence, correct)
    if scheme == "equal_width":
        return calibration_of_sums(bin_sums(conf, ok, bins), min_n)
    n = int(conf.size)
    if n < min_n:
        return _insufficient(n, f"top_label_{scheme}_{bins}")
    idx, edges = bin_index(conf, bins, scheme)
    return _result(
        np.bincount(idx, minlength=bins).astype(float),
        np.bincount(idx, weights=conf, minlength=bins),
        np.bincount(idx, weights=ok, minlength=bins),
        float(np.sum((conf - ok) ** 2)),
        edges,
        f"top_label_{scheme}_{bins}",
    )


def calibration_of_sums(sums: np.ndarray, min_n: int = 100) -> CalibrationResult:
    """Top-label equal-width calibration from ``bin_sums``: the same numbers as ``calibration``
    of the events (Brier too: Σ (conf − correct)² is Σ conf² − 2 Σ conf over the right ones + their
    count)."""
    bins = sums.shape[0]
    n = int(round(sums[..., 0].sum()))
    variant = f"top_label_equal_width_{bins}"
    if n < min_n:
        return _insufficient(n, variant)
    right = sums[:, 1]
    squared_error = float(sums[..., 2].sum() - 2 * right[:, 1].sum() + right[:, 0].sum())
    return _result(
        sums[..., 0].sum(axis=1),
        sums[..., 1].sum(axis=1),
        right[:, 0],
        squared_error,
        np.linspace(0.0, 1.0, bins + 1),
        variant,
    )


def _insufficient(n: int, variant: str) -> CalibrationResult:
    nan = math.nan
    return CalibrationResult(nan, nan, nan, nan, nan, n, variant, (), "insufficient_data")


def _result(count, conf_sum, acc_sum, squared_error: float, edges, variant: str) -> CalibrationResult:
    """ECE, MCE, Brier and the reliability diagram from per-bin counts and sums."""
    n = float(count.sum())
    gaps = np.abs(acc_sum - conf_sum)
    full = count > 0
    mce = float(np.max(gaps[full] / count[full])) if full.any() else math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = tuple(
            ReliabilityBin(
                float(edges[b]),
                float(edges[b + 1]),
                int(round(count[b])),
                float(conf_sum[b] / count[b]) if count[b] else math.nan,
                float(acc_sum[b] / count[b]) if count[b] else math.nan,
            )
            for b in range(len(count))
        )
    return CalibrationResult(
        float(gaps.sum() / n),
        mce,
        squared_error / n,
        float(acc_sum.sum() / n),
        float(conf_sum.sum() / n),
        int(round(n)),
        variant,
        rel,
        "ok",
    )


def classwise_ece(probabilities: np.ndarray, labels: np.ndarray, bins: int = 15) -> float:
    """Mean over classes of the equal-width ECE of each class's probability (columns of
    ``probabilities``, classes 0..K-1) against whether that class is the label.

    >>> p = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]])
    >>> round(classwise_ece(p, np.array([0, 0, 1, 1]), bins=10), 3)
    0.25
    """
    p = np.asarray(probabilities, dtype=float)
    y = np.asarray(labels)
    return float(np.mean([calibration(p[:, k], y == k, bins, min_n=1).ece for k in range(p.shape[1])]))


def brier_multiclass(probabilities: np.ndarray, labels: np.ndarray) -> float:
    p = np.asarray(probabilities, dtype=float)
    onehot = np.zeros_like(p)
    onehot[np.arange(p.shape[0]), np.asarray(labels)] = 1.0
    return float(np.mean(np.sum((p - onehot) ** 2, axis=1)))


@dataclass(frozen=True)
class CalibrationDrift:
    """The window's ECE against what the reference's calibration gives at the window's size."""

    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    window_ece: float
    reference_ece: float  # the mean ECE of reference samples of the window's size
    drift: bool  # the interval lies wholly above ``margin``
    n: int
    n_reference: int
    variant: str
    status: Literal["ok", "insufficient_data"]


# where fewer than 10 resamples reach a window's ECE, the p-value's tail is counted on up to this
# many (drawn from bin sums: ~7 ms at 15 bins on a 2-core machine; the first 500, ~2 ms)
TAIL_RESAMPLES = 2_000


def bin_sums(confidence, correct, bins: int = 15) -> np.ndarray:
    """Calibration's sufficient statistics: per equal-width bin and correctness (0 wrong, 1
    right), the count, Σ confidence and Σ confidence². Shape (bins, 2, 3); they merge by addition,
    so a window's are the sum of its parts', and ECE and its drift need nothing else.

    >>> s = bin_sums([0.95, 0.95, 0.35], [1, 0, 1], bins=2)
    >>> s[1, :, 0].tolist(), float(s[0, 1, 1])
    ([1.0, 1.0], 0.35)
    """
    conf, ok = _check(confidence, correct)
    idx, _ = bin_index(conf, bins)
    cell = idx * 2 + (ok > 0.5)
    out = np.empty((bins, 2, 3))
    for j, weights in enumerate((None, conf, conf * conf)):
        out[..., j] = np.bincount(cell, weights=weights, minlength=2 * bins).reshape(bins, 2)
    return out


def ece_of_sums(sums: np.ndarray) -> float:
    """Top-label equal-width ECE from ``bin_sums``: Σ_b |Σ correct − Σ confidence| / n."""
    n = sums[..., 0].sum()
    return float(np.abs(sums[:, 1, 0] - sums[..., 1].sum(axis=1)).sum() / n) if n else math.nan


def calibration_drift(
    ref_confidence, ref_correct, confidence, correct, bins: int = 15, **options: Any
) -> CalibrationDrift:
    """``calibration_drift_of_sums`` of the two samples' ``bin_sums`` (``options``: its own).

    >>> rng = np.random.default_rng(1)
    >>> rc = rng.uniform(0.5, 1, 3000); rok = rng.uniform(size=3000) < rc
    >>> same_c = rng.uniform(0.5, 1, 500); same_ok = rng.uniform(size=500) < same_c
    >>> calibration_drift(rc, rok, same_c, same_ok).drift
    False
    >>> wc = rng.uniform(0.5, 1, 2000); wok = rng.uniform(size=2000) < wc - 0.1
    >>> d = calibration_drift(rc, rok, wc, wok)
    >>> d.drift, round(d.difference, 2), d.p_value < 0.01
    (True, 0.07, True)
    """
    return calibration_drift_of_sums(
        bin_sums(ref_confidence, ref_correct, bins), bin_sums(confidence, correct, bins), **options
    )


def calibration_drift_of_sums(
    reference: np.ndarray,
    window: np.ndarray,
    margin: float = 0.0,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    min_n: int = 100,
    normal_tail: bool = False,
) -> CalibrationDrift:
    """Has calibration got worse than the reference's? From the two samples' ``bin_sums``.

    ECE is biased upwards in small samples (by roughly √(bins / n)), so a day's ECE compared with
    a week's would always look worse. The comparison is therefore size-matched: ``n_boot``
    samples of the window's size are drawn (with replacement, seeded) from the reference, and
    their ECEs are what the window's ECE would be if nothing had changed. They are drawn from the
    reference's bin sums, not its events: how many of a resample's events fall in each (bin,
    correctness) cell is multinomial — exactly as when events are drawn — and the confidences
    drawn in a cell sum to a normal with the cell's mean and variance (a confidence varies by at
    most 1 / bins within its bin, so this part of the spread is small next to correctness's). The
    cost is O(n_boot × bins) whatever the sizes. ``difference`` = window ECE − their mean; the
    interval is the window's ECE minus their central ``level`` range; drift when it lies above
    ``margin``. ``p_value`` is the share of resamples at least as large as the window's ECE
    (one-sided, +1 smoothed); where fewer than 10 of the ``n_boot`` reach it, more are drawn — up
    to ``TAIL_RESAMPLES`` in all, some milliseconds — so that a small p is counted, not
    extrapolated, down to 1 / (TAIL_RESAMPLES + 1): a Benjamini–Hochberg family of m tests can
    then adjust a drift down to m / (TAIL_RESAMPLES + 1). With ``normal_tail``, where even those
    leave fewer than 10, ``p_value`` is the normal tail of the first ``n_boot``'s mean and
    standard deviation, when smaller (ECE's null is skewed to the right, so that tail is too
    thin: it is used only beyond what was counted).
    """
    bins = reference.shape[0]
    n_ref, n = int(round(reference[..., 0].sum())), int(round(window[..., 0].sum()))
    variant = f"top_label_equal_width_{bins}_size_matched_bin_bootstrap_{n_boot}"
    if n_ref < min_n or n < min_n:
        nan = math.nan
        return CalibrationDrift(nan, nan, nan, nan, nan, nan, False, n, n_ref, variant, "insufficient_data")
    rng = np.random.default_rng(seed)
    null = _null_ece(reference, n, n_boot, rng)
    w = ece_of_sums(window)
    alpha = (1 - level) / 2
    q_low, q_high = (float(q) for q in np.quantile(null, [alpha, 1 - alpha]))
    low, high = w - q_high, w - q_low
    reached, drawn = int(np.count_nonzero(null >= w)), n_boot
    while reached < 10 and drawn < TAIL_RESAMPLES:  # the tail from resamples, while they are cheap
        more = _null_ece(reference, n, min(drawn, TAIL_RESAMPLES - drawn), rng)
        reached, drawn = reached + int(np.count_nonzero(more >= w)), drawn + more.size
    p = float((1 + reached) / (drawn + 1))
    if normal_tail and reached < 10:
        sd = float(null.std(ddof=1))
        p = min(p, 0.5 * math.erfc((w - float(null.mean())) / (sd * math.sqrt(2)))) if sd > 0 else p
        variant += "_normal_tail"
    return CalibrationDrift(
        w - float(null.mean()), low, high, p, w, float(null.mean()), low > margin, n, n_ref, variant, "ok"
    )


def _null_ece(reference: np.ndarray, size: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """ECE of ``n_boot`` resamples of ``size`` events drawn from the reference's bin sums."""
    count = reference[..., 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, reference[..., 1] / count, 0.0)
        var = np.where(count > 0, np.maximum(reference[..., 2] / count - mean * mean, 0.0), 0.0)
    drawn = rng.multinomial(size, (count / count.sum()).ravel(), size=n_boot).reshape(n_boot, *count.shape)
    conf_sum = drawn * mean + np.sqrt(drawn * var) * rng.standard_normal(drawn.shape)
    gap = drawn[..., 1] - conf_sum.sum(axis=2)  # per bin Σ correct − Σ confidence
    return np.abs(gap).sum(axis=1) / size
