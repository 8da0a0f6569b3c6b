"""Replaying dead letters: each is read again through the pipeline (after a fix upstream or a
raised limit) as it came — its own bytes and the kind its source said —, and each gets its own
outcome. Those that now pass are stored and marked replayed; the others stay as they are, and
the replay says why each still fails. A replay never adds a dead letter: what fails again is the
letter that was there.

- A dead letter of a modality whose media failed (``<position>#<modality>``) is its event's: the
  replay reads that event again at its own position.
- Raw media is never kept (promise 1): where a letter's media was dropped (inline bytes, a URI
  modalwatch does not read), the replay reads the event without that modality — an event stored
  since needs it no more, and its modality's letter is done.
- A letter whose bytes were not kept (too large, or unreadable and possibly media) has nothing
  to replay: it says so and stays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from pydantic_core import from_json, to_json

from monitor.core.messages import RawMessage
from monitor.core.records import DeadLetter

# what monitor/pipeline.py's scrub_payload leaves of a URI it does not read
_STAND_IN = re.compile(r"^[^:]{0,40}:sha256:[0-9a-f]{16}$")

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


def message_of(dl: DeadLetter) -> tuple[RawMessage, str | None, list[str]]:
    """The message a dead letter was, at its event's position; the modality it is of (None: the
    whole message); the modalities left out because their media was not kept."""
    base, sep, last = dl.position.rpartition("#")
    modality = last if sep and last in MODALITIES else None
    payload, without = without_dropped_media(dl.payload)
    return RawMessage(dl.source, base if modality else dl.position, payload, dl.kind), modality, without


def without_dropped_media(payload: bytes | None) -> tuple[bytes | None, list[str]]:
    """``payload`` without the inputs whose media the dead letter did not keep, and their names."""
    if payload is None or b"_modalwatch_dropped" not in payload and b":sha256:" not in payload:
        return payload, []
    try:
        obj = from_json(payload)
    except ValueError:
        return payload, []
    inputs = obj.get("inputs") if isinstance(obj, dict) else None
    if not isinstance(inputs, dict):
        return payload, []
    dropped = [
        m
        for m, inp in inputs.items()
        if isinstance(inp, dict)
        and ("_modalwatch_dropped" in inp or isinstance(inp.get("uri"), str) and _STAND_IN.match(inp["uri"]))
    ]
    for m in dropped:
        del inputs[m]
    return (to_json(obj) if dropped else payload), dropped


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
        for m, _, _ in read:
            if m.payload is not None:
                first.setdefault(m.position, m)
        by_position = {o.position: o for o in pipeline.process(list(first.values()), record_dead=False)}
        for r, (m, modality, without) in zip(chunk, read):
            if m.payload is None:
                outcomes.append(
                    (r.id, "dead_letter", "its bytes were not kept (too large or unreadable): send it again")
                )
                continue
            o = by_position[m.position]
            if modality is not None and f"{modality}:" in o.reason:
                # the media of that modality still fails: the letter stays, with this attempt's reason
                outcomes.append((r.id, "dead_letter", o.reason))
            elif without and o.status != "dead_letter" and modality is None:
                note = f"without {', '.join(without)} (its media was not kept)"
                outcomes.append((r.id, o.status, f"{o.reason}; {note}" if o.reason else note))
            else:
                outcomes.append((r.id, o.status, o.reason))
    done = Replayed(outcomes)
    store.ops.mark_replayed(done.replayed, now)
    return done
