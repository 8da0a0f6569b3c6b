"""Scheduled evaluation: each window of the schedule against the reference, stored as rows.

For each model version, interval and window [t0, t1) the evaluation runs once the event-time
watermark passes t1 + lag; labels count if they were known (label ``ts``) before t1 + lag, so a
backfill of the same window gives the same numbers as the live run.

One vintage is one path, each stage taking the previous one's output:

1. **read** (``Evaluator.read``): the window, the reference's summary (read and summarised once
   per model version, then kept), and what the enabled checks declare they need — the window's
   embeddings, earlier windows' rows, the online detectors' findings;
2. **checks** → rows, then **Benjamini–Hochberg** per declared test family (``compute``: pure);
3. in one transaction with the claim's finish and the rows: **rules** → **alert state** →
   **review queue** → **outbox** (``Evaluator.apply_rules``).
"""

from __future__ import annotations

import logging
import os
import socket
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Callable, Sequence

import numpy as np

from alerts.rules import AlertMove, baseline_field, decisions, move_alerts, rule_metrics
from detectors.slices import benjamini_hochberg
from monitor.checks import Check, EvaluationInput, ReferenceSummary, WindowView, enabled_checks
from monitor.checks.base import kept_values
from monitor.checks.data_health import HealthInput
from monitor.checks.online import OnlineErrorRate
from monitor.core.records import ALL, EvaluationRow, ReviewCandidate
from monitor.core.settings import duration_text
from monitor.core.window import (
    ANSWERS,
    FLAGS,
    MODALITIES,
    ReferenceReads,
    RunKey,
    SummedCells,
    Window,
    labelled_measure,
    modality_measure,
)
from monitor.notify import run_notifications
from monitor.online import OnlineLane
from monitor.reference import reference_from_file, reference_range
from monitor.review import stratum_of, within_budget
from monitor.schedule import floor_to, windows
from monitor.summaries import Summariser, SummarySpec, ensure_summaries
from monitor.trust import TRUST_RECEIVER, changes

log = logging.getLogger("modalwatch.evaluation")


def owner_id() -> str:
    """Who holds a claim: the replica's name (``MODALWATCH_REPLICA``, stable across restarts, so a
    restarted replica takes its own claims back at once), else this host and process."""
    return os.environ.get("MODALWATCH_REPLICA") or f"{socket.gethostname()}:{os.getpid()}"


def dead_process_of_this_host(holder: str) -> bool:
    """Whether ``holder`` (an owner ``host:pid``) was a process of this host that is gone: its
    claims need not wait for their expiry."""
    host, sep, pid = holder.rpartition(":")
    if not sep or host != socket.gethostname() or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, someone else's
        return False
    return False


def seed_of(key: RunKey) -> int:
    """A seed fixed by the window, so a backfill's bootstrap gives the live run's numbers."""
    return zlib.crc32(
        f"{key.model_name}|{key.model_version}|{key.interval_s}|{key.lag_s}|"
        f"{key.window_start.isoformat()}".encode()
    )


# what a check that failed to summarise the reference is given: its run raises, and the window
# gets its one error row (see compute)
_FAILED_SUMMARY = object()


def compute(
    checks: Sequence[Check], summaries: dict[str, Any], inputs: EvaluationInput, fdr: float
) -> list[EvaluationRow]:
    """The checks' rows for one window (each check, in order, sees the rows of those before it),
    with Benjamini–Hochberg applied within each declared test family. A check that raises gives
    one ``error`` row naming the exception instead of its rows (logged with its traceback): the
    window is evaluated, its other checks stand, and no rule reads the error row — one event or
    one bug does not stop the schedule."""
    rows: list[EvaluationRow] = []
    for check in checks:
        if check.reads_decisions:
            rows = control_false_discoveries(rows, checks, fdr)  # (adjusted rows stay as they are)
        inputs.rows = rows
        try:
            summary = summaries.get(check.name)
            if summary is _FAILED_SUMMARY:
                raise RuntimeError(f"check {check.name} could not summarise the reference (logged)")
            rows = rows + check.run(summary, inputs)
        except Exception as e:  # noqa: BLE001 - see the docstring
            log.exception(
                "check %s failed on %s %s, window from %s",
                check.name,
                inputs.key.model_name,
                inputs.key.model_version,
                inputs.key.window_start.isoformat(),
            )
            rows = rows + [
                inputs.row(
                    slice=ALL,
                    detector=check.name,
                    metric=check.metrics[0],
                    signal="",
                    variant=f"failed_{type(e).__name__}",
                    status="error",
                    value=None,
                )
            ]
    return control_false_discoveries(rows, checks, fdr)


def control_false_discoveries(
    rows: list[EvaluationRow], checks: Sequence[Check], fdr: float
) -> list[EvaluationRow]:
    """Benjamini–Hochberg within each test family of the window (each check names the family of
    its rows: by default one per metric across all slices × signals, so a family of few tests is
    not drowned by hundreds of signal tests); rows adjusted already are left as they are. Then
    each check decides its adjusted rows (an effect-size floor, an interval above 0 …)."""
    by_metric = {m: c for c in checks for m in c.metrics}
    families: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        if r.p_value is not None and r.p_adjusted is None and r.status == "ok":
            family = by_metric[r.metric].family(r)
            if family is not None:
                families.setdefault(family, []).append(i)
    out = list(rows)
    for members in families.values():
        rejected, adjusted = benjamini_hochberg(np.array([rows[i].p_value for i in members]), fdr)
        for i, rej, adj in zip(members, rejected, adjusted):
            r = replace(rows[i], p_adjusted=float(adj))
            out[i] = replace(r, decision=by_metric[r.metric].decide(r, bool(rej)))
    return out


class Evaluator:
    """Runs due windows for every model version; keeps reference summaries between runs."""

    def __init__(self, config, store, clock: Callable[[], datetime], owner: str | None = None):
        self.config = config
        self.store = store
        self.clock = clock
        self.owner = owner or owner_id()
        self.checks = enabled_checks(config.evaluation)
        self.health_checks = enabled_checks(config.evaluation, schedule="ingest_clock")
        online = next((c for c in self.checks if isinstance(c, OnlineErrorRate)), None)
        self._online = online  # its lane is made on the store of the moment (the daemon swaps it)
        self._refs: dict[tuple, tuple[ReferenceSummary, dict[str, Any]]] = {}
        self._summariser = Summariser(SummarySpec.of(config))
        self._summaries_ready = False  # checked once, before the first window read from them

    # -- the schedule --------------------------------------------------------------------------
    def due(
        self,
        watermark: datetime | None,
        start: datetime | None = None,
        end: datetime | None = None,
        include_finished: bool = False,
        interval: timedelta | None = None,
        lag: timedelta | None = None,
    ) -> list[tuple[RunKey, datetime]]:
        """Vintages whose window end + lag the watermark has passed, not yet evaluated, oldest
        first (``interval`` / ``lag`` keep only those)."""
        if watermark is None:
            return []
        ev = self.config.evaluation
        out = []
        for mv in self.store.events.model_versions():
            _, ref_end = reference_range(self.config, mv.first_ts)
            for vlag in ev.vintage_lags:
                if (lag is not None and vlag != lag) or ref_end + vlag > watermark:
                    continue  # the reference itself is not complete yet at this lag
                for iv in ev.intervals:
                    if interval is not None and iv != interval:
                        continue
                    iv_s, lag_s = int(iv.total_seconds()), int(vlag.total_seconds())
                    done = (
                        set()
                        if include_finished
                        else self.store.evaluations.finished(mv.model_name, mv.model_version, iv_s, lag_s)
                    )
                    for t0, t1 in windows(iv, mv.first_ts, watermark - vlag, ev.tz):
                        if (start and t0 < start) or (end and t1 > end) or t0 in done:
                            continue
                        out.append((RunKey(mv.model_name, mv.model_version, iv_s, lag_s, t0), t1))
        # in the order the vintages became due: window end + lag
        out.sort(
            key=lambda kt: (
                kt[1] + timedelta(seconds=kt[0].lag_s),
                kt[0].interval_s,
                kt[0].lag_s,
                kt[0].model_name,
                kt[0].model_version,
            )
        )
        return out

    def run_due(self, watermark: datetime | None, progress: Callable[[int, int], None] | None = None) -> int:
        """Evaluate the due vintages in order; returns how many this replica evaluated (the others
        were claimed by another replica). A stretch of windows without events is recorded as such
        when the first of them comes up, not evaluated: a watermark that jumps a year costs a probe
        per stretch."""
        runs = self.due(watermark)
        recorded: set[RunKey] = set()
        done = 0
        for i, (key, t1) in enumerate(runs):
            if key not in recorded:
                stretch = self._empty_stretch(key, t1, runs, recorded)
                if stretch:
                    self._record_empty(stretch)
                    recorded.update(k for k, _ in stretch)
                else:
                    done += self.run(key, t1) is not None
            if progress:
                progress(i + 1, len(runs))
        return done

    def _empty_stretch(
        self, key: RunKey, t1: datetime, runs: list[tuple[RunKey, datetime]], recorded: set[RunKey]
    ) -> list[tuple[RunKey, datetime]]:
        """The due vintages of ``key``'s model version from its window on that hold no event and
        are followed by another window without events — a stretch without events, not a window
        whose events are still on their way (another partition, another replica); empty when
        ``key``'s own window is not one of them. Asked when ``key`` comes up, so that events
        stored meanwhile count."""
        nxt = self.store.events.next_event_at(key.model_name, key.model_version, key.window_start)

        def gap(k: RunKey, end: datetime) -> bool:
            return nxt is None or nxt >= end + (end - k.window_start)

        if not gap(key, t1):
            return []
        return [
            (k, end)
            for k, end in runs
            if (k.model_name, k.model_version) == (key.model_name, key.model_version)
            and k.window_start >= key.window_start
            and k not in recorded
            and gap(k, end)
        ]

    def _record_empty(self, stretch: list[tuple[RunKey, datetime]]) -> None:
        """Record ``stretch``'s vintages as finished without rows (there is nothing to say of them
        but "no events", and alert states stand until a window with events moves them): in one
        statement, then one by one those claimed before — by a process that is gone, or taken
        over from an expired claim; one another replica is working on is left to it."""
        now = self.clock()
        with self.store.tx():
            self.store.evaluations.finish_empty(stretch, self.owner, now)

        def series_of(k: RunKey) -> tuple:
            return k.model_name, k.model_version, k.interval_s, k.lag_s

        series: dict[tuple, list[datetime]] = {}
        for key, _ in stretch:
            series.setdefault(series_of(key), []).append(key.window_start)
        finished = {s: self.store.evaluations.finished(*s) for s in series}
        expiry = self.config.evaluation.claim_expiry
        for key, t1 in stretch:
            if key.window_start not in finished[series_of(key)] and self.store.evaluations.claim(
                key, t1, self.owner, now, expiry, orphaned=self._orphaned
            ):
                with self.store.tx():
                    self.store.evaluations.finish(key, self.owner, now)
        for (name, version, iv, lag), starts in series.items():
            log.info(
                "%s %s: %d %s window(s) from %s to %s hold no events (lag %s): recorded, not evaluated",
                name,
                version,
                len(starts),
                duration_text(iv),
                min(starts).isoformat(),
                max(starts).isoformat(),
                duration_text(lag),
            )

    def _waits_for_earlier(self, key: RunKey) -> bool:
        """A window whose checks read earlier windows' rows (trend) waits while one of those is
        claimed and unfinished (another replica evaluates it, or a killed process left it): its
        rows then depend only on its data and the windows before it, never on the order in which
        replicas and restarts happened to evaluate them. Retried on the next pass."""
        spans = [c.history_span() for c in self.checks if "history" in c.needs]
        if not spans:
            return False
        step = timedelta(seconds=key.interval_s)
        waiting = self.store.evaluations.unfinished(
            key.model_name,
            key.model_version,
            key.interval_s,
            key.lag_s,
            key.window_start - step * max(spans),
            key.window_start,
        )
        if waiting:
            log.info(
                "%s %s, %ss window from %s waits for %d earlier window(s) still being evaluated",
                key.model_name,
                key.model_version,
                key.interval_s,
                key.window_start.isoformat(),
                waiting,
            )
        return bool(waiting)

    def run(self, key: RunKey, window_end: datetime, force: bool = False) -> list[EvaluationRow] | None:
        """Evaluate one window (if this replica wins its claim); store rows, then alerts.

        ``force`` re-computes a window already evaluated (a backfill): the claim is skipped, rows
        already stored are kept, and alert rules are not applied again, since alert state moves
        forward in window order and an old window must not re-open or re-resolve a later state."""
        now = self.clock()
        if not force and self._waits_for_earlier(key):
            return None
        if not force and not self.store.evaluations.claim(
            key, window_end, self.owner, now, self.config.evaluation.claim_expiry, orphaned=self._orphaned
        ):
            return None
        rows = self.compute(key, window_end)
        with self.store.tx():
            # One transaction per vintage: finished, its rows and its alerts, or nothing. A replica
            # so slow that its claim expired and another took the vintage keeps none of its work.
            if not force and not self.store.evaluations.finish(
                key, self.owner, self.clock()
            ):  # changed nothing
                log.warning(
                    "vintage %s %s, %ds window from %s (lag %ds) was taken over by another replica while"
                    " this one evaluated it (evaluation.claim_expiry %s); its result is discarded",
                    key.model_name,
                    key.model_version,
                    key.interval_s,
                    key.window_start.isoformat(),
                    key.lag_s,
                    self.config.evaluation.claim_expiry,
                )
                return None
            self.store.evaluations.insert(rows)
            if not force:
                self.apply_rules(rows, key, window_end, now)
        log.info(
            "evaluated %s %s, %ds window from %s (lag %ds): %d rows",
            key.model_name,
            key.model_version,
            key.interval_s,
            key.window_start.isoformat(),
            key.lag_s,
            len(rows),
        )
        return rows

    def _orphaned(self, holder: str) -> bool:
        if dead_process_of_this_host(holder):
            log.info("taking over a claim of %s, a process of this host that is gone", holder)
            return True
        return False

    def compute(self, key: RunKey, window_end: datetime) -> list[EvaluationRow]:
        """One window's rows: stages 1 and 2 (read, then the checks and Benjamini–Hochberg), not
        stored."""
        inputs, summaries = self.read(key, window_end, self.clock())
        return compute(self.checks, summaries, inputs, self.config.evaluation.fdr)

    # -- stage 1: read -------------------------------------------------------------------------
    def read(
        self, key: RunKey, window_end: datetime, now: datetime
    ) -> tuple[EvaluationInput, dict[str, Any]]:
        """Everything the enabled checks need for ``key``'s window, and their reference summaries."""
        labels_before = window_end + timedelta(seconds=key.lag_s)
        (reference, summaries), window = self._reference(
            key,
            lambda store: store.events.load_window(
                key.model_name, key.model_version, key.window_start, window_end, labels_before
            ),
        )
        needs: set[str] = set()
        for c in self.checks:
            needs |= c.reads(summaries.get(c.name))
        limit = self.config.evaluation.max_slice_values
        view = WindowView(
            window,
            kept_values(window.slices, limit, reference.ranked),
            self._summed(key, window_end, labels_before),
        )
        inputs = EvaluationInput(key, window_end, now, view, reference, seed_of(key))
        events = self.store.events
        if "embeddings" in needs:
            inputs.embeddings = events.window_embeddings(
                key.model_name, key.model_version, key.window_start, window_end
            )
        if "tokens" in needs:
            inputs.tokens = events.window_tokens(
                key.model_name, key.model_version, key.window_start, window_end
            )
        if "answers" in needs and view.summed is None:  # (else per-modality cells are summed)
            inputs.answers = events.window_answers(
                key.model_name, key.model_version, key.window_start, window_end, labels_before
            )
        if "history" in needs:
            span = max(c.history_span() for c in self.checks if "history" in c.needs)
            metrics = sorted({m for c in self.checks if "history" in c.needs for m in c.history_metrics()})
            inputs.history = self.store.evaluations.history(
                key, key.window_start - timedelta(seconds=key.interval_s) * span, metrics
            )
        if "findings" in needs:
            if self._online is not None:  # what the cut-off saw is fed, whenever this runs
                # on this evaluator's store: the daemon gives it a connection of its own after
                # construction, and the ingest thread's must never be used from this thread
                OnlineLane(self._online, self.store).advance(labels_before, now)
            inputs.findings = self.store.ops.findings(
                key.model_name, key.model_version, key.window_start, window_end, labels_before
            )
        return inputs, summaries

    def _summed(self, key: RunKey, window_end: datetime, labels_before: datetime) -> SummedCells | None:
        """The window's summed measures, where summaries answer this vintage: reading them is on
        and the configured schedule holds its interval and lag (a cut-off the labels' rows were
        written for); else None (the rows are read)."""
        spec = self._summariser.spec
        if not self.config.evaluation.from_summaries or key.interval_s not in spec.intervals_s:
            return None
        if key.lag_s not in spec.lags_s:
            return None
        if not self._summaries_ready:
            ensure_summaries(self.store, self._summariser)
            self._summaries_ready = True
        read = self.store.summaries.read
        k, t0 = key, key.window_start
        return SummedCells(
            {
                ANSWERS: read(k.model_name, k.model_version, ANSWERS, t0, window_end, window_end),
                MODALITIES: read(k.model_name, k.model_version, MODALITIES, t0, window_end, window_end),
                FLAGS: read(k.model_name, k.model_version, FLAGS, t0, window_end, window_end),
                **{
                    m: read(k.model_name, k.model_version, m, t0, window_end, labels_before)
                    for m in (labelled_measure(spec.bins), modality_measure(spec.modality_bins))
                },
            }
        )

    def _reference(
        self, key: RunKey, read_window: Callable[[Any], Window]
    ) -> tuple[tuple[ReferenceSummary, dict[str, Any]], Window]:
        """The reference of ``key``'s model version, summarised once and kept; and
        ``read_window(store)``. When the reference must be read first, the two reads run at once
        on two connections (the database's work on two cores), and the reference is summarised
        while the window's read finishes."""
        file = self.config.evaluation.reference.file
        with_embeddings = any("reference_embeddings" in c.needs for c in self.checks)
        with_answers = any("reference_answers" in c.needs for c in self.checks)
        with_tokens = any("reference_tokens" in c.needs for c in self.checks)
        if file is not None:
            ck: tuple = ("file", key.model_name)

            def read() -> tuple[Window, ReferenceReads]:
                return reference_from_file(self.config, file, key.model_name)
        else:
            first_at = next(
                mv.first_ts
                for mv in self.store.events.model_versions()
                if (mv.model_name, mv.model_version) == (key.model_name, key.model_version)
            )
            r0, r1 = reference_range(self.config, first_at)
            ck = (key.model_name, key.model_version, r0, r1, key.lag_s)

            def read() -> tuple[Window, ReferenceReads]:
                events = self.store.events
                labels_before = r1 + timedelta(seconds=key.lag_s)
                data = events.load_window(key.model_name, key.model_version, r0, r1, labels_before)
                reads = ReferenceReads()
                if with_embeddings:
                    reads.embeddings = events.window_embeddings(key.model_name, key.model_version, r0, r1)
                if with_tokens:
                    reads.tokens = events.window_tokens(key.model_name, key.model_version, r0, r1)
                if with_answers:
                    reads.answers = events.window_answers(
                        key.model_name, key.model_version, r0, r1, labels_before
                    )
                return data, reads

        if ck in self._refs:
            return self._refs[ck], read_window(self.store)
        try:
            second = self.store.sibling()
        except (ValueError, *self.store.transient_errors) as e:  # an in-memory SQLite store has no second
            log.debug("no second connection (%s): the window is read after the reference", e)
            second = None
        try:
            with ThreadPoolExecutor(1) as pool:
                other = pool.submit(read_window, second) if second is not None else None
                data, reads = read()
                if other is None:
                    other = pool.submit(read_window, self.store)  # the main connection is free again
                self._refs[ck] = self._summarise(data, reads)
                return self._refs[ck], other.result()
        finally:
            if second is not None:
                second.close()

    def _summarise(self, data: Window, reads: ReferenceReads) -> tuple[ReferenceSummary, dict[str, Any]]:
        limit = self.config.evaluation.max_slice_values
        view = WindowView(data, kept_values(data.slices, limit, {}))
        summary = ReferenceSummary.of(view, limit)
        own = {}
        for c in self.checks:
            try:
                own[c.name] = c.summarise(view, reads)
            except Exception:  # noqa: BLE001 - one check's bug must not stop the others' windows
                log.exception("check %s could not summarise the reference; its rows are errors", c.name)
                own[c.name] = _FAILED_SUMMARY
        return summary, own

    # -- stage 3: rules → alert state → review queue → outbox -----------------------------------
    def apply_rules(
        self, rows: list[EvaluationRow], key: RunKey, window_end: datetime, now: datetime
    ) -> None:
        """Move each rule's alerts on this window's rows (pending → firing → resolved, with the
        rule's ``for``), queue the events of slices that need review, then run the notification
        pass — in the caller's transaction."""
        rules = self.config.alerts.rules
        vintage = "+" + duration_text(key.lag_s) if len(self.config.evaluation.vintage_lags) > 1 else ""
        interval = duration_text(key.interval_s) if len(self.config.evaluation.intervals) > 1 else ""
        ev = self.store.evaluations
        kinds = {baseline_field(r) for r in rules}
        previous = (
            ev.previous_values(key.model_name, key.model_version, key.interval_s, key.lag_s, key.window_start)
            if "previous" in kinds
            else {}
        )
        earlier = (
            ev.earlier_lag_values(
                key.model_name, key.model_version, key.interval_s, key.lag_s, key.window_start
            )
            if "earlier_lag" in kinds
            else {}
        )

        def baseline(rule, row: EvaluationRow) -> float | None:
            values = {"previous": previous, "earlier_lag": earlier}.get(baseline_field(rule), {})
            return values.get((row.slice, row.metric, row.signal))

        moves = self._move(
            decisions(rules, rows, baseline, vintage, interval), key.window_start, window_end, now
        )
        wanted = [(m.row.slice, "alert_slice") for m in moves if m.change == "fire"]
        rc = self.config.review
        for metric, low, reason in (
            ("estimated_accuracy", rc.estimated_accuracy_below, "low_estimated_accuracy"),
            ("mean_confidence_gap", rc.mean_confidence_below, "low_mean_confidence"),
        ):
            if low is not None:  # the gap rows' value is the slice's own mean confidence
                wanted += [
                    (row.slice, reason)
                    for row in rows
                    if row.metric == metric
                    and row.status == "ok"
                    and row.value is not None
                    and row.value < low
                ]
        self._queue_slices(key, window_end, wanted, now)
        for message in changes(rows, self.config, now):
            worse = message["state"] in ("degraded", "failed")
            log.log(
                logging.WARNING if worse else logging.INFO,
                "trust %s %s at %s: %s -> %s (window from %s)",
                message["model"],
                message["modality"],
                message["slice"],
                message["previous"],
                message["state"],
                message["window_start"],
            )
            if self.config.trust.topic:  # in this transaction: a change is told once, whoever evaluates
                self.store.alerts.add_outbox(message["key"], TRUST_RECEIVER, message, now)
        run_notifications(self.config, self.store, now)

    def _move(self, decided, window_start: datetime, window_end: datetime, now: datetime) -> list[AlertMove]:
        """Store the alert moves the decisions make, from the alerts' stored states."""
        current = self.store.alerts.get({d.dedup_key for _, _, d in decided})
        moves = move_alerts(decided, current, window_start, window_end)
        for m in moves:
            self.store.alerts.put(m.alert, now)
            if m.change in ("fire", "resolve"):
                log.warning("alert %s %s %s", m.alert.state, m.alert.rule, m.alert.labels)
        return moves

    def _queue_slices(
        self, key: RunKey, window_end: datetime, wanted: list[tuple[str, str]], now: datetime
    ) -> None:
        """For each (slice, reason): the slice's least confident unlabelled events of the window, all
        within the strata's daily budgets (monitor/review.py). The window is read once."""
        rc = self.config.review
        if not wanted or rc.events_per_alert <= 0:
            return
        pool = self.store.events.unlabelled(key.model_name, key.model_version, key.window_start, window_end)
        candidates, seen = [], set()
        for sl, reason in wanted:
            inside = _slice_predicate(sl)
            picked = [(e, c, s) for e, c, s in pool if inside(s)][: rc.events_per_alert]
            for e, c, s in picked:
                if e not in seen:  # an event is queued for its first reason
                    seen.add(e)
                    candidates.append(
                        ReviewCandidate(
                            e, f"{reason}:{sl}", round(1 - c, 6) + 1.0, now, stratum_of(s, rc.stratify_by)
                        )
                    )
        day = floor_to(now, timedelta(days=1), self.config.evaluation.tz)
        self.store.review.enqueue(
            within_budget(candidates, self.store.review.counts_since(day), rc.daily_budget_per_stratum)
        )

    # -- data health, on the ingest clock ------------------------------------------------------
    def health_rows(self, now: datetime) -> list[EvaluationRow]:
        """The data-health checks' rows now (monitor/checks/data_health.py)."""
        rows = []
        for check in self.health_checks:
            since, recent = check.spans(now)
            rows += check.run(
                None,
                HealthInput(
                    now, self.store.ops.ingest_by_source(since, recent), self.store.events.model_versions()
                ),
            )
        return rows

    def apply_health(self, now: datetime) -> int:
        """Data-health rows of the ingest clock through the same rules, in one transaction; the
        caller's notification pass then tells. Returns the alert changes made."""
        metrics = {m for c in self.health_checks for m in c.metrics}
        rules = [r for r in self.config.alerts.rules if set(rule_metrics(r)) & metrics]
        if not rules:
            return 0
        with self.store.tx():
            self.store.alerts.lock()  # replicas measure alike; one of them moves the alerts
            moves = self._move(decisions(rules, self.health_rows(now), lambda rule, row: None), now, now, now)
        return len(moves)


def _slice_predicate(sl: str) -> Callable[[dict], bool]:
    """Whether an event's slice attributes put it in slice ``sl``: ``*``, ``k=v`` or a crossed
    ``k=v&k2=v2``. (A signal band such as ``image.brightness=[40,80)`` is not an attribute: no
    event matches it here.)"""
    if sl == ALL:
        return lambda s: True
    pairs = [part.partition("=")[::2] for part in sl.split("&")]
    return lambda s: all(s.get(k) == v for k, v in pairs)
