"""Image signals for a batch of same-sized images in torch, on the CPU or a CUDA device.

The same definitions as ``detectors.image`` (see there), computed in integer arithmetic: luma
with Pillow's fixed-point Rec.601 weights, the Laplacian and the colour differences as int32, and
every sum and sum of squares as int64. Only the final divisions are floating point (float64), so
the values equal the NumPy path's to the last bits on any device, and no float32 cancellation
can creep into a variance (``detectors.image.signals_from_sums`` turns the sums into signals for
every path). Pure: a tensor in, ``ImageSignals`` out; nothing is kept between calls.
"""

from __future__ import annotations

from detectors.image import OVEREXPOSED_LUMA, UNDEREXPOSED_LUMA, ImageSignals, ImageSums, signals_from_sums


def image_signals_batch(pixels) -> list[ImageSignals]:
    """``pixels``: a uint8 tensor ``(B, H, W)`` (grey) or ``(B, H, W, 3)`` (RGB) on any device."""
    import torch

    if pixels.dtype != torch.uint8:
        raise ValueError(f"pixels must be uint8, got {pixels.dtype}")
    if not (pixels.ndim == 3 or (pixels.ndim == 4 and pixels.shape[3] == 3)) or 0 in pixels.shape[1:3]:
        raise ValueError(f"pixels must be (B, H, W) or (B, H, W, 3) and non-empty, got {tuple(pixels.shape)}")
    b, h, w = pixels.shape[:3]
    if b == 0:
        return []
    n = h * w
    i64 = torch.int64
    if pixels.ndim == 4:
        r, g, bl = pixels.permute(0, 3, 1, 2).to(torch.int32).unbind(1)  # planar: contiguous rows
        y = r * 19595
        y += g * 38470
        y += bl * 7471
        y += 0x8000
        y >>= 16
    else:
        y = pixels.to(torch.int32)
    y_sum = y.sum((1, 2), dtype=i64)
    y_sq = (y * y).sum((1, 2), dtype=i64)
    lap = _laplacian(y)
    lap_sum = lap.sum((1, 2), dtype=i64)
    lap_sq = (lap * lap).sum((1, 2), dtype=i64)
    under = (y <= UNDEREXPOSED_LUMA).sum((1, 2))
    over = (y >= OVEREXPOSED_LUMA).sum((1, 2))
    if pixels.ndim == 4:
        rg = r - g
        yb2 = r + g - 2 * bl
        spread = torch.maximum(rg.abs(), (g - bl).abs())
        colour = torch.stack(
            [
                rg.sum((1, 2), dtype=i64),
                (rg * rg).sum((1, 2), dtype=i64),
                yb2.sum((1, 2), dtype=i64),
                (yb2 * yb2).sum((1, 2), dtype=i64),
                (spread <= 2).sum((1, 2)),
            ],
            1,
        )
    else:
        colour = None
    stats = torch.stack([y_sum, y_sq, lap_sum, lap_sq, under, over], 1).cpu().tolist()
    colour = colour.cpu().tolist() if colour is not None else [[] for _ in stats]
    return [signals_from_sums(h, w, ImageSums(n, *base, *extra)) for base, extra in zip(stats, colour)]


def _laplacian(y):
    """4-neighbour Laplacian of ``(B, H, W)`` int32 with mirrored borders (reflect-101: the
    neighbour beyond an edge is the pixel one step inside it)."""
    lap = y * -4
    for dim in (1, 2):
        size = y.shape[dim]
        if size == 1:  # both neighbours are the pixel itself
            lap += 2 * y
            continue
        lap.narrow(dim, 1, size - 1).add_(y.narrow(dim, 0, size - 1))  # the neighbour before
        lap.narrow(dim, 0, size - 1).add_(y.narrow(dim, 1, size - 1))  # the neighbour after
        lap.narrow(dim, 0, 1).add_(y.narrow(dim, 1, 1))  # mirrored before the first
        lap.narrow(dim, size - 1, 1).add_(y.narrow(dim, size - 2, 1))  # mirrored after the last
    return lap
