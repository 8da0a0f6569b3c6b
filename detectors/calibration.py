"""Calibration of a classifier: ECE (top-label, equal-width or equal-mass bins; classwise), the
maximum calibration error, Brier scores, the reliability diagram, and calibration drift with a
bootstrap interval. Every result names its variant.

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
from typing import Literal

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
    """Top-label calibration of confidences against 0/1 correctness."""
    conf, ok = _check(confidence, correct)
    n = int(conf.size)
    variant = f"top_label_{scheme}_{bins}"
    if n < min_n:
        nan = math.nan
        return CalibrationResult(nan, nan, nan, nan, nan, n, variant, (), "insufficient_data")
    idx, edges = bin_index(conf, bins, scheme)
    count = np.bincount(idx, minlength=bins).astype(float)
    conf_sum = np.bincount(idx, weights=conf, minlength=bins)
    acc_sum = np.bincount(idx, weights=ok, minlength=bins)
    gaps = np.abs(acc_sum - conf_sum)
    ece = float(gaps.sum() / n)
    full = count > 0
    mce = float(np.max(gaps[full] / count[full])) if full.any() else math.nan
    with np.errstate(invalid="ignore", divide="ignore"):
        rel = tuple(
            ReliabilityBin(
                float(edges[b]),
                float(edges[b + 1]),
                int(count[b]),
                float(conf_sum[b] / count[b]) if count[b] else math.nan,
                float(acc_sum[b] / count[b]) if count[b] else math.nan,
            )
            for b in range(bins)
        )
    return CalibrationResult(
        ece,
        mce,
        float(np.mean((conf - ok) ** 2)),
        float(ok.mean()),
        float(conf.mean()),
        n,
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


def calibration_drift(
    ref_confidence,
    ref_correct,
    confidence,
    correct,
    bins: int = 15,
    scheme: Scheme = "equal_width",
    margin: float = 0.0,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
    min_n: int = 100,
    normal_tail: bool = False,
) -> CalibrationDrift:
    """Has calibration got worse than the reference's?

    ECE is biased upwards in small samples (by roughly √(bins / n)), so a day's ECE compared with
    a week's would always look worse. The comparison is therefore size-matched: ``n_boot``
    samples of the window's size are drawn (with replacement, seeded) from the reference, and
    their ECEs are what the window's ECE would be if nothing had changed. ``difference`` = window
    ECE − their mean; the interval is the window's ECE minus their central ``level`` range;
    ``p_value`` is the share of them at least as large as the window's ECE (one-sided, +1
    smoothed); drift when the interval lies above ``margin``. That share is never below
    1 / (n_boot + 1): in a Benjamini–Hochberg family of m tests no drift could then be adjusted
    below m / (n_boot + 1). With ``normal_tail``, where fewer than 10 resamples reach the
    window's ECE, ``p_value`` is the normal tail of their mean and standard deviation instead.

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
    rc, rok = _check(ref_confidence, ref_correct)
    wc, wok = _check(confidence, correct)
    variant = f"top_label_{scheme}_{bins}_size_matched_bootstrap_{n_boot}"
    if rc.size < min_n or wc.size < min_n:
        nan = math.nan
        return CalibrationDrift(
            nan, nan, nan, nan, nan, nan, False, int(wc.size), int(rc.size), variant, "insufficient_data"
        )
    # resampled in a canonical order, so that the result depends on the reference's events, not
    # on the order a store returned them in
    order = np.lexsort((rok, rc))
    rng = np.random.default_rng(seed)
    null = _bootstrap_ece(rc[order], rok[order], bins, scheme, n_boot, rng, size=wc.size)
    w = calibration(wc, wok, bins, scheme, 1).ece
    alpha = (1 - level) / 2
    q_low, q_high = (float(q) for q in np.quantile(null, [alpha, 1 - alpha]))
    low, high = w - q_high, w - q_low
    reached = int(np.count_nonzero(null >= w))
    p = float((1 + reached) / (n_boot + 1))
    if normal_tail and reached < 10:
        sd = float(null.std(ddof=1))
        p = min(p, 0.5 * math.erfc((w - float(null.mean())) / (sd * math.sqrt(2)))) if sd > 0 else p
        variant += "_normal_tail"
    return CalibrationDrift(
        w - float(null.mean()),
        low,
        high,
        p,
        w,
        float(null.mean()),
        low > margin,
        int(wc.size),
        int(rc.size),
        variant,
        "ok",
    )


def _bootstrap_ece(
    conf, ok, bins, scheme, n_boot, rng, size: int | None = None, chunk: int = 64
) -> np.ndarray:
    """ECE of ``n_boot`` resamples of ``size`` (default: the sample's); the bins are those of the
    sample (fixed edges for equal width; for equal mass, each event keeps its bin)."""
    idx, _ = bin_index(conf, bins, scheme)
    gap_of = ok.astype(float) - conf
    n = size or conf.size
    out = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        pick = rng.integers(0, conf.size, (k, n))
        b = idx[pick] + bins * np.arange(k)[:, None]  # one block of bins per replicate
        # per bin |accuracy sum − confidence sum| = |Σ (correct − confidence)|: one pass, not two
        gap = np.bincount(b.ravel(), weights=gap_of[pick].ravel(), minlength=bins * k).reshape(k, bins)
        out[start : start + k] = np.abs(gap).sum(axis=1) / n
    return out
