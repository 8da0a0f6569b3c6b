"""Decode raw media into what detectors/ measures: uint8 pixels, float samples, text.

Decoding is not I/O (bytes in, arrays out); reading a ``file://`` URI is, and lives with the
callers. Every failure is a ``MediaError`` whose message names the modality and the reason.
"""

from __future__ import annotations

import io
import logging
import math
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np

from monitor.core.errors import MediaError

log = logging.getLogger("modalwatch.media")

MAX_PIXELS = 64_000_000  # a decompression bomb is refused before it is decoded
MAX_AUDIO_SECONDS = 3600.0
# JSON and PostgreSQL's jsonb hold no infinities: a level of digital silence (-inf dB / LUFS) or an
# SNR over digital silence (+inf dB) is stored as -200 / +200, beyond anything measurable.
STORED_LEVEL_LIMIT = 200.0
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif"}
TEXT_SUFFIXES = {".txt", ".text", ".md"}


def decode_image(data: bytes, max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """uint8 ``(h, w)`` or ``(h, w, 3)``: grey stays grey, RGBA/palette/CMYK become RGB, 16-bit is scaled."""
    return decode_image_and_luma(data, max_pixels, luma=False)[0]


def decode_image_and_luma(
    data: bytes, max_pixels: int = MAX_PIXELS, luma: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """The pixels (as ``decode_image``) and their 8-bit Rec.601 luma, made by Pillow's C code
    (``convert("L")``, bit-identical to ``detectors.image.luma601``); no luma when ``luma`` is False."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
            if w * h > max_pixels:
                raise MediaError("image", f"{w}x{h} exceeds the limit of {max_pixels} pixels")
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                a = np.asarray(im, dtype=np.float64)
                top = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
                grey = np.clip(np.round(a * 255.0 / top), 0, 255).astype(np.uint8)
                return grey, grey
            if im.mode in ("L", "LA"):
                grey = np.asarray(im if im.mode == "L" else im.convert("L"), dtype=np.uint8)
                return grey, grey
            rgb = im if im.mode == "RGB" else im.convert("RGB")
            return np.asarray(rgb, dtype=np.uint8), np.asarray(
                rgb.convert("L"), dtype=np.uint8
            ) if luma else None
    except MediaError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise MediaError("image", f"cannot decode: {_plain(e)}") from None


def decode_audio(data: bytes, max_seconds: float = MAX_AUDIO_SECONDS) -> tuple[np.ndarray, int]:
    """(float64 samples ``(n, channels)``, sample rate) from WAV, FLAC, OGG … via libsndfile.

    The length is checked from the header before any sample is decoded, so memory stays bounded."""
    import soundfile

    try:
        with soundfile.SoundFile(io.BytesIO(data)) as f:
            if f.samplerate <= 0:
                raise MediaError("audio", f"invalid sample rate {f.samplerate}")
            seconds = f.frames / f.samplerate
            if seconds > max_seconds:
                raise MediaError("audio", f"{seconds:.0f} s exceeds media.max_audio_seconds={max_seconds:g}")
            samples = f.read(dtype="float64", always_2d=True)
            rate = f.samplerate
    except MediaError:
        raise
    except (RuntimeError, soundfile.LibsndfileError, TypeError, ValueError) as e:
        raise MediaError("audio", f"cannot decode: {_plain(e)}") from None
    if samples.shape[0] == 0:
        raise MediaError("audio", "zero-length audio")
    if not np.all(np.isfinite(samples)):
        raise MediaError("audio", "samples hold NaN or infinite values")
    return samples, int(rate)


def _plain(e: Exception) -> str:
    """A decoder's message without the in-memory file's repr (it changes on every call)."""
    return re.sub(r"^Error opening: ", "", re.sub(r" ?<_io\.BytesIO object at 0x[0-9a-f]+>", "", str(e)))


def decode_text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise MediaError("text", f"not UTF-8: {e.reason} at byte {e.start}") from None


def modality_of(path: Path) -> str:
    suffix = path.suffix.lower()
    for modality, suffixes in (("image", IMAGE_SUFFIXES), ("audio", AUDIO_SUFFIXES), ("text", TEXT_SUFFIXES)):
        if suffix in suffixes:
            return modality
    raise MediaError("unknown", f"cannot tell the modality of {path.name!r} from its suffix")


def signals_of(
    modality: str, data: bytes, max_pixels: int = MAX_PIXELS, max_audio_seconds: float = MAX_AUDIO_SECONDS
) -> dict[str, float]:
    """The signals of one decoded medium, as plain numbers (``-inf`` loudness stays ``-inf``)."""
    if modality == "image":
        from detectors.image import COMPILED, image_signals

        if COMPILED:  # one compiled pass computes luma itself
            return image_signals(decode_image(data, max_pixels)).as_dict()
        return image_signals(*decode_image_and_luma(data, max_pixels)).as_dict()
    if modality == "audio":
        from detectors.audio import audio_signals

        samples, rate = decode_audio(data, max_audio_seconds)
        try:
            s = audio_signals(samples, rate)
        except ValueError as e:
            raise MediaError("audio", str(e)) from None
        return {k: float(v) for k, v in s.__dict__.items()}
    if modality == "text":
        return text_measures(data)[0]
    raise MediaError(modality, "unknown modality")


def text_measures(data: bytes, hash_key: bytes | None = None) -> tuple[dict[str, float], bytes | None]:
    """A raw text's signals, and (with ``hash_key``) its words as hashed buckets (packed uint32),
    from one decoding."""
    from detectors.text import text_signals, token_buckets

    text = decode_text(data)
    values = {k: float(v) for k, v in text_signals(text).__dict__.items()}
    signals = {k: v for k, v in values.items() if not math.isnan(v)}  # NaN: not measurable (no language)
    tokens = None if hash_key is None else token_buckets(text, hash_key).astype("<u4").tobytes()
    return signals, tokens


def storable(x: float) -> float:
    """A signal as stored: infinities become ±``STORED_LEVEL_LIMIT`` (see above)."""
    return x if math.isfinite(x) else math.copysign(STORED_LEVEL_LIMIT, x)


def measure_images_batched(
    items: list[bytes], device: str, max_pixels: int = MAX_PIXELS, map_fn=map, batch_pixels: int = 16_000_000
) -> list[dict[str, float] | MediaError]:
    """Image signals of many encoded images at once on a torch ``device`` ("cpu", "cuda" …):
    decoded with ``map_fn`` (a thread pool's map), grouped by size, measured in batches of at most
    ``batch_pixels`` pixels by ``detectors.image_torch``. One result per item, in order."""
    import torch

    from detectors.image_torch import image_signals_batch

    def decode(item):
        try:
            return decode_image(item, max_pixels)
        except MediaError as e:
            return e

    decoded = list(map_fn(decode, items))
    out: list[dict[str, float] | MediaError] = [d if isinstance(d, MediaError) else {} for d in decoded]
    groups: dict[tuple, list[int]] = {}
    for i, d in enumerate(decoded):
        if not isinstance(d, MediaError):
            groups.setdefault(d.shape, []).append(i)
    for shape, idx in groups.items():
        per = max(1, batch_pixels // (shape[0] * shape[1]))
        for k in range(0, len(idx), per):
            chunk = idx[k : k + per]
            batch = torch.from_numpy(np.stack([decoded[i] for i in chunk])).to(device, non_blocking=True)
            for i, sig in zip(chunk, image_signals_batch(batch)):
                out[i] = sig.as_dict()
    return out


class Measured(NamedTuple):
    """What one event's inputs measured: flat ``modality.signal`` values, the modalities that
    have signals, and each modality whose raw media failed, with the reason."""

    signals: dict[str, float]
    present: frozenset[str]
    failures: tuple[tuple[str, str], ...]
    tokens: bytes | None = None  # the raw text's words as hashed buckets (uint32, little-endian)


def measure_event(
    event, read, media_cfg, measured: dict | None = None, raw_media: bool | None = None
) -> Measured:
    """Measure every raw medium of ``event`` (an InferenceEvent) and add cross-modal signals.

    ``read(modality, data_b64, uri) -> bytes`` fetches the media (connectors.media.MediaReader);
    decoding and measuring happen here, and the bytes go out of scope when this returns.
    ``measured`` holds modalities already measured elsewhere (the batched image path): their
    signals, or the ``MediaError`` that stopped them. ``raw_media``: whether the event carries
    media, when the caller knows already."""
    inputs = event.inputs
    if raw_media is None:
        raw_media = event.has_raw_media
    if (
        not raw_media
        and not media_cfg.expected_modalities
        and not any("ts" in i.capture for i in inputs.values())
    ):
        # the hot path of producer-computed signals: validated finite numbers, nothing to measure
        return Measured(
            {f"{m}.{k}": v for m, i in inputs.items() for k, v in i.signals.items()}, frozenset(inputs), ()
        )
    from detectors.crossmodal import cross_modal_signals

    signals: dict[str, float] = {}
    present: set[str] = set()
    failures: list[tuple[str, str]] = []
    tokens = None
    for modality, inp in event.inputs.items():
        values = dict(inp.signals)
        if inp.has_raw_media:
            try:
                if measured is not None and modality in measured:
                    done = measured[modality]
                    if isinstance(done, MediaError):
                        raise done
                    values.update(done)
                else:
                    data = read(modality, inp.data_b64, inp.uri)
                    if modality == "text":
                        measured_text, tokens = text_measures(data, media_cfg.hash_key())
                        values.update(measured_text)
                    else:
                        values.update(
                            signals_of(modality, data, media_cfg.max_pixels, media_cfg.max_audio_seconds)
                        )
            except MediaError as e:
                failures.append((modality, str(e)))
                continue
            except Exception as e:  # noqa: BLE001 - hostile media must not stop the batch: its event is told why
                log.warning(
                    "measuring %s of event %s failed unexpectedly", modality, event.event_id, exc_info=True
                )
                failures.append((modality, f"{modality}: cannot be measured ({type(e).__name__})"))
                continue
        signals.update((f"{modality}.{k}", storable(v)) for k, v in values.items())
        present.add(modality)
    capture = {m: inp.capture_ts for m, inp in event.inputs.items() if m in present and "ts" in inp.capture}
    cross = cross_modal_signals(present, media_cfg.expected_modalities, capture)
    signals.update((f"cross.{k}", v) for k, v in cross.items())
    return Measured(signals, frozenset(present), tuple(failures), tokens)


def json_number(x: float) -> float | str:
    """JSON has no infinities: they are written as the strings "inf" / "-inf"."""
    return x if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def describe_file(path: Path) -> dict:
    """What `modalwatch signals FILE` prints for one file."""
    try:
        modality = modality_of(path)
        sig = signals_of(modality, path.read_bytes())
        return {
            "path": str(path),
            "modality": modality,
            "signals": {k: json_number(v) for k, v in sig.items()},
        }
    except MediaError as e:
        return {"path": str(path), "modality": e.modality, "error": str(e)}
    except OSError as e:
        return {"path": str(path), "error": f"cannot read: {e.strerror or e}"}


__all__ = [
    "Measured",
    "decode_audio",
    "decode_image",
    "decode_text",
    "describe_file",
    "measure_event",
    "signals_of",
    "storable",
]
