"""Image signals on scikit-image's offline sample pictures, against Pillow and OpenCV."""

import cv2
import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageFilter

from detectors.image import image_signals, laplacian_variance, luma601

NAMES = ["astronaut", "camera", "chelsea", "coffee", "coins", "rocket"]


def picture(name):
    return getattr(skimage.data, name)()


@pytest.mark.parametrize("name", NAMES)
def test_brightness_is_pillows_luma_mean_and_sharpness_is_opencvs(name):
    px = picture(name)
    s = image_signals(px)
    pil_l = np.asarray(Image.fromarray(px).convert("L"))
    np.testing.assert_array_equal(luma601(px), pil_l)
    assert s.brightness == pytest.approx(pil_l.mean(), abs=1e-9)
    assert s.sharpness == pytest.approx(cv2.Laplacian(pil_l, cv2.CV_64F, ksize=1).var(), rel=1e-9)
    assert (s.width, s.height) == (px.shape[1], px.shape[0])
    assert s.grayscale == (1.0 if px.ndim == 2 else 0.0)


def _gamma(px, g):
    return np.clip(255 * (px / 255.0) ** g, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee", "rocket"])
def test_degradations_move_signals_the_documented_way(name):
    px = picture(name)
    base = image_signals(px)
    dark = image_signals(_gamma(px, 2.2))
    assert dark.brightness < base.brightness - 30 and dark.underexposed_share > base.underexposed_share
    blurred = [
        image_signals(np.asarray(Image.fromarray(px).filter(ImageFilter.GaussianBlur(s)))) for s in (1, 2, 4)
    ]
    sharp = [base.sharpness] + [b.sharpness for b in blurred]
    norm = [base.sharpness_normalised] + [b.sharpness_normalised for b in blurred]
    assert sharp == sorted(sharp, reverse=True) and norm == sorted(norm, reverse=True)
    h, w = px.shape[:2]
    small = image_signals(cv2.resize(px, (w // 2, h // 2), interpolation=cv2.INTER_NEAREST))
    assert small.sharpness > 1.5 * base.sharpness  # the documented way sharpness misleads
    assert small.megapixels == pytest.approx(base.megapixels / 4, rel=0.02)


def test_normalised_sharpness_ignores_a_contrast_scale():
    px = picture("camera")
    half = (px // 2).astype(np.uint8)
    a, b = image_signals(px), image_signals(half)
    assert b.sharpness < 0.3 * a.sharpness
    assert b.sharpness_normalised == pytest.approx(a.sharpness_normalised, rel=0.05)


def test_colorfulness_exposure_and_bad_input():
    grey = np.full((50, 60, 3), 128, np.uint8)
    red = np.zeros((50, 60, 3), np.uint8)
    red[..., 0] = 255
    assert image_signals(grey).colorfulness == 0.0 and image_signals(grey).grayscale == 1.0
    assert (
        image_signals(red).colorfulness == pytest.approx(0.3 * np.hypot(255, 127.5))
        and image_signals(red).grayscale == 0.0
    )
    white = image_signals(np.full((10, 10), 250, np.uint8))
    assert white.overexposed_share == 1.0 and white.underexposed_share == 0.0
    assert laplacian_variance(np.full((8, 8), 7, np.uint8)) == 0.0
    with pytest.raises(ValueError, match="uint8"):
        image_signals(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="shape"):
        image_signals(np.zeros((4, 4, 4), np.uint8))


def test_grayscale_flag_at_the_999_per_mille_boundary():
    grey = np.repeat(picture("camera")[..., None], 3, axis=2)
    n = grey.shape[0] * grey.shape[1]
    tinted = grey.copy().reshape(-1, 3)
    k = n // 1000  # exactly 0.1 % of pixels get a strong tint: still grey
    tinted[:k, 0] = np.where(tinted[:k, 1] > 127, 0, 255)
    assert image_signals(tinted.reshape(grey.shape)).grayscale == 1.0
    tinted[: k + 1, 0] = np.where(tinted[: k + 1, 1] > 127, 0, 255)  # one pixel more: colour
    assert image_signals(tinted.reshape(grey.shape)).grayscale == 0.0
    noisy = grey.astype(np.int16) + np.random.default_rng(0).integers(0, 3, grey.shape)  # channels ≤ 2 apart
    assert image_signals(np.clip(noisy, 0, 255).astype(np.uint8)).grayscale == 1.0  # within 2 levels


@pytest.mark.parametrize("name", NAMES)
def test_the_compiled_pass_equals_the_numpy_path(name):
    from PIL import Image

    from detectors import image
    from detectors.image import image_sums_numpy, signals_from_sums

    assert image._imagesums is not None, "detectors._imagesums was not built (pip install needs a C compiler)"
    rng = np.random.default_rng(4)
    px = picture(name)
    for variant in (
        px,
        px[::3, ::2],
        np.ascontiguousarray(px[:, ::-1]),
        rng.integers(0, 256, (3, 1, 3), np.uint8) if px.ndim == 3 else rng.integers(0, 256, (1, 3), np.uint8),
    ):
        pil_luma = np.asarray(Image.fromarray(variant).convert("L"))
        h, w = variant.shape[:2]
        assert image_signals(variant) == signals_from_sums(h, w, image_sums_numpy(variant, pil_luma))
        assert image_signals(variant) == signals_from_sums(h, w, image_sums_numpy(variant))
    # the extremes of every 32-bit chunk sum: a 0/255 checkerboard (|Laplacian| = 1020 everywhere)
    board = (np.indices((5, 3000)).sum(axis=0) % 2 * 255).astype(np.uint8)
    for variant in (board, np.dstack([board, 255 - board, board])):
        h, w = variant.shape[:2]
        assert image_signals(variant) == signals_from_sums(h, w, image_sums_numpy(variant))


def test_signals_with_the_decoders_luma_and_on_thin_images():
    from PIL import Image

    px = picture("chelsea")
    pil_luma = np.asarray(Image.fromarray(px).convert("L"))
    assert image_signals(px, pil_luma) == image_signals(px)
    for shape in ((1, 7), (7, 1), (2, 2)):
        y = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
        assert laplacian_variance(y) == pytest.approx(cv2.Laplacian(y, cv2.CV_64F, ksize=1).var(), abs=1e-9)
    with pytest.raises(ValueError, match="luma shape"):
        image_signals(px, pil_luma[:-1])


@pytest.mark.parametrize("name", NAMES)
def test_jpeg_quality_75_to_10_lowers_sharpness_and_keeps_brightness(name):
    import io

    px = picture(name)
    runs = []
    for q in (75, 50, 25, 10):
        buf = io.BytesIO()
        Image.fromarray(px).save(buf, "JPEG", quality=q)
        runs.append(image_signals(np.asarray(Image.open(buf))))
    sharp = [s.sharpness for s in runs]
    norm = [s.sharpness_normalised for s in runs]
    assert sharp == sorted(sharp, reverse=True) and norm == sorted(norm, reverse=True)
    assert all(abs(s.brightness - runs[0].brightness) < 0.5 for s in runs)
    assert all(abs(s.colorfulness - runs[0].colorfulness) < 2 for s in runs)
