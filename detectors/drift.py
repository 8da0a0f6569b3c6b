"""Two-sample drift tests of a window against a reference, for numeric signals and categories.

The reference is summarised once (``NumericReference`` / ``CategoricalReference``: plain data,
``state_dict`` for storage), so a window is tested without re-reading it. Every test returns a
``DriftResult``: statistic, p-value where the test has one, decision, effect size and both sample
sizes; below ``min_n`` on either side the answer is ``insufficient_data`` and no claim is made.

Tests (the decisions follow Evidently's conventions where the definitions coincide):

* ``ks``: two-sample Kolmogorov–Smirnov; drift when p ≤ alpha (0.05). Effect: D.
* ``wasserstein``: first Wasserstein distance over the reference's standard deviation (at least
  0.001); drift when ≥ 0.1. Effect: the normalised distance itself.
* ``psi``: population stability index over the reference's bins — its values when it has few
  (constant, binary, discrete), else its quantiles with a tied quantile as a bin of its own —
  plus an underflow and an overflow bin for mass outside the reference's range; a bin empty on
  one side counts as ``PSI_EMPTY_BIN_SHARE`` (the reference's, as at least 1/(n+1)). Drift when
  ≥ 0.1 (and, given ``alpha``, when its approximate χ² p-value is ≤ alpha). Like Evidently, a
  reference of at most 20 values is binned on its values; above that Evidently bins both samples
  together on equal-width (Sturges) bins, where this bins on the reference alone (a summary
  kept once tests every window the same way), so continuous values differ while clear
  decisions agree. Quantile bins with open ends were blind above a constant or tied reference;
  the value bins, the atoms and the overflow bin are there on purpose.
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


def _slot_bins(atoms: tuple[bool, ...]) -> np.ndarray:
    """The PSI bin of each slot of the boundary points: slot 2k is the gap below point k (slot 0
    the underflow, below the reference's minimum; slot 2K the overflow, above its maximum) and
    slot 2k + 1 point k itself. An atom — a value holding a share of the reference of its own —
    is a bin; any other point joins the gap above it (the last one the gap below it), so that a
    continuous reference gets its quantile bins [p_k, p_k+1) between an underflow and an
    overflow bin."""
    k_points = len(atoms)
    slots = np.zeros(2 * k_points + 1, dtype=np.int64)
    b = 0
    for k, atom in enumerate(atoms):
        last = k == k_points - 1
        if atom:
            b += 1
            slots[2 * k + 1] = b
        elif last:
            slots[2 * k + 1] = slots[2 * k]
        b += 1
        slots[2 * k + 2] = b
        if not atom and not last:
            slots[2 * k + 1] = b
    return slots


def _bin_counts(values: np.ndarray, points: np.ndarray, slots: np.ndarray) -> np.ndarray:
    """How many ``values`` fall in each PSI bin (see ``_slot_bins``)."""
    i = np.searchsorted(points, values, side="left")  # how many points lie below each value
    on_point = np.zeros(values.size, dtype=bool)
    inside = i < points.size
    on_point[inside] = points[i[inside]] == values[inside]
    return np.bincount(slots[2 * i + on_point], minlength=int(slots[-1]) + 1).astype(float)


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


# A reference with at most this many distinct values is binned on its values (each its own bin),
# as Evidently does.
DISCRETE_MAX_VALUES = 20

Kind = Literal["continuous", "discrete", "binary", "constant", "empty"]


@dataclass(frozen=True)
class NumericReference:
    """A numeric reference sample, summarised once.

    ``values`` holds the sorted reference itself when it has at most ``exact_max`` values (tests
    are then exact), else ``resolution`` + 1 quantiles at evenly spaced probabilities.

    ``kind`` is decided here, once: ``constant`` (one value), ``binary`` (two), ``discrete`` (at
    most ``DISCRETE_MAX_VALUES``), else ``continuous``. PSI's bins come from it: a discrete
    reference is binned on its values; a continuous one on its quantiles, a tied quantile (a
    floor, a ceiling, a default) being a bin of its own; and always an underflow and an
    overflow bin for what falls outside the reference's range. ``psi_points`` are the
    boundary values, ``psi_atoms`` which of them are bins of their own, ``psi_shares`` the
    reference's share of each bin.
    """

    n: int
    mean: float
    std: float
    exact: bool
    values: tuple[float, ...]
    kind: Kind
    psi_points: tuple[float, ...]
    psi_atoms: tuple[bool, ...]
    psi_shares: tuple[float, ...]

    @classmethod
    def fit(
        cls, reference, psi_bins: int = 10, resolution: int = 2000, exact_max: int = 10_000
    ) -> "NumericReference":
        ref = _sorted(_finite(reference))
        if ref.size == 0:
            return cls(0, math.nan, math.nan, True, (), "empty", (), (), (1.0,))
        exact = ref.size <= exact_max
        values = ref if exact else _quantiles_of_sorted(ref, np.linspace(0, 1, resolution + 1))
        starts = np.flatnonzero(np.concatenate(([True], ref[1:] != ref[:-1])))
        if starts.size <= DISCRETE_MAX_VALUES:
            points = ref[starts]
            atoms = np.ones(points.size, dtype=bool)
            kind = {1: "constant", 2: "binary"}.get(points.size, "discrete")
        else:
            points = np.unique(_quantiles_of_sorted(ref, np.linspace(0, 1, psi_bins + 1)))
            lo = np.searchsorted(ref, points, side="left")
            hi = np.searchsorted(ref, points, side="right")
            atoms = (hi - lo) / ref.size >= 0.5 / psi_bins  # half a bin's share on one value
            kind = "continuous"
        atoms_t = tuple(bool(a) for a in atoms)
        counts = _bin_counts(ref, points, _slot_bins(atoms_t))
        return cls(
            int(ref.size),
            float(ref.mean()),
            float(ref.std()),
            exact,
            tuple(values.tolist()),
            kind,
            tuple(points.tolist()),
            atoms_t,
            tuple((counts / counts.sum()).tolist()),
        )

    def psi_counts(self, window: np.ndarray) -> np.ndarray:
        """The window's count in each of the reference's PSI bins."""
        if self.n == 0:
            return np.array([float(window.size)])
        return _bin_counts(window, np.asarray(self.psi_points), _slot_bins(self.psi_atoms))

    def psi_bin_labels(self) -> list[str]:
        """A label for each PSI bin, in ``psi_counts``' order: ``< a`` (underflow), ``[a, b)``,
        ``= a`` (an atom), ``> b`` (overflow).

        >>> NumericReference.fit(range(100), psi_bins=2).psi_bin_labels()
        ['< 0', '[0, 49.5)', '[49.5, 99]', '> 99']
        """
        points = self.psi_points
        slots = _slot_bins(self.psi_atoms)
        spans: dict[int, list] = {}  # bin: [lo, hi, lo included, hi included]
        for s, b in enumerate(slots):
            k, on_point = divmod(s, 2)
            a = points[k] if on_point else (points[k - 1] if k else -math.inf)
            z = points[k] if on_point or k < len(points) else math.inf
            span = spans.setdefault(int(b), [a, z, bool(on_point), bool(on_point)])
            if a < span[0] or (a == span[0] and on_point):
                span[0], span[2] = a, bool(on_point) or (a == span[0] and span[2])
            if z > span[1] or (z == span[1] and on_point):
                span[1], span[3] = z, bool(on_point) or (z == span[1] and span[3])
        out = []
        for b in sorted(spans):
            a, z, a_in, z_in = spans[b]
            if a == -math.inf:
                out.append(f"< {z:.4g}" if z < math.inf else "all")
            elif z == math.inf:
                out.append(f"> {a:.4g}")
            elif a == z:
                out.append(f"= {a:.4g}")
            else:
                out.append(f"{'[' if a_in else '('}{a:.4g}, {z:.4g}{']' if z_in else ')'}")
        return out

    def state_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in self.__dict__.items()}

    @classmethod
    def from_state_dict(cls, d: dict) -> "NumericReference":
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

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


# For PSI's p-value, neighbouring bins are merged until both samples together hold at least
# this many values in each (the chi-square approximation's usual condition): a stray value
# beyond the reference's range is then no evidence by itself, a window moved there is.
PSI_MIN_POOLED_COUNT = 5


def _pooled_at_least(a: np.ndarray, b: np.ndarray, least: float) -> tuple[np.ndarray, np.ndarray]:
    """``a`` and ``b`` (counts per bin, in bin order) with neighbouring bins merged so that each
    merged bin holds at least ``least`` of both together (a short last group joins the one
    before it)."""
    groups_a, groups_b, sum_a, sum_b = [], [], 0.0, 0.0
    for x, y in zip(a.tolist(), b.tolist()):
        sum_a, sum_b = sum_a + x, sum_b + y
        if sum_a + sum_b >= least:
            groups_a.append(sum_a)
            groups_b.append(sum_b)
            sum_a = sum_b = 0.0
    if sum_a + sum_b > 0:
        if groups_a:
            groups_a[-1] += sum_a
            groups_b[-1] += sum_b
        else:
            groups_a, groups_b = [sum_a], [sum_b]
    return np.asarray(groups_a), np.asarray(groups_b)


def psi_test(
    ref: NumericReference, window, threshold: float = 0.1, min_n: int = 100, alpha: float | None = None
) -> DriftResult:
    """PSI over the reference's bins (``NumericReference``: quantiles or values, tied values
    apart, underflow and overflow), with a p-value.

    PSI is the symmetrised Kullback–Leibler divergence of the binned shares; ``p_value`` is the
    two-sample (Pearson) chi-square test's on the same bins, neighbours merged until each holds
    ``PSI_MIN_POOLED_COUNT`` values of both samples together. A threshold alone cries
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
    shares = np.asarray(ref.psi_shares)
    counts = ref.psi_counts(win)
    # a bin the reference left empty (the underflow and the overflow, at least) holds about
    # 1/(n+1) of new draws from the reference's own distribution: floored there, a window of the
    # same distribution with a value beyond the reference's range is not a drift
    r = np.maximum(shares, max(PSI_EMPTY_BIN_SHARE, 1 / (ref.n + 1)))
    w = np.maximum(counts / win.size, PSI_EMPTY_BIN_SHARE)
    value = float(np.sum((w - r) * np.log(w / r)))
    from scipy import stats

    # the p-value: Pearson's two-sample chi-square on the same bins' counts (PSI · nm/(n+m) has
    # the same limit, but at n = 300, m = 100 it rejected a true null twice as often as alpha)
    ref_counts, win_counts = _pooled_at_least(shares * ref.n, counts, PSI_MIN_POOLED_COUNT)
    pooled = (ref_counts + win_counts) / (ref.n + win.size)
    chi2 = float(
        np.sum((ref_counts - ref.n * pooled) ** 2 / (ref.n * pooled))
        + np.sum((win_counts - win.size * pooled) ** 2 / (win.size * pooled))
    )
    p = float(stats.chi2.sf(chi2, max(1, ref_counts.size - 1)))
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


def chi_square_two_sample(ref_counts, win_counts, alpha: float = 0.05, min_n: int = 30) -> DriftResult:
    """Pearson's chi-square test of homogeneity of two samples' category counts (a 2 × k table:
    the reference's are a sample too, unlike ``chi_square_test``'s fixed shares, so a category
    the reference barely had does not blow the statistic up); ``effect`` Cramér's V of the
    table, in [0, 1]. Counts may be fractional (effective sample sizes).

    >>> r = chi_square_two_sample([500, 500], [55, 45]); r.drift, round(r.effect, 3)
    (False, 0.029)
    >>> r = chi_square_two_sample([500, 500, 1], [40, 40, 20]); r.drift, round(r.effect, 2)
    (True, 0.42)
    """
    table = np.vstack([np.asarray(ref_counts, float), np.asarray(win_counts, float)])
    n_ref, n_win = float(table[0].sum()), float(table[1].sum())
    if n_win < min_n or n_ref < min_n:
        return _insufficient("chisquare", alpha, int(n_win), int(n_ref))
    table = table[:, table.sum(0) > 0]
    if table.shape[1] < 2:
        return DriftResult("chisquare", 0.0, 1.0, False, 0.0, alpha, int(n_win), int(n_ref), "ok")
    from scipy import stats

    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    chi2 = float(((table - expected) ** 2 / expected).sum())
    p = float(stats.chi2.sf(chi2, table.shape[1] - 1))
    v = math.sqrt(chi2 / table.sum())  # min(rows, columns) - 1 = 1
    return DriftResult("chisquare", chi2, p, p < alpha, v, alpha, int(n_win), int(n_ref), "ok")


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
