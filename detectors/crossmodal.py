"""Cross-modal signals of one event: which expected modalities are missing, and how far apart
audio and video were captured. Pure: plain data in, a dict of numbers out.

Signals (names are part of the event contract; stored under the ``cross.`` prefix):

* ``missing_<modality>``: 1.0 when a modality the config expects (``media.expected_modalities``)
  is absent from the event or its media could not be measured, else 0.0; the mean over a window
  is the share of events missing it. Only expected modalities get this signal.
* ``missing_count``: how many expected modalities are missing.
* ``av_offset_ms``: audio capture time minus image (video frame) capture time, in milliseconds,
  when both inputs carry ``capture.ts``. Positive: the audio was captured later.
"""

from __future__ import annotations

from datetime import datetime


def cross_modal_signals(
    present: set[str], expected: list[str], capture_ts: dict[str, datetime]
) -> dict[str, float]:
    out: dict[str, float] = {}
    if expected:
        missing = [m for m in expected if m not in present]
        for m in expected:
            out[f"missing_{m}"] = float(m in missing)
        out["missing_count"] = float(len(missing))
    if "audio" in capture_ts and "image" in capture_ts:
        out["av_offset_ms"] = (capture_ts["audio"] - capture_ts["image"]).total_seconds() * 1000.0
    return out
