"""What the report and the daemon's pages show, as plain data (``report.json``); monitor/pages.py
draws it.

Everything comes from the store: the evaluations (each metric's series with its interval, the
reference and the p-value after FDR), the alerts and their incidents, the review queue, and — for
the distributions and the reliability diagrams — the events the store still keeps (a window
purged by ``store.retention`` shows its series, not its events). The charts follow one window
length (``Evidence.main_key``) at the largest label-maturity lag (the labels most complete); the
vintages section compares the lags.
"""

from __future__ import annotations

import json
import math
import shlex
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from alerts.incidents import family, group_incidents, incident_id, slice_attribute_values
from alerts.rules import alert_labels, applies, dedup_key, rule_metrics, subject
from detectors.calibration import calibration
from detectors.drift import NumericReference
from detectors.text import language_name
from monitor.checks.base import WindowView
from monitor.checks.signal_drift import CATEGORY_SIGNALS
from monitor.core.matchers import literal
from monitor.core.records import ALL, EVALUATION_COLUMNS, AlertRecord, EvaluationRow
from monitor.core.settings import duration_text, iso_time
from monitor.reference import reference_from_file, reference_range

# the series every report and page draws, per slice (signal drift: per drifted signal)
SERIES = ("error_rate", "ece", "ece_drift", "estimated_accuracy")
DRIFT = ("psi", "ks", "chisquare")  # the rows whose alert page shows the distribution
MIN_POINTS = 4  # windows a chart of a period shows at least, where a window length allows
# an alert's or an incident's page reads this much before it began (its rows over time against
# the reference level), not the store's whole history: it opens as fast at 90 days as at 9
PAGE_CONTEXT = timedelta(days=28)


def _num(x) -> float | None:
    if x is None:
        return None
    try:
        x = float(x)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


@dataclass
class Evidence:
    """What the store holds for a period: its evaluation rows and alert episodes, and the windows
    of events read so far (each window is read once per report or page)."""

    store: object
    config: object
    start: datetime | None
    end: datetime | None
    frame: pd.DataFrame = field(init=False)
    episodes: list[AlertRecord] = field(init=False)
    _windows: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.frame = self.store.evaluations.frame(self.start, self.end)
        self.episodes = [
            a
            for a in self.store.alerts.episodes()
            if (self.end is None or a.starts_at < self.end)
            and (self.start is None or a.ends_at is None or a.ends_at >= self.start)
        ]

    # -- which rows -----------------------------------------------------------------------------
    def main_key(self) -> tuple[int, int] | None:
        """(interval_s, lag_s) the charts follow: the longest evaluated window length that fits
        the period at least ``MIN_POINTS`` times (a week's report follows daily windows, a day's
        hourly ones; a page without a period the longest), at its largest lag."""
        f = self.frame
        if not len(f):
            return None
        have = sorted({int(i) for i in f["interval_s"]})
        interval = have[-1]
        if self.start is not None and self.end is not None:
            span = (self.end - self.start).total_seconds()
            fits = [iv for iv in have if span / iv >= MIN_POINTS]
            interval = fits[-1] if fits else have[0]
        return interval, int(f.loc[f["interval_s"] == interval, "lag_s"].max())

    def rows(self, metric: str | tuple, key: tuple[int, int] | None = None) -> pd.DataFrame:
        f = self.frame
        key = key or self.main_key()
        if key is None:
            return f.iloc[0:0]
        metrics = (metric,) if isinstance(metric, str) else metric
        return f[f["metric"].isin(metrics) & (f["interval_s"] == key[0]) & (f["lag_s"] == key[1])]

    def alert_rows(self, alert: AlertRecord) -> pd.DataFrame:
        """The rows an alert was decided on, every window (its fingerprint recomputed from each
        candidate row's labels, so an alert of one interval or vintage gets only its own)."""
        rule = next((r for r in self.config.alerts.rules if r.name == alert.rule), None)
        lab = alert.labels
        f = self.frame
        if rule is None or not len(f):
            return f.iloc[0:0]
        sig = f"{lab['modality']}.{lab['signal']}" if "signal" in lab else lab.get("follows", "")
        cand = f[
            (f["model_name"] == lab.get("model"))
            & (f["slice"] == lab.get("slice"))
            & f["metric"].isin(rule_metrics(rule))
            & (f["signal"] == sig)
        ]
        if not len(cand):
            return cand
        many_lags = len(self.config.evaluation.vintage_lags) > 1
        many_intervals = len(self.config.evaluation.intervals) > 1
        keep = []
        for (iv, lag), g in cand.groupby(["interval_s", "lag_s"]):
            row = next(g.itertuples())
            labels = alert_labels(
                rule,
                _as_row(row),
                "+" + duration_text(int(lag)) if many_lags else "",
                duration_text(int(iv)) if many_intervals else "",
            )
            if applies(rule, _as_row(row)) and dedup_key(labels) == alert.dedup_key:
                keep.append(g)
        return pd.concat(keep) if keep else cand.iloc[0:0]

    # -- events the store keeps -----------------------------------------------------------------
    def window(self, model: str, version: str, start: datetime, end: datetime, lag_s: int) -> WindowView:
        key = (model, version, start, end, lag_s)
        if key not in self._windows:
            w = self.store.events.load_window(model, version, start, end, end + timedelta(seconds=lag_s))
            self._windows[key] = WindowView(w)
        return self._windows[key]

    def reference(self, model: str, version: str, lag_s: int) -> WindowView | None:
        ref = self.config.evaluation.reference
        key = ("reference", model, version, lag_s)
        if key in self._windows:
            return self._windows[key]
        if ref.file is not None:
            self._windows[key] = WindowView(reference_from_file(self.config, ref.file, model)[0])
            return self._windows[key]
        mv = next(
            (
                m
                for m in self.store.events.model_versions()
                if (m.model_name, m.model_version) == (model, version)
            ),
            None,
        )
        if mv is None:
            return None
        r0, r1 = reference_range(self.config, mv.first_ts)
        return self.window(model, version, r0, r1, lag_s)


def _as_row(t):
    """A frame row (itertuples) as the EvaluationRow fields rules read."""
    return EvaluationRow(**{c: getattr(t, c) for c in EVALUATION_COLUMNS})


def _mask(view: WindowView, slice_: str) -> np.ndarray:
    if slice_ == ALL or "&" not in slice_:
        return view.mask(slice_)
    m = np.ones(view.n, dtype=bool)
    for part in slice_.split("&"):
        m &= view.mask(part)
    return m


# -- the pieces ---------------------------------------------------------------------------------
def series(rows: pd.DataFrame) -> list[dict]:
    """One series per (model, slice, signal): each window's value, its interval, the reference,
    the p-value after FDR and n; ``status`` says when the sample was too small to say."""
    out = []
    for (model, sl, sig, metric), g in rows.groupby(["model_name", "slice", "signal", "metric"], sort=True):
        out.append(
            {
                "model": model,
                "slice": sl,
                "signal": sig or None,
                "metric": metric,
                "points": [
                    {
                        "window_start": iso_time(r.window_start),
                        "window_end": iso_time(r.window_end),
                        "status": r.status,
                        "value": _num(r.value),
                        "reference": _num(r.reference_value),
                        "ci_low": _num(r.ci_low),
                        "ci_high": _num(r.ci_high),
                        "p_adjusted": _num(r.p_adjusted),
                        "effect": _num(r.effect),
                        "n": int(r.n),
                        "n_reference": int(r.n_reference),
                    }
                    for r in g.sort_values("window_start").itertuples()
                ],
            }
        )
    return out


def reliability(ev: Evidence, model: str, version: str, start, end, lag_s: int, slice_: str) -> dict | None:
    """The reliability diagram of one window against the reference, for one slice: per confidence
    bin, the mean confidence, the accuracy and the count."""
    view, ref = ev.window(model, version, start, end, lag_s), ev.reference(model, version, lag_s)

    def bins(v: WindowView | None) -> dict | None:
        if v is None:
            return None
        m = _mask(v, slice_) & v.labelled
        # the calibration check's bins and minimum sample: the diagram shows what its ECE measured
        c = ev.config.evaluation.checks.calibration
        res = calibration(v.confidence[m], v.correct[m], bins=c.bins, min_n=c.min_n)
        if res.status != "ok":
            return None
        return {
            "ece": _num(res.ece),
            "n": int(res.n),
            "bins": [
                {
                    "lo": b.low,
                    "hi": b.high,
                    "n": b.n,
                    "confidence": _num(b.mean_confidence),
                    "accuracy": _num(b.accuracy),
                }
                for b in res.bins
            ],
        }

    window = bins(view)
    if window is None:
        return None
    return {"slice": slice_, "window_start": iso_time(start), "window": window, "reference": bins(ref)}


def distribution(ev: Evidence, model: str, version: str, start, end, lag_s: int, slice_: str, signal: str):
    """A signal's distribution in one window against the reference's, on the reference's PSI bins."""
    view, ref = ev.window(model, version, start, end, lag_s), ev.reference(model, version, lag_s)
    if ref is None or signal not in view.signals.columns or signal not in ref.signals.columns:
        return None
    rv = ref.signals[signal].to_numpy(dtype=float)[_mask(ref, slice_)]
    wv = view.signals[signal].to_numpy(dtype=float)[_mask(view, slice_)]
    if signal in CATEGORY_SIGNALS:
        return _category_shares(signal, slice_, start, rv[np.isfinite(rv)], wv[np.isfinite(wv)])
    fitted = NumericReference.fit(rv)
    wv = wv[np.isfinite(wv)]
    if fitted.n == 0 or wv.size == 0:
        return None
    counts = fitted.psi_counts(wv)
    return {
        "slice": slice_,
        "signal": signal,
        "window_start": iso_time(start),
        "bins": fitted.psi_bin_labels(),
        "window_share": (counts / counts.sum()).tolist(),
        "reference_share": list(fitted.psi_shares),
        "n": int(wv.size),
        "n_reference": int(fitted.n),
        "window_mean": float(wv.mean()),
        "reference_mean": fitted.mean,
    }


def _category_shares(
    signal: str, slice_: str, start, rv: np.ndarray, wv: np.ndarray, top: int = 12
) -> dict | None:
    """A category signal's shares (the reference's ``top`` most frequent categories and the
    window's four, then the rest as one) in a window against the reference's; a language is shown
    by its ISO 639-3 code."""
    if rv.size == 0 or wv.size == 0:
        return None

    def most(v: np.ndarray, k: int) -> list[float]:
        codes, counts = np.unique(v, return_counts=True)
        return [float(c) for c in codes[np.argsort(-counts, kind="stable")][:k]]

    # the reference's most frequent, and the window's (a new language is what moved)
    kept = most(rv, top)
    kept += [c for c in most(wv, 4) if c not in kept]
    name = language_name if signal == "text.language" else (lambda c: str(int(c)))

    def shares(v: np.ndarray) -> list[float]:
        got = [round(float(np.count_nonzero(v == c)) / v.size, 6) for c in kept]
        return got + [round(max(0.0, 1.0 - sum(got)), 6)]

    return {
        "slice": slice_,
        "signal": signal,
        "window_start": iso_time(start),
        "bins": [name(c) for c in kept] + ["other"],
        "window_share": shares(wv),
        "reference_share": shares(rv),
        "n": int(wv.size),
        "n_reference": int(rv.size),
        "window_mean": None,
        "reference_mean": None,
    }


def heatmap(rows: pd.DataFrame) -> dict | None:
    """Each slice's error-rate gap to the rest of the traffic per window (percentage points):
    a slice that went bad stands out."""
    if not len(rows):
        return None
    ok = rows[rows["status"] == "ok"]
    windows = sorted(set(rows["window_start"]))
    slices = sorted(set(rows["slice"]))
    z = [[None] * len(windows) for _ in slices]
    p = [[None] * len(windows) for _ in slices]
    wi, si = {w: i for i, w in enumerate(windows)}, {s: i for i, s in enumerate(slices)}
    for r in ok.itertuples():
        gap = _num(r.effect)
        z[si[r.slice]][wi[r.window_start]] = None if gap is None else round(100 * gap, 3)
        p[si[r.slice]][wi[r.window_start]] = _num(r.p_adjusted)
    return {"windows": [iso_time(w) for w in windows], "slices": slices, "z": z, "p_adjusted": p}


def _lead_row(ev: Evidence, a: AlertRecord, latest: bool = False) -> dict | None:
    """The row of the window an alert last moved on (``latest``: of its latest window with a
    measurement): what it measured there."""
    rows = ev.alert_rows(a)
    if not len(rows):
        return None
    ws = None if latest else a.annotations.get("window_start")
    at = (
        rows.loc[np.array([iso_time(w) == ws for w in rows["window_start"]], dtype=bool)]
        if ws
        else rows.iloc[0:0]
    )
    ok = rows[rows["status"] == "ok"]
    r = next((at if len(at) else (ok if len(ok) else rows).sort_values("window_start").tail(1)).itertuples())
    return {
        "metric": r.metric,
        "window_start": iso_time(r.window_start),
        "value": _num(r.value),
        "reference": _num(r.reference_value),
        "effect": _num(r.effect),
        "ci_low": _num(r.ci_low),
        "ci_high": _num(r.ci_high),
        "p_adjusted": _num(r.p_adjusted),
        "n": int(r.n),
        "n_reference": int(r.n_reference),
        "model_version": r.model_version,
        "interval_s": int(r.interval_s),
        "lag_s": int(r.lag_s),
    }


def alert_summary(a: AlertRecord) -> dict:
    return {
        "fingerprint": a.dedup_key,
        "rule": a.rule,
        "state": a.state,
        "labels": a.labels,
        "annotations": a.annotations,
        "starts_at": iso_time(a.starts_at),
        "ends_at": iso_time(a.ends_at),
        "value": a.value,
        "about": f"{a.labels.get('slice', '*')}{subject(a.labels)}",
    }


def incidents_of(ev: Evidence, states=("firing", "resolved")) -> list:
    attrs = slice_attribute_values(set(ev.frame["slice"]) if len(ev.frame) else ())
    return group_incidents(
        ev.episodes, attrs, states=states, worse_than_rest=ev.store.evaluations.worse_than_rest()
    )


def incident_summary(ev: Evidence, inc, ids: dict[str, str]) -> dict:
    # the lead says how big and how sure: a rule's own measure before a trend that follows one
    # (an Aging row's effect is a slope's, not the change), the family the incident began with,
    # what still fires, then the largest effect
    lead = max(
        inc.alerts,
        key=lambda a: (
            not a.labels.get("follows"),
            family(a) == inc.families[0],
            a.state == "firing",
            abs(_num(a.annotations.get(_metric_of(a) + "_effect")) or 0),
        ),
    )
    return {
        "incident": ids.get(inc.key, incident_id(inc)),
        "key": inc.key,
        "model": inc.model,
        "place": inc.place,
        "where": "all traffic" if inc.place == ALL else inc.place,
        "what": ", ".join(inc.families),
        "since": iso_time(inc.since),
        "headline": inc.headline,
        "grouped_because": inc.because,
        "firing": sum(a.state == "firing" for a in inc.alerts),
        "lead": {"alert": alert_summary(lead), "row": _lead_row(ev, lead)},
        "alerts": [a.dedup_key + "@" + (iso_time(a.starts_at) or "") for a in inc.alerts],
    }


def _most_moved(alerts, k: int = 3) -> list[AlertRecord]:
    """The ``k`` signal alerts of an incident whose PSI moved most (one per signal: the same
    signal's distribution at all traffic and at the incident's slice tells the same story)."""
    seen, out = set(), []
    cand = [a for a in alerts if "signal" in a.labels and a.labels.get("modality") not in (None, "cross")]
    for a in sorted(cand, key=lambda a: -(_num(a.annotations.get("psi")) or 0)):
        key = (a.labels["modality"], a.labels["signal"])
        if key not in seen:
            seen.add(key)
            out.append(a)
    return out[:k]


def _metric_of(a: AlertRecord) -> str:
    keys = [k[: -len("_effect")] for k in a.annotations if k.endswith("_effect")]
    return keys[0] if keys else ""


def incident_ids(store) -> dict[str, str]:
    """The id each incident was notified under (its alerts' groups' ``incident`` label), by the
    fingerprints it was told with."""
    out = {}
    for g in store.alerts.groups():
        inc = g.group_labels.get("incident")
        if inc:
            for fp in g.notified:
                out[fp] = inc
    return out


def ids_by_key(store, incidents) -> dict[str, str]:
    told = incident_ids(store)
    out = {}
    for inc in incidents:
        known = [told[a.dedup_key] for a in inc.alerts if a.dedup_key in told]
        if known:
            out[inc.key] = min(known)
    return out


def data_health(ev: Evidence, key: tuple[int, int] | None) -> dict:
    """Events per window, dead letters by source and reason class, missing modalities' shares."""
    store = ev.store
    per_window = []
    if key is not None:
        ws = ev.rows("error_rate", key)
        for (model, start, end), _ in ws.groupby(["model_name", "window_start", "window_end"], sort=True):
            n, mean_lag, max_lag = store.events.arrivals(model, start, end)
            per_window.append(
                {
                    "model": model,
                    "window_start": iso_time(start),
                    "events": n,
                    "ingest_lag_mean_s": mean_lag,
                    "ingest_lag_max_s": max_lag,
                }
            )
    missing = (
        series(ev.rows("psi", key)[lambda f: f["signal"].str.startswith("cross.missing_")]) if key else []
    )
    return {
        "events_per_window": per_window,
        "dead_letters": [
            {"source": s, "reason": r, "count": n}
            for (s, r), n in sorted(store.ops.dead_letter_reasons().items())
        ],
        "missing_modalities": missing,
        "watermark": iso_time(store.events.watermark()),
    }


def empty_period(store, start: datetime, end: datetime) -> dict | None:
    """Where no event came with an event time in [start, end): when events came next (None: the
    period had events). An index probe per model version, whatever the period holds."""
    nxt = [
        store.events.next_event_at(mv.model_name, mv.model_version, start)
        for mv in store.events.model_versions()
    ]
    nxt = [t for t in nxt if t is not None]
    if any(t < end for t in nxt):
        return None
    return {"events": 0, "next_event_at": iso_time(min(nxt)) if nxt else None}


def build_report(store, config, start: datetime, end: datetime, generated_at: datetime) -> dict:
    ev = Evidence(store, config, start, end)
    empty = empty_period(store, start, end)
    if empty is not None:
        # nothing was evaluated in it: the incidents of before are the reports of before, not
        # repeated in every period a stretch without events spans
        ev.episodes = [a for a in ev.episodes if a.starts_at >= start]
    key = ev.main_key()
    incidents = incidents_of(ev)
    ids = ids_by_key(store, incidents)
    # per incident, its most moved signals (by PSI): their series and distributions
    leads = [a for i in incidents for a in _most_moved(i.alerts)]
    drifted = {
        (a.labels.get("model"), a.labels["slice"], f"{a.labels['modality']}.{a.labels['signal']}")
        for a in leads
    }
    drift_rows = ev.rows("psi", key)
    drift_rows = drift_rows.loc[
        np.array(
            [
                (m, s, g) in drifted
                for m, s, g in zip(drift_rows["model_name"], drift_rows["slice"], drift_rows["signal"])
            ],
            dtype=bool,
        )
    ]
    dists = []
    for a in leads:
        lead = _lead_row(ev, a, latest=True)
        if lead is None or lead["metric"] not in DRIFT:
            continue
        sig = f"{a.labels['modality']}.{a.labels['signal']}"
        if any(d["slice"] == a.labels["slice"] and d["signal"] == sig for d in dists):
            continue
        ws = pd.Timestamp(lead["window_start"]).to_pydatetime()
        d = distribution(
            ev,
            a.labels["model"],
            lead["model_version"],
            ws,
            ws + timedelta(seconds=lead["interval_s"]),
            lead["lag_s"],
            a.labels["slice"],
            sig,
        )
        if d is not None:
            dists.append({**d, "alert": a.dedup_key})
    rel = None
    er = ev.rows("error_rate", key)
    if len(er):
        last = er[(er["slice"] == ALL) & (er["status"] == "ok")].sort_values("window_start").tail(1)
        if len(last):
            r = next(last.itertuples())
            rel = reliability(
                ev, r.model_name, r.model_version, r.window_start, r.window_end, int(r.lag_s), ALL
            )
    return {
        "generated_at": generated_at.isoformat(),
        "from": start.isoformat(),
        "to": end.isoformat(),
        "empty": empty,
        "charts_follow": None if key is None else {"interval_s": key[0], "lag_s": key[1]},
        "counts": store.ops.counts(),
        "incidents": [incident_summary(ev, i, ids) for i in incidents],
        "alerts": [alert_summary(a) for a in ev.episodes],
        "series": series(ev.rows(SERIES, key)),
        "drift": series(drift_rows),
        "distributions": dists,
        "reliability": rel,
        "heatmap": heatmap(ev.rows("error_rate_gap", key)),
        "vintages": vintages(ev),
        "review": {**store.review.stats(), "created_per_day": store.review.created_per_day()},
        "data_health": data_health(ev, key),
        "streams": streams(ev, key, end),
        "intervals": intervals(ev.frame),
    }


def streams(ev: Evidence, key: tuple[int, int] | None, end: datetime) -> dict:
    """Per modality: its own answers' error rate over time (all traffic; where events carry
    ``output.per_modality``), how fusion compares with the best single stream, and each stream's
    trust state as it stood at the period's end (what GET /v1/trust served then)."""
    from monitor.trust import trust_now

    rows = ev.rows(("modality_error_rate", "fusion_vs_best"), key) if key else ev.frame.iloc[0:0]
    trust = trust_now(ev.store, ev.config, at=end)["trust"]
    order = {"failed": 0, "degraded": 1, "unknown": 2, "ok": 3}
    trust.sort(key=lambda t: (order.get(t["state"], 9), t["modality"], t["slice"]))
    return {"per_modality": series(rows[rows["slice"] == ALL]), "trust": trust}


def vintages(ev: Evidence) -> list[dict]:
    """All traffic's error rate at each label-maturity lag, per window: what late labels changed."""
    f = ev.frame
    key = ev.main_key()
    if key is None:
        return []
    rows = f[(f["metric"] == "error_rate") & (f["slice"] == ALL) & (f["interval_s"] == key[0])]
    return [
        {"lag_s": int(lag), "lag": duration_text(int(lag)), "series": series(g)}
        for lag, g in rows.groupby("lag_s", sort=True)
    ]


def intervals(frame: pd.DataFrame) -> list[dict]:
    """Every evaluated window (per model version, interval and lag) with the rows of the metrics
    the checks report (each check's ``reported``)."""
    from monitor.checks import reported_metrics

    out = []
    if not len(frame):
        return out
    reported = reported_metrics()
    for (mn, mv, iv, lag, ws), g in frame.groupby(
        ["model_name", "model_version", "interval_s", "lag_s", "window_start"], sort=True
    ):
        entry = {
            "model": {"name": mn, "version": mv},
            "interval_s": int(iv),
            "lag_s": int(lag),
            "window_start": iso_time(ws),
            "window_end": iso_time(g["window_end"].iloc[0]),
        }
        for metric in reported:
            entry[metric] = [
                {
                    "slice": r.slice,
                    "signal": r.signal or None,
                    "status": r.status,
                    "value": _num(r.value),
                    "reference": _num(r.reference_value),
                    "ci_low": _num(r.ci_low),
                    "ci_high": _num(r.ci_high),
                    "n": int(r.n),
                    "n_reference": int(r.n_reference),
                }
                for r in g[g["metric"] == metric].itertuples()
            ]
        out.append(entry)
    return out


# -- one alert, one incident ---------------------------------------------------------------------
def alert_page(store, config, fingerprint: str) -> dict | None:
    """Everything the page of one alert shows: its episodes, its rows over time, the charts of its
    signal or slice, the review items it queued, how to silence it. None: no such alert."""
    episodes = [a for a in store.alerts.episodes() if a.dedup_key == fingerprint]
    current = store.alerts.get([fingerprint]).get(fingerprint)
    if current is None and not episodes:
        return None
    latest = current or episodes[-1]
    ev = Evidence(store, config, latest.starts_at - PAGE_CONTEXT, None)
    rows = ev.alert_rows(latest)
    lab = latest.labels
    out = {
        "alert": alert_summary(latest),
        "episodes": [alert_summary(a) for a in episodes],
        "rows": series(rows),
        "lead": _lead_row(ev, latest),
        "distribution": None,
        "reliability": None,
        "series": series(
            ev.rows(SERIES)[
                lambda f: (f["slice"] == lab.get("slice")) & (f["model_name"] == lab.get("model"))
            ]
        ),
        "review": _review_items(store, lab.get("slice", ALL)),
        "silence": silence_hint(config, latest),
        "incident": None,
    }
    lead = _lead_row(ev, latest, latest=True)  # the charts show where it stands now
    if lead is not None:
        ws = pd.Timestamp(lead["window_start"]).to_pydatetime()
        we = ws + timedelta(seconds=lead["interval_s"])
        if lead["metric"] in DRIFT and "signal" in lab:
            out["distribution"] = distribution(
                ev,
                lab["model"],
                lead["model_version"],
                ws,
                we,
                lead["lag_s"],
                lab["slice"],
                f"{lab['modality']}.{lab['signal']}",
            )
        if lead["metric"] in ("ece", "ece_drift", "error_rate", "error_rate_gap"):
            out["reliability"] = reliability(
                ev, lab["model"], lead["model_version"], ws, we, lead["lag_s"], lab["slice"]
            )
    for inc in incidents_of(ev):
        if any(a.dedup_key == fingerprint for a in inc.alerts):
            out["incident"] = incident_summary(ev, inc, ids_by_key(store, [inc]))
    return out


def incident_page(store, config, incident: str) -> dict | None:
    """The page of one incident (by the id its notifications carry): its alerts' pages in one."""
    told = {fp for fp, i in incident_ids(store).items() if i == incident}
    began = [a.starts_at for a in store.alerts.episodes() if a.dedup_key in told]
    ev = Evidence(store, config, min(began) - PAGE_CONTEXT if began else None, None)
    incidents = incidents_of(ev)
    ids = ids_by_key(store, incidents)
    found = next((i for i in incidents if ids.get(i.key, incident_id(i)) == incident), None)
    if found is None:
        return None
    return {
        "incident": incident_summary(ev, found, ids),
        "alerts": [alert_summary(a) for a in found.alerts],
    }


def _review_items(store, slice_: str) -> dict:
    items = [
        i
        for state in ("queued", "exported")
        for i in store.review.queue(state)
        if i.reason.endswith(":" + slice_)
    ]
    return {
        "queued": len(items),
        "items": [
            {
                "event_id": i.event_id,
                "reason": i.reason,
                "pred_label": i.pred_label,
                "confidence": _num(i.confidence),
                "ts": iso_time(i.ts),
            }
            for i in items[:20]
        ],
    }


def silence_hint(config, a: AlertRecord) -> dict:
    """How to silence an alert: the CLI line and the API call (behind the ingest tokens). Label
    values are a producer's strings: each argument is quoted for the shell it is pasted into, the
    body is JSON, and a value that starts with ``~`` is matched as the literal it is."""
    keep = ("alertname", "model", "slice", "modality", "signal")
    matchers = {k: literal(v) for k, v in a.labels.items() if k in keep}
    base = config.alerts.external_url.rstrip("/")
    body = json.dumps({"matchers": matchers, "duration": "4h", "comment": "…"}, ensure_ascii=True)
    args = [x for k, v in matchers.items() for x in ("-m", f"{k}={v}")]
    return {
        "matchers": matchers,
        "cli": shlex.join(["modalwatch", "silence", "add", *args, "--duration", "4h", "--comment", "…"]),
        # the token is the reader's own variable, so it stays outside the quotes
        "api": 'curl -X POST -H "Authorization: Bearer $MODALWATCH_TOKEN"'
        " -H 'Content-Type: application/json'"
        f" --data {shlex.quote(body)} {shlex.quote(base + '/v1/silences')}",
    }


def write_report(report: dict, out_dir: Path, base: str = "") -> tuple[Path, Path]:
    """``report.json`` and ``report.html`` under ``out_dir``; ``base``: where the daemon's pages are
    (``alerts.external_url``), which the page's links open."""
    from monitor.pages import report_html

    out_dir.mkdir(parents=True, exist_ok=True)
    jp, hp = out_dir / "report.json", out_dir / "report.html"
    jp.write_text(json.dumps(report, indent=1, sort_keys=True), encoding="utf-8")
    hp.write_text(report_html(report, base.rstrip("/")), encoding="utf-8")
    return jp, hp
