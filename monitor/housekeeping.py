"""Retention of raw event rows, run by the evaluation job every ``store.purge_every``.

- Events older than ``store.retention`` (event time against the ingest clock) are deleted with
  their labels and review items, one model version at a time, one transaction each. The events
  of a model version's reference window are kept: a restarted daemon summarises its reference
  from them again. Evaluations are never deleted (they are the long-term record).
- Review items nobody labelled within ``review.item_ttl`` expire; per-minute ingest counters older
  than data health's ``silence_lookback`` plus a day are dropped.
- A label whose event is still not stored ``store.label_wait`` after the label arrived becomes a
  dead letter whose reason says so: its event is older than the retention (deleted, or dropped
  upstream) or never came. It is not silently kept for ever, nor silently dropped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.core.records import DeadLetter
from monitor.reference import reference_range

log = logging.getLogger("modalwatch.housekeeping")


@dataclass
class Purged:
    events: int = 0
    orphan_labels: int = 0
    review_expired: int = 0


def purge(config, store, now: datetime) -> Purged:
    out = Purged()
    retention = config.store.retention
    if retention is not None:
        cutoff = now - retention
        for mv in store.events.model_versions():
            keep_from, keep_to = reference_range(config, mv.first_ts)
            out.events += store.events.purge(mv.model_name, mv.model_version, cutoff, keep_from, keep_to)
    out.orphan_labels = _expire_orphan_labels(config, store, now)
    out.review_expired = store.review.expire(now - config.review.item_ttl, now)
    # the health counters are needed only as far back as the silence lookback
    lookback = config.evaluation.checks.data_health.silence_lookback
    store.ops.forget_ingest_before(now - lookback - timedelta(days=1))
    if out.events or out.orphan_labels:
        log.info(
            "retention: %d events older than %s deleted (reference windows kept); %d labels without an"
            " event dead-lettered",
            out.events,
            retention,
            out.orphan_labels,
        )
    return out


def _expire_orphan_labels(config, store, now: datetime) -> int:
    """Labels whose event is not stored ``store.label_wait`` after they arrived become dead
    letters (source ``labels``, their own position), in one transaction."""
    wait = config.store.label_wait
    reason = (
        f"no event with this event_id was stored within {wait} of the label: the event is older than the"
        f" retention ({config.store.retention or 'none set'}) or never arrived"
    )
    with store.tx():
        orphans = store.events.orphan_labels(now - wait)
        if not orphans:
            return 0
        store.ops.insert_dead_letters(
            [
                DeadLetter(
                    "labels",
                    r.position,
                    reason,
                    json.dumps(
                        {
                            "type": "label",
                            "event_id": r.event_id,
                            "label": r.label,
                            "source": r.source,
                            "ts": r.ts.isoformat(),
                        },
                        separators=(",", ":"),
                        ensure_ascii=False,
                    ).encode(),
                    now,
                    "label",
                )
                for r in orphans
            ]
        )
        store.events.delete_labels(r.event_id for r in orphans)
    return len(orphans)
