"""The typed rows that cross from one part to another: written where they are made, read by
attribute where they are used (a misspelt field is an error where it is written, not a silent
``None`` where it is read).

Event and label rows are NamedTuples (one is built per message on the hot path); the rest are
frozen dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NamedTuple

Status = Literal["ok", "insufficient_data", "error"]
AlertState = Literal["pending", "firing", "resolved", "cleared"]

ALL = "*"  # the slice of all traffic


class EventRow(NamedTuple):
    """One inference event as stored: signals (never raw media), the output, where it came from."""

    event_id: str
    ts: datetime
    model_name: str
    model_version: str
    slice: dict[str, str]
    signals: dict[str, float]
    modalities: str  # the modalities that have signals, comma-joined
    pred_label: str
    confidence: float
    probabilities: dict[str, float] | None
    abstained: bool
    embeddings: dict[str, list[float]] | None
    position: str
    ingested_at: datetime
    media_uris: dict[str, str] | None  # where the media came from (never the media): for reviewers
    # each modality's own answer, where the model gives one: {modality: {label, confidence}}
    per_modality: dict[str, dict] | None = None
    # the raw text's words as hashed vocabulary buckets (never the words): packed uint32
    text_tokens: bytes | None = None


class LabelRow(NamedTuple):
    event_id: str
    label: str
    source: str
    ts: datetime
    position: str
    ingested_at: datetime


@dataclass(frozen=True)
class DeadLetter:
    """A rejected message: its reason, source position, its own bytes (raw media cut out, capped;
    None when they could not be kept) and the kind its source said (None: the content says), so a
    replay reads it as it came."""

    source: str
    position: str
    reason: str
    payload: bytes | None
    received_at: datetime
    kind: str | None = None
    id: int | None = None  # set once stored
    replayed_at: datetime | None = None


@dataclass(frozen=True)
class EvaluationRow:
    """One detector on one window for one slice: the statistic in ``value``, its interval, sample
    sizes, and — for tests — the p-value, the Benjamini–Hochberg adjusted p-value, an effect size
    and the decision (1 a finding, 0 not, None no claim). ``status`` is ``insufficient_data``
    below a check's minimum sample size, ``error`` when the check failed on this window (the
    variant names the exception): then no rule reads the row.

    Rows of data health (measured on the ingest clock, not stored) name the ``source`` measured."""

    model_name: str
    model_version: str
    interval_s: int
    lag_s: int
    window_start: datetime
    window_end: datetime
    evaluated_at: datetime
    slice: str
    detector: str
    metric: str
    signal: str
    variant: str
    status: Status
    value: float | None
    reference_value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    n_reference: int = 0
    p_value: float | None = None
    p_adjusted: float | None = None
    effect: float | None = None
    decision: int | None = None
    source: str = ""


# The columns of ``evaluations``, in EvaluationRow's field order (``source`` is not stored).
EVALUATION_COLUMNS = tuple(f for f in EvaluationRow.__dataclass_fields__ if f != "source")


@dataclass(frozen=True)
class ReportRun:
    """A periodic report written: its period (event time), who wrote it and when."""

    start: datetime
    end: datetime
    every_s: int
    written_by: str
    written_at: datetime


class SummaryRow(NamedTuple):
    """What one batch adds to one cell of a summary (monitor/summaries.py): rows with one key add."""

    model_name: str
    model_version: str
    measure: str  # e.g. "answers", "labelled/15": what its cells are
    bucket: datetime  # the start of the events' time bucket
    slice: str  # "*" or one raw attribute=value (folded into "(other)" when read)
    known_before: datetime  # label measures: the first cut-off its labels count at; else bucket
    cell: str  # which count of the measure (e.g. "events"; a confidence bin and correctness)
    n: float
    sum_x: float = 0.0
    sum_x2: float = 0.0


class LabelledEvent(NamedTuple):
    """A stored event and its label: what the online detectors read of an (event, label) pair."""

    event_id: str
    ts: datetime  # the event's time
    model_name: str
    model_version: str
    slice: dict[str, str]
    pred_label: str
    label: str
    label_ts: datetime
    confidence: float
    abstained: bool
    per_modality: dict[str, dict] | None = None  # each modality's own answer, where given

    @property
    def completed_at(self) -> datetime:
        """The event time at which the pair was complete: the later of its event and its label."""
        return max(self.ts, self.label_ts)


class StoredAnswer(NamedTuple):
    """A stored event's answer and its label where one is stored: what summaries are rebuilt from."""

    event_id: str
    ts: datetime
    model_name: str
    model_version: str
    slice: dict[str, str]
    pred_label: str
    label: str | None
    label_ts: datetime | None
    confidence: float
    abstained: bool
    per_modality: dict[str, dict] | None = None
    signals: dict[str, float] | None = None

    def pair(self) -> LabelledEvent | None:
        if self.label is None or self.label_ts is None:
            return None
        return LabelledEvent(*self[:11])


@dataclass(frozen=True)
class Finding:
    """An online detector's detection on the ingest path (e.g. ADWIN on a slice's error stream)."""

    ts: datetime  # event time of the observation that raised it
    model_name: str
    model_version: str
    slice: str
    detector: str
    metric: str
    value: float | None
    detail: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class AlertRecord:
    """One alert (a fingerprint) and its state; ``changed_at`` is when the state last changed;
    ``quiet_since``: a firing alert whose breach has ended, since the start of the first window
    without it (it resolves after its rule's ``keep_firing_for``)."""

    dedup_key: str
    rule: str
    labels: dict[str, str]
    annotations: dict[str, str]
    state: AlertState
    starts_at: datetime
    ends_at: datetime | None
    value: float | None
    changed_at: datetime | None = None
    quiet_since: datetime | None = None


@dataclass
class GroupState:
    """A notification group's state: what it last told, and when."""

    group_key: str
    route: str
    receiver: str
    group_labels: dict[str, str]
    notified: list[str]  # fingerprints notified firing last time
    created_at: datetime
    last_flush_at: datetime | None = None


@dataclass(frozen=True)
class Silence:
    id: int
    matchers: dict[str, str]
    starts_at: datetime
    ends_at: datetime
    created_by: str
    comment: str
    created_at: datetime

    def active(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at


@dataclass(frozen=True)
class OutboxEntry:
    """A notification waiting to be delivered (or delivered): the payload is what the receiver
    gets, secrets excepted (a sender adds them when it sends)."""

    id: int
    dedup_key: str
    receiver: str
    payload: dict
    attempts: int


@dataclass(frozen=True)
class ReviewCandidate:
    """An event proposed for human review, and why; ``priority`` orders a stratum's budget."""

    event_id: str
    reason: str
    priority: float
    created_at: datetime
    stratum: str = ""


@dataclass(frozen=True)
class ReviewItem:
    """A queued (or exported, labelled, expired) review item with what a reviewer needs: the
    model's answer, the event's slice and signals, and where its media is (never the media)."""

    event_id: str
    reason: str
    priority: float
    queued_at: datetime
    ts: datetime
    model_name: str
    model_version: str
    slice: dict[str, str]
    pred_label: str
    confidence: float
    probabilities: dict[str, float] | None
    signals: dict[str, float]
    media_uris: dict[str, str] = field(default_factory=dict)
    stratum: str = ""


@dataclass(frozen=True)
class ModelVersion:
    """A model version's event-time span, as ingest has seen it."""

    model_name: str
    model_version: str
    first_ts: datetime
    last_ts: datetime


@dataclass(frozen=True)
class SourceActivity:
    """A source's ingest over the data-health window: its last minute with messages, and its
    messages and dead letters since the window began."""

    source: str
    last_minute: datetime
    messages: int
    dead_letters: int
