"""Replaying dead letters: each is decoded again through the pipeline (after a fix upstream or a
raised limit); those that now pass are stored and marked replayed, the others stay with their
new reason."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.core.messages import RawMessage
from monitor.core.records import DeadLetter


@dataclass(frozen=True)
class Replayed:
    replayed: list[int]  # ids of the dead letters stored now
    still_rejected: list[tuple[int, str]]  # (id, reason) of those that still fail
    total: int


def replay_dead_letters(pipeline, ids: set[int] | None, now: datetime, limit: int = 100_000) -> Replayed:
    """Replay the pending dead letters (``ids``: only these) through ``pipeline``."""
    store = pipeline.store
    rows: list[DeadLetter] = [r for r in store.ops.dead_letters(limit=limit) if not ids or r.id in ids]
    msgs = [
        RawMessage(r.source, r.position, r.payload.encode() if r.payload is not None else None) for r in rows
    ]
    outcomes = pipeline.process(msgs) if msgs else []
    ok = [r.id for r, o in zip(rows, outcomes) if o.status != "dead_letter"]
    store.ops.mark_replayed(ok, now)
    return Replayed(
        ok, [(r.id, o.reason) for r, o in zip(rows, outcomes) if o.status == "dead_letter"], len(rows)
    )
