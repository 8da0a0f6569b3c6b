"""Periodic longitudinal report: ``report.json`` and a self-contained ``report.html`` (no fetches)."""

from __future__ import annotations

import html
import json
import math
from datetime import datetime
from pathlib import Path

import pandas as pd

from alerts.rules import subject
from monitor.checks import reported_metrics


def _iso(dt) -> str | None:
    return None if dt is None or (isinstance(dt, float) and math.isnan(dt)) else pd.Timestamp(dt).isoformat()


def build_report(store, start: datetime, end: datetime, generated_at: datetime) -> dict:
    ev = store.evaluations.frame(start, end)
    # every episode active in the period (an alert that fired twice in it is two), not only
    # each fingerprint's latest state
    alerts = [
        a for a in store.alerts.episodes() if a.starts_at < end and (a.ends_at is None or a.ends_at >= start)
    ]
    reported = reported_metrics()  # each check names the metrics whose series the report shows
    intervals = []
    if len(ev):
        for (mn, mv, iv, lag, ws), g in ev.groupby(
            ["model_name", "model_version", "interval_s", "lag_s", "window_start"], sort=True
        ):

            def pick(metric: str, g=g) -> list[dict]:
                sub = g[g["metric"] == metric]
                return [
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
                    for r in sub.itertuples()
                ]

            intervals.append(
                {
                    "model": {"name": mn, "version": mv},
                    "interval_s": int(iv),
                    "lag_s": int(lag),
                    "window_start": _iso(ws),
                    "window_end": _iso(g["window_end"].iloc[0]),
                    **{metric: pick(metric) for metric in reported},
                }
            )
    from alerts.incidents import group_incidents, slice_attribute_values

    attrs = slice_attribute_values(set(ev["slice"]) if len(ev) else ())
    incidents = group_incidents(
        alerts, attrs, states=("firing", "resolved"), worse_than_rest=store.evaluations.worse_than_rest()
    )
    index = {(a.dedup_key, a.starts_at): k for k, a in enumerate(alerts)}  # an episode's place in "alerts"
    return {
        "generated_at": generated_at.isoformat(),
        "from": start.isoformat(),
        "to": end.isoformat(),
        "counts": store.ops.counts(),
        "incidents": [
            {
                "incident": i.key,
                "place": i.place,
                "families": list(i.families),
                "since": _iso(i.since),
                "headline": i.headline,
                "grouped_because": i.because,
                "alerts": [index[a.dedup_key, a.starts_at] for a in i.alerts],  # into "alerts"
                "firing": sum(a.state == "firing" for a in i.alerts),
            }
            for i in incidents
        ],
        "intervals": intervals,
        "review": store.review.stats(),
        "alerts": [
            {
                "dedup_key": a.dedup_key,
                "rule": a.rule,
                "state": a.state,
                "labels": a.labels,
                "annotations": a.annotations,
                "starts_at": _iso(a.starts_at),
                "ends_at": _iso(a.ends_at),
                "value": a.value,
            }
            for a in alerts
        ],
    }


def _num(x) -> float | None:
    return None if x is None or (isinstance(x, float) and not math.isfinite(x)) else float(x)


def write_report(report: dict, out_dir: Path) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    jp, hp = out_dir / "report.json", out_dir / "report.html"
    jp.write_text(json.dumps(report, indent=1, sort_keys=True), encoding="utf-8")
    hp.write_text(render_html(report), encoding="utf-8")
    return jp, hp


def _spark(values: list[float | None], width: int = 220, height: int = 36) -> str:
    pts = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(pts) < 2:
        return ""
    lo, hi = min(v for _, v in pts), max(v for _, v in pts)
    span = (hi - lo) or 1.0
    n = max(len(values) - 1, 1)
    path = " ".join(
        f"{2 + i * (width - 4) / n:.1f},{height - 2 - (v - lo) / span * (height - 4):.1f}" for i, v in pts
    )
    return (
        f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}"><polyline fill="none" '
        f'stroke="#2a6" stroke-width="1.5" points="{path}"/></svg>'
    )


def _signal_of(labels: dict) -> str:
    return subject(labels).strip()


def render_html(report: dict) -> str:
    e = html.escape
    series: dict[tuple[str, str, str], list] = {}
    windows = [iv["window_start"] for iv in report["intervals"]]
    for i, iv in enumerate(report["intervals"]):
        for metric in reported_metrics():
            for r in iv.get(metric, []):
                key = (metric, r["slice"], r["signal"] or "")
                series.setdefault(key, [None] * len(windows))[i] = r["value"] if r["status"] == "ok" else None
    rows = []
    for (metric, sl, sig), vals in sorted(series.items()):
        known = [v for v in vals if v is not None]
        last = f"{known[-1]:.4f}" if known else "insufficient data"
        peak = f"{max(known):.4f}" if known else ""
        rows.append(
            f"<tr><td>{e(metric)}</td><td>{e(sl)}</td><td>{e(sig)}</td><td>{last}</td><td>{peak}</td>"
            f"<td>{_spark(vals)}</td></tr>"
        )
    alerts = (
        "".join(
            f"<tr><td>{e(a['state'])}</td><td>{e(a['rule'])}</td><td>{e(a['labels'].get('slice', ''))}</td>"
            f"<td>{e(_signal_of(a['labels']))}</td>"
            f"<td>{e(a['starts_at'] or '')}</td><td>{e(a['ends_at'] or '')}</td>"
            f"<td>{e(a['annotations'].get('summary', ''))} (value"
            f" {e(a['annotations'].get('value', ''))})</td></tr>"
            for a in report["alerts"]
        )
        or '<tr><td colspan="7">no alerts in this period</td></tr>'
    )
    episodes = report["alerts"]
    incidents = (
        "".join(
            f"<li><b>{e(i['headline'])}</b> — {i['firing']} firing<br><small>grouped because"
            f" {e(i['grouped_because'])}</small><details><summary>its alerts</summary><ul>"
            + "".join(
                f"<li>{e(a['rule'])} [{e(a['labels'].get('slice', ''))}] {e(_signal_of(a['labels']))}"
                f" since {e(a['starts_at'] or '')} ({e(a['state'])})</li>"
                for a in (episodes[k] for k in i["alerts"])
            )
            + "</ul></details></li>"
            for i in report.get("incidents", [])
        )
        or "<li>no incidents in this period</li>"
    )
    counts = "".join(f"<li>{e(k)}: {e(json.dumps(v))}</li>" for k, v in report["counts"].items())
    rv = report.get("review") or {"by_state": {}, "labelled": 0, "agreement": None}
    agreement = (
        "no reviewed items yet"
        if rv["agreement"] is None
        else (f"reviewers agreed with the model on {rv['agreement']:.1%} of {rv['labelled']} labelled items")
    )
    review = (
        "".join(f"<li>{e(k)}: {v}</li>" for k, v in sorted(rv["by_state"].items()))
        + f"<li>{e(agreement)}</li>"
    )
    per_day = rv.get("labelled_per_day") or {}
    if per_day:
        review += "<li>labelled per day: " + e(", ".join(f"{d} {n}" for d, n in per_day.items())) + "</li>"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>modalwatch report {e(report["from"])} to {e(report["to"])}</title>
<style>
body{{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:middle}} th{{background:#f3f3f3}}
h1{{font-size:20px}} h2{{font-size:16px;margin-top:2em}}
</style></head><body>
<h1>modalwatch report</h1>
<p>Event time {e(report["from"])} to {e(report["to"])}; {len(windows)} evaluated windows;
generated {e(report["generated_at"])}.</p>
<h2>Incidents</h2>
<p>The alerts of this period grouped by cause: one line each (where, what, since when, how many
alerts), the alerts it folds under it.</p>
<ul>{incidents}</ul>
<h2>All alerts</h2>
<table><tr><th>state</th><th>rule</th><th>slice</th><th>signal</th><th>starts</th><th>ends</th><th>what</th></tr>{alerts}</table>
<h2>Per-interval series</h2>
<p>Error rate (Wilson 95 % interval in report.json), top-label ECE and PSI of each signal against the
reference, per slice; one point per window, gaps where the sample was too small to say.</p>
<table><tr><th>metric</th><th>slice</th><th>signal</th><th>last</th><th>max</th><th>series</th></tr>{"".join(rows)}</table>
<h2>Human review</h2><p>Items by state (queued, exported, labelled, expired) and agreement with the model:</p>
<ul>{review}</ul>
<h2>Counts</h2><ul>{counts}</ul>
</body></html>
"""
