"""Per-slice error rate, abstention rate and mean confidence, each slice against the rest, with
false discoveries controlled across the whole evaluation. Pure: arrays and plain data in.

* A slice is an attribute value (``device=cam_b``), a band of a binned signal
  (``image.brightness=[0,40)``, see ``band_labels``) or two of them crossed
  (``device=cam_b&locale=de-DE``).
* Each (slice, metric) has its value with a 95 % interval (Wilson for the two rates, a normal
  interval for the mean confidence), the value of all other events ("the rest"), the gap, and
  the two-sided p-value of the gap: the pooled two-proportion z-test for rates, Welch's z for
  the mean confidence.
* Benjamini–Hochberg runs once over every p-value of one evaluation (all slices × metrics), at
  ``fdr`` (5 %); ``significant`` is its decision and ``p_adjusted`` the BH-adjusted p-value.
* Below ``min_n`` events in the slice (labelled events, for the error rate), or with fewer than
  ``min_n`` in the rest, the row says ``insufficient_data``: no value is tested.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> device = rng.choice(["a", "b", "c"], 6000)
>>> errors = (rng.uniform(size=6000) < np.where(device == "b", 0.25, 0.10)).astype(float)
>>> conf = rng.uniform(0.5, 1.0, 6000)
>>> rows = slice_metrics({"device": device}, errors, np.zeros(6000, bool), conf)
>>> [(r.slice, r.significant) for r in rows if r.metric == "error_rate"]
[('device=a', True), ('device=b', True), ('device=c', True)]
>>> [r.gap > 0 for r in rows if r.metric == "error_rate"]
[False, True, False]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np

from detectors.intervals import _Z95, two_proportion_p, wilson_interval

Metric = Literal["error_rate", "abstention_rate", "mean_confidence"]


@dataclass(frozen=True)
class SliceStat:
    slice: str
    metric: Metric
    n: int
    value: float
    ci_low: float
    ci_high: float
    rest_value: float
    gap: float
    p_value: float | None
    p_adjusted: float | None
    significant: bool
    status: Literal["ok", "insufficient_data"]


def band_labels(name: str, values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Band of each value as a slice label: ``name=[lo,hi)``; outside the edges, ``name=<lo`` /
    ``name=>=hi``; NaN values get no band (an empty string, which ``slice_metrics`` skips).

    >>> band_labels("brightness", np.array([5.0, 60, 200, 300, np.nan]), [0, 40, 120, 255]).tolist()
    ['brightness=[0,40)', 'brightness=[40,120)', 'brightness=[120,255)', 'brightness=>=255', '']
    """
    v = np.asarray(values, dtype=float)
    e = [float(x) for x in edges]
    names = [f"{name}=<{_num(e[0])}"] + [f"{name}=[{_num(a)},{_num(b)})" for a, b in zip(e, e[1:])]
    names.append(f"{name}=>={_num(e[-1])}")
    idx = np.searchsorted(e, v, side="right")
    out = np.array(names, dtype=object)[idx]
    out[~np.isfinite(v)] = ""
    return out


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def slice_metrics(
    attributes: dict[str, np.ndarray],
    errors: np.ndarray,
    abstained: np.ndarray,
    confidence: np.ndarray,
    cross: list[tuple[str, str]] = (),
    min_n: int = 50,
    fdr: float = 0.05,
) -> list[SliceStat]:
    """Rows for every slice × metric, sorted by slice then metric.

    ``attributes``: per attribute, one label per event (``""`` = no value, skipped). ``errors``:
    1.0 wrong, 0.0 right, NaN unlabelled. ``cross``: pairs of attribute names to cross.
    """
    err = np.asarray(errors, dtype=float)
    abst = np.asarray(abstained, dtype=bool)
    conf = np.asarray(confidence, dtype=float)
    n_all = err.size
    masks: dict[str, np.ndarray] = {}
    for name, labels in attributes.items():
        lab = np.asarray(labels, dtype=object)
        if lab.size != n_all:
            raise ValueError(f"attribute {name!r} has {lab.size} labels for {n_all} events")
        for value in sorted({str(x) for x in lab if x != ""}):
            key = value if "=" in value else f"{name}={value}"
            masks[key] = lab == value
    for a, b in cross:
        la, lb = np.asarray(attributes[a], dtype=object), np.asarray(attributes[b], dtype=object)
        for va in sorted({str(x) for x in la if x != ""}):
            for vb in sorted({str(x) for x in lb if x != ""}):
                key = f"{va if '=' in va else f'{a}={va}'}&{vb if '=' in vb else f'{b}={vb}'}"
                m = (la == va) & (lb == vb)
                if m.any():
                    masks[key] = m
    labelled = np.isfinite(err)
    rows: list[SliceStat] = []
    for key, m in masks.items():
        rows.append(_rate(key, "error_rate", err[m & labelled], err[~m & labelled], min_n))
        rows.append(_rate(key, "abstention_rate", abst[m].astype(float), abst[~m].astype(float), min_n))
        rows.append(_mean(key, conf[m], conf[~m], min_n))
    return benjamini_hochberg_rows(rows, fdr)


def _rate(key: str, metric: Metric, inside: np.ndarray, rest: np.ndarray, min_n: int) -> SliceStat:
    n, n_rest = inside.size, rest.size
    if n < min_n or n_rest < min_n:
        v = float(inside.mean()) if n else math.nan
        return SliceStat(
            key, metric, n, v, math.nan, math.nan, math.nan, math.nan, None, None, False, "insufficient_data"
        )
    k, k_rest = int(inside.sum()), int(rest.sum())
    w = wilson_interval(k, n)
    p1, p2 = k / n, k_rest / n_rest
    p = two_proportion_p(k, n, k_rest, n_rest)
    return SliceStat(key, metric, n, p1, w.low, w.high, p2, p1 - p2, p, None, False, "ok")


def _mean(key: str, inside: np.ndarray, rest: np.ndarray, min_n: int) -> SliceStat:
    n, n_rest = inside.size, rest.size
    if n < min_n or n_rest < min_n:
        v = float(inside.mean()) if n else math.nan
        return SliceStat(
            key,
            "mean_confidence",
            n,
            v,
            math.nan,
            math.nan,
            math.nan,
            math.nan,
            None,
            None,
            False,
            "insufficient_data",
        )
    m1, m2 = float(inside.mean()), float(rest.mean())
    v1, v2 = float(inside.var(ddof=1)), float(rest.var(ddof=1))
    half = _Z95 * math.sqrt(v1 / n)
    se = math.sqrt(v1 / n + v2 / n_rest)
    p = 1.0 if se == 0 else math.erfc(abs(m1 - m2) / se / math.sqrt(2))
    return SliceStat(key, "mean_confidence", n, m1, m1 - half, m1 + half, m2, m1 - m2, p, None, False, "ok")


def benjamini_hochberg(p_values: np.ndarray, fdr: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """(rejected, adjusted p-values) of the Benjamini–Hochberg step-up procedure.

    >>> rej, adj = benjamini_hochberg(np.array([0.001, 0.02, 0.03, 0.5]))
    >>> rej.tolist(), [round(float(a), 3) for a in adj]
    ([True, True, True, False], [0.004, 0.04, 0.04, 0.5])
    """
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return np.zeros(0, bool), np.zeros(0)
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted_sorted = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
    adjusted = np.empty(m)
    adjusted[order] = adjusted_sorted
    return adjusted <= fdr, adjusted


def benjamini_hochberg_rows(rows: list[SliceStat], fdr: float = 0.05) -> list[SliceStat]:
    tested = [i for i, r in enumerate(rows) if r.p_value is not None]
    rejected, adjusted = benjamini_hochberg(np.array([rows[i].p_value for i in tested]), fdr)
    out = list(rows)
    for j, i in enumerate(tested):
        out[i] = replace(rows[i], p_adjusted=float(adjusted[j]), significant=bool(rejected[j]))
    return sorted(out, key=lambda r: (r.slice, r.metric))
