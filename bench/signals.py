"""Signal extraction speed (issue 3), ratios in one run on the same data.

    python bench/signals.py [--minutes 10]

Part 2, images: decode + every image signal (``monitor.media.signals_of``) against decode alone
(Pillow open + load + the pixels as a NumPy array) for a 512×512 PNG (scikit-image's astronaut)
and a 1920×1080 JPEG (the same picture resized, quality 90); best of 40 runs each, interleaved.

Integrated loudness of N minutes of 48 kHz stereo (noise shaped like programme material) with
modalwatch's detectors.audio.loudness against pyloudnorm (filter_class="DeMan") — the same value
within 0.01 LU, the speed ratio, and the real-time factor on one core. Max momentary / short-term
loudness and loudness range come from the same call.

Text (issue 17): texts per second on one core of each text signal, on the 70 sentences of
tests/data/languages.json (14 languages) repeated: the old signals (characters … scripts), VADER
sentiment, Lingua language identification (against langid.py on the same texts, with both
start-up times, memory and accuracy: why Lingua), the hashed vocabulary buckets, and all of them
as the pipeline measures a raw text. Ends with one GOAL line per goal, exit 0.
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
    for line in bench_text():
        print(line)
    return 0


def _rss_mib() -> float:
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def bench_text() -> list[str]:
    import json

    from detectors import text as t
    from monitor.media import text_measures

    data = json.loads((Path(__file__).resolve().parent.parent / "tests/data/languages.json").read_text())
    sentences = [(lang, s) for lang, ss in data.items() for s in ss]
    texts = [s for _, s in sentences] * 30
    mem0, t0 = _rss_mib(), time.perf_counter()
    t.language("warm up")  # builds Lingua's detector: its start-up
    lingua_start, lingua_mib = time.perf_counter() - t0, _rss_mib() - mem0
    t.sentiment("warm up")

    def rate(fn) -> float:
        best = min(best_of(lambda: [fn(x) for x in texts], repeat=3)[0], 1e9)
        return len(texts) / best

    rates = {
        "old_signals": rate(lambda x: (len(x), len(x.split()), sum(ord(c) > 127 for c in x))),
        "sentiment": rate(t.sentiment),
        "language": rate(t.language),
        "vocabulary": rate(lambda x: t.token_buckets(x, b"bench")),
        "all_text_signals": rate(lambda x: text_measures(x.encode(), b"bench")),
    }
    iso = dict(
        en="eng", de="deu", fr="fra", es="spa", it="ita", pt="por", nl="nld",
        sv="swe", pl="pol", ru="rus", tr="tur", ja="jpn", zh="zho", ar="ara",
    )  # fmt: skip
    lingua_right = sum(t.language_name(t.language(s)[0]) == iso[lang] for lang, s in sentences)
    print(f"text: {len(texts)} texts ({len(data)} languages), one core")
    for name, r in rates.items():
        print(f"  {name:18s} {r:10,.0f} texts/s")
    print(
        f"  lingua (low accuracy): start {lingua_start:.2f} s, +{lingua_mib:.0f} MiB,"
        f" {lingua_right}/{len(sentences)} right"
    )
    goals = []
    try:
        mem0, t0 = _rss_mib(), time.perf_counter()
        from langid.langid import LanguageIdentifier, model

        ident = LanguageIdentifier.from_modelstring(model, norm_probs=True)
        ident.classify("warm up")
        langid_start, langid_mib = time.perf_counter() - t0, _rss_mib() - mem0
        langid_rate = rate(ident.classify)
        langid_right = sum(ident.classify(s)[0] == lang for lang, s in sentences)
        print(
            f"  langid.py          {langid_rate:10,.0f} texts/s; start {langid_start:.2f} s,"
            f" +{langid_mib:.0f} MiB,"
            f" {langid_right}/{len(sentences)} right"
        )
        speed = rates["language"] / langid_rate
        goals.append(f"GOAL language_speed_vs_langid: {speed:.1f}x vs 1x {'PASS' if speed >= 1 else 'FAIL'}")
        goals.append(
            f"GOAL language_accuracy_vs_langid: {lingua_right}/{len(sentences)}"
            f" vs {langid_right}/{len(sentences)}"
            f" {'PASS' if lingua_right >= langid_right else 'FAIL'}"
        )
    except ImportError:
        print("  langid.py not installed (pip install langid): no comparison")
    for name in ("sentiment", "language", "vocabulary", "all_text_signals"):
        r = rates[name]
        goals.append(
            f"GOAL text_{name}_throughput: {r:,.0f} texts/s vs 1,000 texts/s"
            f" {'PASS' if r >= 1000 else 'FAIL'}"
        )
    return goals


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
