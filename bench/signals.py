"""Signal extraction speed (issue 3), ratios in one run on the same data. Part 1: loudness.

    python bench/signals.py [--minutes 10]

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
    print(f"modalwatch loudness     : {res.integrated_lufs:9.4f} LUFS in {t_mw:6.2f} s "
          f"(+ max M {res.max_momentary_lufs:.2f}, max S {res.max_short_term_lufs:.2f}, LRA {res.loudness_range_lu:.2f})")
    print(f"GOAL loudness_agreement: {diff:.4f} LU vs 0.01 LU {'PASS' if diff <= 0.01 else 'FAIL'}")
    print(f"GOAL loudness_speed_vs_pyloudnorm: {t_ref / t_mw:.2f}x vs 2.5x {'PASS' if t_ref / t_mw >= 2.5 else 'FAIL'}")
    print(f"GOAL loudness_real_time_factor: {rtf:,.0f}x vs 1,000x {'PASS' if rtf >= 1000 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
