"""Replaying dead letters: each is read again through the pipeline (after a fix upstream or a
raised limit) as it came — its own bytes and the kind its source said —, and each gets its own
outcome. Those that now pass are stored and marked replayed; the others stay, with the reason of
this attempt. A dead letter of a modality whose media failed (``<position>#<modality>``) is its
event's: the replay reads that event again at its own position, so a media failure still there
is the same dead letter, not a new one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from monitor.core.messages import RawMessage
from monitor.core.records import DeadLetter

MODALITIES = ("image", "audio", "text")
CHUNK = 500  # messages per pipeline batch: one bad chunk holds up no other


@dataclass(frozen=True)
class Replayed:
    """Each replayed dead letter's outcome: (id, "stored" | "duplicate" | "dead_letter", reason)."""

    outcomes: list[tuple[int, str, str]]

    @property
    def replayed(self) -> list[int]:
        return [i for i, status, _ in self.outcomes if status != "dead_letter"]

    @property
    def still_rejected(self) -> list[tuple[int, str]]:
        return [(i, reason) for i, status, reason in self.outcomes if status == "dead_letter"]


def message_of(dl: DeadLetter) -> tuple[RawMessage, str | None]:
    """The message a dead letter was, at its event's position, and the modality it is of (None:
    the whole message)."""
    base, sep, last = dl.position.rpartition("#")
    if sep and last in MODALITIES:
        return RawMessage(dl.source, base, dl.payload, dl.kind), last
    return RawMessage(dl.source, dl.position, dl.payload, dl.kind), None


def replay_dead_letters(pipeline, ids: set[int] | None, now: datetime, limit: int = 100_000) -> Replayed:
    """Replay the pending dead letters (``ids``: only these) through ``pipeline``."""
    store = pipeline.store
    rows = [r for r in store.ops.dead_letters(limit=limit) if not ids or r.id in ids]
    outcomes: list[tuple[int, str, str]] = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        read = [message_of(r) for r in chunk]
        # a position twice in one batch (an event's letters for two modalities): read it once
        first: dict[str, RawMessage] = {}
        for m, _ in read:
            first.setdefault(m.position, m)
        by_position = {o.position: o for o in pipeline.process(list(first.values()))}
        for r, (m, modality) in zip(chunk, read):
            o = by_position[m.position]
            if modality is not None and f"{modality}:" in o.reason:
                # the media of that modality still fails: the letter stays, with this attempt's reason
                outcomes.append((r.id, "dead_letter", o.reason))
            else:
                outcomes.append((r.id, o.status, o.reason))
    done = Replayed(outcomes)
    store.ops.mark_replayed(done.replayed, now)
    return done
