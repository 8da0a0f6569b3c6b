"""Data health, measured on every evaluation job run against the ingest clock (not event time):
rows shaped like evaluation rows, so the same rules, ``for`` durations, routing and silences
apply. Read from the store: ``ingest_minutes`` (messages and dead letters per source per minute)
and ``model_versions`` (the latest event time per model version).

- ``dead_letter_rate`` per source: dead-lettered messages / messages over ``alerts.health_window``;
- ``source_silence_s`` per source that sent within ``alerts.silence_lookback``: seconds since its
  last message (e.g. ``threshold: 600`` — no events for 10 minutes from a source that used to send);
- ``ingest_lag_s`` per model version: the ingest clock minus its latest event time.
"""
from __future__ import annotations

from datetime import datetime


def _row(metric: str, model: str, version: str, value: float | None, n: int, source: str = "") -> dict:
    return {"model_name": model, "model_version": version, "slice": "*", "detector": "health", "metric": metric,
            "signal": "", "source": source, "variant": "ingest_clock",
            "status": "ok" if value is not None else "insufficient_data", "value": value,
            "reference_value": None, "ci_low": None, "ci_high": None, "n": n, "n_reference": 0}


def health_rows(config, store, now: datetime) -> list[dict]:
    acfg = config.alerts
    minute = now.replace(second=0, microsecond=0)
    rows = []
    for src, last, n, dead in store.ingest_by_source(minute - acfg.silence_lookback, minute - acfg.health_window):
        rows.append(_row("dead_letter_rate", "*", "*", dead / n if n else None, n, src))
        # the last minute with messages ended at last + 1 min at the latest
        rows.append(_row("source_silence_s", "*", "*", max(0.0, (now - last).total_seconds() - 60), n, src))
    for model, version, _first, last_ts in store.model_versions():
        rows.append(_row("ingest_lag_s", model, version, (now - last_ts).total_seconds(), 0))
    return rows
