"""Summaries: what each stored event and each completed (event, label) pair adds, per model
version, time bucket and slice — the mergeable counts and sums a window's checks can be computed
from instead of its rows.

Written where events pass (the pipeline's batch transaction: only the events it newly stored,
only the pairs it completed, so at-least-once delivery still counts each once) and summed for a
window by the evaluation. Measures, each a float vector whose layout its name fixes (a change of
layout writes new rows, never adds to old ones):

- ``answers``: per bucket and slice, ``[events, abstained]``;
- ``labelled/<bins>``: the labelled, non-abstained answers' calibration sums — ``bin_sums``
  (per equal-width confidence bin and correctness: count, Σ confidence, Σ confidence²), flattened:
  error rates, Wilson intervals, ECE, its drift and the reliability diagram need nothing else.

**Buckets** are ``bucket`` long (a minute, or less where an interval is not a whole number of
minutes) and aligned to UTC, so every scheduled window — local midnights and steps of its
interval — is a union of them.

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
from typing import Iterable, Sequence

import numpy as np

from detectors.calibration import bin_index
from monitor.core.records import ALL, EventRow, LabelledEvent, StoredAnswer, SummaryRow
from monitor.schedule import window_end

log = logging.getLogger("modalwatch.summaries")

ANSWERS = "answers"  # [events, abstained]
NEVER = datetime(9999, 12, 31, tzinfo=timezone.utc)  # known_before of a label after every cut-off
SPEC_STATE = "summaries:spec"  # its detector_state row: the spec the stored rows were written with
_MINUTE = 60


def labelled_measure(bins: int) -> str:
    return f"labelled/{bins}"


@dataclass(frozen=True)
class SummarySpec:
    """What the stored summaries' rows depend on besides the events and labels."""

    bucket_s: int
    bins: int
    intervals_s: tuple[int, ...]
    lags_s: tuple[int, ...]
    timezone: str

    @classmethod
    def of(cls, config) -> "SummarySpec":
        ev = config.evaluation
        intervals = tuple(sorted({int(iv.total_seconds()) for iv in ev.intervals}))
        return cls(
            bucket_s=math.gcd(_MINUTE, *intervals),
            bins=ev.checks.calibration.bins,
            intervals_s=intervals,
            lags_s=tuple(sorted({int(lag.total_seconds()) for lag in ev.vintage_lags})),
            timezone=ev.timezone,
        )

    def as_state(self) -> dict:
        return {
            "bucket_s": self.bucket_s,
            "bins": self.bins,
            "intervals_s": list(self.intervals_s),
            "lags_s": list(self.lags_s),
            "timezone": self.timezone,
        }

    @property
    def measures(self) -> tuple[str, ...]:
        return (ANSWERS, labelled_measure(self.bins))


class Summariser:
    """Pure: a batch's newly stored events and completed pairs → the summary rows they add."""

    def __init__(self, spec: SummarySpec):
        from zoneinfo import ZoneInfo

        self.spec = spec
        self.tz = ZoneInfo(spec.timezone)
        self.bucket = timedelta(seconds=spec.bucket_s)
        self.labelled = labelled_measure(spec.bins)
        self._cutoffs = lru_cache(maxsize=65536)(self._cutoffs_of)

    def bucket_of(self, ts: datetime) -> datetime:
        t = ts.astimezone(timezone.utc)
        s = t.hour * 3600 + t.minute * 60 + t.second
        return t.replace(microsecond=0) - timedelta(seconds=s % self.spec.bucket_s)

    def _cutoffs_of(self, bucket: datetime) -> tuple[datetime, ...]:
        ends = {window_end(bucket, timedelta(seconds=iv), self.tz) for iv in self.spec.intervals_s}
        return tuple(sorted({end + timedelta(seconds=lag) for end in ends for lag in self.spec.lags_s}))

    def known_before(self, bucket: datetime, label_ts: datetime) -> datetime:
        """The earliest cut-off of ``bucket``'s vintages that counts a label of ``label_ts``."""
        return next((c for c in self._cutoffs(bucket) if c > label_ts), NEVER)

    def of_events(self, rows: Iterable[EventRow | StoredAnswer]) -> list[SummaryRow]:
        out: dict[tuple, np.ndarray] = {}
        for r in rows:
            b = self.bucket_of(r.ts)
            add = np.array([1.0, 1.0 if r.abstained else 0.0])
            for sl in slice_keys(r.slice):
                k = (r.model_name, r.model_version, ANSWERS, b, sl, b)
                out[k] = out[k] + add if k in out else add
        return _rows(out)

    def of_pairs(self, pairs: Iterable[LabelledEvent]) -> list[SummaryRow]:
        out: dict[tuple, np.ndarray] = {}
        bins = self.spec.bins
        for p in pairs:
            if p.abstained:
                continue  # an error rate counts the answers given
            b = self.bucket_of(p.ts)
            kb = self.known_before(b, p.label_ts)
            c = float(p.confidence)
            idx, _ = bin_index(np.array([c]), bins)
            add = np.zeros(bins * 6)
            cell = (int(idx[0]) * 2 + (p.label == p.pred_label)) * 3
            add[cell : cell + 3] = (1.0, c, c * c)
            for sl in slice_keys(p.slice):
                k = (p.model_name, p.model_version, self.labelled, b, sl, kb)
                out[k] = out[k] + add if k in out else add
        return _rows(out)


def slice_keys(attributes: dict) -> list[str]:
    """The slices an event is in, as stored: every event (``*``) and each attribute=value."""
    return [ALL, *(f"{k}={v}" for k, v in sorted(attributes.items()) if v is not None)]


def _rows(sums: dict[tuple, np.ndarray]) -> list[SummaryRow]:
    return [SummaryRow(*k, tuple(v.tolist())) for k, v in sums.items()]


def rebuild(store, summariser: Summariser, chunk: int = 20_000) -> int:
    """Recompute every summary row from the stored events and labels (after a change of the
    spec, or where events were stored before summaries were), in the caller's transaction; the
    number of events read. The same function the proofs compare the written rows with."""
    store.summaries.delete()
    n, after = 0, None
    while True:
        page = store.events.stored_answers(after, chunk)
        if not page:
            return n
        pairs = [p for p in (a.pair() for a in page) if p is not None]
        store.summaries.add(summariser.of_events(page) + summariser.of_pairs(pairs))
        n += len(page)
        after = (page[-1].ts, page[-1].event_id)


def add_batch(
    store, summariser: Summariser, events: Sequence[EventRow], pairs: Sequence[LabelledEvent]
) -> None:
    """Within the batch's transaction: what its new events and completed pairs add."""
    rows = summariser.of_events(events) + summariser.of_pairs(pairs)
    if rows:
        store.summaries.add(rows)


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
