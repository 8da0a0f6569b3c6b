"""Data health, measured on every evaluation job run against the ingest clock (not event time),
as rows like any evaluation's — so the same rules, ``for`` durations, routing and silences apply.
Not stored: they describe the daemon's input now, not a window.

- ``dead_letter_rate`` per source: dead-lettered messages / messages over ``window``;
- ``source_silence_s`` per source that sent within ``silence_lookback``: seconds since its last
  message (e.g. ``threshold: 600`` — no events for 10 minutes from a source that used to send);
- ``ingest_lag_s`` per model version: the ingest clock minus its latest event time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.checks.base import ALL, Check, CheckConfig, register
from monitor.core.records import EvaluationRow, ModelVersion, SourceActivity
from monitor.core.settings import Duration


class DataHealthConfig(CheckConfig):
    window: Duration = timedelta(minutes=15)  # the dead-letter rate's window
    silence_lookback: Duration = timedelta(days=1)  # a source that sent within this is measured


@dataclass(frozen=True)
class HealthInput:
    """What data health reads: the ingest clock, the sources' activity (``DataHealth.spans``),
    and each model version's latest event time."""

    now: datetime
    sources: list[SourceActivity]
    model_versions: list[ModelVersion]


@register
class DataHealth(Check):
    name = "data_health"
    metrics = ("dead_letter_rate", "source_silence_s", "ingest_lag_s")
    Config = DataHealthConfig
    schedule = "ingest_clock"
    config: DataHealthConfig

    def spans(self, now: datetime) -> tuple[datetime, datetime]:
        """(since, recent): the sources seen since ``since`` are measured, their dead-letter rate
        over the minutes since ``recent``."""
        minute = now.replace(second=0, microsecond=0)
        return minute - self.config.silence_lookback, minute - self.config.window

    def run(self, summary, inputs: HealthInput) -> list[EvaluationRow]:
        now = inputs.now

        def row(
            metric: str, model: str, version: str, value: float | None, n: int, source: str = ""
        ) -> EvaluationRow:
            return EvaluationRow(
                model_name=model,
                model_version=version,
                interval_s=0,
                lag_s=0,
                window_start=now,
                window_end=now,
                evaluated_at=now,
                slice=ALL,
                detector="health",
                metric=metric,
                signal="",
                variant="ingest_clock",
                status="ok" if value is not None else "insufficient_data",
                value=value,
                n=n,
                source=source,
            )

        rows = []
        for s in inputs.sources:
            rows.append(
                row(
                    "dead_letter_rate",
                    ALL,
                    ALL,
                    s.dead_letters / s.messages if s.messages else None,
                    s.messages,
                    s.source,
                )
            )
            # the last minute with messages ended at last + 1 min at the latest
            rows.append(
                row(
                    "source_silence_s",
                    ALL,
                    ALL,
                    max(0.0, (now - s.last_minute).total_seconds() - 60),
                    s.messages,
                    s.source,
                )
            )
        for mv in inputs.model_versions:
            rows.append(
                row("ingest_lag_s", mv.model_name, mv.model_version, (now - mv.last_ts).total_seconds(), 0)
            )
        return rows
