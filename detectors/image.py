"""Image quality signals from decoded pixels. Pure: an array in, a frozen dataclass out.

Input: ``uint8`` pixels, ``(h, w)`` grey or ``(h, w, 3)`` RGB (decoders turn RGBA, palette and
16-bit images into these first). Luma is Rec.601 on 8-bit values computed exactly as Pillow's
``convert("L")`` does, so ``brightness`` equals the mean of that image.

Signals (names are part of the event contract):

* ``width``, ``height`` (px), ``megapixels``, ``aspect_ratio`` (width / height);
* ``brightness``: mean luma, 0–255;
* ``rms_contrast``: standard deviation of luma / 255;
* ``sharpness``: variance of the Laplacian of luma (3×3 kernel, mirrored borders; equal to
  OpenCV's ``cv2.Laplacian(luma, cv2.CV_64F, ksize=1).var()``). It misleads: on scikit-image's
  sample pictures it rises 2–3× when an image is halved by nearest-neighbour decimation (1.0–1.9×
  with OpenCV's bilinear resize; a resize with a proper anti-aliasing filter lowers it), and gamma
  darkening (γ 2.2) raised it on 4 of 6 pictures, while a linear dimming lowers it in proportion
  to the square of the gain. It measures edge energy, not focus alone;
* ``sharpness_normalised``: the Laplacian variance divided by the luma variance — unchanged by a
  linear change of exposure or contrast (not by gamma), so it tracks focus better than
  ``sharpness`` when lighting drifts;
* JPEG re-compression from quality 75 down to 10 lowers both sharpness signals at every step on
  all six sample pictures (quantisation removes fine detail; between 95 and 75 they may still
  rise), while brightness moves by less than 0.5 and colorfulness by less than 2 from their
  values at quality 75;
* ``underexposed_share`` / ``overexposed_share``: share of pixels with luma ≤ 10 / ≥ 245;
* ``colorfulness``: Hasler & Süsstrunk (2003), σ_rgyb + 0.3 μ_rgyb on 8-bit values;
* ``grayscale``: 1.0 when at least 99.9 % of pixels have all channels within 2 levels, else 0.0.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

UNDEREXPOSED_LUMA = 10
OVEREXPOSED_LUMA = 245


@dataclass(frozen=True)
class ImageSignals:
    width: int
    height: int
    megapixels: float
    aspect_ratio: float
    brightness: float
    rms_contrast: float
    sharpness: float
    sharpness_normalised: float
    underexposed_share: float
    overexposed_share: float
    colorfulness: float
    grayscale: float

    def as_dict(self) -> dict[str, float]:
        return {k: float(v) for k, v in asdict(self).items()}


def luma601(pixels: np.ndarray) -> np.ndarray:
    """8-bit Rec.601 luma, bit-identical to Pillow's ``convert("L")``."""
    px = _check(pixels)
    if px.ndim == 2:
        return px
    r, g, b = (px[..., i].astype(np.uint32) for i in range(3))
    return ((r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16).astype(np.uint8)


def laplacian_variance(luma: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian with mirrored borders (OpenCV ksize=1)."""
    return float(ndimage.laplace(luma.astype(np.float64), mode="mirror").var())


def image_signals(pixels: np.ndarray) -> ImageSignals:
    px = _check(pixels)
    h, w = px.shape[:2]
    y = luma601(px)
    yf = y.astype(np.float64)
    lap_var = laplacian_variance(y)
    y_var = float(yf.var())
    if px.ndim == 3:
        c = px.astype(np.int16)
        rg = c[..., 0] - c[..., 1]
        yb = 0.5 * (c[..., 0] + c[..., 1]) - c[..., 2]
        colorfulness = float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
        spread = np.maximum(np.abs(rg), np.abs(c[..., 1] - c[..., 2]))
        grey = float(np.mean(spread <= 2) >= 0.999)
    else:
        colorfulness, grey = 0.0, 1.0
    n = float(h * w)
    return ImageSignals(
        width=w, height=h, megapixels=n / 1e6, aspect_ratio=w / h,
        brightness=float(yf.mean()), rms_contrast=float(yf.std() / 255.0),
        sharpness=lap_var, sharpness_normalised=lap_var / y_var if y_var > 0 else 0.0,
        underexposed_share=float(np.count_nonzero(y <= UNDEREXPOSED_LUMA) / n),
        overexposed_share=float(np.count_nonzero(y >= OVEREXPOSED_LUMA) / n),
        colorfulness=colorfulness, grayscale=grey,
    )


def _check(pixels: np.ndarray) -> np.ndarray:
    px = np.asarray(pixels)
    if px.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8, got {px.dtype} (decoders convert 16-bit and float first)")
    if not (px.ndim == 2 or (px.ndim == 3 and px.shape[2] == 3)) or px.shape[0] == 0 or px.shape[1] == 0:
        raise ValueError(f"pixels must be (h, w) or (h, w, 3) and non-empty, got shape {px.shape}")
    return px
