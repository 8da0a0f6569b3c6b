"""Summaries: what each stored event and each completed (event, label) pair adds, per model
version, time bucket and slice — the mergeable counts and sums a window's checks can be computed
from instead of its rows. Each row is one cell of a measure: a count, a sum and a sum of squares.

Written where events pass (the pipeline's batch transaction: only the events it newly stored,
only the pairs it completed, so at-least-once delivery still counts each once) and summed for a
window by the evaluation. Measures (a name fixes what its cells mean: a change of bins writes
another measure, never adds to the old one's rows):

- ``answers``: per bucket and slice, the cells ``events`` and ``abstained`` (their counts);
- ``labelled/<bins>``: the labelled, non-abstained answers' calibration sums — per equal-width
  confidence bin and correctness, cell ``<bin>:<0 wrong|1 right>``: count, Σ confidence,
  Σ confidence² (``bin_sums``): error rates, Wilson intervals, ECE, its drift and the reliability
  diagram need nothing else.

**Buckets** are the largest length up to an hour that divides every configured interval and
every offset of the time zone from UTC (an hour in UTC or Europe/Berlin, 30 minutes in
Asia/Kolkata), aligned to UTC, so every scheduled window — local midnights and steps of its
interval — is a union of them. (An hour, not a minute: a batch's labelled answers then share
their cells, and ingest writes a fraction of the rows; bench/ingest_cost.py.)

**Labels by vintage.** A vintage counts a label when its time is before the vintage's cut-off
(window end + lag). A pair's row is keyed by ``known_before``: the earliest cut-off of the
configured schedule (every interval's window holding the event, every lag) that is later than
the label's time — so a vintage sums the rows with ``known_before`` at or before its cut-off, and
counts exactly the labels the exact path counts. A label later than every cut-off is kept under
``NEVER``. The schedule is part of the ``SummarySpec``: where it changes, the rows are rebuilt from
the stored events (``rebuild``).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from typing import Iterable, Iterator, Sequence

from monitor.core.records import ALL, EventRow, LabelledEvent, LabelRow, StoredAnswer, SummaryRow
from monitor.core.window import (
    ANSWERS,
    FLAGS,
    MODALITIES,
    is_missing_flag,
    labelled_measure,
    modality_measure,
)
from monitor.schedule import window_end

log = logging.getLogger("modalwatch.summaries")

NEVER = datetime(9999, 12, 31, tzinfo=timezone.utc)  # known_before of a label after every cut-off
SPEC_STATE = "summaries:spec"  # its detector_state row: the spec the stored rows were written with
_HOUR = 3600


def _utc_offsets(tz) -> set[int]:
    """The zone's offsets from UTC in seconds since 1970 (sampled four times a year)."""
    return {
        int(tz.utcoffset(datetime(y, m, 1)).total_seconds()) for y in range(1970, 2040) for m in (1, 4, 7, 10)
    }


@dataclass(frozen=True)
class SummarySpec:
    """What the stored summaries' rows depend on besides the events and labels."""

    bucket_s: int
    bins: int
    modality_bins: int
    intervals_s: tuple[int, ...]
    lags_s: tuple[int, ...]
    timezone: str

    @classmethod
    def of(cls, config) -> "SummarySpec":
        ev = config.evaluation
        intervals = tuple(sorted({int(iv.total_seconds()) for iv in ev.intervals}))
        return cls(
            # the largest bucket up to an hour that every window boundary falls on: it divides
            # every interval and every UTC offset of the zone (+05:30 makes local hours UTC :30)
            bucket_s=math.gcd(_HOUR, *intervals, *_utc_offsets(ev.tz)),
            bins=ev.checks.calibration.bins,
            modality_bins=ev.checks.per_modality.bins,
            intervals_s=intervals,
            lags_s=tuple(sorted({int(lag.total_seconds()) for lag in ev.vintage_lags})),
            timezone=ev.timezone,
        )

    def as_state(self) -> dict:
        return {
            "bucket_s": self.bucket_s,
            "bins": self.bins,
            "modality_bins": self.modality_bins,
            "intervals_s": list(self.intervals_s),
            "lags_s": list(self.lags_s),
            "timezone": self.timezone,
        }


class Summariser:
    """Pure: a batch's newly stored events and completed pairs → the summary rows they add."""

    def __init__(self, spec: SummarySpec):
        from zoneinfo import ZoneInfo

        self.spec = spec
        self.tz = ZoneInfo(spec.timezone)
        self.bucket = timedelta(seconds=spec.bucket_s)
        self.labelled = labelled_measure(spec.bins)
        self.modality_labelled = modality_measure(spec.modality_bins)
        self._cutoffs = lru_cache(maxsize=65536)(self._cutoffs_of)
        self._buckets: dict[int, datetime] = {}  # bucket starts by epoch second (a few per batch)

    def bucket_of(self, ts: datetime) -> datetime:
        seconds = int(ts.timestamp() // self.spec.bucket_s) * self.spec.bucket_s
        b = self._buckets.get(seconds)
        if b is None:
            b = self._buckets[seconds] = datetime.fromtimestamp(seconds, timezone.utc)
        return b

    def _cutoffs_of(self, bucket: datetime) -> tuple[datetime, ...]:
        ends = {window_end(bucket, timedelta(seconds=iv), self.tz) for iv in self.spec.intervals_s}
        return tuple(sorted({end + timedelta(seconds=lag) for end in ends for lag in self.spec.lags_s}))

    def known_before(self, bucket: datetime, label_ts: datetime) -> datetime:
        """The earliest cut-off of ``bucket``'s vintages that counts a label of ``label_ts``."""
        return next((c for c in self._cutoffs(bucket) if c > label_ts), NEVER)

    def of_events(self, rows: Iterable[EventRow | StoredAnswer]) -> list[SummaryRow]:
        # counted per (bucket, attributes) first, then spread over the slices: a batch's events
        # share a few buckets and attribute combinations
        counts: dict[tuple, dict[tuple[str, str], list[float]]] = {}
        for r in rows:
            k = (r.model_name, r.model_version, self.bucket_of(r.ts), tuple(r.slice.items()))
            c = counts.get(k)
            if c is None:
                c = counts[k] = {}
            for measure, cell, n, x in _event_cells(r):
                acc = c.get((measure, cell))
                if acc is None:
                    c[(measure, cell)] = [n, x, x * x]
                else:
                    acc[0] += n
                    acc[1] += x
                    acc[2] += x * x
        out: dict[tuple, list[float]] = {}
        for (mn, mv, b, attributes), cells in counts.items():
            for sl in slice_keys(dict(attributes)):
                for (measure, cell), v in cells.items():
                    key = (mn, mv, measure, b, sl, b, cell)
                    acc = out.get(key)
                    out[key] = v if acc is None else [x + y for x, y in zip(acc, v)]
        return [SummaryRow(*k, *v) for k, v in out.items()]

    def of_pairs(self, pairs: Iterable[LabelledEvent]) -> list[SummaryRow]:
        sums: dict[tuple, list[float]] = {}
        for p in pairs:
            if p.abstained:
                continue  # an error rate counts the answers given
            b = self.bucket_of(p.ts)
            head = (
                p.model_name,
                p.model_version,
                b,
                self.known_before(b, p.label_ts),
                tuple(p.slice.items()),
            )
            for measure, cell, x in self._pair_cells(p):
                k = (*head, measure, cell)
                acc = sums.get(k)
                if acc is None:
                    sums[k] = [1.0, x, x * x]
                else:
                    acc[0] += 1.0
                    acc[1] += x
                    acc[2] += x * x
        out: dict[tuple, list[float]] = {}
        for (mn, mv, b, kb, attributes, measure, cell), v in sums.items():
            for sl in slice_keys(dict(attributes)):
                key = (mn, mv, measure, b, sl, kb, cell)
                acc = out.get(key)
                out[key] = v if acc is None else [x + y for x, y in zip(acc, v)]
        return [SummaryRow(*k, *v) for k, v in out.items()]

    def _pair_cells(self, p: LabelledEvent) -> Iterator[tuple[str, str, float]]:
        """(measure, cell, value) of one labelled answer: its confidence bin and correctness; and
        per modality that answered, its own (bin or ``-`` without a confidence, correctness) and
        (``pair``, fused wrong, modality wrong) for the fused-against-modality comparison."""
        c = float(p.confidence)
        fused_ok = p.label == p.pred_label
        yield self.labelled, f"{bin_of(c, self.spec.bins)}:{int(fused_ok)}", c
        for m, a in (p.per_modality or {}).items():
            own = a.get("label")
            if own is None:
                continue
            ok = own == p.label
            mc = a.get("confidence")
            where = "-" if mc is None else bin_of(float(mc), self.spec.modality_bins)
            yield self.modality_labelled, f"{m}:{where}:{int(ok)}", 0.0 if mc is None else float(mc)
            yield self.modality_labelled, f"{m}:pair:{int(not fused_ok)}:{int(not ok)}", 0.0


def _event_cells(r: EventRow | StoredAnswer) -> Iterator[tuple[str, str, float, float]]:
    """(measure, cell, count, value) of one event: it, its abstention; each missing-modality flag
    it carries (counted where it has a value); with per-modality answers, each modality that
    answered and whether it agrees with the fused answer, and whether two or more answered and all
    alike."""
    yield ANSWERS, "events", 1.0, 0.0
    if r.abstained:
        yield ANSWERS, "abstained", 1.0, 0.0
    for name, value in (r.signals or {}).items():
        if is_missing_flag(name):
            ok = value is not None and math.isfinite(value)
            yield FLAGS, name, float(ok), float(value) if ok else 0.0
    gave = {m: a.get("label") for m, a in (r.per_modality or {}).items() if a.get("label") is not None}
    for m, label in gave.items():
        yield MODALITIES, f"answered:{m}", 1.0, 0.0
        if label == r.pred_label:
            yield MODALITIES, f"agree:{m}", 1.0, 0.0
    if len(gave) >= 2:
        yield MODALITIES, "several", 1.0, 0.0
        if len(set(gave.values())) == 1:
            yield MODALITIES, "all_agree", 1.0, 0.0


def bin_of(confidence: float, bins: int) -> int:
    """The equal-width bin of one confidence, as ``detectors.calibration.bin_index`` puts it."""
    return min(max(math.ceil(confidence * bins) - 1, 0), bins - 1)


def slice_keys(attributes: dict) -> list[str]:
    """The slices an event is in, as stored: every event (``*``) and each attribute=value."""
    return [ALL, *(f"{k}={v}" for k, v in sorted(attributes.items()) if v is not None)]


def stored_pages(store, step: timedelta = timedelta(hours=1)) -> Iterator[list[StoredAnswer]]:
    """Every stored event with its answer, label and signals, an event-time range at a time."""
    versions = store.events.model_versions()
    if not versions:
        return
    t = min(mv.first_ts for mv in versions).replace(minute=0, second=0, microsecond=0)
    last = max(mv.last_ts for mv in versions)
    while t <= last:
        page = store.events.stored_answers(t, t + step)
        if page:
            yield page
        t += step


def summary_rows(summariser: Summariser, page: list[StoredAnswer]) -> list[SummaryRow]:
    """What stored events and their labels add to the summaries, as ingest added it."""
    return summariser.of_events(page) + summariser.of_pairs([p for p in (a.pair() for a in page) if p])


def rebuild(store, summariser: Summariser, step: timedelta = timedelta(hours=1)) -> int:
    """Recompute every summary row from the stored events and labels (after a change of the
    spec, or where events were stored before summaries were), in the caller's transaction; the
    number of events read."""
    store.summaries.delete()
    n = 0
    for page in stored_pages(store, step):
        store.summaries.add(summary_rows(summariser, page))
        n += len(page)
    return n


def summarise_batch(
    store, summariser: Summariser, new_events: Sequence[EventRow], new_labels: set[str]
) -> list[LabelledEvent]:
    """Within a batch's transaction, for a batch that stored something new: take the shared-state
    lock, find the pairs the batch completes (after the lock: a pair whose halves two concurrent
    batches store is found by exactly one), add its new events and those pairs to the summaries
    (under the lock: writers never wait on each other's summary rows); the pairs."""
    store.ops.lock_shared_state()
    pairs = completed_pairs(store, new_events, new_labels)
    rows = summariser.of_events(new_events) + summariser.of_pairs(pairs)
    if rows:
        store.summaries.add(rows)
    return pairs


def ensure_summaries(store, summariser: Summariser) -> bool:
    """Make the stored summaries those of ``summariser``'s spec: where they were written with
    another (or before summaries existed, while events were stored), rebuild them from the stored
    events, under the shared-state lock (writers add after it; two processes starting at once
    rebuild once). Whether a rebuild ran."""
    want = summariser.spec.as_state()
    if store.ops.states([SPEC_STATE]).get(SPEC_STATE) == want:
        return False
    with store.tx():
        store.ops.lock_shared_state()
        had = store.ops.states([SPEC_STATE]).get(SPEC_STATE)
        if had == want:
            return False
        n = rebuild(store, summariser)
        store.ops.put_states({SPEC_STATE: want}, datetime.now(timezone.utc))
    if n:
        log.warning(
            "summaries rebuilt from %d stored events (%s)",
            n,
            "they were written with another schedule or bins" if had else "none were written before",
        )
    return True


def completed_pairs(store, new_events: Sequence[EventRow], new_labels: set[str]) -> list[LabelledEvent]:
    """The (event, label) pairs a batch completes: its new events that have a label (stored now or
    before), and the stored events of its new labels. Read after the shared-state lock (see
    monitor/online.py), so a pair whose halves two concurrent batches store is found by one."""
    labels = store.events.labels_of([e.event_id for e in new_events])
    pairs = [
        LabelledEvent(
            e.event_id,
            e.ts,
            e.model_name,
            e.model_version,
            e.slice,
            e.pred_label,
            *labels[e.event_id],
            e.confidence,
            e.abstained,
            e.per_modality,
        )  # fmt: skip
        for e in new_events
        if e.event_id in labels
    ]
    rest = new_labels - {e.event_id for e in new_events}
    return pairs + (store.events.labelled(rest) if rest else [])


def store_rows(store, summariser: Summariser, events: Sequence[EventRow], labels: Sequence[LabelRow]) -> None:
    """Store rows made elsewhere than from messages (synthetic traffic, benches) as a batch would:
    the events and labels, the model version's span, and what the new ones add to the summaries,
    in one transaction (``Pipeline.process`` does the same for messages, among its other work)."""
    ensure_summaries(store, summariser)  # (one state read once they are)
    with store.tx():
        new = store.events.insert(events)
        new_labels = store.events.insert_labels(labels)
        spans: dict[tuple[str, str], tuple[datetime, datetime]] = {}
        for e in events:
            a, b = spans.get((e.model_name, e.model_version), (e.ts, e.ts))
            spans[(e.model_name, e.model_version)] = (min(a, e.ts), max(b, e.ts))
        store.events.note_model_versions(spans)
        if new or new_labels:
            seen: set[str] = set()
            first = [
                e for e in events if e.event_id in new and not (e.event_id in seen or seen.add(e.event_id))
            ]
            summarise_batch(store, summariser, first, new_labels)
