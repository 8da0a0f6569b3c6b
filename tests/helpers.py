"""Builders of valid events for tests."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)
# The ingest clock of tests that replay past traffic: after all of it (events ahead of the clock
# by more than ingest.max_future_skew are dead letters).
NOW = T0 + timedelta(days=90)


def inference(i: int, ts: datetime | None = None, **over) -> dict:
    ts = ts or (T0 + timedelta(seconds=i))
    ev = {
        "type": "inference",
        "event_id": f"e{i:07d}",
        "ts": ts.isoformat(),
        "model": {"name": "m", "version": "1"},
        "slice": {"device": f"d{i % 3}", "locale": "en-US" if i % 2 else "de-DE"},
        "inputs": {
            "image": {"signals": {"brightness": 100.0 + (i % 50)}},
            "audio": {"signals": {"loudness_lufs": -23.0 - (i % 7) * 0.1}},
        },
        "output": {"label": "cat" if i % 4 else "dog", "confidence": 0.5 + (i % 50) / 100},
    }
    ev.update(over)
    return ev


def label(i: int, ts: datetime | None = None, value: str = "cat") -> dict:
    ts = ts or (T0 + timedelta(seconds=i, minutes=5))
    return {"type": "label", "event_id": f"e{i:07d}", "label": value, "source": "test", "ts": ts.isoformat()}


def write_jsonl(path: Path, objs) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for o in objs:
            fh.write((o if isinstance(o, str) else json.dumps(o)) + "\n")
    return path


def tone(dbfs: float, seconds: float, rate: int = 48_000, channels: int = 2, freq: float = 1000.0):
    """A sine at ``dbfs`` peak level, the same on every channel: ``(n, channels)`` float64."""
    import numpy as np

    t = np.arange(round(seconds * rate)) / rate
    x = 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t)
    return np.repeat(x[:, None], channels, axis=1)


def wav_bytes(samples, rate: int = 48_000, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    import io

    import soundfile

    buf = io.BytesIO()
    soundfile.write(buf, samples, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def image_bytes(pixels, fmt: str = "PNG", mode: str | None = None, **save) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buf, format=fmt, **save)
    return buf.getvalue()


def b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode()


def http_json(url: str, body: bytes | None = None, ctype: str = "application/json", timeout: float = 30):
    """(status, parsed JSON answer) of a GET, or of a POST when ``body`` is given; 4xx and 5xx are
    answers too, not exceptions."""
    import urllib.error
    import urllib.request

    headers = {"Content-Type": ctype} if body is not None else {}
    req = urllib.request.Request(
        url, data=body, headers=headers, method="POST" if body is not None else "GET"
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def assert_summaries_are_a_recomputation(store, config) -> int:
    """The summary rows ingest wrote equal those recomputed from the stored events and labels:
    nothing lost, nothing counted twice. The number of rows compared."""
    import numpy as np

    from monitor.summaries import Summariser, SummarySpec, stored_pages, summary_rows

    summariser = Summariser(SummarySpec.of(config))
    want: dict[tuple, np.ndarray] = {}
    for page in stored_pages(store):
        for r in summary_rows(summariser, page):
            v = np.asarray(r[7:])
            want[r[:7]] = want[r[:7]] + v if r[:7] in want else v
    got = {r[:7]: np.asarray(r[7:]) for r in store.summaries.all()}
    assert sorted(got) == sorted(want)
    for k, v in want.items():
        np.testing.assert_allclose(got[k], v, rtol=1e-12, atol=1e-9, err_msg=str(k))
    return len(got)
