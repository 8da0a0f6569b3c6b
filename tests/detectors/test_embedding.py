"""MMD² permutation test for embeddings: the statistic against a direct computation, the median
heuristic against alibi-detect's convention, calibrated p-values, subsampling and bad input."""

import numpy as np
import pytest
import torch

from detectors.embedding import median_sigma, mmd_test


def _direct_mmd2(x, y, sigma):
    z = np.vstack([x, y])
    k = np.exp(-((z[:, None, :] - z[None, :, :]) ** 2).sum(-1) / (2 * sigma * sigma))
    np.fill_diagonal(k, 0.0)
    n, m = len(x), len(y)
    return k[:n, :n].sum() / (n * (n - 1)) + k[n:, n:].sum() / (m * (m - 1)) - 2 * k[:n, n:].mean()


@pytest.mark.parametrize("block", [7, 64, 4096])
def test_the_statistic_equals_a_direct_computation_for_any_block_size(block):
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, (120, 6)), rng.normal(0.1, 1.2, (90, 6))
    exact = mmd_test(x, y, permutations=20, block=block, dtype=torch.float64)
    assert exact.mmd2 == pytest.approx(_direct_mmd2(x, y, exact.sigma), rel=1e-10)
    fast = mmd_test(x, y, permutations=20, block=block)  # float32 kernel, float64 sums
    assert fast.mmd2 == pytest.approx(exact.mmd2, rel=1e-4)


def test_median_sigma_follows_alibi_detects_convention():
    x = np.random.default_rng(2).normal(0, 1, (50, 4))
    d2 = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1).ravel()
    flat = np.sort(d2)  # the n zeros of the diagonal included, as alibi-detect does
    n = len(x)
    assert median_sigma(torch.tensor(x)) == pytest.approx(np.sqrt(0.5 * flat[n + (flat.size - n) // 2 - 1]))


def test_p_values_are_calibrated_without_drift_and_small_with_it():
    small = 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        r = mmd_test(rng.normal(0, 1, (150, 8)), rng.normal(0, 1, (150, 8)), permutations=60, seed=seed)
        small += r.p_value <= 0.05
    assert small <= 6  # ~2 expected of 40
    rng = np.random.default_rng(7)
    shifted = mmd_test(rng.normal(0, 1, (300, 8)), rng.normal(0.4, 1, (300, 8)), permutations=60)
    assert shifted.drift and shifted.p_value == pytest.approx(1 / 61)


def test_subsampling_insufficient_data_and_bad_shapes():
    rng = np.random.default_rng(3)
    r = mmd_test(rng.normal(0, 1, (2000, 4)), rng.normal(0, 1, (1500, 4)), permutations=10, max_n=300)
    assert "subsample_300" in r.variant and (r.n, r.n_reference) == (1500, 2000)
    assert mmd_test(rng.normal(0, 1, (10, 4)), rng.normal(0, 1, (50, 4))).status == "insufficient_data"
    with pytest.raises(ValueError, match="same d"):
        mmd_test(np.zeros((30, 4)), np.zeros((30, 5)))
    x, y = rng.normal(0, 1, (100, 4)), rng.normal(0, 1, (100, 4))
    assert mmd_test(x, y, permutations=30, seed=5) == mmd_test(x, y, permutations=30, seed=5)  # seeded


@pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here: this check runs where torch sees one"
)
def test_cuda_gives_the_cpu_answer():
    rng = np.random.default_rng(3)
    x, y = rng.normal(0, 1, (3000, 64)), rng.normal(0.03, 1, (3000, 64))
    cpu, gpu = mmd_test(x, y, device="cpu"), mmd_test(x, y, device="cuda")
    assert gpu.p_value == cpu.p_value and gpu.sigma == pytest.approx(cpu.sigma, rel=1e-5)
    assert gpu.mmd2 == pytest.approx(cpu.mmd2, rel=1e-3, abs=1e-7)
