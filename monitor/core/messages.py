"""What a source hands to the pipeline, and what it gets back once the store has committed."""

from __future__ import annotations

from typing import Literal, NamedTuple

# A dead letter keeps its payload (raw media cut out) up to this size, for a replay; a source
# reads an oversized message whole up to it, so that its dead letter can be replayed later.
DEAD_LETTER_PAYLOAD_MAX = 65_536

MessageKind = Literal["inference", "label"]
OutcomeStatus = Literal["stored", "duplicate", "dead_letter"]


class RawMessage(NamedTuple):
    """One message from a source, undecoded. ``kind`` is known from the topic or endpoint.

    (A NamedTuple, not a dataclass: one is built per message on the hot path.)"""

    source: str
    position: str
    payload: bytes | None
    kind: MessageKind | None = None
    error: str | None = None  # set by the source when it already rejected the message


class Outcome(NamedTuple):
    """What became of one message: stored, duplicate (already stored: replays change nothing) or
    a dead letter; ``reason`` says why (for a stored event: the modalities it lost)."""

    position: str
    status: OutcomeStatus
    reason: str = ""
