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


# A dead letter's reason, as one of a few classes (a bounded label for metrics and reports):
# the first phrase of the reasons monitor/pipeline.py and the media readers give.
_REASON_CLASSES = (
    ("payload too large", "too_large"),
    ("malformed json", "malformed_json"),
    ("schema violation", "schema"),
    ("an event must be a json object", "schema"),
    ("(nul)", "schema"),
    ("event was sent where", "wrong_kind"),
    ("ahead of the clock", "clock_skew"),
    ("after the latest event time", "clock_skew"),
    ("no event", "orphan_label"),
    ("media", "media"),
    ("image", "media"),
    ("audio", "media"),
)


def reason_class(reason: str) -> str:
    """``too_large``, ``malformed_json``, ``schema``, ``wrong_kind``, ``clock_skew``,
    ``orphan_label``, ``media`` or ``other``.

    >>> reason_class("malformed JSON: expected value at line 1 column 1")
    'malformed_json'
    """
    low = reason.lower()
    return next((cls for phrase, cls in _REASON_CLASSES if phrase in low), "other")
