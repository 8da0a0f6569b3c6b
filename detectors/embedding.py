"""Embedding drift: the maximum mean discrepancy (MMD²) between reference and window embeddings,
with a permutation test, in torch (CPU, or CUDA when given a CUDA device).

* Kernel: Gaussian, k(x, y) = exp(−‖x − y‖² / (2σ²)), σ by the median heuristic on the
  reference (σ² = half the median squared distance between distinct reference points: the
  convention of alibi-detect's MMDDrift, whose p-values this test reproduces).
* Statistic: the unbiased MMD² (kernel diagonals left out), as alibi-detect computes it.
* Permutations: the kernel matrix K of the pooled sample is computed once; a permutation only
  relabels which rows are "reference", and its MMD² follows from sᵀKs, sᵀK1 and 1ᵀK1 for the
  permuted membership vector s, so all permutations together cost one product K·S with S the
  (N × permutations) membership matrix. K is built and multiplied in row blocks, so memory
  stays at (block rows × N) however many permutations run.
* Beyond ``max_n`` points per side, a seeded random subsample of that size is tested (the
  answer says so in ``variant``); with the default 10,000 per side, 100k × 128 per side runs in
  seconds on 2 cores with well under 1 GiB.
* p = (1 + #{permuted MMD² ≥ observed}) / (1 + permutations); alibi-detect counts without the
  +1, so its p can be 0.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> ref = rng.normal(0, 1, (400, 16))
>>> mmd_test(ref, rng.normal(0, 1, (300, 16))).drift, mmd_test(ref, rng.normal(0.3, 1, (300, 16))).drift
(False, True)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass(frozen=True)
class MMDResult:
    mmd2: float
    p_value: float
    drift: bool
    sigma: float
    n: int
    n_reference: int
    permutations: int
    variant: str
    status: Literal["ok", "insufficient_data"]


def median_sigma(ref, block: int = 4096, max_points: int = 2000, seed: int = 0) -> float:
    """σ of the median heuristic on (at most ``max_points`` of) the reference."""
    import torch

    x = torch.as_tensor(ref)
    if x.shape[0] > max_points:
        g = torch.Generator().manual_seed(seed)
        x = x[torch.randperm(x.shape[0], generator=g)[:max_points].to(x.device)]
    n = x.shape[0]
    d2 = torch.cdist(x, x).pow(2)
    off = d2[~torch.eye(n, dtype=torch.bool, device=d2.device)]
    # alibi-detect: the median of the flattened matrix with the n zeros of the diagonal counted
    flat = torch.cat([torch.zeros(n, dtype=d2.dtype, device=d2.device), off]).sort().values
    k = n + (flat.numel() - n) // 2 - 1
    return float((0.5 * flat[k]).sqrt())


def mmd_test(
    reference,
    window,
    permutations: int = 100,
    alpha: float = 0.05,
    sigma: float | None = None,
    max_n: int = 10_000,
    min_n: int = 20,
    seed: int = 0,
    device: str | None = None,
    block: int = 2048,
    dtype=None,
) -> MMDResult:
    """Permutation test of MMD² between ``reference`` (n × d) and ``window`` (m × d) embeddings."""
    import torch

    dtype = dtype or torch.float32  # the kernel; sums over it are accumulated in float64
    x = np.asarray(reference, dtype=float)
    y = np.asarray(window, dtype=float)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"embeddings must be (n, d) with the same d, got {x.shape} and {y.shape}")
    n_ref, n_win = x.shape[0], y.shape[0]
    variant = f"gaussian_median_sigma_unbiased_{permutations}_permutations"
    if n_ref < min_n or n_win < min_n:
        return MMDResult(
            math.nan, math.nan, False, math.nan, n_win, n_ref, permutations, variant, "insufficient_data"
        )
    rng = np.random.default_rng(seed)
    if n_ref > max_n:
        x = x[rng.choice(n_ref, max_n, replace=False)]
        variant += f"_subsample_{max_n}"
    if n_win > max_n:
        y = y[rng.choice(n_win, max_n, replace=False)]
        if "subsample" not in variant:
            variant += f"_subsample_{max_n}"
    if device in (None, "auto"):
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    xt = torch.as_tensor(x, dtype=dtype, device=dev)
    yt = torch.as_tensor(y, dtype=dtype, device=dev)
    s = sigma if sigma is not None else median_sigma(xt, seed=seed)
    z = torch.cat([xt, yt])
    n, m = xt.shape[0], yt.shape[0]
    big_n = n + m
    # membership matrix: column 0 the observed split, then the permutations
    g = torch.Generator().manual_seed(seed)
    member = torch.zeros(big_n, permutations + 1, dtype=dtype)
    member[:n, 0] = 1.0
    for p in range(1, permutations + 1):
        member[torch.randperm(big_n, generator=g)[:n], p] = 1.0
    member = member.to(dev)
    ks = torch.zeros(permutations + 1, dtype=torch.float64, device=dev)  # s'Ks (diagonal excluded)
    row_sums = torch.zeros(big_n, dtype=torch.float64, device=dev)
    inv = 1.0 / (2 * s * s)
    sq = (z * z).sum(1)
    # K is symmetric: each row block meets only the columns from its own start on, and the
    # off-diagonal part counts twice.
    for start in range(0, big_n, block):
        stop = min(start + block, big_n)
        d2 = (sq[start:stop, None] + sq[None, start:] - 2 * z[start:stop] @ z[start:].T).clamp_min_(0)
        kb = torch.exp_(d2.mul_(-inv))
        local = torch.arange(stop - start, device=dev)
        kb[local, local] = 0.0  # leave out the diagonal
        own, rest = kb[:, : stop - start], kb[:, stop - start :]
        row_sums[start:stop] += kb.sum(1, dtype=torch.float64)
        row_sums[stop:] += rest.sum(0, dtype=torch.float64)
        m_own = member[start:stop]
        ks += (m_own * (own @ m_own)).sum(0, dtype=torch.float64) + 2 * (m_own * (rest @ member[stop:])).sum(
            0, dtype=torch.float64
        )
    total = row_sums.sum()
    s_r = member.T.to(torch.float64) @ row_sums  # s'K1
    xx = ks
    yy = total - 2 * s_r + ks
    xy = s_r - ks
    mmd2 = xx / (n * (n - 1)) + yy / (m * (m - 1)) - 2 * xy / (n * m)
    observed = float(mmd2[0])
    perm = mmd2[1:].cpu().numpy()
    p = float((1 + np.count_nonzero(perm >= observed)) / (1 + permutations))
    return MMDResult(observed, p, p <= alpha, s, n_win, n_ref, permutations, variant, "ok")
