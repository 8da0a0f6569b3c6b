"""The ports the shell wires: sources, stores (one Protocol per aggregate) and senders.

Each says what an implementation really promises; the real adapters live in connectors/ (sources,
stores) and alerts/ (senders), and each is tested against the real thing (Kafka, PostgreSQL, an
HTTP receiver). Fakes of these Protocols are fine for unit tests of orchestration.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Iterable, Protocol, Sequence

import pandas as pd

from monitor.core.messages import Outcome, RawMessage
from monitor.core.records import (
    AlertRecord,
    DeadLetter,
    EvaluationRow,
    EventRow,
    Finding,
    LabelledEvent,
    GroupState,
    LabelRow,
    ModelVersion,
    OutboxEntry,
    ReportRun,
    ReviewCandidate,
    ReviewItem,
    Silence,
    SourceActivity,
    StoredAnswer,
    SummaryRow,
)
from monitor.core.window import ModalityAnswers, RunKey, TokenWindow, Window


class Source(Protocol):
    """Where messages come from (Kafka, HTTP, JSONL).

    ``poll`` hands over the next messages; the daemon may poll again before it has stored what an
    earlier poll returned. ``commit(outcomes)`` is called once per poll, in poll order, after the
    store has committed that poll's messages: it settles the *oldest* poll not yet committed (a
    Kafka source commits the offsets after that poll's last records; HTTP answers that poll's
    requests). A source never commits what was not stored: a restart re-reads it (at least once;
    writes are idempotent by event id)."""

    name: str
    exhausted: bool  # True once a finite source (a file, stdin) has nothing more to give

    def poll(self, max_records: int, timeout_s: float = 0.0) -> list[RawMessage]: ...

    def commit(self, outcomes: list[Outcome]) -> None: ...

    def close(self) -> None: ...


class Sender(Protocol):
    """One receiver of notifications. ``send`` delivers one outbox payload (adding what must never
    be stored, such as a routing key or a signature) or raises ``DeliveryError`` (retried with
    backoff) or ``RateLimited`` (waits, untouched); ``delivery_id`` is the same on every retry of
    one notification, for the receiver's deduplication."""

    name: str

    def send(self, payload: dict, delivery_id: str) -> None: ...


class EventStore(Protocol):
    """Events and labels. Writes are idempotent by event id: ``insert`` returns the ids that were
    new, and the first of an id in a batch is the one stored."""

    def insert(self, rows: Sequence[EventRow]) -> set[str]: ...

    def insert_labels(self, rows: Sequence[LabelRow]) -> set[str]: ...

    def note_model_versions(self, spans: dict[tuple[str, str], tuple[datetime, datetime]]) -> None: ...

    def labelled(self, event_ids: Iterable[str]) -> list[LabelledEvent]: ...

    def labels_of(self, event_ids: Iterable[str]) -> dict[str, tuple[str, datetime]]: ...

    def completed_between(self, after: datetime | None, until: datetime) -> list[LabelledEvent]: ...

    def stored_answers(self, start: datetime, end: datetime) -> list[StoredAnswer]: ...

    def signals_for(self, event_ids: Iterable[str]) -> dict[str, dict[str, float]]: ...

    def model_versions(self) -> list[ModelVersion]: ...

    def arrivals(
        self, model_name: str, start: datetime, end: datetime
    ) -> tuple[int, float | None, float | None]: ...

    def watermark(self) -> datetime | None: ...

    def next_event_at(self, model_name: str, model_version: str, at: datetime) -> datetime | None: ...

    def load_window(
        self, model_name: str, model_version: str, start: datetime, end: datetime, labels_before: datetime
    ) -> Window: ...

    def window_embeddings(
        self, model_name: str, model_version: str, start: datetime, end: datetime
    ) -> dict[str, list[list[float]]]: ...

    def window_tokens(
        self, model_name: str, model_version: str, start: datetime, end: datetime
    ) -> TokenWindow: ...

    def window_answers(
        self, model_name: str, model_version: str, start: datetime, end: datetime, labels_before: datetime
    ) -> ModalityAnswers: ...

    def unlabelled(
        self, model_name: str, model_version: str, start: datetime, end: datetime
    ) -> list[tuple[str, float, dict]]: ...

    def purge(
        self, model_name: str, model_version: str, before: datetime, keep_from: datetime, keep_to: datetime
    ) -> int: ...

    def orphan_labels(self, ingested_before: datetime) -> list[LabelRow]: ...

    def delete_labels(self, event_ids: Iterable[str]) -> None: ...


class EvaluationStore(Protocol):
    """Claims on vintages and the rows they store. A claim is held by one owner until it is
    finished or expires; ``finish`` succeeds only for the owner still holding it, so a replica
    whose claim was taken over keeps none of its work."""

    def claim(
        self, key: RunKey, window_end: datetime, owner: str, now: datetime, expire: timedelta
    ) -> bool: ...

    def finish(self, key: RunKey, owner: str, now: datetime) -> bool: ...

    def finish_empty(self, runs: Sequence[tuple[RunKey, datetime]], owner: str, now: datetime) -> None: ...

    def finished(self, model_name: str, model_version: str, interval_s: int, lag_s: int) -> set[datetime]: ...

    def slices(self) -> list[str]:
        """The slices of the latest evaluated window."""
        ...

    def worse_than_rest(self) -> list[str]:
        """The slices whose error rate is significantly above the rest's in the latest window."""
        ...

    def unfinished(
        self, model_name: str, model_version: str, interval_s: int, lag_s: int, start: datetime, end: datetime
    ) -> int:
        """Claimed, not finished vintages of one series starting in [start, end)."""
        ...

    def insert(self, rows: Sequence[EvaluationRow]) -> None: ...

    def history(self, key: RunKey, since: datetime, metrics: Sequence[str]) -> list[EvaluationRow]: ...

    def latest(self, metric: str, until: datetime | None = None) -> list[EvaluationRow]: ...

    def window(self, key: RunKey) -> list[EvaluationRow]: ...

    def previous_values(
        self, model_name: str, model_version: str, interval_s: int, lag_s: int, before: datetime
    ) -> dict[tuple[str, str, str], float | None]: ...

    def earlier_lag_values(
        self, model_name: str, model_version: str, interval_s: int, lag_s: int, window_start: datetime
    ) -> dict[tuple[str, str, str], float | None]: ...

    def frame(self, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame: ...


class AlertStore(Protocol):
    """Alert states, notification groups, silences and the outbox. ``lock`` (inside a
    transaction) makes one notification pass or alert-state move at a time across replicas."""

    def lock(self) -> None: ...

    def get(self, dedup_keys: Iterable[str]) -> dict[str, AlertRecord]: ...

    def put(self, alert: AlertRecord, now: datetime) -> None: ...

    def list(self, state: str | None = None) -> list[AlertRecord]: ...

    def to_notify(self, told: Iterable[str]) -> list[AlertRecord]: ...

    def groups(self) -> list[GroupState]: ...

    def put_group(self, group: GroupState) -> None: ...

    def add_silence(
        self,
        matchers: dict[str, str],
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
        now: datetime,
    ) -> int: ...

    def silences(self, active_at: datetime | None = None) -> list[Silence]: ...

    def expire_silence(self, silence_id: int, now: datetime) -> bool: ...

    def add_outbox(self, dedup_key: str, receiver: str, payload: dict, now: datetime) -> None: ...

    def due_outbox(self, now: datetime, limit: int = 100) -> list[OutboxEntry]: ...

    def outbox_pending(self) -> int: ...

    def outbox_by_receiver(self) -> dict[tuple[str, str], tuple[int, int]]: ...

    def outbox_delivered(self, outbox_id: int, now: datetime) -> None: ...

    def outbox_failed(self, outbox_id: int, error: str, next_attempt_at: datetime) -> None: ...

    def outbox_dead(self, outbox_id: int, error: str, now: datetime) -> None: ...


class ReviewStore(Protocol):
    """The review queue: an event is queued once, whatever the reason."""

    def enqueue(self, candidates: Sequence[ReviewCandidate]) -> None: ...

    def close(self, event_ids: Iterable[str]) -> None: ...

    def counts_since(self, since: datetime) -> dict[str, int]: ...

    def expire(self, created_before: datetime, now: datetime) -> int: ...

    def stats(self) -> dict[str, Any]: ...

    def created_per_day(self) -> dict[str, dict[str, int]]: ...

    def queue(self, state: str = "queued") -> list[ReviewItem]: ...

    def set_state(self, event_ids: Iterable[str], state: str, at: datetime) -> None: ...


class OperationsStore(Protocol):
    """Dead letters, ingest tallies, online detector states and findings, counts.
    ``lock_shared_state`` (inside a transaction) holds the states writers read and write back."""

    def insert_dead_letters(self, rows: Sequence[DeadLetter]) -> set[tuple[str, str]]: ...

    def dead_letters(self, include_replayed: bool = False, limit: int = 1000) -> list[DeadLetter]: ...

    def mark_replayed(self, ids: Iterable[int], at: datetime) -> None: ...

    def count_ingest(self, minute: datetime, counts: dict[str, tuple[int, int]]) -> None: ...

    def forget_ingest_before(self, before: datetime) -> int: ...

    def ingest_by_source(self, since: datetime, recent: datetime) -> list[SourceActivity]: ...

    def lock_shared_state(self) -> None: ...

    def states(self, keys: Iterable[str]) -> dict[str, dict]: ...

    def put_states(self, states: dict[str, dict], at: datetime) -> None: ...

    def insert_findings(self, rows: Sequence[Finding]) -> None: ...

    def findings(
        self, model_name: str, model_version: str, start: datetime, end: datetime
    ) -> list[Finding]: ...

    def counts(self) -> dict[str, Any]: ...

    def dead_letter_reasons(self) -> dict[tuple[str, str], int]: ...

    def claim_report(
        self, start: datetime, end: datetime, every_s: int, owner: str, now: datetime, expire: timedelta
    ) -> bool: ...

    def finish_report(
        self, start: datetime, every_s: int, owner: str, now: datetime, report: str
    ) -> bool: ...

    def reports(self) -> list[ReportRun]: ...

    def report(self, start: datetime, every_s: int) -> str | None: ...


class SummaryStore(Protocol):
    """Summaries per (model version, measure, time bucket, slice, known-before time, cell): a
    count, a sum and a sum of squares that rows with one key add to; ``read`` sums a window's per
    (slice, cell)."""

    def add(self, rows: Sequence[SummaryRow]) -> None: ...

    def read(
        self,
        model_name: str,
        model_version: str,
        measure: str,
        start: datetime,
        end: datetime,
        known_before: datetime,
    ) -> dict[tuple[str, str], tuple[float, float, float]]: ...

    def all(self) -> list[SummaryRow]: ...

    def delete(self) -> int: ...


class Store(Protocol):
    """A database seen through its aggregates, on one connection (one thread). Every call runs in
    the transaction of an enclosing ``with store.tx():``, else in one of its own; after one of
    ``transient_errors`` (the database went away) the same work may succeed after ``reconnect()``."""

    events: EventStore
    evaluations: EvaluationStore
    alerts: AlertStore
    review: ReviewStore
    ops: OperationsStore
    summaries: SummaryStore
    transient_errors: tuple[type[BaseException], ...]

    def tx(self) -> AbstractContextManager[Any]: ...

    def migrate(self) -> list[str]: ...

    def set_compression(self, compress_after: timedelta | None) -> None: ...

    def sibling(self) -> "Store": ...

    def reconnect(self) -> None: ...

    def close(self) -> None: ...

    def describe(self) -> str: ...
