"""Two-sample drift statistics on windows of a numeric signal."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Bins that receive no observation on one side get this share instead of 0, so that the
# logarithm in PSI stays finite (the convention of Evidently and most PSI write-ups).
PSI_EMPTY_BIN_SHARE = 1e-4


@dataclass(frozen=True)
class PSIReference:
    """What a window needs from the reference, computed once: the bin edges and the shares.

    Edges are the reference's quantiles, so each bin holds about the same share of the
    reference; the outer edges are open (-inf, +inf) so every window value falls in a bin.
    """

    edges: tuple[float, ...]
    shares: tuple[float, ...]
    n: int

    @classmethod
    def fit(cls, reference: np.ndarray, bins: int = 10) -> "PSIReference":
        ref = _finite(reference)
        if ref.size == 0:
            return cls(edges=(-np.inf, np.inf), shares=(1.0,), n=0)
        inner = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
        edges = np.concatenate(([-np.inf], inner, [np.inf]))
        return cls(edges=tuple(float(e) for e in edges), shares=tuple(_shares(ref, edges)), n=int(ref.size))


@dataclass(frozen=True)
class PSIResult:
    """Population stability index of a window against a reference.

    ``status`` is ``"ok"`` or ``"insufficient_data"`` (either side below ``min_n``); in the latter
    case ``psi`` is ``nan`` and ``drift`` is ``False``: no claim is made.
    """

    psi: float
    drift: bool
    threshold: float
    n: int
    n_reference: int
    status: str


def population_stability_index(
    reference: PSIReference, window: np.ndarray, threshold: float = 0.25, min_n: int = 100
) -> PSIResult:
    """PSI = sum((w - r) * ln(w / r)) over the reference's quantile bins.

    Values that are not finite (nan, inf) are ignored on both sides.
    """
    win = _finite(window)
    if win.size < min_n or reference.n < min_n:
        return PSIResult(float("nan"), False, threshold, int(win.size), reference.n, "insufficient_data")
    r = np.maximum(np.asarray(reference.shares), PSI_EMPTY_BIN_SHARE)
    w = np.maximum(_shares(win, np.asarray(reference.edges)), PSI_EMPTY_BIN_SHARE)
    psi = float(np.sum((w - r) * np.log(w / r)))
    return PSIResult(psi, psi > threshold, threshold, int(win.size), reference.n, "ok")


def _finite(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # Bins are [e_i, e_{i+1}) except the last, which is closed at +inf anyway.
    idx = np.searchsorted(edges[1:-1], values, side="right")
    counts = np.bincount(idx, minlength=len(edges) - 1).astype(float)
    return counts / counts.sum()
