"""Decoding real files (Pillow, libsndfile) into signals, and `modalwatch signals FILE...`."""

import io
import json
import math
import subprocess

import numpy as np
import pytest
import skimage.data
from PIL import Image

from monitor.core.errors import MediaError
from monitor.media import decode_audio, decode_image, decode_text, signals_of
from tests.conftest import ROOT, modalwatch_cmd
from tests.helpers import image_bytes as _png, tone as _tone, wav_bytes as _wav


def test_image_formats_and_modes_decode_to_what_pillow_sees():
    px = skimage.data.astronaut()
    for data in (_png(px), _png(px, fmt="JPEG", quality=90), _png(px, fmt="WEBP", quality=90)):
        s = signals_of("image", data)
        pil_l = np.asarray(Image.open(io.BytesIO(data)).convert("L"))
        assert s["brightness"] == pytest.approx(pil_l.mean(), abs=1e-9) and s["width"] == 512
    rgba = np.dstack([px, np.full(px.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(decode_image(_png(rgba)), px)
    grey16 = skimage.data.camera().astype(np.uint16) * 257
    decoded = decode_image(_png(grey16))
    np.testing.assert_array_equal(decoded, skimage.data.camera())  # 16-bit scaled back to 8-bit


def test_bad_images_are_refused_with_the_modality_and_reason():
    good = _png(skimage.data.camera())
    with pytest.raises(MediaError, match="image: cannot decode"):
        decode_image(good[: len(good) // 3])
    with pytest.raises(MediaError, match="image: cannot decode"):
        decode_image(b"not an image at all")
    with pytest.raises(MediaError, match=r"image: 512x512 exceeds the limit of 1000 pixels"):
        decode_image(good, max_pixels=1000)


def test_audio_formats_and_layouts():
    for fmt, subtype in (("WAV", "PCM_24"), ("FLAC", "PCM_16"), ("OGG", "VORBIS")):
        s = signals_of("audio", _wav(_tone(-23, 10), fmt=fmt, subtype=subtype))
        assert s["integrated_loudness_lufs"] == pytest.approx(-23.0, abs=0.1 if fmt != "OGG" else 0.3)
        assert s["channels"] == 2 and s["sample_rate_hz"] == 48000
    five_one = np.zeros((48000 * 5, 6))
    five_one[:, 3] = _tone(-10, 5, channels=1)[:, 0]
    assert signals_of("audio", _wav(five_one))["integrated_loudness_lufs"] == -math.inf  # LFE not measured
    samples, rate = decode_audio(_wav(_tone(-23, 1, rate=16000, channels=1), rate=16000))
    assert rate == 16000 and samples.shape == (16000, 1)


def test_bad_audio_and_text():
    with pytest.raises(MediaError, match="audio: cannot decode"):
        decode_audio(b"RIFF\x00\x00\x00\x00WAVEjunk")
    with pytest.raises(MediaError, match="audio: zero-length"):
        decode_audio(_wav(np.zeros((0, 2))))
    with pytest.raises(MediaError, match="text: not UTF-8"):
        decode_text(b"caf\xe9")
    assert signals_of("text", "café".encode())["non_ascii_share"] == 0.25


def test_signals_command_prints_one_json_line_per_file(tmp_path):
    (tmp_path / "a.png").write_bytes(_png(skimage.data.coffee()))
    (tmp_path / "b.wav").write_bytes(_wav(_tone(-33, 5)))
    (tmp_path / "c.txt").write_text("hello world")
    (tmp_path / "d.jpg").write_bytes(b"\xff\xd8\xff broken")
    out = subprocess.run(
        modalwatch_cmd() + ["signals"] + [str(tmp_path / n) for n in ("a.png", "b.wav", "c.txt", "d.jpg")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 1  # one file failed
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r.get("modality") for r in rows] == ["image", "audio", "text", "image"]
    assert rows[0]["signals"]["width"] == 600
    assert rows[1]["signals"]["integrated_loudness_lufs"] == pytest.approx(-33.0, abs=0.1)
    assert rows[2]["signals"]["tokens"] == 2
    assert rows[3]["error"].startswith("image: cannot decode")
