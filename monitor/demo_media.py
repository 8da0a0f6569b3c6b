"""Real media for the demo: pools of pictures and speech-like clips, one pool per day, written
under the demo's output folder and sent by ``file://`` URI, so the demo's image and audio
episodes are found by modalwatch's own signal extraction rather than by numbers it was handed.

* pictures: scikit-image's sample photographs, cropped and jittered per file; on a darkening
  camera each day's pool is darker (gamma) and softer (Gaussian blur) than the day before;
* speech: a voiced source (harmonics of a 100–220 Hz pitch) shaped into 4 Hz syllables with
  pauses, over low-frequency road noise, 1 s at 16 kHz; after a microphone swap the whole clip
  is 10 dB quieter.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

PICTURES = ("astronaut", "coffee", "chelsea", "rocket", "camera", "coins")
SIDE = 128
AUDIO_RATE = 16_000


def _photos() -> list[np.ndarray]:
    import skimage.data
    from PIL import Image

    out = []
    for name in PICTURES:
        px = getattr(skimage.data, name)()
        if px.ndim == 2:
            px = np.repeat(px[..., None], 3, axis=2)
        h, w = px.shape[:2]
        side = min(h, w)
        square = px[(h - side) // 2 : (h + side) // 2, (w - side) // 2 : (w + side) // 2]
        out.append(
            np.asarray(Image.fromarray(square).resize((2 * SIDE, 2 * SIDE), Image.Resampling.BILINEAR))
        )
    return out


def picture(rng: np.random.Generator, photos: list[np.ndarray], dark: float) -> bytes:
    """One JPEG: a random crop of a sample photograph, exposure-jittered, darkened and blurred by
    ``dark`` in [0, 1]."""
    from PIL import Image, ImageFilter

    base = photos[rng.integers(len(photos))]
    y, x = rng.integers(0, SIDE + 1, 2)
    crop = base[y : y + SIDE, x : x + SIDE].astype(np.float64) / 255.0
    gain = rng.normal(1.0, 0.06)
    gamma = 1.0 + 1.6 * dark
    px = np.clip(np.round(255.0 * np.clip(crop * gain, 0, 1) ** gamma), 0, 255).astype(np.uint8)
    im = Image.fromarray(px)
    if dark > 0:
        im = im.filter(ImageFilter.GaussianBlur(radius=2.0 * dark))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=88)
    return buf.getvalue()


def speech_clip(rng: np.random.Generator, quieter_db: float) -> bytes:
    """One second of speech-like sound over road noise, as 16-bit FLAC."""
    import soundfile

    t = np.arange(AUDIO_RATE) / AUDIO_RATE
    f0 = rng.uniform(100, 220) * (1 + 0.05 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t))
    phase = 2 * np.pi * np.cumsum(f0) / AUDIO_RATE
    voiced = sum(np.sin(h * phase + rng.uniform(0, 2 * np.pi)) / h for h in range(1, 7))
    syllables = np.repeat(rng.uniform(0, 1, 5) > 0.3, AUDIO_RATE // 4 + 1)[:AUDIO_RATE]  # some are pauses
    envelope = (0.5 - 0.5 * np.cos(2 * np.pi * 4 * t)) ** 2 * syllables
    brown = np.cumsum(rng.normal(0, 1, AUDIO_RATE + 400))
    rumble = (
        brown[400:] - (np.cumsum(brown)[400:] - np.cumsum(brown)[:-400]) / 400
    ) / 60.0  # minus its trend
    level = 10 ** ((rng.normal(-14, 1.5) - quieter_db) / 20)
    x = level * (voiced * envelope / 3.0 + rumble * 10 ** (-rng.uniform(18, 26) / 20))
    buf = io.BytesIO()
    soundfile.write(buf, np.clip(x, -1, 1), AUDIO_RATE, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


class MediaWriter:
    """Writes one unique file per media event under ``folder`` and answers its ``file://`` URI."""

    def __init__(self, folder: Path, seed: int):
        self.folder = folder
        self.rng = np.random.default_rng(seed + 1)
        self.photos = _photos()
        self.n = 0
        for sub in ("images", "audio"):
            (folder / sub).mkdir(parents=True, exist_ok=True)

    def _write(self, sub: str, suffix: str, data: bytes) -> str:
        self.n += 1
        path = self.folder / sub / f"{self.n:07d}{suffix}"
        path.write_bytes(data)
        return path.resolve().as_uri()

    def image(self, dark: float) -> str:
        return self._write("images", ".jpg", picture(self.rng, self.photos, dark))

    def speech(self, quieter_db: float) -> str:
        return self._write("audio", ".flac", speech_clip(self.rng, quieter_db))
