"""Calibration of a classifier's top-label confidence."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ECEResult:
    """Expected calibration error, top-label, equal-width bins.

    Bins are (k/B, (k+1)/B] with confidence 0 in the first bin; empty bins contribute nothing.
    ``status`` is ``"insufficient_data"`` below ``min_n`` labelled events (then ``ece`` is nan).
    """

    ece: float
    accuracy: float
    mean_confidence: float
    n: int
    bins: int
    variant: str
    status: str


def expected_calibration_error(
    confidence: np.ndarray, correct: np.ndarray, bins: int = 15, min_n: int = 100
) -> ECEResult:
    """ECE = sum_b (n_b / n) * |acc_b - conf_b| (top-label, ``bins`` equal-width bins)."""
    conf = np.asarray(confidence, dtype=float).ravel()
    ok = np.asarray(correct, dtype=bool).ravel()
    if conf.shape != ok.shape:
        raise ValueError(f"confidence and correct differ in length: {conf.size} vs {ok.size}")
    if np.any((conf < 0) | (conf > 1) | ~np.isfinite(conf)):
        raise ValueError("confidence must lie in [0, 1]")
    n = int(conf.size)
    variant = f"top_label_equal_width_{bins}"
    if n < min_n:
        nan = float("nan")
        return ECEResult(nan, nan, nan, n, bins, variant, "insufficient_data")
    idx = np.clip(np.ceil(conf * bins).astype(int) - 1, 0, bins - 1)
    conf_sum = np.bincount(idx, weights=conf, minlength=bins)
    acc_sum = np.bincount(idx, weights=ok.astype(float), minlength=bins)
    ece = float(np.sum(np.abs(acc_sum - conf_sum)) / n)
    return ECEResult(ece, float(ok.mean()), float(conf.mean()), n, bins, variant, "ok")
