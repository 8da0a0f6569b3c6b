"""Two-sample drift tests of a window against a reference, for numeric signals and categories.

The reference is summarised once (``NumericReference`` / ``CategoricalReference``: plain data,
``state_dict`` for storage), so a window is tested without re-reading it. Every test returns a
``DriftResult``: statistic, p-value where the test has one, decision, effect size and both sample
sizes; below ``min_n`` on either side the answer is ``insufficient_data`` and no claim is made.

Tests (the decisions follow Evidently's conventions where the definitions coincide):

* ``ks``: two-sample Kolmogorov–Smirnov; drift when p ≤ alpha (0.05). Effect: D.
* ``wasserstein``: first Wasserstein distance over the reference's standard deviation (at least
  0.001); drift when ≥ 0.1. Effect: the normalised distance itself.
* ``psi``: population stability index over the reference's quantile bins (outer bins open, a
  bin empty on one side counts as ``PSI_EMPTY_BIN_SHARE``); drift when ≥ 0.1 (and, given
  ``alpha``, when its approximate χ² p-value is ≤ alpha). Evidently bins both samples together
  with Sturges' rule instead, so values differ while clear decisions agree.
* ``chisquare`` (categories): Pearson's goodness of fit of the window's counts against the
  reference's shares; drift when p < alpha. A category the reference never had is a drift with
  p = 0 (its expected count is 0). Effect: Cramér's V.
* ``jensenshannon`` (categories): Jensen–Shannon distance (natural log) of the two shares; drift
  when ≥ 0.1.

Reference summaries keep the sorted values themselves up to ``exact_max`` values, and then KS and
Wasserstein equal SciPy's (and Evidently's) results; beyond it they keep ``resolution`` + 1
quantiles, and KS's D and the Wasserstein distance are within 1 / ``resolution`` (resp. the
quantile grid's interpolation error) of the exact values. KS's p-value is SciPy's exact one while
the product of the sample sizes is at most ``KS_EXACT_MAX_PRODUCT`` (20 million), else
Kolmogorov's limit distribution.

>>> rng = np.random.default_rng(0)
>>> ref = NumericReference.fit(rng.normal(0, 1, 5000))
>>> same, moved = rng.normal(0, 1, 2000), rng.normal(0.3, 1, 2000)
>>> ks_test(ref, same).drift, ks_test(ref, moved).drift
(False, True)
>>> round(wasserstein_test(ref, moved).statistic, 1)
0.3
>>> ks_test(ref, moved[:10]).status
'insufficient_data'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

# Bins that receive no observation on one side get this share instead of 0, so that the
# logarithm in PSI stays finite (the convention of Evidently and most PSI write-ups).
PSI_EMPTY_BIN_SHARE = 1e-4


def _inverted_cdf(sorted_values: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The empirical quantile function (NumPy's "inverted_cdf") of sorted values, by indexing."""
    n = sorted_values.size
    return sorted_values[np.clip(np.ceil(u * n).astype(np.int64) - 1, 0, n - 1)]


def _finite(x: np.ndarray) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    return a[np.isfinite(a)]


def _quantiles_of_sorted(sorted_values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``np.quantile(values, q)`` (its default, linear method) of sorted values, by indexing
    instead of partitioning."""
    h = (sorted_values.size - 1) * np.asarray(q, dtype=float)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, sorted_values.size - 1)
    a, b, t = sorted_values[lo], sorted_values[hi], h - lo
    return np.where(t >= 0.5, b - (b - a) * (1 - t), a + (b - a) * t)  # NumPy's own interpolation


def _sorted(a: np.ndarray) -> np.ndarray:
    """``a`` sorted; an array that already is (a caller that sorted a whole column once and hands
    out its slices' parts) is checked in a fraction of a sort's time and returned as it is."""
    return a if a.size < 2 or bool(np.all(a[1:] >= a[:-1])) else np.sort(a)


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    # Bins are [e_i, e_{i+1}) except the last, which is closed at +inf anyway.
    idx = np.searchsorted(edges[1:-1], values, side="right")
    counts = np.bincount(idx, minlength=len(edges) - 1).astype(float)
    return counts / counts.sum()


# -- the general tests (issue 4) ------------------------------------------------------------------

# Above this product of the two sample sizes KS's p-value comes from Kolmogorov's limit
# distribution instead of SciPy's exact computation (which then takes tens of milliseconds).
KS_EXACT_MAX_PRODUCT = 20_000_000

Status = Literal["ok", "insufficient_data"]


@dataclass(frozen=True)
class DriftResult:
    test: str
    statistic: float
    p_value: float | None
    drift: bool
    effect: float
    threshold: float
    n: int
    n_reference: int
    status: Status


def _insufficient(test: str, threshold: float, n: int, n_ref: int) -> DriftResult:
    return DriftResult(test, math.nan, None, False, math.nan, threshold, n, n_ref, "insufficient_data")


@dataclass(frozen=True)
class NumericReference:
    """A numeric reference sample, summarised once.

    ``values`` holds the sorted reference itself when it has at most ``exact_max`` values (tests
    are then exact), else ``resolution`` + 1 quantiles at evenly spaced probabilities.
    """

    n: int
    mean: float
    std: float
    exact: bool
    values: tuple[float, ...]
    psi_edges: tuple[float, ...]
    psi_shares: tuple[float, ...]

    @classmethod
    def fit(
        cls, reference, psi_bins: int = 10, resolution: int = 2000, exact_max: int = 10_000
    ) -> "NumericReference":
        ref = _sorted(_finite(reference))
        if ref.size == 0:
            return cls(0, math.nan, math.nan, True, (), (-math.inf, math.inf), (1.0,))
        exact = ref.size <= exact_max
        values = ref if exact else _quantiles_of_sorted(ref, np.linspace(0, 1, resolution + 1))
        inner = np.unique(_quantiles_of_sorted(ref, np.linspace(0, 1, psi_bins + 1)[1:-1]))
        edges = np.concatenate(([-np.inf], inner, [np.inf]))
        return cls(
            int(ref.size),
            float(ref.mean()),
            float(ref.std()),
            exact,
            tuple(values.tolist()),
            tuple(edges.tolist()),
            tuple(_shares(ref, edges).tolist()),
        )

    def state_dict(self) -> dict:
        d = self.__dict__.copy()
        d["psi_edges"] = [None if not math.isfinite(e) else e for e in self.psi_edges]  # JSON has no inf
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_state_dict(cls, d: dict) -> "NumericReference":
        edges = list(d["psi_edges"])
        edges[0], edges[-1] = -math.inf, math.inf
        return cls(
            d["n"],
            d["mean"],
            d["std"],
            d["exact"],
            tuple(d["values"]),
            tuple(float(e) for e in edges),
            tuple(d["psi_shares"]),
        )

    def cdf(self, x: np.ndarray) -> np.ndarray:
        v = np.asarray(self.values)
        if self.exact:
            return np.searchsorted(v, x, side="right") / v.size
        return np.interp(x, v, np.linspace(0, 1, v.size), left=0.0, right=1.0)

    def quantile(self, u: np.ndarray) -> np.ndarray:
        v = np.asarray(self.values)
        if self.exact:
            return _inverted_cdf(v, u)
        return np.interp(u, np.linspace(0, 1, v.size), v)


def ks_test(ref: NumericReference, window, alpha: float = 0.05, min_n: int = 30) -> DriftResult:
    """Two-sample Kolmogorov–Smirnov test (two-sided).

    >>> r = NumericReference.fit(np.arange(1000.0))
    >>> res = ks_test(r, np.arange(500.0, 1500.0))
    >>> round(res.statistic, 3), res.drift
    (0.5, True)
    """
    win = _sorted(_finite(window))
    if win.size < min_n or ref.n < min_n:
        return _insufficient("ks", alpha, int(win.size), ref.n)
    from scipy import stats

    en = ref.n * win.size / (ref.n + win.size)
    if ref.exact and ref.n * win.size <= KS_EXACT_MAX_PRODUCT:
        r = stats.ks_2samp(np.asarray(ref.values), win)  # SciPy's (and Evidently's) exact p where it is
        d, p = float(r.statistic), float(r.pvalue)
    else:
        # D over every observed value of either side (SciPy's definition); the reference's CDF is
        # exact for a kept sample, interpolated between quantiles for a summary
        grid = np.concatenate([win, np.asarray(ref.values)])
        f_win = np.searchsorted(win, grid, side="right") / win.size
        d = float(np.max(np.abs(f_win - ref.cdf(grid))))
        # Kolmogorov's limit distribution: at these sizes within 1e-3 of the exact p, and
        # hundreds of times faster than kstwo.sf
        from scipy import special

        p = float(special.kolmogorov(math.sqrt(en) * d))
    return DriftResult("ks", d, p, p <= alpha, d, alpha, int(win.size), ref.n, "ok")


def wasserstein_test(ref: NumericReference, window, threshold: float = 0.1, min_n: int = 30) -> DriftResult:
    """First Wasserstein distance over the reference's standard deviation (floored at 0.001).

    >>> r = NumericReference.fit(np.random.default_rng(1).normal(0, 2, 3000))
    >>> round(wasserstein_test(r, np.random.default_rng(2).normal(1, 2, 3000)).statistic, 1)
    0.5
    """
    win = _finite(window)
    if win.size < min_n or ref.n < min_n:
        return _insufficient("wasserstein", threshold, int(win.size), ref.n)
    norm = max(ref.std, 0.001)
    if ref.exact:
        from scipy import stats

        dist = float(stats.wasserstein_distance(np.asarray(ref.values), win))
    else:
        m = max(4096, win.size)
        u = (np.arange(m) + 0.5) / m
        dist = float(np.mean(np.abs(ref.quantile(u) - _inverted_cdf(_sorted(win), u))))
    value = dist / norm
    return DriftResult(
        "wasserstein", value, None, value >= threshold, value, threshold, int(win.size), ref.n, "ok"
    )


def psi_test(
    ref: NumericReference, window, threshold: float = 0.1, min_n: int = 100, alpha: float | None = None
) -> DriftResult:
    """PSI over the reference's quantile bins (see the module docstring), with a p-value.

    PSI is the symmetrised Kullback–Leibler divergence of the binned shares; for two samples of
    one distribution, PSI · n·m/(n+m) is approximately χ² with (bins − 1) degrees of freedom (the
    same limit as the two-sample chi-square test), which gives ``p_value``. A threshold alone cries
    wolf on small windows (PSI's expected value without any change is about (bins − 1)·(1/n + 1/m):
    0.12 for 10 bins, n = 100, m = 300); with ``alpha`` the decision also needs p ≤ alpha.

    >>> r = NumericReference.fit(np.random.default_rng(0).normal(0, 1, 300))
    >>> small = psi_test(r, np.random.default_rng(9).normal(0, 1, 100), threshold=0.1, alpha=0.05)
    >>> small.p_value > 0.05 and not small.drift
    True
    """
    win = _finite(window)
    if win.size < min_n or ref.n < min_n:
        return _insufficient("psi", threshold, int(win.size), ref.n)
    r = np.maximum(np.asarray(ref.psi_shares), PSI_EMPTY_BIN_SHARE)
    w = np.maximum(_shares(win, np.asarray(ref.psi_edges)), PSI_EMPTY_BIN_SHARE)
    value = float(np.sum((w - r) * np.log(w / r)))
    from scipy import stats

    dof = max(1, len(r) - 1)
    p = float(stats.chi2.sf(value * ref.n * win.size / (ref.n + win.size), dof))
    drift = value >= threshold and (alpha is None or p <= alpha)
    return DriftResult("psi", value, p, drift, value, threshold, int(win.size), ref.n, "ok")


@dataclass(frozen=True)
class CategoricalReference:
    """Counts of each category in the reference."""

    counts: dict[str, int]

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    @classmethod
    def fit(cls, values) -> "CategoricalReference":
        keys, counts = np.unique(np.asarray([str(v) for v in values], dtype=object), return_counts=True)
        return cls({str(k): int(c) for k, c in zip(keys, counts)})

    def state_dict(self) -> dict:
        return {"counts": dict(self.counts)}

    @classmethod
    def from_state_dict(cls, d: dict) -> "CategoricalReference":
        return cls({str(k): int(v) for k, v in d["counts"].items()})


def _category_counts(ref: CategoricalReference, window) -> tuple[list[str], np.ndarray, np.ndarray]:
    win = CategoricalReference.fit(window).counts
    keys = sorted(set(ref.counts) | set(win))
    return (
        keys,
        np.array([ref.counts.get(k, 0) for k in keys], float),
        np.array([win.get(k, 0) for k in keys], float),
    )


def chi_square_test(ref: CategoricalReference, window, alpha: float = 0.05, min_n: int = 30) -> DriftResult:
    """Pearson's chi-square goodness of fit of the window against the reference's shares.

    >>> r = CategoricalReference.fit(["a"] * 500 + ["b"] * 500)
    >>> chi_square_test(r, ["a"] * 55 + ["b"] * 45).drift, chi_square_test(r, ["a"] * 80 + ["b"] * 20).drift
    (False, True)
    """
    n_win = len(window)
    if n_win < min_n or ref.n < min_n:
        return _insufficient("chisquare", alpha, n_win, ref.n)
    keys, r, w = _category_counts(ref, window)
    expected = r * (w.sum() / r.sum())
    if np.any((expected == 0) & (w > 0)):  # a category the reference never had
        return DriftResult("chisquare", math.inf, 0.0, True, 1.0, alpha, n_win, ref.n, "ok")
    seen = expected > 0
    from scipy import stats

    chi2, p = stats.chisquare(w[seen], expected[seen])
    k = int(seen.sum())
    v = math.sqrt(chi2 / (w.sum() * (k - 1))) if k > 1 else 0.0
    return DriftResult("chisquare", float(chi2), float(p), bool(p < alpha), v, alpha, n_win, ref.n, "ok")


def jensen_shannon_test(
    ref: CategoricalReference, window, threshold: float = 0.1, min_n: int = 30
) -> DriftResult:
    """Jensen–Shannon distance (natural logarithm) between the category shares.

    >>> r = CategoricalReference.fit(["car"] * 300 + ["street"] * 700)
    >>> round(jensen_shannon_test(r, ["car"] * 70 + ["street"] * 30).statistic, 3)
    0.287
    """
    n_win = len(window)
    if n_win < min_n or ref.n < min_n:
        return _insufficient("jensenshannon", threshold, n_win, ref.n)
    from scipy.spatial import distance

    _, r, w = _category_counts(ref, window)
    value = float(distance.jensenshannon(r / r.sum(), w / w.sum()))
    return DriftResult("jensenshannon", value, None, value >= threshold, value, threshold, n_win, ref.n, "ok")


def default_numeric_test(ref: NumericReference):
    """Evidently's default for a numeric column: KS up to 1,000 reference values, else Wasserstein."""
    return ks_test if ref.n <= 1000 else wasserstein_test
