"""The batched torch path for image signals (issue 3): agreement with the NumPy path and images/s.

    python bench/signals_torch.py [--images 64] [--batch 32]

Decoded 1920×1080 RGB frames (scikit-image's astronaut, resized, each with its own gamma) are
measured three ways in one run: NumPy one image at a time (``detectors.image.image_signals``),
torch on the CPU in batches, and torch on CUDA when a device is present (host-to-device copy
from pinned memory included, then resident on the device). Decoding is not part of these figures
(bench/signals.py measures it). Ends with one GOAL line per goal and exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def frames(n: int) -> np.ndarray:
    import skimage.data
    from PIL import Image

    base = np.asarray(
        Image.fromarray(skimage.data.astronaut()).resize((1920, 1080), Image.Resampling.BICUBIC)
    )
    out = np.empty((n, 1080, 1920, 3), np.uint8)
    for i in range(n):
        gamma = 0.6 + 1.4 * i / max(1, n - 1)
        lut = np.clip(np.round(255 * (np.arange(256) / 255) ** gamma), 0, 255).astype(np.uint8)
        out[i] = lut[base]
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    import torch

    from detectors.image import image_signals
    from detectors.image_torch import image_signals_batch

    x = frames(args.images)
    print(
        f"{args.images} frames of 1920x1080 RGB; {os.cpu_count()} CPU cores, torch {torch.__version__}, "
        f"{torch.get_num_threads()} torch threads"
    )

    t = time.perf_counter()
    ref = [image_signals(f) for f in x]
    t_np = time.perf_counter() - t
    print(f"numpy, one at a time   : {args.images / t_np:8.1f} images/s")

    def run(device: str, pinned: torch.Tensor | None = None):
        got = []
        for k in range(0, args.images, args.batch):
            src = (
                pinned[k : k + args.batch] if pinned is not None else torch.from_numpy(x[k : k + args.batch])
            )
            got += image_signals_batch(src.to(device, non_blocking=True))
        return got

    t = time.perf_counter()
    cpu = run("cpu")
    t_cpu = time.perf_counter() - t
    print(f"torch cpu, batch {args.batch:3d}  : {args.images / t_cpu:8.1f} images/s")

    def worst(got) -> float:
        w = 0.0
        for a, b in zip(ref, got):
            for k, v in a.as_dict().items():
                u = b.as_dict()[k]
                w = max(w, abs(u - v) / max(abs(v), 1e-12))
        return w

    diffs = [worst(cpu)]
    gpu_rate = None
    if torch.cuda.is_available():
        name = torch.cuda.get_device_name(0)
        pinned = torch.from_numpy(x).pin_memory()
        run("cuda", pinned)  # warm-up: kernels, allocator
        torch.cuda.synchronize()
        t = time.perf_counter()
        gpu = run("cuda", pinned)
        torch.cuda.synchronize()
        t_gpu = time.perf_counter() - t
        resident = pinned.to("cuda")
        torch.cuda.synchronize()
        t = time.perf_counter()
        for k in range(0, args.images, args.batch):
            image_signals_batch(resident[k : k + args.batch])
        torch.cuda.synchronize()
        t_res = time.perf_counter() - t
        gpu_rate = args.images / t_gpu
        diffs.append(worst(gpu))
        print(
            f"torch cuda ({name}), with copy: {gpu_rate:8.1f} images/s; resident: {args.images / t_res:8.1f}"
        )
    else:
        print("torch cuda             : no CUDA device on this machine: not measured")

    w = max(diffs)
    print(
        f"GOAL torch_matches_numpy: max relative difference {w:.1e} vs 1e-4 {'PASS' if w <= 1e-4 else 'FAIL'}"
    )
    if gpu_rate is None:
        print("GOAL torch_gpu_1080p_images_per_s: not measured (no CUDA device) vs 2,000/s FAIL")
    else:
        print(
            f"GOAL torch_gpu_1080p_images_per_s: {gpu_rate:,.0f}/s vs 2,000/s"
            f" {'PASS' if gpu_rate >= 2000 else 'FAIL'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
