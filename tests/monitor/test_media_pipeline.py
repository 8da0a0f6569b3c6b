"""Raw media through the pipeline: measured, stored as signals, bytes dropped; bad media
dead-lettered per modality while the rest of the event is kept."""

import io
import json
import math

import numpy as np
import pytest
import skimage.data
from PIL import Image

from monitor.config import parse_config
from monitor.pipeline import Pipeline, RawMessage
from tests.helpers import T0, b64, image_bytes, inference, tone, wav_bytes


def _pipeline(store, yaml=""):
    return Pipeline(parse_config(yaml), store, lambda: T0)


def _msgs(objs):
    return [RawMessage("test", f"test:{i}", json.dumps(o).encode()) for i, o in enumerate(objs)]


def _event(i, **inputs):
    ev = inference(i)
    ev["inputs"] = inputs
    return ev


def _stored_signals(store):
    return store.events.signals_for(eid for (eid,) in store.db.all("SELECT event_id FROM events"))


def test_inline_media_of_every_modality_is_measured_and_not_kept(sqlite_store):
    jpeg = image_bytes(skimage.data.chelsea(), "JPEG", quality=85)
    ev = _event(
        1,
        image={"data_b64": b64(jpeg), "signals": {"producer_score": 3.0}},
        audio={"data_b64": b64(wav_bytes(tone(-20, 3, channels=1)))},
        text={"data_b64": b64("Grüße".encode())},
    )
    out = _pipeline(sqlite_store).process(_msgs([ev]))
    assert out[0].status == "stored" and out[0].reason == ""
    s = _stored_signals(sqlite_store)["e0000001"]
    # independent references: Pillow's own luma, the analytic loudness of a sine (−3.01 dB per channel)
    assert s["image.brightness"] == pytest.approx(
        np.asarray(Image.open(io.BytesIO(jpeg)).convert("L")).mean()
    )
    assert (s["image.width"], s["image.height"]) == (451, 300)
    assert s["image.producer_score"] == 3.0  # producer signals kept beside the measured ones
    assert s["audio.integrated_loudness_lufs"] == pytest.approx(-23.01, abs=0.05)
    assert s["audio.duration_s"] == pytest.approx(3.0)
    assert (s["text.characters"], s["text.non_ascii_share"]) == (5, 0.4)  # ü and ß
    dump = json.dumps(sqlite_store.db.all("SELECT * FROM events"), default=str)
    assert ev["inputs"]["image"]["data_b64"][:64] not in dump


def test_file_uris_are_read_only_under_allowed_roots(sqlite_store, tmp_path):
    media, outside = tmp_path / "media", tmp_path / "private"
    media.mkdir()
    outside.mkdir()
    (media / "a.png").write_bytes(image_bytes(skimage.data.camera()))
    (outside / "secret.png").write_bytes(image_bytes(skimage.data.camera()))
    (media / "link.png").symlink_to(outside / "secret.png")  # a symlink out of the root
    p = _pipeline(sqlite_store, f"media:\n  allowed_roots: [{media}]\n")
    events = [
        _event(1, image={"uri": (media / "a.png").as_uri()}),
        _event(2, image={"uri": (outside / "secret.png").as_uri()}),
        _event(3, image={"uri": (media / "link.png").as_uri()}),
        _event(4, image={"uri": (media / ".." / "private" / "secret.png").as_uri()}),
        _event(5, image={"uri": "https://example.com/a.png"}),
        _event(6, image={"uri": (media / "missing.png").as_uri()}),
    ]
    out = p.process(_msgs(events))
    assert [o.status for o in out] == ["stored"] * 6
    assert out[0].reason == ""
    assert "outside media.allowed_roots" in out[1].reason
    assert "outside media.allowed_roots" in out[2].reason and "outside media.allowed_roots" in out[3].reason
    assert "URI scheme 'https' is not allowed" in out[4].reason
    assert "no such file" in out[5].reason
    signals = _stored_signals(sqlite_store)
    assert signals["e0000001"]["image.brightness"] == pytest.approx(skimage.data.camera().mean())
    assert not any(k.startswith("image.") for k in signals["e0000002"])
    letters = {d.position: d.reason for d in sqlite_store.ops.dead_letters()}
    assert sorted(letters) == [f"test:{i}#image" for i in range(1, 6)]
    # with no roots configured (the default), every file:// URI is refused
    out = _pipeline(sqlite_store).process(_msgs([_event(7, image={"uri": (media / "a.png").as_uri()})]))
    assert "media.allowed_roots is empty" in out[0].reason


def test_bad_media_dead_letters_name_the_modality_and_keep_the_rest(sqlite_store):
    png, small = image_bytes(skimage.data.camera()), image_bytes(skimage.data.camera()[:200, :200])
    nan_wav = wav_bytes(np.full((4800, 1), np.nan), subtype="FLOAT")
    events = [
        _event(
            1, image={"data_b64": b64(small[: len(small) // 2])}, text={"data_b64": b64(b"ok")}
        ),  # truncated
        _event(2, image={"data_b64": b64(small)}, audio={"data_b64": b64(nan_wav)}),
        _event(3, audio={"data_b64": b64(wav_bytes(np.zeros((0, 1))))}),
        _event(4, image={"data_b64": b64(png)}),  # a "bomb" under the configured pixel limit
        _event(5, audio={"data_b64": b64(wav_bytes(tone(-20, 3, channels=1)))}),  # too long
        _event(6, audio={"data_b64": "not base64!"}),
        _event(7, image={"data_b64": b64(b"\x00\x00\x00\x18ftypmp42" + bytes(200))}),  # a video container
        _event(
            8, audio={"data_b64": b64(wav_bytes(tone(-20, 1, rate=2000, channels=1, freq=200), rate=2000))}
        ),
    ]
    cfg = "media:\n  max_pixels: 100000\n  max_audio_seconds: 2\n"
    out = _pipeline(sqlite_store, cfg).process(_msgs(events))
    assert [o.status for o in out] == ["stored"] * 8
    reasons = [o.reason for o in out]
    assert reasons[0].startswith("partial: image: cannot decode")
    assert reasons[1] == "partial: audio: samples hold NaN or infinite values"
    assert "audio: zero-length audio" in reasons[2]
    assert "image: 512x512 exceeds the limit of 100000 pixels" in reasons[3]
    assert "audio: 3 s exceeds media.max_audio_seconds=2" in reasons[4]
    assert "audio: data_b64 is not valid base64" in reasons[5]
    assert "image: cannot decode" in reasons[6]
    assert "audio: sample rate 2000 Hz is below 4000 Hz" in reasons[7]  # a wrong sample rate
    signals = _stored_signals(sqlite_store)
    assert signals["e0000001"]["text.characters"] == 2 and len(signals) == 8
    assert signals["e0000002"]["image.width"] == 200
    assert len(sqlite_store.ops.dead_letters()) == 8


def test_without_partial_events_the_whole_event_is_a_dead_letter(sqlite_store):
    bad = _event(1, image={"data_b64": b64(b"junk")}, text={"data_b64": b64(b"fine")})
    out = _pipeline(sqlite_store, "media:\n  keep_partial_events: false\n").process(_msgs([bad]))
    assert out[0].status == "dead_letter" and "keep_partial_events is false" in out[0].reason
    assert _stored_signals(sqlite_store) == {}
    (letter,) = sqlite_store.ops.dead_letters()
    assert letter.position == "test:0" and b"junk" not in (letter.payload or b"")


def test_cross_modal_signals_missing_modalities_and_av_offset(sqlite_store):
    cfg = "media:\n  expected_modalities: [image, audio, text]\n"
    wav = b64(wav_bytes(tone(-30, 1, channels=1)))
    events = [
        _event(
            1,
            image={
                "signals": {"brightness": 90.0},
                "capture": {"ts": "2026-01-05T00:00:00.000+00:00", "frame_index": 12},
            },
            audio={"data_b64": wav, "capture": {"ts": "2026-01-05T00:00:00.120+00:00"}},
        ),
        _event(2, audio={"data_b64": b64(b"junk")}, text={"signals": {"characters": 3.0}}),
        _event(
            3,
            image={"signals": {"brightness": 1.0}, "capture": {"ts": 1767571200.5}},
            audio={"signals": {"x": 1.0}, "capture": {"ts": 1767571200.25}},
        ),
    ]
    _pipeline(sqlite_store, cfg).process(_msgs(events))
    s = _stored_signals(sqlite_store)
    assert s["e0000001"]["cross.av_offset_ms"] == pytest.approx(120.0)
    assert (s["e0000001"]["cross.missing_text"], s["e0000001"]["cross.missing_count"]) == (1.0, 1.0)
    # a modality whose media failed counts as missing
    assert (s["e0000002"]["cross.missing_audio"], s["e0000002"]["cross.missing_image"]) == (1.0, 1.0)
    assert s["e0000002"]["cross.missing_count"] == 2.0 and "cross.av_offset_ms" not in s["e0000002"]
    assert s["e0000003"]["cross.av_offset_ms"] == pytest.approx(-250.0)
    modalities = dict(sqlite_store.db.all("SELECT event_id, modalities FROM events"))
    assert modalities["e0000002"] == "text"


def test_digital_silence_is_stored_at_the_level_floor(any_store):
    silence = _event(1, audio={"data_b64": b64(wav_bytes(np.zeros((48000, 2))))})
    out = _pipeline(any_store).process(_msgs([silence]))
    assert out[0].status == "stored"
    s = _stored_signals(any_store)["e0000001"]
    assert s["audio.integrated_loudness_lufs"] == -200.0 and s["audio.sample_peak_dbfs"] == -200.0
    assert s["audio.silence_share"] == 1.0 and all(math.isfinite(v) for v in s.values())


def test_the_torch_image_path_stores_what_the_numpy_path_stores(tmp_path):
    from connectors.sqlite import SqliteStore

    rng = np.random.default_rng(3)
    pictures = [
        skimage.data.astronaut(),
        skimage.data.camera(),
        skimage.data.astronaut()[::2, ::2],
        rng.integers(0, 256, (256, 256, 3), dtype=np.uint8),
    ]
    events = [_event(i, image={"data_b64": b64(image_bytes(px))}) for i, px in enumerate(pictures)]
    events.append(_event(9, image={"data_b64": b64(b"broken")}, text={"data_b64": b64(b"still here")}))
    results = []
    for device in ("null", "cpu"):
        store = SqliteStore(tmp_path / f"{device}.db")
        store.migrate()
        out = _pipeline(store, f"media:\n  torch_device: {device}\n").process(_msgs(events))
        results.append((_stored_signals(store), [o.reason for o in out]))
        store.close()
    (numpy_signals, numpy_reasons), (torch_signals, torch_reasons) = results
    assert torch_reasons == numpy_reasons and torch_reasons[-1].startswith("partial: image: cannot decode")
    assert set(torch_signals) == set(numpy_signals) and len(torch_signals) == 5
    for eid, sig in numpy_signals.items():
        assert torch_signals[eid] == pytest.approx(sig, rel=1e-9)
