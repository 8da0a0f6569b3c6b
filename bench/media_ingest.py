"""Ingest throughput with raw media (issue 3): JSONL → SQLite through the daemon, as `modalwatch
ingest` runs it, on events whose image and audio are real media, beside the same events with
producer-computed signals only.

    python bench/media_ingest.py [--events 2000]

Media: 640×480 JPEGs (scikit-image photographs, quality 90) and 5 s mono 16 kHz FLAC clips,
a pool of 40 files each, referenced by ``file://`` URI; every event carries an image, an audio
clip or both (mixed one third each), 1 in 5 of them inline (base64) instead of by URI. Measured in
one run on the same events: media with ``media.workers`` 1 and 2, and the producer-signal
baseline. Ends with one GOAL line and exits 0.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from tests.helpers import inference  # noqa: E402


def make_media(folder: Path, k: int = 40) -> tuple[list[Path], list[Path]]:
    import skimage.data
    import soundfile
    from PIL import Image

    from monitor.demo_media import speech_clip

    rng = np.random.default_rng(0)
    images, clips = [], []
    names = ["astronaut", "coffee", "chelsea", "rocket"]
    for j in range(k):
        px = getattr(skimage.data, names[j % 4])()
        im = Image.fromarray(px).resize((640, 480), Image.Resampling.BICUBIC)
        p = folder / f"img{j:03d}.jpg"
        im.save(p, format="JPEG", quality=90)
        images.append(p)
        # five one-second clips end to end
        parts = [soundfile.read(io.BytesIO(speech_clip(rng, 0.0)))[0] for _ in range(5)]
        p = folder / f"clip{j:03d}.flac"
        soundfile.write(p, np.concatenate(parts), 16000, format="FLAC", subtype="PCM_16")
        clips.append(p)
    return images, clips


def write_events(path: Path, n: int, images, clips, with_media: bool) -> int:
    media_bytes = 0
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            ev = inference(i)
            if with_media:
                kinds = ("image", "audio", "both")[i % 3]
                inputs = {}
                for modality, pool in (("image", images), ("audio", clips)):
                    if kinds in (modality, "both"):
                        f = pool[i % len(pool)]
                        media_bytes += f.stat().st_size
                        inputs[modality] = (
                            {"data_b64": base64.b64encode(f.read_bytes()).decode()}
                            if i % 5 == 0
                            else {"uri": f.as_uri()}
                        )
                ev["inputs"] = inputs
            fh.write(json.dumps(ev) + "\n")
    return media_bytes


def ingest(path: Path, db: Path, workers: int, root: Path) -> tuple[float, dict]:
    from connectors.jsonl import JsonlSource
    from connectors.sqlite import SqliteStore
    from monitor.config import parse_config
    from monitor.daemon import Daemon

    cfg = parse_config(
        f"store: {{path: {db}}}\ningest:\n  max_payload_bytes: 4194304\n"
        f"media: {{allowed_roots: [{root}], workers: {workers}}}\n"
    )
    store = SqliteStore(db)
    store.migrate()
    src = JsonlSource([str(path)], follow=False, max_payload_bytes=cfg.ingest.max_payload_bytes)
    daemon = Daemon(cfg, [src], store, {}, stop_when_idle=True, evaluate=False)
    t = time.perf_counter()
    daemon.run()
    elapsed = time.perf_counter() - t
    store.close()
    return elapsed, daemon.stats


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=2000)
    args = ap.parse_args()
    n = args.events
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        images, clips = make_media(tmp)
        media_path, plain_path = tmp / "media.jsonl", tmp / "plain.jsonl"
        media_bytes = write_events(media_path, n, images, clips, True)
        write_events(plain_path, n, images, clips, False)
        print(
            f"{n} events, {media_bytes / 1e6:.1f} MB of media (640x480 JPEG"
            f" ~{images[0].stat().st_size // 1000} kB, "
            f"5 s FLAC ~{clips[0].stat().st_size // 1000} kB); {os.cpu_count()} cores"
        )
        rates = {}
        for label, path, workers in (
            ("producer signals only", plain_path, 2),
            ("raw media, 1 worker", media_path, 1),
            ("raw media, 2 workers", media_path, 2),
        ):
            db = tmp / f"{label.replace(' ', '_').replace(',', '')}.db"
            elapsed, stats = ingest(path, db, workers, tmp)
            assert stats["stored"] == n and stats["partial"] == 0, stats
            rates[label] = n / elapsed
            print(
                f"{label:24s}: {n / elapsed:9.0f} events/s"
                f" ({media_bytes / 1e6 / elapsed if 'media' in label else 0:5.1f}"
                f" MB/s of media)"
            )
    best = rates["raw media, 2 workers"]
    print(
        f"GOAL media_ingest_throughput_reported: {best:.0f} events/s of mixed raw media on "
        f"{os.cpu_count()} cores ({best / rates['producer signals only']:.3f} of the producer-signal rate) "
        f"vs report it PASS"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
