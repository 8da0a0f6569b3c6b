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
    """Variance of the 4-neighbour Laplacian with mirrored borders (OpenCV ksize=1).

    Exact: the Laplacian of 8-bit luma is an integer in [-1020, 1020] (int16), and the sums of
    it and of its squares stay below 2**53, so float64 adds them without rounding."""
    y = _check(luma).astype(np.int16)
    if min(y.shape) < 2:  # numpy's reflect needs two samples; SciPy's mirror is the same rule
        return float(ndimage.laplace(y.astype(np.float64), mode="mirror").var())
    p = np.pad(y, 1, mode="reflect")  # numpy "reflect" = SciPy "mirror" = OpenCV BORDER_REFLECT_101
    lap = p[:-2, 1:-1] + p[2:, 1:-1]
    lap += p[1:-1, :-2]
    lap += p[1:-1, 2:]
    lap -= 4 * y
    return _variance(lap)


def _sums(x: np.ndarray) -> tuple[float, float]:
    """Σx and Σx² of an integer array, exactly (float64 holds every partial sum here)."""
    f = x.ravel().astype(np.float64)
    return float(f.sum()), float(f.dot(f))


def _variance(x: np.ndarray) -> float:
    s, ss = _sums(x)
    n = x.size
    return max(0.0, ss / n - (s / n) ** 2)


# A picture is grey when ≥ 99.9 % of pixels have |R-G| ≤ 2 and |G-B| ≤ 2; then the mean of
# (R-G)² is at most 0.999·4 + 0.001·255² < 69.03, so a larger mean proves "not grey" without a
# per-pixel pass.
_GREY_SHARE = 0.999
_GREY_MAX_MEAN_SQ = _GREY_SHARE * 4 + (1 - _GREY_SHARE) * 255 ** 2


def image_signals(pixels: np.ndarray, luma: np.ndarray | None = None) -> ImageSignals:
    """All image signals. ``luma`` may be passed when the decoder already has it (Pillow's
    ``convert("L")`` is bit-identical to ``luma601``); it is computed otherwise."""
    px = _check(pixels)
    h, w = px.shape[:2]
    n = float(h * w)
    y = luma601(px) if luma is None else _check(luma)
    if y.shape != (h, w):
        raise ValueError(f"luma shape {y.shape} does not match the pixels' {(h, w)}")
    y_sum, y_sq = _sums(y)
    y_mean = y_sum / n
    y_var = max(0.0, y_sq / n - y_mean ** 2)
    lap_var = laplacian_variance(y)
    if px.ndim == 3:
        r, g, b = px[..., 0], px[..., 1], px[..., 2]
        rg = r.astype(np.int16)
        rg -= g
        yb2 = r.astype(np.int16)  # 2·yb = R + G − 2B, an integer
        yb2 += g
        yb2 -= b
        yb2 -= b
        rg_sum, rg_sq = _sums(rg)
        yb_sum, yb_sq = (v / k for v, k in zip(_sums(yb2), (2.0, 4.0)))
        rg_mean, yb_mean = rg_sum / n, yb_sum / n
        rg_std = np.sqrt(max(0.0, rg_sq / n - rg_mean ** 2))
        yb_std = np.sqrt(max(0.0, yb_sq / n - yb_mean ** 2))
        colorfulness = float(np.hypot(rg_std, yb_std) + 0.3 * np.hypot(rg_mean, yb_mean))
        if rg_sq / n > _GREY_MAX_MEAN_SQ:
            grey = 0.0
        else:
            gb = g.astype(np.int16) - b
            spread = np.maximum(np.abs(rg), np.abs(gb))
            grey = float(np.count_nonzero(spread <= 2) >= _GREY_SHARE * n)
    else:
        colorfulness, grey = 0.0, 1.0
    return ImageSignals(
        width=w, height=h, megapixels=n / 1e6, aspect_ratio=w / h,
        brightness=y_mean, rms_contrast=float(np.sqrt(y_var) / 255.0),
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
