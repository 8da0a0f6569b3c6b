"""Signal extraction speed (issue 3), ratios in one run on the same data.

    python bench/signals.py [--minutes 10]

Part 2, images: decode + every image signal (``monitor.media.signals_of``) against decode alone
(Pillow open + load + the pixels as a NumPy array) for a 512×512 PNG (scikit-image's astronaut)
and a 1920×1080 JPEG (the same picture resized, quality 90); best of 40 runs each, interleaved.

Integrated loudness of N minutes of 48 kHz stereo (noise shaped like programme material) with
modalwatch's detectors.audio.loudness against pyloudnorm (filter_class="DeMan") — the same value
within 0.01 LU, the speed ratio, and the real-time factor on one core. Max momentary / short-term
loudness and loudness range come from the same call. Ends with one GOAL line per goal, exit 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402


def best_of(fn, repeat=3):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=10.0)
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import pyloudnorm

    from detectors.audio import loudness

    fs = 48000
    n = int(args.minutes * 60 * fs)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.1, (n, 2)) * (0.3 + np.abs(np.sin(np.linspace(0, 200, n))))[:, None]
    meter = pyloudnorm.Meter(fs, filter_class="DeMan")
    t_ref, ref = best_of(lambda: meter.integrated_loudness(x), repeat=2)
    t_mw, res = best_of(lambda: loudness(x, fs), repeat=2)
    diff = abs(res.integrated_lufs - ref)
    rtf = args.minutes * 60 / t_mw
    print(f"{args.minutes:g} min of 48 kHz stereo; {os.cpu_count()} cores")
    print(f"pyloudnorm (DeMan)      : {ref:9.4f} LUFS in {t_ref:6.2f} s (integrated only)")
    print(
        f"modalwatch loudness     : {res.integrated_lufs:9.4f} LUFS in {t_mw:6.2f} s "
        f"(+ max M {res.max_momentary_lufs:.2f}, max S {res.max_short_term_lufs:.2f}, LRA"
        f" {res.loudness_range_lu:.2f})"
    )
    image_goals = bench_images()
    print(f"GOAL loudness_agreement: {diff:.4f} LU vs 0.01 LU {'PASS' if diff <= 0.01 else 'FAIL'}")
    print(
        f"GOAL loudness_speed_vs_pyloudnorm: {t_ref / t_mw:.2f}x vs 2.5x"
        f" {'PASS' if t_ref / t_mw >= 2.5 else 'FAIL'}"
    )
    print(f"GOAL loudness_real_time_factor: {rtf:,.0f}x vs 1,000x {'PASS' if rtf >= 1000 else 'FAIL'}")
    for line in image_goals:
        print(line)
    return 0


def bench_images() -> list[str]:
    import io

    import skimage.data
    from PIL import Image

    from monitor.media import signals_of

    def encoded(px, fmt, **kw):
        buf = io.BytesIO()
        Image.fromarray(px).save(buf, format=fmt, **kw)
        return buf.getvalue()

    astronaut = skimage.data.astronaut()
    hd = np.asarray(Image.fromarray(astronaut).resize((1920, 1080), Image.Resampling.BICUBIC))
    goals = []
    for name, data in (
        ("png_512", encoded(astronaut, "PNG")),
        ("jpeg_1080p", encoded(hd, "JPEG", quality=90)),
    ):

        def decode_only(data=data):
            with Image.open(io.BytesIO(data)) as im:
                im.load()
                return np.asarray(im)

        # interleaved, best of 40 each, so both see the same machine state
        t_dec = t_all = float("inf")
        for _ in range(40):
            t_dec = min(t_dec, best_of(decode_only, repeat=1)[0])
            t, sig = best_of(lambda data=data: signals_of("image", data), repeat=1)
            t_all = min(t_all, t)
        ratio = t_all / t_dec
        print(
            f"{name:11s} decode {t_dec * 1e3:6.2f} ms, decode + all signals {t_all * 1e3:6.2f} ms "
            f"({ratio:.2f}x; brightness {sig['brightness']:.2f}, sharpness {sig['sharpness']:.1f})"
        )
        goals.append(
            f"GOAL image_{name}_vs_decode: {ratio:.2f}x vs 1.3x {'PASS' if ratio <= 1.3 else 'FAIL'}"
        )
    return goals


if __name__ == "__main__":
    sys.exit(main())
