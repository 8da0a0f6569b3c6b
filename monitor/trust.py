"""Modality trust as the serving system reads it (``GET /v1/trust``, the Prometheus gauge, the
Kafka topic): per model version, slice and modality, the state the trust check left in the
latest evaluated window, with its reasons, since when it holds, and how fresh it is.

Of each model version the freshest series is served: its shortest evaluated interval, and of
that its smallest label-maturity lag (trust needs no labels but the answers' own error rates).
A state is known ``interval + lag + evaluation.tick_s`` after the events it describes, at the
latest: that is the latency a serving system must allow for.
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime, timedelta, timezone

from monitor.checks.trust import UNKNOWN, reasons_of, state_name
from monitor.core.records import EvaluationRow
from monitor.core.settings import duration_text, iso_time
from monitor.core.window import RunKey

TRUST_RECEIVER = "trust-topic"  # the outbox's receiver of trust changes (trust.topic)
SINCE_WINDOWS = 24 * 7  # how far back "since" looks (in windows of the served interval)


def served(
    store, at: datetime | None = None, model: str | None = None
) -> list[tuple[RunKey, list[EvaluationRow]]]:
    """Of each model version, the window served and its trust rows: the freshest series' latest."""
    by_version: dict[tuple[str, str], list[EvaluationRow]] = {}
    for r in store.evaluations.latest("modality_trust", at):
        if model is None or r.model_name == model:
            by_version.setdefault((r.model_name, r.model_version), []).append(r)
    out = []
    for (mn, mv), rows in sorted(by_version.items()):
        iv, lag = min((r.interval_s, r.lag_s) for r in rows)
        rows = [r for r in rows if (r.interval_s, r.lag_s) == (iv, lag)]
        out.append((RunKey(mn, mv, iv, lag, rows[0].window_start), rows))
    return out


def trust_now(
    store,
    config,
    at: datetime | None = None,
    model: str | None = None,
    slice_: str | None = None,
    modality: str | None = None,
) -> dict:
    """The trust states as known ``at`` (None: now), filtered by model, slice and modality."""
    cfg = config.evaluation.checks.trust
    out = []
    for key, rows in served(store, at, model):
        mn, mv, iv, lag = key.model_name, key.model_version, key.interval_s, key.lag_s
        reasons = reasons_of(store.evaluations.window(key), cfg)
        past: dict[tuple[str, str], list[EvaluationRow]] = {}
        for p in store.evaluations.history(
            key, key.window_start - timedelta(seconds=iv) * SINCE_WINDOWS, ["modality_trust"]
        ):
            past.setdefault((p.slice, p.signal), []).append(p)
        for r in rows:
            m = r.signal.partition(".")[0]
            if (slice_ is not None and r.slice != slice_) or (modality is not None and m != modality):
                continue
            since = r.window_start
            for p in reversed(past.get((r.slice, r.signal), [])):
                if p.variant != r.variant:
                    break
                since = p.window_start
            own = reasons.get((r.slice, m), [])
            out.append(
                {
                    "model": mn,
                    "model_version": mv,
                    "slice": r.slice,
                    "modality": m,
                    "state": r.variant,
                    "since": iso_time(since),
                    # held by the hysteresis: this window alone would say better
                    "recovering": r.variant != UNKNOWN
                    and r.effect is not None
                    and r.value is not None
                    and r.effect < r.value,
                    "reasons": [asdict(x) for x in own],
                    "events": r.n,
                    "window_start": iso_time(r.window_start),
                    "window_end": iso_time(r.window_end),
                    "interval": duration_text(iv),
                    "lag": duration_text(lag),
                    "evaluated_at": iso_time(r.evaluated_at),
                }
            )
    return {"generated_at": iso_time(datetime.now(timezone.utc)), "trust": out}


def state_counts(store) -> dict[tuple[str, str], int]:
    """(modality, state) → how many (model version, slice) pairs are in it now (the gauge)."""
    counts: dict[tuple[str, str], int] = {}
    for _, rows in served(store):
        for r in rows:
            key = (r.signal.partition(".")[0], r.variant)
            counts[key] = counts.get(key, 0) + 1
    return counts


def changes(rows: list[EvaluationRow], config, now: datetime) -> list[dict]:
    """The trust changes in one window's decided rows, as the topic's messages: a stream whose
    state in effect differs from the previous window's (the first window of a stream too). Only
    of the series that is served (the shortest interval at the smallest lag): a daily window's
    state told after an hourly one's would contradict it under the same key."""
    ev = config.evaluation
    served_key = (int(min(ev.intervals).total_seconds()), int(min(ev.vintage_lags).total_seconds()))
    cfg = ev.checks.trust
    reasons = None
    out = []
    for r in rows:
        if r.metric != "modality_trust" or (r.interval_s, r.lag_s) != served_key:
            continue
        before = state_name(r.reference_value)
        if r.variant == before:
            continue
        if reasons is None:
            reasons = reasons_of(rows, cfg)
        m = r.signal.partition(".")[0]
        out.append(
            {
                "key": f"{r.model_name}|{r.slice}|{m}",
                "model": r.model_name,
                "model_version": r.model_version,
                "slice": r.slice,
                "modality": m,
                "state": r.variant,
                "previous": before,
                "reasons": [asdict(x) for x in reasons.get((r.slice, m), [])],
                "events": r.n,
                "window_start": iso_time(r.window_start),
                "window_end": iso_time(r.window_end),
                "interval": duration_text(r.interval_s),
                "lag": duration_text(r.lag_s),
                "changed_at": iso_time(now),
            }
        )
    return out
