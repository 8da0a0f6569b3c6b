"""Scheduled evaluation: each window of the schedule against the reference, stored as rows.

For each model version, interval and window [t0, t1) the evaluation runs once the event-time
watermark passes t1 + lag; labels count if they were known (label ``ts``) before t1 + lag, so a
backfill of the same window gives the same numbers as the live run.
"""
from __future__ import annotations

import logging
import math
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

import numpy as np
import pandas as pd

from alerts.rules import applies, decide, transition
from connectors.sqlstore import RunKey, Window
from detectors.calibration import calibration, calibration_drift
from detectors.drift import NumericReference, ks_test, psi_test, wasserstein_test
from detectors.intervals import wilson_interval
from detectors.performance import ConfidenceCalibrator, PerformanceSummary
from detectors.slices import band_labels, benjamini_hochberg, slice_metrics
from monitor.notify import run_notifications
from monitor.review import stratum_of, within_budget
from monitor.schedule import floor_to, windows

log = logging.getLogger("modalwatch.evaluation")

ALL = "*"


def reference_from_file(cfg, path: str, model_name: str) -> tuple[Window, dict[str, list]]:
    """The reference of ``model_name`` from a JSONL file of events and labels: read by the JSONL
    source, decoded and measured like ingested traffic (raw media included), every label counts."""
    from connectors.jsonl import JsonlSource
    from connectors.media import MediaReader
    from monitor.events import InferenceEvent
    from monitor.media import measure_event
    from monitor.pipeline import Rejected, decode

    if not os.path.exists(path):
        raise ValueError(f"evaluation.reference.file: {path} does not exist")
    src = JsonlSource([path], follow=False, max_payload_bytes=cfg.ingest.max_payload_bytes)
    read = MediaReader.from_config(cfg.media).read
    events, labels, bad = [], {}, 0
    while not src.exhausted:
        for msg in src.poll(10_000):
            try:
                ev = decode(msg, cfg.ingest.max_payload_bytes)
            except Rejected:
                bad += 1
                continue
            if isinstance(ev, InferenceEvent):
                if ev.model.name == model_name:
                    events.append(ev)
            else:
                labels[ev.event_id] = ev.label
    src.close()
    if bad:
        log.warning("reference file %s: %d lines were not valid events and were left out", path, bad)
    if not events:
        raise ValueError(f"evaluation.reference.file: {path} holds no event of model {model_name!r}")
    measured, embeddings = [], {}
    for ev in events:
        measured.append(measure_event(ev, read, cfg.media).signals)
        for name, vec in (ev.embeddings or {}).items():
            embeddings.setdefault(name, []).append(vec)
    window = Window.of([dict(ev.slice) for ev in events], measured, [ev.output.label for ev in events],
                       [ev.output.confidence for ev in events], [ev.output.abstained for ev in events],
                       [labels.get(ev.event_id) for ev in events])
    return window, embeddings


def preload() -> None:
    """Import what evaluations import lazily (scikit-learn for the calibrator's isotonic fit: about
    a second), for a daemon to pay once at start rather than inside its first evaluation; commands
    that only read the schedule (``modalwatch status``) do not pay it."""
    import sklearn.isotonic  # noqa: F401


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def reference_range(cfg, first_event_at: datetime) -> tuple[datetime, datetime]:
    ref = cfg.evaluation.reference
    if ref.from_at is not None:
        return ref.from_at, ref.to_at
    tz = cfg.evaluation.tz
    start = floor_to(first_event_at, timedelta(days=1), tz)
    if ref.file is not None:  # a file reference is complete from the start: no window waits for it
        return start, start
    # whole local days: add days to the local date, not 24-hour steps
    local = start.astimezone(tz)
    end = (local.replace(tzinfo=None) + timedelta(days=ref.days)).replace(tzinfo=tz).astimezone(start.tzinfo)
    return start, end


def _parallel(fn: Callable[[str], Any], items: list[str]) -> list[Any]:
    """``[fn(x) for x in items]`` in a few threads: the work is NumPy's (sorts, searches), which
    releases the GIL, so the machine's cores share it."""
    workers = min(len(items), os.cpu_count() or 1, 8)
    if workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def _groups(w: Window) -> dict[str, tuple[np.ndarray, list]]:
    """Per slice attribute, each event's code (-1 where the event lacks the attribute) and the
    attribute's values in code order."""
    out = {}
    for col in sorted(w.slices.columns):
        codes, values = pd.factorize(w.slices[col], sort=True)
        out[col] = (codes.astype(np.int16 if len(values) < 2**15 - 1 else np.int64), list(values))
    return out


def _masks(groups: dict[str, tuple[np.ndarray, list]], n: int) -> dict[str, np.ndarray]:
    """Each slice's rows: every event (``*``) and each value of each slice attribute."""
    out = {ALL: np.ones(n, dtype=bool)}
    for col, (codes, values) in groups.items():
        for i, val in enumerate(values):
            out[f"{col}={val}"] = codes == i
    return out


def _sorted_by_slice(values: np.ndarray, groups: dict[str, tuple[np.ndarray, list]]) -> dict[str, np.ndarray]:
    """Each slice's finite values of one signal, sorted, from one sort of the whole column (and
    per attribute a stable radix sort of the small integer codes, which keeps values in order)."""
    order = np.argsort(values)  # NaN last; equal values need no stable order
    ordered = values[order]
    keep = np.isfinite(ordered)
    finite = ordered[keep]
    out = {ALL: finite}
    for col, (codes, names) in groups.items():
        by_value = codes[order][keep]
        grouped = finite[np.argsort(by_value, kind="stable")]
        counts = np.bincount(by_value.astype(np.int64) + 1, minlength=len(names) + 1)
        for name, part in zip(names, np.split(grouped, np.cumsum(counts)[:-1])[1:]):
            out[f"{col}={name}"] = part
    return out


@dataclass
class _Reference:
    """What later windows need of a reference, kept between vintages — summaries, not its events
    (a week of a million events a day would otherwise stay in memory)."""

    signals: list[str]
    slices: list[str]
    answers: dict[str, tuple[np.ndarray, np.ndarray]]  # per slice: labelled answers' confidence, correctness
    missing: dict[str, tuple[int, float]]  # per cross.missing_<modality> signal: events with it, share missing
    numeric: dict[tuple[str, str], NumericReference] = field(default_factory=dict)
    calibrator: ConfidenceCalibrator | None = None
    embeddings: dict[str, np.ndarray] = field(default_factory=dict)


def _labelled_answers(f: pd.DataFrame) -> np.ndarray:
    """Events with a label whose model did not abstain: the ones an error rate counts.
    (dtype=bool: an empty window's columns come back as object arrays.)"""
    return f["label"].notna().to_numpy(dtype=bool) & ~f["abstained"].to_numpy(dtype=bool)


@dataclass
class _Answers:
    """A window's labelled answers (see ``_labelled_answers``): their confidence and correctness."""

    labelled: np.ndarray
    confidence: np.ndarray
    correct: np.ndarray

    @classmethod
    def of(cls, p: Window) -> "_Answers":
        f = p.frame
        labelled = _labelled_answers(f)
        return cls(labelled, f["confidence"].to_numpy(dtype=float),
                   np.asarray(f["label"].to_numpy() == f["pred_label"].to_numpy(), dtype=bool))

    def within(self, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        m = mask & self.labelled
        return self.confidence[m], self.correct[m]


class Evaluator:
    """Runs due windows for every model version; keeps reference summaries between runs."""

    def __init__(self, config, store, clock: Callable[[], datetime], owner: str | None = None):
        self.config = config
        self.store = store
        self.clock = clock
        self.owner = owner or owner_id()
        self._refs: dict[tuple, _Reference] = {}

    def due(self, watermark: datetime | None, start: datetime | None = None, end: datetime | None = None,
            include_finished: bool = False, interval: timedelta | None = None,
            lag: timedelta | None = None) -> list[tuple[RunKey, datetime]]:
        """Vintages whose window end + lag the watermark has passed, not yet evaluated, oldest
        first (``interval`` / ``lag`` keep only those)."""
        if watermark is None:
            return []
        ev = self.config.evaluation
        out = []
        for model_name, version, first_at, _ in self.store.model_versions():
            ref_start, ref_end = reference_range(self.config, first_at)
            for vlag in ev.vintage_lags:
                if (lag is not None and vlag != lag) or ref_end + vlag > watermark:
                    continue  # the reference itself is not complete yet at this lag
                for iv in ev.intervals:
                    if interval is not None and iv != interval:
                        continue
                    done = set() if include_finished else self.store.finished_runs(
                        model_name, version, int(iv.total_seconds()), int(vlag.total_seconds()))
                    for t0, t1 in windows(iv, first_at, watermark - vlag, ev.tz):
                        if (start and t0 < start) or (end and t1 > end) or t0 in done:
                            continue
                        out.append((RunKey(model_name, version, int(iv.total_seconds()), int(vlag.total_seconds()),
                                           t0), t1))
        # in the order the vintages became due: window end + lag
        out.sort(key=lambda kt: (kt[1] + timedelta(seconds=kt[0].lag_s), kt[0].interval_s, kt[0].lag_s,
                                 kt[0].model_name, kt[0].model_version))
        return out

    def run_due(self, watermark: datetime | None, progress: Callable[[int, int], None] | None = None) -> int:
        """Evaluate the due vintages in order; returns how many this replica evaluated (the others
        were claimed by another replica)."""
        runs = self.due(watermark)
        done = 0
        for i, (key, t1) in enumerate(runs):
            done += self.run(key, t1) is not None
            if progress:
                progress(i + 1, len(runs))
        return done

    def run(self, key: RunKey, window_end: datetime, force: bool = False) -> list[dict] | None:
        """Evaluate one window (if this replica wins its claim); store rows, then alerts.

        ``force`` re-computes a window already evaluated (a backfill): the claim is skipped, rows
        already stored are kept, and alert rules are not applied again, since alert state moves
        forward in window order and an old window must not re-open or re-resolve a later state."""
        now = self.clock()
        if not force and not self.store.claim_run(key, window_end, self.owner, now, self.config.evaluation.claim_expiry):
            return None
        rows = self.compute(key, window_end)
        with self.store.tx():
            # One transaction per vintage: finished, its rows and its alerts, or nothing. A replica
            # so slow that its claim expired and another took the vintage keeps none of its work.
            if not force and not self.store.finish_run(key, self.owner, self.clock()):  # changed nothing
                log.warning("vintage %s %s, %ds window from %s (lag %ds) was taken over by another replica while"
                            " this one evaluated it (evaluation.claim_expiry %s); its result is discarded",
                            key.model_name, key.model_version, key.interval_s, key.window_start.isoformat(),
                            key.lag_s, self.config.evaluation.claim_expiry)
                return None
            self.store.insert_evaluations(rows)
            if not force:
                self.apply_rules(rows, key, window_end, now)
        log.info("evaluated %s %s, %ds window from %s (lag %ds): %d rows", key.model_name, key.model_version,
                 key.interval_s, key.window_start.isoformat(), key.lag_s, len(rows))
        return rows

    # -- the numbers ---------------------------------------------------------------------------
    def _reference(self, key: RunKey, meanwhile: Callable[[Any], Any]) -> tuple[_Reference, Any]:
        """The reference of ``key``'s model version, summarised once and kept; and
        ``meanwhile(store)`` (the window's read). When the reference must be read first, the two
        reads run at once on two connections (the database's work on two cores), and the
        reference is summarised while the window's read finishes."""
        file = self.config.evaluation.reference.file
        if file is not None:
            ck: tuple = ("file", key.model_name)
            read = lambda: reference_from_file(self.config, file, key.model_name)  # noqa: E731
        else:
            first_at = next(v[2] for v in self.store.model_versions() if v[:2] == (key.model_name, key.model_version))
            r0, r1 = reference_range(self.config, first_at)
            ck = (key.model_name, key.model_version, r0, r1, key.lag_s)

            def read():
                data = self.store.load_window(key.model_name, key.model_version, r0, r1,
                                              r1 + timedelta(seconds=key.lag_s))
                emb = (self.store.window_embeddings(key.model_name, key.model_version, r0, r1)
                       if self.config.evaluation.embedding_drift else {})
                return data, emb
        if ck in self._refs:
            return self._refs[ck], meanwhile(self.store)
        try:
            second = self.store.sibling()
        except (ValueError, *self.store.transient_errors) as e:  # an in-memory SQLite store has no second
            log.debug("no second connection (%s): the window is read after the reference", e)
            second = None
        try:
            with ThreadPoolExecutor(1) as pool:
                other = pool.submit(meanwhile, second) if second is not None else None
                data, emb = read()
                if other is None:
                    other = pool.submit(meanwhile, self.store)  # the main connection is free again
                self._refs[ck] = self._summarise(data, emb)
                return self._refs[ck], other.result()
        finally:
            if second is not None:
                second.close()

    def _summarise(self, data: Window, embeddings: dict) -> _Reference:
        answers = _Answers.of(data)
        groups = _groups(data)
        masks = _masks(groups, len(data))
        conf, ok = answers.within(masks[ALL])
        missing = {}
        for c in data.signals.columns:
            if c.startswith("cross.missing_"):
                flags = data.signals[c].to_numpy(dtype=float)
                flags = flags[np.isfinite(flags)]
                missing[c] = (len(flags), float(flags.mean()) if len(flags) else math.nan)
        ref = _Reference(list(data.signals.columns), sorted(masks), {sl: answers.within(m) for sl, m in masks.items()},
                         missing, calibrator=ConfidenceCalibrator.fit(conf, ok),
                         embeddings={k: np.asarray(v, dtype=float) for k, v in embeddings.items()})
        bins = self.config.evaluation.psi_bins

        def fit(sig: str) -> dict[str, NumericReference]:
            by_slice = _sorted_by_slice(data.signals[sig].to_numpy(dtype=float), groups)
            return {sl: NumericReference.fit(by_slice.get(sl, np.zeros(0)), bins) for sl in ref.slices}
        for sig, fitted in zip(data.signals.columns, _parallel(fit, list(data.signals.columns))):
            ref.numeric.update({(sl, sig): f for sl, f in fitted.items()})
        return ref

    def compute(self, key: RunKey, window_end: datetime) -> list[dict]:
        ev = self.config.evaluation
        lag = timedelta(seconds=key.lag_s)
        ref, win = self._reference(key, lambda store: store.load_window(
            key.model_name, key.model_version, key.window_start, window_end, window_end + lag))
        now = self.clock()
        base = {"model_name": key.model_name, "model_version": key.model_version, "interval_s": key.interval_s,
                "lag_s": key.lag_s, "window_start": key.window_start, "window_end": window_end, "evaluated_at": now}
        rows: list[dict] = []
        signals = sorted(set(ref.signals) | set(win.signals.columns))
        win_groups = _groups(win)
        win_answers = _Answers.of(win)
        win_masks = _masks(win_groups, len(win))
        slices = sorted(set(win_masks) | set(ref.slices))
        seed = _seed(key)
        empty = np.zeros(0)
        no_reference = NumericReference.fit(empty, ev.psi_bins)

        def drift(sig: str) -> dict[str, list[dict]]:
            # Each signal is sorted once per window: a slice's values come out of that sort
            # already in order for KS, Wasserstein and PSI. Signals run in parallel threads.
            by_slice = (_sorted_by_slice(win.signals[sig].to_numpy(dtype=float), win_groups)
                        if sig in win.signals else {})
            return {sl: [self._drift_row(test, ref.numeric.get((sl, sig), no_reference), by_slice.get(sl, empty), sig)
                         for test in ev.signal_tests.get(sig, ev.drift_tests)] for sl in slices}
        drift_rows = dict(zip(signals, _parallel(drift, signals)))
        for sl in slices:
            wm = win_masks.get(sl, np.zeros(len(win), dtype=bool))
            for sig in signals:
                rows += [{**base, "slice": sl, "signal": sig, **r} for r in drift_rows[sig][sl]]
            wc, wok = win_answers.within(wm)
            rc, rok = ref.answers.get(sl, (np.zeros(0), np.zeros(0, dtype=bool)))
            werr, rerr = wilson_interval(int((~wok).sum()), len(wok)), wilson_interval(int((~rok).sum()), len(rok))
            enough = len(wok) >= ev.error_rate_min_n and len(rok) >= ev.error_rate_min_n
            rows.append({**base, "slice": sl, "detector": "wilson", "metric": "error_rate", "signal": "",
                         "variant": "wilson_95", "status": "ok" if enough else "insufficient_data",
                         "value": _f(werr.estimate), "reference_value": _f(rerr.estimate),
                         "ci_low": _f(werr.low), "ci_high": _f(werr.high), "n": werr.n, "n_reference": rerr.n})
            we = calibration(wc, wok, bins=ev.ece_bins, min_n=ev.ece_min_n)
            re_ = calibration(rc, rok, bins=ev.ece_bins, min_n=ev.ece_min_n)
            rows.append({**base, "slice": sl, "detector": "ece", "metric": "ece", "signal": "", "variant": we.variant,
                         "status": "ok" if we.status == re_.status == "ok" else "insufficient_data",
                         "value": _f(we.ece), "reference_value": _f(re_.ece), "ci_low": None, "ci_high": None,
                         "n": we.n, "n_reference": re_.n})
            if ev.calibration_bootstrap:
                d = calibration_drift(rc, rok, wc, wok, bins=ev.ece_bins, n_boot=ev.calibration_bootstrap, seed=seed,
                                      min_n=ev.ece_min_n)
                rows.append({**base, "slice": sl, "detector": "bootstrap", "metric": "ece_drift", "signal": "",
                             "variant": d.variant, "status": d.status, "value": _f(d.difference),
                             "reference_value": _f(d.reference_ece), "ci_low": _f(d.ci_low), "ci_high": _f(d.ci_high),
                             "n": d.n, "n_reference": d.n_reference, "effect": _f(d.difference),
                             "p_value": d.p_value if d.status == "ok" else None, "decision": None})
            if ev.performance_estimate:
                rows.append(self._performance_row(base, sl, ref, win, wm, rok))
        rows += self._slice_gaps(win, base)
        rows += self._missing_rows(win, ref, base)
        if ev.embedding_drift and ref.embeddings:
            rows += self._embedding_rows(key, window_end, base, ref, seed)
        if ev.trend_window:
            rows += self._trend_rows(key, base, rows)
        _control_false_discoveries(rows, ev)
        return rows

    # the direction in which each metric gets worse
    TREND_METRICS = {"error_rate": "increasing", "ece": "increasing", "estimated_accuracy": "decreasing"}

    def _trend_rows(self, key: RunKey, base: dict, rows: list[dict]) -> list[dict]:
        """Aging: each slice's error rate, ECE and estimated accuracy over the last intervals of
        this (interval, lag), this window included; a trend in the worse direction is a finding."""
        from detectors.trend import mann_kendall

        ev = self.config.evaluation
        span = timedelta(seconds=key.interval_s) * ev.trend_window
        past = self.store.evaluations(key.window_start - span, key.window_start)
        if len(past):
            past = past[(past["model_name"] == key.model_name) & (past["model_version"] == key.model_version)
                        & (past["interval_s"] == key.interval_s) & (past["lag_s"] == key.lag_s)
                        & past["metric"].isin(list(self.TREND_METRICS)) & (past["window_start"] < key.window_start)]
        out = []
        for r in rows:
            worse = self.TREND_METRICS.get(r["metric"])
            if worse is None:
                continue
            hist = past[(past["slice"] == r["slice"]) & (past["metric"] == r["metric"])] if len(past) else past
            values = [v if st == "ok" and v is not None else float("nan")
                      for v, st in zip(hist["value"] if len(hist) else [], hist["status"] if len(hist) else [])]
            values = (values + [r["value"] if r["status"] == "ok" and r["value"] is not None else float("nan")])
            t = mann_kendall(values[-ev.trend_window:], min_n=ev.trend_min_n)
            out.append({**base, "slice": r["slice"], "detector": "mann_kendall", "metric": "trend",
                        "signal": r["metric"], "variant": f"last_{ev.trend_window}_intervals_worse_{worse}",
                        "status": t.status, "value": _f(t.slope), "reference_value": None, "ci_low": None,
                        "ci_high": None, "n": t.n, "n_reference": 0, "effect": _f(t.tau),
                        # one-sided: only a trend in the worse direction counts
                        "p_value": (t.p_value / 2 if (t.s > 0) == (worse == "increasing") else 1.0)
                        if t.status == "ok" else None,
                        "decision": None})
        return out

    def _performance_row(self, base: dict, sl: str, ref: _Reference, win: Window, wm: np.ndarray,
                         ref_correct: np.ndarray) -> dict:
        """Label-free accuracy of the window's answered events, calibrated on the reference."""
        f = win.frame
        answered = wm & ~f["abstained"].to_numpy(dtype=bool)
        est = PerformanceSummary.of(ref.calibrator, f["confidence"].to_numpy(dtype=float)[answered]).estimate(
            min_n=self.config.evaluation.error_rate_min_n)
        ref_acc = float(ref_correct.mean()) if len(ref_correct) else None
        return {**base, "slice": sl, "detector": "cbpe", "metric": "estimated_accuracy", "signal": "",
                "variant": f"confidence_{ref.calibrator.kind}", "status": est.status, "value": _f(est.accuracy),
                "reference_value": _f(ref_acc) if ref_acc is not None else None, "ci_low": _f(est.ci_low),
                "ci_high": _f(est.ci_high), "n": est.n, "n_reference": len(ref_correct),
                "effect": _f(est.accuracy - ref_acc) if ref_acc is not None else None, "decision": None}

    def _embedding_rows(self, key: RunKey, window_end: datetime, base: dict, ref: _Reference, seed: int) -> list[dict]:
        from detectors.embedding import mmd_test

        ev = self.config.evaluation
        window = self.store.window_embeddings(key.model_name, key.model_version, key.window_start, window_end)
        rows = []
        for name, ref_emb in sorted(ref.embeddings.items()):
            vecs = window.get(name, [])
            win_emb = np.asarray(vecs, dtype=float) if vecs else np.zeros((0, ref_emb.shape[1]))
            if win_emb.ndim != 2 or win_emb.shape[1] != ref_emb.shape[1]:
                log.warning("embedding %r changed dimension (%s → %s): not tested", name, ref_emb.shape[1:],
                            win_emb.shape[1:])
                continue
            r = mmd_test(ref_emb, win_emb, permutations=ev.mmd_permutations, max_n=ev.mmd_max_n, seed=seed,
                         device=ev.mmd_device)
            rows.append({**base, "slice": ALL, "detector": "mmd", "metric": "mmd", "signal": f"embedding.{name}",
                         "variant": r.variant, "status": r.status, "value": _f(r.mmd2), "reference_value": None,
                         "ci_low": None, "ci_high": None, "n": r.n, "n_reference": r.n_reference,
                         "p_value": r.p_value if r.status == "ok" else None, "effect": _f(r.mmd2), "decision": None})
        return rows

    def _drift_row(self, test: str, summary: NumericReference, window: np.ndarray, signal: str) -> dict:
        ev = self.config.evaluation
        default = {"psi": ev.psi_threshold, "ks": ev.ks_min_effect, "wasserstein": ev.wasserstein_threshold}[test]
        threshold = ev.signal_thresholds.get(signal, {}).get(test, default)
        if test == "psi":
            r = psi_test(summary, window, threshold=threshold, min_n=ev.psi_min_n)
            variant = f"quantile_bins_{ev.psi_bins}"
        elif test == "ks":
            r = ks_test(summary, window, alpha=ev.fdr, min_n=ev.psi_min_n)
            variant = "two_sided_exact_reference" if summary.exact else "two_sided_quantile_summary"
        else:
            r = wasserstein_test(summary, window, threshold=threshold, min_n=ev.psi_min_n)
            variant = "normed_by_reference_std"
        ok = r.status == "ok"
        return {"detector": test, "metric": test, "variant": variant, "status": r.status, "value": _f(r.statistic),
                "reference_value": None, "ci_low": None, "ci_high": None, "n": r.n, "n_reference": r.n_reference,
                "p_value": r.p_value, "effect": _f(r.effect),
                "threshold": threshold,  # used by the decision below, not stored
                # PSI's and KS's decisions wait for Benjamini–Hochberg over the whole window
                "decision": (int(r.drift) if ok and test == "wasserstein" else None)}

    def _slice_gaps(self, win: Window, base: dict) -> list[dict]:
        """Each slice against the rest of the window: error rate, abstention rate, mean confidence."""
        ev = self.config.evaluation
        f = win.frame
        if not len(f) or win.slices.empty:
            return []
        labelled = _labelled_answers(f)
        errors = np.where(labelled, (f["label"].to_numpy() != f["pred_label"].to_numpy()).astype(float), np.nan)
        attrs = {c: win.slices[c].fillna("").astype(str).to_numpy(dtype=object) for c in win.slices.columns}
        for sig, edges in ev.bands.items():
            if sig in win.signals:
                attrs[sig] = band_labels(sig, win.signals[sig].to_numpy(dtype=float), edges)
        cross = [(a, b) for a, b in ev.cross if a in attrs and b in attrs]
        stats = slice_metrics(attrs, errors, f["abstained"].to_numpy(), f["confidence"].to_numpy(), cross=cross,
                              min_n=ev.error_rate_min_n, fdr=ev.fdr)
        return [{**base, "slice": r.slice, "detector": "two_proportion_z" if r.metric != "mean_confidence" else "welch_z",
                 "metric": f"{r.metric}_gap", "signal": "", "variant": "vs_rest_of_window", "status": r.status,
                 "value": _f(r.value), "reference_value": _f(r.rest_value), "ci_low": _f(r.ci_low),
                 "ci_high": _f(r.ci_high), "n": r.n, "n_reference": 0, "p_value": r.p_value, "effect": _f(r.gap),
                 # slice_metrics controlled false discoveries over every slice × metric already
                 "p_adjusted": r.p_adjusted, "decision": int(r.significant) if r.status == "ok" else None}
                for r in stats]

    def _missing_rows(self, win: Window, ref: _Reference, base: dict) -> list[dict]:
        """Per expected modality (media.expected_modalities), the share of the window's events that
        came without it, with a Wilson interval, next to the reference's share."""
        rows = []
        for m in self.config.media.expected_modalities:
            col = f"cross.missing_{m}"
            if col not in win.signals:
                continue
            flags = win.signals[col].to_numpy(dtype=float)
            flags = flags[np.isfinite(flags)]
            n_ref, ref_share = ref.missing.get(col, (0, math.nan))
            ok = len(flags) >= self.config.evaluation.error_rate_min_n
            w = wilson_interval(int(flags.sum()), len(flags))  # nan bounds when n == 0
            rows.append({**base, "slice": ALL, "detector": "wilson", "metric": "missing_modality_share", "signal": m,
                         "variant": "share_of_events", "status": "ok" if ok else "insufficient_data",
                         "value": _f(w.estimate), "reference_value": _f(ref_share) if n_ref else None,
                         "ci_low": _f(w.low), "ci_high": _f(w.high), "n": len(flags),
                         "n_reference": n_ref, "p_value": None, "effect": None, "decision": None})
        return rows

    # -- alerts and review ---------------------------------------------------------------------
    def apply_rules(self, rows: list[dict], key: RunKey, window_end: datetime, now: datetime) -> None:
        """Move each rule's alerts on this window's rows (pending → firing → resolved, with the
        rule's ``for``), then run the notification pass in the same transaction."""
        if len(self.config.evaluation.vintage_lags) > 1:
            rows = [{**r, "vintage": "+" + duration_text(key.lag_s)} for r in rows]
        if any(r.vs_previous for r in self.config.alerts.rules):
            prev = self.store.previous_values(key.model_name, key.model_version, key.interval_s, key.lag_s,
                                              key.window_start)
            rows = [{**r, "previous_value": prev.get((r["slice"], r["metric"], r["signal"]))} for r in rows]
        if any(r.vs_earlier_lag for r in self.config.alerts.rules):
            earlier = self.store.earlier_lag_values(key.model_name, key.model_version, key.interval_s, key.lag_s,
                                                    key.window_start)
            rows = [{**r, "earlier_lag_value": earlier.get((r["slice"], r["metric"], r["signal"]))} for r in rows]
        wanted = [(row["slice"], "alert_slice")
                  for row, change in self._move_alerts(rows, key.window_start, window_end, now) if change == "fire"]
        rc = self.config.review
        for metric, low, reason in (("estimated_accuracy", rc.estimated_accuracy_below, "low_estimated_accuracy"),
                                    ("mean_confidence_gap", rc.mean_confidence_below, "low_mean_confidence")):
            if low is not None:  # the gap rows' value is the slice's own mean confidence
                wanted += [(row["slice"], reason) for row in rows if row["metric"] == metric and row["status"] == "ok"
                           and row["value"] is not None and row["value"] < low]
        self._queue_slices(key, window_end, wanted, now)
        run_notifications(self.config, self.store, now)

    def apply_health(self, now: datetime) -> int:
        """Data-health rows of the ingest clock (monitor/health.py) through the same rules, in one
        transaction; the caller's notification pass then tells. Returns the alert changes made."""
        from monitor.health import health_rows

        if not any(r.metric in HEALTH_METRICS for r in self.config.alerts.rules):
            return 0
        with self.store.tx():
            self.store.lock_notifications()  # replicas measure alike; one of them moves the alerts
            changes = self._move_alerts(health_rows(self.config, self.store, now), now, now, now)
        return len(changes)

    def _move_alerts(self, rows: list[dict], window_start: datetime, window_end: datetime,
                     now: datetime) -> list[tuple[dict, str]]:
        changes = []
        for rule in self.config.alerts.rules:
            for row in rows:
                if not applies(rule, row):
                    continue
                d = decide(rule, row)
                current = self.store.get_alert(d.dedup_key)
                state = current["state"] if current else None
                pending_for = window_end - current["starts_at"] if state == "pending" else None
                change = transition(state, d.breached, pending_for, rule.for_)
                if change is None:
                    continue
                baseline = (" - reference" if rule.vs_reference else " - previous window" if rule.vs_previous
                            else " - earlier vintage" if rule.vs_earlier_lag else "")
                annotations = {
                    "summary": rule.summary or f"{rule.metric} {rule.field}{baseline} {rule.op} {rule.threshold}",
                    "value": f"{d.value:.4g}", "window_start": window_start.isoformat(),
                    "window_end": window_end.isoformat(), "n": str(row["n"]),
                }
                starts = {"pending": window_start, "fire": current["starts_at"] if state == "pending"
                          else window_start}.get(change, current["starts_at"] if current else window_start)
                alert = {"dedup_key": d.dedup_key, "rule": rule.name, "labels": d.labels, "annotations": annotations,
                         "value": d.value,
                         "state": {"pending": "pending", "fire": "firing", "resolve": "resolved",
                                   "clear": "cleared"}[change],
                         "starts_at": starts, "ends_at": window_end if change in ("resolve", "clear") else None}
                self.store.put_alert(alert, now)
                if change in ("fire", "resolve"):
                    log.warning("alert %s %s %s", alert["state"], rule.name, d.labels)
                changes.append((row, change))
        return changes

    def _queue_slices(self, key: RunKey, window_end: datetime, wanted: list[tuple[str, str]], now: datetime) -> None:
        """For each (slice, reason): the slice's least confident unlabelled events of the window, all
        within the strata's daily budgets (monitor/review.py). The window is read once."""
        rc = self.config.review
        if not wanted or rc.events_per_alert <= 0:
            return
        pool = self.store.unlabelled_events(key.model_name, key.model_version, key.window_start, window_end)
        candidates, seen = [], set()
        for sl, reason in wanted:
            inside = _slice_predicate(sl)
            picked = [(e, c, s) for e, c, s in pool if inside(s)][:rc.events_per_alert]
            candidates += [{"event_id": e, "reason": f"{reason}:{sl}", "priority": round(1 - c, 6) + 1.0,
                            "created_at": now, "stratum": stratum_of(s, rc.stratify_by)}
                           for e, c, s in picked if not (e in seen or seen.add(e))]
        day = floor_to(now, timedelta(days=1), self.config.evaluation.tz)
        self.store.enqueue_review(within_budget(candidates, self.store.review_counts_since(day),
                                                rc.daily_budget_per_stratum))


def _slice_predicate(sl: str) -> Callable[[dict], bool]:
    """Whether an event's slice attributes put it in slice ``sl``: ``*``, ``k=v`` or a crossed
    ``k=v&k2=v2``. (A signal band such as ``image.brightness=[40,80)`` is not an attribute: no
    event matches it here.)"""
    if sl == ALL:
        return lambda s: True
    pairs = [part.partition("=")[::2] for part in sl.split("&")]
    return lambda s: all(s.get(k) == v for k, v in pairs)


HEALTH_METRICS = ("dead_letter_rate", "source_silence_s", "ingest_lag_s")


def duration_text(seconds: int) -> str:
    """3600 → "1h", 604800 → "7d", 0 → "0s": the config's own duration spelling."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _f(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else float(x)


def _seed(key: RunKey) -> int:
    """A seed fixed by the window, so a backfill's bootstrap gives the live run's numbers."""
    import zlib

    return zlib.crc32(f"{key.model_name}|{key.model_version}|{key.interval_s}|{key.lag_s}|"
                      f"{key.window_start.isoformat()}".encode())


def _control_false_discoveries(rows: list[dict], ev) -> None:
    """Benjamini–Hochberg within each test family of the window — one per metric across all
    slices × signals — so that a family of few tests (e.g. one embedding's MMD, whose permutation
    p-value cannot go below 1/(permutations + 1)) is not drowned by hundreds of signal tests.
    Rows that arrive adjusted (the slice gaps: ``slice_metrics`` controls every slice × metric
    together) are left as they are. Then the decisions that depend on it: KS needs an effect of
    at least ks_min_effect, PSI a value of at least psi_threshold, calibration drift an interval
    above 0."""
    families: dict[str, list[dict]] = {}
    for r in rows:
        if r.get("p_value") is not None and r.get("p_adjusted") is None and r["status"] == "ok":
            families.setdefault(r["metric"], []).append(r)
    for tested in families.values():
        rejected, adjusted = benjamini_hochberg(np.array([r["p_value"] for r in tested]), ev.fdr)
        for r, rej, adj in zip(tested, rejected, adjusted):
            _decide(r, bool(rej), float(adj), ev)


def _decide(r: dict, rejected: bool, adjusted: float, ev) -> None:
    r["p_adjusted"] = adjusted
    metric = r["metric"]
    if metric == "ks":
        r["decision"] = int(rejected and (r["effect"] or 0.0) >= r.get("threshold", ev.ks_min_effect))
    elif metric == "psi":  # above the threshold, and more than small-sample noise
        r["decision"] = int(rejected and (r["value"] or 0.0) >= r.get("threshold", ev.psi_threshold))
    elif metric == "ece_drift":  # worse than the reference, beyond chance
        r["decision"] = int(rejected and (r["ci_low"] or 0.0) > 0)
    else:  # MMD, trends
        r["decision"] = int(rejected)
