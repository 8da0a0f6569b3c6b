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

import math
from dataclasses import asdict, dataclass
from typing import NamedTuple

import numpy as np
from scipy import ndimage

try:  # the compiled one-pass sums (detectors/_imagesums.c); NumPy computes the same without it
    from detectors import _imagesums
except ImportError:  # pragma: no cover - depends on the build
    _imagesums = None
COMPILED = _imagesums is not None  # when False, a decoder's luma saves the NumPy path a pass

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
    y = _check(luma)
    if y.ndim != 2:
        raise ValueError(f"luma must be (h, w), got shape {y.shape}")
    s, ss = _laplacian_sums(y)
    n = y.size
    return max(0.0, ss / n - (s / n) ** 2)


def _laplacian_sums(luma: np.ndarray) -> tuple[int, int]:
    y = luma.astype(np.int16)
    if min(y.shape) < 2:  # numpy's reflect needs two samples; SciPy's mirror is the same rule
        lap = np.rint(ndimage.laplace(y.astype(np.float64), mode="mirror")).astype(np.int32)
        return _sums(lap)
    p = np.pad(y, 1, mode="reflect")  # numpy "reflect" = SciPy "mirror" = OpenCV BORDER_REFLECT_101
    lap = p[:-2, 1:-1] + p[2:, 1:-1]
    lap += p[1:-1, :-2]
    lap += p[1:-1, 2:]
    lap -= 4 * y
    return _sums(lap)


def _sums(x: np.ndarray) -> tuple[int, int]:
    """Σx and Σx² of an integer array, exactly (float64 holds every partial sum below 2**53)."""
    f = x.ravel().astype(np.float64)
    return int(f.sum()), int(f.dot(f))


# A picture is grey when ≥ 99.9 % of pixels have |R-G| ≤ 2 and |G-B| ≤ 2; then the mean of
# (R-G)² is at most 0.999·4 + 0.001·255² < 69.03, so a larger mean proves "not grey" without a
# per-pixel pass.
_GREY_SHARE = 0.999
_GREY_MAX_MEAN_SQ = _GREY_SHARE * 4 + (1 - _GREY_SHARE) * 255**2


class ImageSums(NamedTuple):
    """The exact integer sums every image signal is derived from (one image of ``n`` pixels).
    ``grey_pixels`` (pixels with |R-G| ≤ 2 and |G-B| ≤ 2) is None when it was not needed."""

    n: int
    y_sum: int
    y_sq: int
    lap_sum: int
    lap_sq: int
    under: int
    over: int
    rg_sum: int = 0
    rg_sq: int = 0
    yb2_sum: int = 0  # 2·yb = R + G − 2B, an integer
    yb2_sq: int = 0
    grey_pixels: int | None = None


def image_signals(pixels: np.ndarray, luma: np.ndarray | None = None) -> ImageSignals:
    """All image signals. Computed in one compiled pass when ``detectors._imagesums`` is built
    (``pip install`` builds it), else with NumPy (``luma`` may then be passed when the decoder
    already has it: Pillow's ``convert("L")`` is bit-identical to ``luma601``). Same values.

    >>> px = np.zeros((4, 6, 3), np.uint8); px[:, 3:] = 200
    >>> s = image_signals(px)
    >>> s.width, s.height, round(s.brightness, 1), s.underexposed_share, s.grayscale
    (6, 4, 100.0, 0.5, 1.0)
    """
    px = _check(pixels)
    h, w = px.shape[:2]
    if luma is not None and np.shape(luma) != (h, w):
        raise ValueError(f"luma shape {np.shape(luma)} does not match the pixels' {(h, w)}")
    if _imagesums is not None:
        c = 1 if px.ndim == 2 else 3
        sums = _imagesums.image_sums(np.ascontiguousarray(px).data.cast("B"), h, w, c)
        if c == 1:
            sums = sums[:6]
        return signals_from_sums(h, w, ImageSums(h * w, *sums))
    return signals_from_sums(h, w, image_sums_numpy(px, luma))


def image_sums_numpy(px: np.ndarray, luma: np.ndarray | None = None) -> ImageSums:
    h, w = px.shape[:2]
    y = luma601(px) if luma is None else _check(luma)
    if y.shape != (h, w):
        raise ValueError(f"luma shape {y.shape} does not match the pixels' {(h, w)}")
    y_sum, y_sq = _sums(y)
    lap_sum, lap_sq = _laplacian_sums(y)
    base = (
        h * w,
        y_sum,
        y_sq,
        lap_sum,
        lap_sq,
        int(np.count_nonzero(y <= UNDEREXPOSED_LUMA)),
        int(np.count_nonzero(y >= OVEREXPOSED_LUMA)),
    )
    if px.ndim == 2:
        return ImageSums(*base)
    r, g, b = px[..., 0], px[..., 1], px[..., 2]
    rg = r.astype(np.int16)
    rg -= g
    yb2 = r.astype(np.int16)
    yb2 += g
    yb2 -= b
    yb2 -= b
    rg_sum, rg_sq = _sums(rg)
    yb2_sum, yb2_sq = _sums(yb2)
    grey = None
    if rg_sq / (h * w) <= _GREY_MAX_MEAN_SQ:  # else it cannot be grey: no per-pixel pass
        gb = g.astype(np.int16) - b
        grey = int(np.count_nonzero(np.maximum(np.abs(rg), np.abs(gb)) <= 2))
    return ImageSums(*base, rg_sum, rg_sq, yb2_sum, yb2_sq, grey)


def signals_from_sums(h: int, w: int, s: ImageSums) -> ImageSignals:
    """Every image signal from the sums; the only floating point in the image path (float64)."""
    n = float(s.n)
    y_mean = s.y_sum / n
    y_var = max(0.0, s.y_sq / n - y_mean**2)
    lap_var = max(0.0, s.lap_sq / n - (s.lap_sum / n) ** 2)
    # A one-channel picture has no colour sums; an RGB one has grey_pixels, or rg_sq > 0 when the
    # grey count was skipped (see image_sums_numpy).
    if s.grey_pixels is None and s.rg_sq == 0 and s.yb2_sq == 0:
        colorfulness, grey = 0.0, 1.0
    else:
        rg_mean, yb_mean = s.rg_sum / n, s.yb2_sum / 2.0 / n
        rg_std = math.sqrt(max(0.0, s.rg_sq / n - rg_mean**2))
        yb_std = math.sqrt(max(0.0, s.yb2_sq / 4.0 / n - yb_mean**2))
        colorfulness = math.hypot(rg_std, yb_std) + 0.3 * math.hypot(rg_mean, yb_mean)
        grey = float(s.grey_pixels is not None and s.grey_pixels >= _GREY_SHARE * n)
    return ImageSignals(
        width=w,
        height=h,
        megapixels=n / 1e6,
        aspect_ratio=w / h,
        brightness=y_mean,
        rms_contrast=math.sqrt(y_var) / 255.0,
        sharpness=lap_var,
        sharpness_normalised=lap_var / y_var if y_var > 0 else 0.0,
        underexposed_share=s.under / n,
        overexposed_share=s.over / n,
        colorfulness=colorfulness,
        grayscale=grey,
    )


def _check(pixels: np.ndarray) -> np.ndarray:
    px = np.asarray(pixels)
    if px.dtype != np.uint8:
        raise ValueError(f"pixels must be uint8, got {px.dtype} (decoders convert 16-bit and float first)")
    if not (px.ndim == 2 or (px.ndim == 3 and px.shape[2] == 3)) or px.shape[0] == 0 or px.shape[1] == 0:
        raise ValueError(f"pixels must be (h, w) or (h, w, 3) and non-empty, got shape {px.shape}")
    return px
