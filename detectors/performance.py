"""Performance without labels: confidence-based performance estimation (the idea of NannyML's
CBPE), incremental.

1. ``ConfidenceCalibrator.fit`` learns P(correct | confidence) on the labelled reference with
   isotonic regression, and keeps it only if it helps: the Brier score of the isotonic map, fitted
   on one half of the reference and scored on the other (both ways), must beat the raw
   confidences'; otherwise the raw confidence is used (``identity``). Its state is two short
   arrays (the isotonic breakpoints).
2. ``PerformanceSummary`` accumulates a window as it streams — per event only sums: expected
   correct predictions and their variance, and for binary tasks the expected confusion matrix and
   score histograms of expected positives and negatives — so a window is never held in memory
   and summaries of parts add up to the summary of the whole (``merge``).
3. ``estimate()`` gives the expected accuracy with a sampling-error band (±1.96 √Σp(1−p) / n:
   how far the realised accuracy of these n events may fall from its expectation even when the
   calibration is right), and for binary tasks precision, recall, F1 and ROC AUC (from the score
   histograms, 100 bins by default).

The estimate is right when the calibration learnt on the reference still holds (covariate
shift: the inputs and confidences move, P(correct | confidence) does not); it cannot see concept
drift, where the same confidence becomes less often right — labels find that.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> conf = rng.uniform(0.4, 1.0, 5000)
>>> cal = ConfidenceCalibrator.fit(conf, rng.uniform(size=5000) < conf ** 2)  # over-confident model
>>> cal.kind
'isotonic'
>>> window = rng.uniform(0.7, 1.0, 2000)  # the window is easier: higher confidences
>>> s = PerformanceSummary.empty()
>>> s = s.merge(PerformanceSummary.of(cal, window[:1000])).merge(PerformanceSummary.of(cal, window[1000:]))
>>> est = s.estimate()
>>> bool(abs(est.accuracy - np.mean(window ** 2)) < 0.02), est.ci_low < est.accuracy < est.ci_high
(True, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from detectors.intervals import _Z95


@dataclass(frozen=True)
class ConfidenceCalibrator:
    kind: Literal["isotonic", "identity"]
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    brier_raw: float = math.nan
    brier_isotonic: float = math.nan

    @classmethod
    def fit(cls, confidence, correct, min_n: int = 200) -> "ConfidenceCalibrator":
        conf = np.asarray(confidence, dtype=float)
        ok = np.asarray(correct, dtype=float)
        if conf.size < min_n:
            return cls("identity")
        order = np.lexsort((ok, conf))  # a canonical order: the fit does not depend on the rows' order
        conf, ok = conf[order], ok[order]
        half = np.arange(conf.size) % 2 == 0  # every other event by confidence: both halves span it
        iso_scores = []
        for train, test in ((half, ~half), (~half, half)):
            xs, ys = _isotonic(conf[train], ok[train])
            iso_scores.append(np.mean((np.interp(conf[test], xs, ys) - ok[test]) ** 2))
        brier_iso, brier_raw = float(np.mean(iso_scores)), float(np.mean((conf - ok) ** 2))
        if brier_iso >= brier_raw:
            return cls("identity", brier_raw=brier_raw, brier_isotonic=brier_iso)
        xs, ys = _isotonic(conf, ok)
        return cls("isotonic", tuple(xs.tolist()), tuple(ys.tolist()), brier_raw, brier_iso)

    def __call__(self, confidence) -> np.ndarray:
        c = np.asarray(confidence, dtype=float)
        return c if self.kind == "identity" else np.interp(c, self.x, self.y)

    def state_dict(self) -> dict:
        return {
            "kind": self.kind,
            "x": list(self.x),
            "y": list(self.y),
            "brier_raw": self.brier_raw,
            "brier_isotonic": self.brier_isotonic,
        }

    @classmethod
    def from_state_dict(cls, d: dict) -> "ConfidenceCalibrator":
        return cls(d["kind"], tuple(d["x"]), tuple(d["y"]), d["brier_raw"], d["brier_isotonic"])


def _isotonic(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Breakpoints of the increasing isotonic fit of y on x (pool-adjacent-violators, via
    scikit-learn), clipped to [0, 1]."""
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(x, y)
    return np.asarray(iso.X_thresholds_, dtype=float), np.asarray(iso.y_thresholds_, dtype=float)


@dataclass(frozen=True)
class PerformanceEstimate:
    accuracy: float
    ci_low: float
    ci_high: float
    n: int
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    roc_auc: float | None = None
    status: Literal["ok", "insufficient_data"] = "ok"


@dataclass(frozen=True)
class PerformanceSummary:
    """Sums over a window's events; ``binary`` parts are zero for multiclass tasks."""

    n: int
    expected_correct: float
    variance: float
    tp: float = 0.0
    fp: float = 0.0
    tn: float = 0.0
    fn: float = 0.0
    pos_hist: tuple[float, ...] = ()
    neg_hist: tuple[float, ...] = ()

    @classmethod
    def empty(cls) -> "PerformanceSummary":
        return cls(0, 0.0, 0.0)

    @classmethod
    def of(
        cls, calibrator: ConfidenceCalibrator, confidence, predicted_positive=None, bins: int = 100
    ) -> "PerformanceSummary":
        """Summarise events. For a binary task pass ``predicted_positive`` (bool per event): the
        score of the positive class is then conf (predicted positive) or 1 − conf."""
        p = np.clip(calibrator(confidence), 0.0, 1.0)  # P(the prediction is right)
        out = {"n": int(p.size), "expected_correct": float(p.sum()), "variance": float((p * (1 - p)).sum())}
        if predicted_positive is not None:
            pos = np.asarray(predicted_positive, dtype=bool)
            conf = np.asarray(confidence, dtype=float)
            q = np.where(pos, p, 1 - p)  # P(y = 1)
            score = np.where(pos, conf, 1 - conf)
            idx = np.clip((score * bins).astype(int), 0, bins - 1)
            out.update(
                tp=float(p[pos].sum()),
                fp=float((1 - p[pos]).sum()),
                tn=float(p[~pos].sum()),
                fn=float((1 - p[~pos]).sum()),
                pos_hist=tuple(np.bincount(idx, weights=q, minlength=bins).tolist()),
                neg_hist=tuple(np.bincount(idx, weights=1 - q, minlength=bins).tolist()),
            )
        return cls(**out)

    def merge(self, other: "PerformanceSummary") -> "PerformanceSummary":
        def add(a, b):
            if not a:
                return b
            if not b:
                return a
            return tuple(x + y for x, y in zip(a, b))

        return PerformanceSummary(
            self.n + other.n,
            self.expected_correct + other.expected_correct,
            self.variance + other.variance,
            self.tp + other.tp,
            self.fp + other.fp,
            self.tn + other.tn,
            self.fn + other.fn,
            add(self.pos_hist, other.pos_hist),
            add(self.neg_hist, other.neg_hist),
        )

    def estimate(self, min_n: int = 50) -> PerformanceEstimate:
        if self.n < min_n:
            nan = math.nan
            return PerformanceEstimate(nan, nan, nan, self.n, status="insufficient_data")
        acc = self.expected_correct / self.n
        half = _Z95 * math.sqrt(self.variance) / self.n
        est = {"accuracy": acc, "ci_low": max(0.0, acc - half), "ci_high": min(1.0, acc + half), "n": self.n}
        if self.pos_hist:
            precision = self.tp / (self.tp + self.fp) if self.tp + self.fp else math.nan
            recall = self.tp / (self.tp + self.fn) if self.tp + self.fn else math.nan
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else math.nan
            pos, neg = np.asarray(self.pos_hist), np.asarray(self.neg_hist)
            above = np.cumsum(pos[::-1])[::-1] - pos  # expected positives in higher bins
            auc = (
                float(np.sum(neg * (above + 0.5 * pos)) / (pos.sum() * neg.sum()))
                if pos.sum() and neg.sum()
                else math.nan
            )
            est.update(precision=precision, recall=recall, f1=f1, roc_auc=auc)
        return PerformanceEstimate(**est)
