"""Hourly synthetic traffic of two streams (image, audio) for the modality-trust proofs
(tests/monitor/test_trust.py, bench/trust.py): five reference days, then monitored hours in which
a change may darken the image stream step by step and bring it back."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import numpy as np

T0 = datetime(2026, 4, 6, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
REFERENCE_DAYS = 5
CONFIG = f"""
evaluation:
  intervals: [1h]
  lag: 5m
  reference: {{days: {REFERENCE_DAYS}}}
  checks: {{calibration: {{bootstrap: 0}}}}
media:
  expected_modalities: [image, audio]
"""


def hour_rows(hour: int, n: int, darker: float = 0.0, seed: int = 0):
    """One hour's events; ``darker``: how far image brightness fell, in reference SDs."""
    from monitor.core.records import EventRow

    rng = np.random.default_rng([seed, hour])
    start = T0 + hour * HOUR
    ts = np.sort(rng.uniform(0, 3500, n))
    brightness = rng.normal(120 - 20 * darker, 20, n)
    sharpness = rng.lognormal(5 - 0.2 * darker, 0.4, n)
    loudness = rng.normal(-23, 3, n)
    site = rng.choice(["north", "south"], size=n, p=[0.6, 0.4])
    conf = rng.beta(9, 1, n)
    events = []
    for i in range(n):
        eid = f"h{hour:04d}-{i:05d}"
        signals = {
            "image.brightness": float(brightness[i]),
            "image.sharpness": float(sharpness[i]),
            "audio.integrated_loudness_lufs": float(loudness[i]),
            "cross.missing_image": 0.0,
            "cross.missing_audio": 0.0,
        }
        events.append(
            EventRow(
                eid, start + timedelta(seconds=float(ts[i])), "m", "1", {"site": str(site[i])}, signals,
                "audio,image", "cat", float(conf[i]), None, False, None, eid, start + HOUR, None,
            )
        )  # fmt: skip
    return events


def load_hours(
    store, cfg, hours: range, n: int, darker: Callable[[int], float] = lambda h: 0.0, seed: int = 0
):
    from monitor.summaries import Summariser, SummarySpec, store_rows

    summariser = Summariser(SummarySpec.of(cfg))
    for h in hours:
        events = hour_rows(h, n, darker(h), seed)
        store_rows(store, summariser, events, [])


def trust_run(
    where: Path,
    monitored_hours: int,
    n: int,
    darker=lambda h: 0.0,
    seed: int = 0,
    name="trust",
    extra: str = "",
):
    """A store of the reference days and ``monitored_hours`` after, every hour evaluated."""
    from connectors.sqlite import SqliteStore
    from monitor.config import parse_config
    from monitor.evaluation import Evaluator

    cfg = parse_config(CONFIG + extra)
    store = SqliteStore(where / f"{name}.db")
    store.migrate()
    ref = REFERENCE_DAYS * 24
    load_hours(
        store, cfg, range(ref + monitored_hours), n, lambda h: darker(h - ref) if h >= ref else 0.0, seed
    )
    watermark = T0 + (ref + monitored_hours) * HOUR + cfg.evaluation.lag
    Evaluator(cfg, store, lambda: watermark, owner="test").run_due(watermark)
    return cfg, store


def states(store, modality: str, slice_: str = "*") -> list[tuple[datetime, str, float | None]]:
    """(window start, state in effect, the window's own state code) of one stream, oldest first."""
    df = store.evaluations.frame()
    rows = df[
        (df["metric"] == "modality_trust") & (df["signal"] == f"{modality}.trust") & (df["slice"] == slice_)
    ]
    rows = rows.sort_values("window_start")
    return [(r.window_start, r.variant, r.effect) for r in rows.itertuples()]


def flaps(sequence: list[str]) -> int:
    """Changes of state away from ok and back (each ok → not ok counts once)."""
    return sum(1 for a, b in zip(sequence, sequence[1:]) if a == "ok" and b != "ok")
