"""Builders of valid events for tests."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def inference(i: int, ts: datetime | None = None, **over) -> dict:
    ts = ts or (T0 + timedelta(seconds=i))
    ev = {
        "type": "inference",
        "event_id": f"e{i:07d}",
        "ts": ts.isoformat(),
        "model": {"name": "m", "version": "1"},
        "slice": {"device": f"d{i % 3}", "locale": "en-US" if i % 2 else "de-DE"},
        "inputs": {"image": {"signals": {"brightness": 100.0 + (i % 50)}},
                   "audio": {"signals": {"loudness_lufs": -23.0 - (i % 7) * 0.1}}},
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
