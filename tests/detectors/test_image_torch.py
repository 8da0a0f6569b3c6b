"""The batched torch path gives the NumPy path's image signals (CPU here; CUDA when present is
measured by bench/signals_torch.py)."""

import numpy as np
import pytest
import skimage.data
import torch

from detectors.image import image_signals
from detectors.image_torch import image_signals_batch


def _close(a, b):
    for field, x in a.as_dict().items():
        y = b.as_dict()[field]
        assert y == pytest.approx(x, rel=1e-9, abs=1e-12), field


@pytest.mark.parametrize("name", ["astronaut", "camera", "chelsea", "coffee", "coins", "rocket"])
def test_a_batch_equals_the_numpy_path_on_the_sample_pictures(name):
    px = getattr(skimage.data, name)()
    rng = np.random.default_rng(0)
    darker = (255 * (px / 255.0) ** 2.2).astype(np.uint8)
    noisy = np.clip(px.astype(np.int16) + rng.integers(-20, 21, px.shape), 0, 255).astype(np.uint8)
    batch = np.stack([px, darker, noisy, np.full_like(px, 7)])
    got = image_signals_batch(torch.from_numpy(batch))
    for arr, sig in zip(batch, got):
        _close(image_signals(arr), sig)


def test_grey_thin_and_bad_batches():
    rng = np.random.default_rng(2)
    for shape in ((3, 1, 9), (3, 9, 1), (2, 2, 2), (5, 3, 4, 3)):
        batch = rng.integers(0, 256, shape, dtype=np.uint8)
        for arr, sig in zip(batch, image_signals_batch(torch.from_numpy(batch))):
            _close(image_signals(arr), sig)
    grey_rgb = np.repeat(skimage.data.camera()[None, ..., None], 3, axis=3)
    assert image_signals_batch(torch.from_numpy(grey_rgb))[0].grayscale == 1.0
    assert image_signals_batch(torch.zeros((0, 4, 4), dtype=torch.uint8)) == []
    with pytest.raises(ValueError, match="uint8"):
        image_signals_batch(torch.zeros((1, 4, 4), dtype=torch.float32))
    with pytest.raises(ValueError, match="non-empty"):
        image_signals_batch(torch.zeros((1, 4, 4, 4), dtype=torch.uint8))
