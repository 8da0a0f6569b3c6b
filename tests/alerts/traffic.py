"""Synthetic production traffic with known answers, for the proof that alerts mean it (quiet runs
raise none, each kind of change raises one incident at its own place) — used by
tests/alerts/test_alert_quality.py and bench/alert_quality.py.

A day of ``events_per_day`` events of one model: three slice attributes (5 cameras, 4 locales, 3
devices, drawn independently with unequal shares), 8 input signals of all kinds (continuous,
heavy-tailed, constant, a share, counts) over image, audio and text, the ``cross.missing_audio``
flag the pipeline adds for an expected modality, a calibrated confidence (the answer is right
with the probability the model states, about 90 %), a quarter of the events labelled an hour
later. A ``Change`` alters the days from its onset on; everything is drawn from a seed, so a run
is the same on every machine.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import numpy as np

T0 = datetime(2026, 5, 4, tzinfo=timezone.utc)
DAY = timedelta(days=1)
REFERENCE_DAYS = 5
LABELLED = 0.25
SHARES = {
    "camera": {"cam_a": 0.40, "cam_b": 0.20, "cam_c": 0.20, "cam_d": 0.15, "cam_e": 0.05},
    "locale": {"en-US": 0.40, "de-DE": 0.25, "ja-JP": 0.20, "fr-FR": 0.15},
    "device": {"phone": 0.50, "tablet": 0.30, "kiosk": 0.20},
}
CONFIG = f"""
evaluation:
  reference: {{days: {REFERENCE_DAYS}}}
media:
  expected_modalities: [image, audio, text]
"""


@dataclass
class Day:
    """One day's draws, as arrays (a change edits them before they become rows)."""

    day: int
    ts: np.ndarray  # seconds into the day, sorted
    attrs: dict[str, np.ndarray]  # attribute → value per event
    signals: dict[str, np.ndarray]  # signal → value per event (NaN: absent)
    p_correct: np.ndarray  # the true probability that the answer is right
    confidence: np.ndarray  # what the model says
    has_audio: np.ndarray  # bool


@dataclass(frozen=True)
class Change:
    """A change from ``onset`` (a day index) on, and where it should be found."""

    name: str
    description: str
    place: str  # the incident's expected place: a slice value, or "*"
    family: str  # the incident's expected family (alerts/incidents.family)
    apply: Callable[[Day, int], None]  # (the day's draws, days since onset) → edits in place
    within_days: int = 1  # alerts by the end of this many daily windows from onset


def _in(d: Day, attr: str, value: str) -> np.ndarray:
    return d.attrs[attr] == value


def _error_up(d: Day, k: int) -> None:
    m = _in(d, "camera", "cam_e")
    d.p_correct[m] -= 0.10


def _darker(d: Day, k: int) -> None:
    d.signals["image.brightness"][_in(d, "camera", "cam_b")] -= 0.5 * 20.0  # −0.5 SD


def _quieter(d: Day, k: int) -> None:
    m = _in(d, "locale", "ja-JP")
    for sig in ("audio.integrated_loudness_lufs", "audio.true_peak_dbtp"):
        d.signals[sig][m] -= 6.0


def _overconfident(d: Day, k: int) -> None:
    d.confidence[:] = np.minimum(d.confidence + 0.05, 0.999)


def _audio_lost(d: Day, k: int) -> None:
    rng = np.random.default_rng(1000 + d.day)
    lost = _in(d, "device", "kiosk") & (rng.uniform(size=d.ts.size) < 0.20)
    d.has_audio[lost] = False


def _aging(d: Day, k: int) -> None:
    d.p_correct -= 0.003 * (k + 1)  # +0.3 points of error a day


def _wider(d: Day, k: int) -> None:
    d.signals["image.width"][_in(d, "camera", "cam_d")] = 1920.0


CHANGES = {
    c.name: c
    for c in [
        Change(
            "error_small_slice", "+10 points error in cam_e (5 %)", "camera=cam_e", "error rate", _error_up
        ),
        Change("signal_shift", "brightness −0.5 SD in cam_b (20 %)", "camera=cam_b", "image", _darker),
        Change("loudness", "−6 LU in locale ja-JP", "locale=ja-JP", "audio", _quieter),
        Change("overconfidence", "confidence +5 points everywhere", "*", "calibration", _overconfident),
        Change("missing_audio", "20 % of kiosk events without audio", "device=kiosk", "audio", _audio_lost),
        Change("aging", "+0.3 points error a day everywhere", "*", "error rate", _aging, within_days=7),
        Change("width", "image width 1280 → 1920 in cam_d", "camera=cam_d", "image", _wider),
    ]
}


def draw_day(day: int, events_per_day: int, seed: int = 0) -> Day:
    rng = np.random.default_rng([seed, day])
    n = events_per_day
    attrs = {a: rng.choice(list(v), size=n, p=list(v.values())) for a, v in SHARES.items()}
    p = rng.beta(9, 1, n)  # calibrated: right with the stated probability (~90 %)
    signals = {
        "image.brightness": rng.normal(120, 20, n),
        "image.sharpness": rng.lognormal(5, 0.4, n),
        "image.width": np.full(n, 1280.0),
        "image.height": np.full(n, 720.0),
        "audio.integrated_loudness_lufs": rng.normal(-23, 3, n),
        "audio.true_peak_dbtp": rng.normal(-4, 1.5, n),
        "text.chars": rng.poisson(80, n).astype(float),
        "text.non_ascii_share": rng.beta(1, 30, n),
    }
    ts = np.sort(rng.uniform(0, 86_400 - 3_600, n))  # labels come an hour later, within the day
    return Day(day, ts, attrs, signals, p, p.copy(), np.ones(n, dtype=bool))


def rows_of(d: Day, seed: int = 0):
    """The day as stored rows (what the pipeline makes of such events): events and labels."""
    from monitor.core.records import EventRow, LabelRow

    rng = np.random.default_rng([seed, d.day, 7])
    n = d.ts.size
    correct = rng.uniform(size=n) < np.clip(d.p_correct, 0, 1)
    labelled = rng.uniform(size=n) < LABELLED
    start = T0 + d.day * DAY
    ingested = start + 2 * DAY
    events, labels = [], []
    audio = [s for s in d.signals if s.startswith("audio.")]
    for i in range(n):
        eid = f"d{d.day:02d}-{i:06d}"
        ts = start + timedelta(seconds=float(d.ts[i]))
        signals = {s: float(v[i]) for s, v in d.signals.items() if d.has_audio[i] or s not in audio}
        signals["cross.missing_audio"] = 0.0 if d.has_audio[i] else 1.0
        slice_ = {a: str(v[i]) for a, v in d.attrs.items()}
        modalities = "audio,image,text" if d.has_audio[i] else "image,text"
        events.append(
            EventRow(
                eid, ts, "m", "1", slice_, signals, modalities, "cat", float(d.confidence[i]), None, False,
                None, eid, ingested, None,
            )
        )  # fmt: skip
        if labelled[i]:
            truth = "cat" if correct[i] else "dog"
            labels.append(LabelRow(eid, truth, "synthetic", ts + timedelta(hours=1), f"l{eid}", ingested))
    return events, labels


def load_days(store, days: range, events_per_day: int, change: Change | None = None, onset: int = 0,
              seed: int = 0) -> None:  # fmt: skip
    from monitor.config import parse_config
    from monitor.summaries import Summariser, SummarySpec, store_rows

    summariser = Summariser(SummarySpec.of(parse_config(CONFIG)))
    for day in days:
        d = draw_day(day, events_per_day, seed)
        if change is not None and day >= onset:
            change.apply(d, day - onset)
        events, labels = rows_of(d, seed)
        store_rows(store, summariser, events, labels)


def evaluate_through(cfg, store, last_day: int) -> int:
    """Evaluate every daily window up to ``last_day``'s (its labels are in by its end + the lag)."""
    from monitor.evaluation import Evaluator

    watermark = T0 + (last_day + 1) * DAY + cfg.evaluation.lag
    return Evaluator(cfg, store, lambda: watermark, owner="proof").run_due(watermark)


MONITORED_DAYS = 30
ONSET = 14  # a change's first day: after the reference and 9 quiet monitored days (trend history)
CHANGED_DAYS = 8


def quiet_run(where: Path, events_per_day: int, seed: int = 0):
    """(config, store) of 30 quiet monitored days after the reference, evaluated; ``where`` also
    keeps the store as it stood the evening before ``ONSET`` (``before_onset.db``)."""
    from connectors.sqlite import SqliteStore
    from monitor.config import parse_config

    cfg = parse_config(CONFIG)
    store = SqliteStore(where / "quiet.db")
    store.migrate()
    load_days(store, range(ONSET), events_per_day, seed=seed)
    evaluate_through(cfg, store, ONSET - 1)
    store.close()
    copy_store(where / "quiet.db", where / "before_onset.db")
    store = SqliteStore(where / "quiet.db")
    days = REFERENCE_DAYS + MONITORED_DAYS
    load_days(store, range(ONSET, days), events_per_day, seed=seed)
    evaluate_through(cfg, store, days - 1)
    return cfg, store


def changed_run(cfg, where: Path, change: Change, events_per_day: int, seed: int = 0):
    """The store of a run whose days from ``ONSET`` on carry ``change`` (``CHANGED_DAYS`` of them
    evaluated), from the quiet run's store before the onset."""
    from connectors.sqlite import SqliteStore

    copy_store(where / "before_onset.db", where / f"{change.name}.db")
    store = SqliteStore(where / f"{change.name}.db")
    load_days(store, range(ONSET, ONSET + CHANGED_DAYS + 1), events_per_day, change, ONSET, seed)
    evaluate_through(cfg, store, ONSET + CHANGED_DAYS - 1)
    return store


def copy_store(src: Path, dst: Path) -> None:
    """A SQLite store's file (and its WAL) copied: a run that shares another's prefix."""
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{src}{suffix}").exists():
            shutil.copyfile(f"{src}{suffix}", f"{dst}{suffix}")
