"""The report and the daemon's pages as HTML: self-contained (Plotly's JavaScript inlined once per
page, no request leaves the page), drawn from monitor/report.py's plain data.

Every chart is a Plotly figure: the value of each window with its 95 % interval as a band and
the reference as a dashed line; hovering shows n and the p-value after FDR."""

from __future__ import annotations

import html
import json
import secrets
from functools import lru_cache
from urllib.parse import quote

import plotly.graph_objects as go

from monitor.core.records import ALL

e = html.escape

_TITLES = {
    "error_rate": ("Error rate", "error rate", True),
    "ece": ("Top-label ECE", "ECE", True),
    "ece_drift": ("ECE above what the reference gives at this sample size", "ECE difference", True),
    "estimated_accuracy": ("Label-free accuracy estimate (CBPE)", "accuracy", True),
    "psi": ("PSI against the reference", "PSI", False),
    "ks": ("Kolmogorov–Smirnov D against the reference", "D", False),
}
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f"]


@lru_cache(maxsize=1)
def plotly_js() -> str:
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


class Charts:
    """The figures of one page, numbered in order (their ids are stable within a page). Their
    scripts carry ``nonce``: the page's Content-Security-Policy runs no script without it."""

    def __init__(self, nonce: str = "") -> None:
        self.count = 0
        self.nonce = nonce or new_nonce()

    def div(self, fig: go.Figure, height: int = 340) -> str:
        self.count += 1
        fig.update_layout(
            height=height,
            margin=dict(l=60, r=20, t=40, b=40),
            template="plotly_white",
            font=dict(family="system-ui, sans-serif", size=12),
            legend=dict(orientation="h", y=-0.18),
        )
        out = fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            div_id=f"chart-{self.count}",
            # no tool bar over the title (drag zooms, double-click resets, hover shows the values)
            config={"displaylogo": False, "responsive": True, "displayModeBar": False},
        )
        # Plotly's own markup: its one script tag (what it draws from is JSON-encoded data)
        return out.replace(
            '<script type="text/javascript">', f'<script type="text/javascript" nonce="{self.nonce}">'
        )


def _rgba(color: str, alpha: float) -> str:
    c = color.lstrip("#")
    return f"rgba({int(c[0:2], 16)},{int(c[2:4], 16)},{int(c[4:6], 16)},{alpha})"


def band_chart(
    charts: Charts, series: list[dict], title: str, y_title: str, percent: bool, shown=None
) -> str:
    """Each series' value per window with its interval as a band and its reference dashed.
    ``shown``: the slices drawn at first (the others one click away in the legend)."""
    fig = go.Figure()
    for k, s in enumerate(series):
        color = _PALETTE[k % len(_PALETTE)]
        pts = s["points"]
        x = [p["window_start"] for p in pts]
        name = s["slice"] + (f" {s['signal']}" if s.get("signal") else "")
        visible = True if shown is None or s["slice"] in shown else "legendonly"
        ok = [p["status"] == "ok" for p in pts]
        if any(p["ci_low"] is not None and good for p, good in zip(pts, ok)):
            # the band: its lower edge, then the upper one filled down to it (gaps where the
            # window's sample was too small to say)
            for edge, fill in (("ci_low", None), ("ci_high", "tonexty")):
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=[p[edge] if good else None for p, good in zip(pts, ok)],
                        mode="lines",
                        fill=fill,
                        fillcolor=_rgba(color, 0.15),
                        line=dict(width=0, color=color),
                        hoverinfo="skip",
                        showlegend=False,
                        legendgroup=name,
                        visible=visible,
                        name=f"{name} 95 % interval",
                    )
                )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[p["value"] if p["status"] == "ok" else None for p in pts],
                mode="lines+markers",
                name=name,
                legendgroup=name,
                visible=visible,
                line=dict(color=color),
                customdata=[[p["n"], p["p_adjusted"], p["ci_low"], p["ci_high"]] for p in pts],
                hovertemplate="%{x|%Y-%m-%d %H:%M}: %{y:.4g} [%{customdata[2]:.4g}, %{customdata[3]:.4g}]"
                "<br>n %{customdata[0]}, p after FDR %{customdata[1]:.3g}<extra>" + e(name) + "</extra>",
            )
        )
        # a drift statistic's reference_value is the reference's mean (another scale): not drawn
        if s["metric"] not in ("psi", "ks") and any(p["reference"] is not None for p in pts):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=[p["reference"] for p in pts],
                    mode="lines",
                    name=f"{name} reference",
                    legendgroup=name,
                    visible=visible,
                    line=dict(color=color, dash="dash", width=1),
                    hovertemplate="reference %{y:.4g}<extra></extra>",
                    showlegend=False,
                )
            )
    if not any(p["status"] == "ok" and p["value"] is not None for s in series for p in s["points"]):
        return f"<p><b>{e(title)}</b>: too small a sample in every window to say.</p>"
    fig.update_layout(title=title, yaxis_title=y_title, yaxis_tickformat=".1%" if percent else None)
    return charts.div(fig)


def reliability_chart(charts: Charts, rel: dict) -> str:
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1], y=[0, 1], mode="lines", line=dict(color="#999", dash="dot"), name="perfect calibration"
        )
    )
    for name, part, color in (
        ("this window", rel["window"], "#d62728"),
        ("reference", rel["reference"], "#1f77b4"),
    ):
        if not part:
            continue
        bins = [b for b in part["bins"] if b["n"]]
        fig.add_trace(
            go.Scatter(
                x=[b["confidence"] for b in bins],
                y=[b["accuracy"] for b in bins],
                mode="lines+markers",
                marker=dict(
                    size=[6 + 14 * (b["n"] / max(x["n"] for x in bins)) ** 0.5 for b in bins], color=color
                ),
                line=dict(color=color),
                name=f"{name} (ECE {part['ece']:.3f}, n {part['n']})",
                customdata=[[b["n"], b["lo"], b["hi"]] for b in bins],
                hovertemplate="confidence [%{customdata[1]:.2f}, %{customdata[2]:.2f}): mean %{x:.3f},"
                " accuracy %{y:.3f}, n %{customdata[0]}<extra></extra>",
            )
        )
    fig.update_layout(
        title=f"Reliability: {rel['slice']}, window of {rel['window_start'][:10]} against the reference",
        xaxis_title="mean confidence",
        yaxis_title="accuracy",
        xaxis_range=[0, 1.02],
        yaxis_range=[0, 1.02],
    )
    return charts.div(fig, height=380)


def distribution_chart(charts: Charts, d: dict) -> str:
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=d["bins"],
            y=d["reference_share"],
            name=f"reference (n {d['n_reference']})",
            marker_color="#1f77b4",
        )
    )
    fig.add_trace(
        go.Bar(x=d["bins"], y=d["window_share"], name=f"window (n {d['n']})", marker_color="#d62728")
    )
    fig.update_layout(
        barmode="group",
        title=f"{d['signal']} [{d['slice']}]: window of {d['window_start'][:10]} on the reference's bins"
        + (
            f" (mean {d['window_mean']:.4g} vs {d['reference_mean']:.4g})"
            if d["window_mean"] is not None
            else ""
        ),
        yaxis_title="share of events",
        yaxis_tickformat=".0%",
    )
    return charts.div(fig)


def heatmap_chart(charts: Charts, hm: dict) -> str:
    fig = go.Figure(
        go.Heatmap(
            z=hm["z"],
            x=[w[:10] for w in hm["windows"]],
            y=hm["slices"],
            customdata=hm["p_adjusted"],
            colorscale="RdBu",
            reversescale=True,
            zmid=0,
            colorbar=dict(title="points"),
            hovertemplate="%{y}, %{x}: %{z:+.1f} points vs the rest; p after FDR %{customdata:.3g}"
            "<extra></extra>",
        )
    )
    fig.update_layout(title="Error-rate gap of each slice to the rest of the traffic (percentage points)")
    return charts.div(fig, height=max(260, 60 + 24 * len(hm["slices"])))


def lines_chart(
    charts: Charts, x, ys: dict[str, list], title: str, y_title: str, kind: str = "line", **layout
) -> str:
    fig = go.Figure()
    for k, (name, y) in enumerate(ys.items()):
        color = _PALETTE[k % len(_PALETTE)]
        if kind == "bar":
            fig.add_trace(go.Bar(x=x, y=y, name=name, marker_color=color))
        else:
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name=name, line=dict(color=color)))
    fig.update_layout(title=title, yaxis_title=y_title, barmode="stack", **layout)
    return charts.div(fig)


# -- pages ---------------------------------------------------------------------------------------
_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:0;color:#1d232a;background:#fafbfc}
main{max-width:1180px;margin:0 auto;padding:1.2em 2em 3em}
nav{background:#1d232a;padding:.6em 2em} nav a{color:#e8eef3;margin-right:1.4em;text-decoration:none}
h1{font-size:21px;margin:.4em 0} h2{font-size:17px;margin:1.8em 0 .5em;border-bottom:1px solid #dde3e8}
table{border-collapse:collapse;margin:.6em 0;background:#fff}
td,th{border:1px solid #dde3e8;padding:4px 9px;text-align:left;vertical-align:top} th{background:#f0f3f6}
.incident{background:#fff;border:1px solid #dde3e8;border-left:5px solid #d62728;padding:.6em 1em;
margin:.7em 0}
.incident.resolved{border-left-color:#2ca02c}
.muted{color:#66727d} code,pre{background:#f0f3f6;padding:1px 4px;border-radius:3px}
pre{padding:.6em;overflow-x:auto;white-space:pre-wrap;word-break:break-all}
.state-firing{color:#d62728;font-weight:600} .state-resolved{color:#2ca02c} .state-pending{color:#ff7f0e}
.chart{background:#fff;border:1px solid #dde3e8;margin:.6em 0}
"""


# The pages load nothing from anywhere: what they draw is inlined, and only the page's own
# scripts (those with its nonce) run. The daemon sends the same policy as a header.
def csp(nonce: str) -> str:
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
        "img-src data:; font-src data:; base-uri 'none'; form-action 'none'"
    )


def page(title: str, body: str, base: str = "", nonce: str = "") -> str:
    """A whole page; Plotly's JavaScript is inlined only where the body draws a chart. ``base``:
    where the daemon's pages are (empty on the daemon itself; ``alerts.external_url`` in a report
    written to disk, so that its links open the daemon's pages); ``nonce``: its scripts' (the
    ``Charts``' of the body; a new one where the page has none)."""
    nonce = nonce or new_nonce()
    nav = "".join(
        f'<a href="{base}{href}">{name}</a>'
        for href, name in (
            ("/report", "Report"),
            ("/alerts", "Alerts"),
            ("/reports/", "All reports"),
            ("/metrics", "Metrics"),
        )
    )
    script = f'<script nonce="{nonce}">{plotly_js()}</script>' if "Plotly.newPlot" in body else ""
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp(nonce)}">'
        f"<title>{e(title)}</title><style>{_CSS}</style>{script}</head>"
        f"<body><nav>{nav}</nav><main>{body}</main></body></html>\n"
    )


def table(headers: list[str], rows: list[list[str]], raw: bool = False) -> str:
    """A table of escaped cells (``raw``: cells already HTML)."""
    cell = (lambda c: c) if raw else (lambda c: e(str(c)))
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def box(chart_html: str) -> str:
    return f'<div class="chart">{chart_html}</div>'


def _pct(x) -> str:
    return "?" if x is None else f"{100 * x:.1f} %"


def _fmt(x) -> str:
    return "?" if x is None else f"{x:.4g}"


def measured(row: dict | None) -> str:
    """How big and how sure, in words: the value against the reference, the interval, p after FDR, n."""
    if not row:
        return "no evaluation row in this period"
    pct = row["metric"] in ("error_rate", "error_rate_gap", "ece", "ece_drift", "estimated_accuracy")
    f = _pct if pct else _fmt
    parts = [f"{row['metric']} {f(row['value'])}"]
    if row["reference"] is not None and row["metric"] not in ("psi", "ks"):
        parts.append(f"against {f(row['reference'])} in the reference")
    if row["ci_low"] is not None and row["ci_high"] is not None:
        parts.append(f"95 % interval [{f(row['ci_low'])}, {f(row['ci_high'])}]")
    if row["effect"] is not None and row["metric"] not in ("psi",):
        parts.append(f"effect {row['effect']:+.3g}")
    if row["p_adjusted"] is not None:
        parts.append(f"p after FDR {row['p_adjusted']:.2g}")
    parts.append(f"n {row['n']}" + (f" (reference {row['n_reference']})" if row["n_reference"] else ""))
    return ", ".join(parts)


def alert_link(fp: str, base: str = "") -> str:
    return f"{base}/alerts/{quote(fp)}"


def _state(state: str) -> str:
    return f'<span class="state-{e(state)}">{e(state)}</span>'


def _folded(a: dict, base: str) -> str:
    until = f" until {e(a['ends_at'][:16])}" if a.get("ends_at") else ""
    return (
        f'<li>{_state(a["state"])} <a href="{alert_link(a["fingerprint"], base)}">{e(a["rule"])}'
        f" [{e(a['about'])}]</a> since {e((a['starts_at'] or '')[:16])}{until}</li>"
    )


def _incident_block(i: dict, alerts: dict[str, dict], base: str, open_: bool = False) -> str:
    lead = i["lead"]
    folded = "".join(_folded(alerts[k], base) for k in i["alerts"] if k in alerts)
    lead_link = f'<a href="{alert_link(lead["alert"]["fingerprint"], base)}">{e(lead["alert"]["rule"])}</a>'
    facts = " · ".join(
        f"<b>{k}</b> {v}"
        for k, v in (
            ("what", e(i["what"])),
            ("where", e(i["where"])),
            ("since", e((i["since"] or "")[:10])),
            ("how big, how sure", f"{e(measured(lead['row']))} ({lead_link})"),
        )
    )
    return (
        f'<div class="incident {"firing" if i["firing"] else "resolved"}">'
        f"<b>{e(i['headline'])}</b><br>{facts}<br>"
        f'<span class="muted">grouped because {e(i["grouped_because"])}</span>'
        f"<details{' open' if open_ else ''}><summary>its {len(i['alerts'])} alerts</summary>"
        f"<ul>{folded}</ul></details></div>"
    )


def _episodes_by_key(alerts: list[dict]) -> dict[str, dict]:
    """Alert summaries by the keys an incident lists them under (fingerprint@start)."""
    return {a["fingerprint"] + "@" + (a["starts_at"] or ""): a for a in alerts}


def _drawn_slices(report: dict) -> set[str]:
    """All traffic and the incidents' places: drawn at first, the other slices in the legend."""
    return {ALL} | {i["place"] for i in report["incidents"]}


def _by_metric(series: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for s in series:
        out.setdefault(s["metric"], []).append(s)
    return out


def _performance(charts: Charts, report: dict) -> str:
    shown = _drawn_slices(report)
    by_metric = _by_metric(report["series"])
    out = []
    for metric in ("error_rate", "ece", "ece_drift", "estimated_accuracy"):
        if by_metric.get(metric):
            title, y, pct = _TITLES[metric]
            out.append(box(band_chart(charts, by_metric[metric], title, y, pct, shown)))
    if report.get("reliability"):
        out.append(box(reliability_chart(charts, report["reliability"])))
    return "".join(out) or "<p>No evaluated window in this period.</p>"


def _drift(charts: Charts, report: dict) -> str:
    out = []
    for metric, ss in sorted(_by_metric(report["drift"]).items()):
        title, y, pct = _TITLES[metric]
        out.append(box(band_chart(charts, ss, f"{title} (the incidents' most moved signals)", y, pct)))
    out += [box(distribution_chart(charts, d)) for d in report["distributions"]]
    return "".join(out) or "<p>No signal drifted in this period.</p>"


def _vintages(charts: Charts, vint: list[dict]) -> str:
    if len(vint) < 2:
        return "<p>One label-maturity lag is evaluated (<code>evaluation.lags</code> names more).</p>"
    x = sorted({p["window_start"] for v in vint for s in v["series"] for p in s["points"]})
    ys = {}
    for v in vint:
        pts = {p["window_start"]: p["value"] for s in v["series"] for p in s["points"]}
        ys[f"labels known {v['lag']} after the window"] = [pts.get(t) for t in x]
    title = "All traffic's error rate at each label-maturity lag (what late labels changed)"
    return box(lines_chart(charts, x, ys, title, "error rate", yaxis_tickformat=".1%"))


def _review(charts: Charts, rv: dict) -> str:
    out = []
    per_day = rv.get("created_per_day") or {}
    if per_day:
        days = list(per_day)
        states = sorted({s for d in per_day.values() for s in d})
        ys = {s: [per_day[d].get(s, 0) for d in days] for s in states}
        title = "Review items by the day they were queued, in the state each is in now"
        out.append(box(lines_chart(charts, days, ys, title, "items", kind="bar", xaxis_type="category")))
    labelled = rv.get("labelled_per_day") or {}
    if labelled:
        ys = {"labelled": list(labelled.values())}
        title = "Items labelled per day"
        out.append(
            box(lines_chart(charts, list(labelled), ys, title, "items", kind="bar", xaxis_type="category"))
        )
    agreement = (
        "No reviewed item is labelled yet."
        if rv.get("agreement") is None
        else f"Reviewers agreed with the model on {rv['agreement']:.1%} of {rv['labelled']} labelled items."
    )
    by_state = ", ".join(f"{k} {v}" for k, v in sorted(rv.get("by_state", {}).items())) or "none"
    return f"<p>By state now: {e(by_state)}. {e(agreement)}</p>" + "".join(out)


def _streams(charts: Charts, st: dict) -> str:
    out = []
    own = [x for x in st.get("per_modality", []) if x["metric"] == "modality_error_rate"]
    if own:
        title = "Each modality's own error rate, all traffic (output.per_modality)"
        out.append(box(band_chart(charts, own, title, "error rate", True)))
    fusion = [x for x in st.get("per_modality", []) if x["metric"] == "fusion_vs_best"]
    if fusion:
        title = "Fused error rate minus the best single modality's (above 0: fusion is not helping)"
        out.append(box(band_chart(charts, fusion, title, "difference", True)))
    trust = st.get("trust") or []
    if not trust:
        return "".join(out) + "<p>No stream's trust state was evaluated by the period's end.</p>"
    shown = [t for t in trust if t["state"] != "ok"]
    rows = [
        [
            t["modality"],
            t["slice"],
            t["state"],
            (t["since"] or "")[:16],
            "; ".join(dict.fromkeys(f"{r['kind']} {r['signal']}" for r in t["reasons"]))
            or ("recovering" if t["recovering"] else ""),
        ]
        for t in shown
    ]
    ok = len(trust) - len(shown)
    intro = (
        f"<p>Trust at the period's end (GET /v1/trust): {len(shown)} of {len(trust)} streams"
        f" (modality × slice) not ok; {ok} ok.</p>"
    )
    return (
        "".join(out) + intro + (table(["modality", "slice", "state", "since", "why"], rows) if rows else "")
    )


def _hours(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 3600, 3)


def _health(charts: Charts, dh: dict) -> str:
    out = []
    if dh["events_per_window"]:
        x = [w["window_start"] for w in dh["events_per_window"]]
        ys = {"events": [w["events"] for w in dh["events_per_window"]]}
        out.append(box(lines_chart(charts, x, ys, "Events per window (event time)", "events", kind="bar")))
        lags = {
            "mean": [_hours(w.get("ingest_lag_mean_s")) for w in dh["events_per_window"]],
            "largest": [_hours(w.get("ingest_lag_max_s")) for w in dh["events_per_window"]],
        }
        if any(v is not None for v in lags["largest"]):
            title = "Ingest lag per window: stored minus event time"
            out.append(box(lines_chart(charts, x, lags, title, "hours")))
    for s in dh.get("missing_modalities") or []:
        out.append(box(band_chart(charts, [s], "Missing modality: " + s["signal"], "PSI", False)))
    dead = [[d["source"], d["reason"], d["count"]] for d in dh["dead_letters"]]
    out.append(
        table(["source", "reason", "dead letters"], dead)
        if dead
        else "<p>No dead letters wait for replay.</p>"
    )
    return "".join(out)


def report_html(report: dict, base: str = "", nonce: str = "") -> str:
    charts = Charts(nonce)
    alerts = _episodes_by_key(report["alerts"])
    incidents = "".join(_incident_block(i, alerts, base) for i in report["incidents"])
    hm = report.get("heatmap")
    measured_gaps = hm and any(z is not None for row in hm["z"] for z in row)
    heat = box(heatmap_chart(charts, hm)) if measured_gaps else "<p>No slice's gap could be measured.</p>"
    follow = report.get("charts_follow")
    follows = (
        f"Charts follow the {_dur(follow['interval_s'])} windows, with the labels known"
        f" {_dur(follow['lag_s'])} after each."
        if follow
        else ""
    )
    dh = report["data_health"]
    intro = (
        f"Event time {report['from']} to {report['to']}; generated {report['generated_at']};"
        f" {len(report['incidents'])} incidents, {len(report['alerts'])} alert episodes. {follows}"
        f" Watermark {dh.get('watermark')}."
    )
    empty = report.get("empty")
    if empty:
        nxt = empty.get("next_event_at")
        intro = (
            "No events came with an event time in this period: nothing was evaluated in it, and the"
            " incidents of earlier periods are in their reports."
            + (f" Events came again from {nxt}." if nxt else "")
            + f" {intro}"
        )
    body = f"""<h1>modalwatch report</h1>
<p class="{"" if empty else "muted"}">{e(intro)}</p>
<h2 id="incidents">Incidents</h2>
<p class="muted">One per cause: what moved, where, since when, how big (against the reference, with its
interval) and how sure (p after Benjamini–Hochberg, n); the alerts it groups are folded under it.</p>
{incidents or "<p>No incidents in this period.</p>"}
<h2 id="performance">Errors and calibration</h2>
<p class="muted">Per slice (all traffic and the incidents' slices are drawn; the legend adds the others):
each window's value, its 95 % interval as a band (Wilson for error rates, bootstrap for the ECE
difference) and the reference dashed. Gaps: too small a sample to say.</p>
{_performance(charts, report)}
<h2 id="slices">Slices × windows</h2>{heat}
<h2 id="drift">Drifted signals</h2>{_drift(charts, report)}
<h2 id="vintages">Vintages</h2>{_vintages(charts, report.get("vintages") or [])}
<h2 id="streams">Streams</h2>{_streams(charts, report.get("streams") or {})}
<h2 id="review">Human review</h2>{_review(charts, report["review"])}
<h2 id="health">Data health</h2>{_health(charts, dh)}
"""
    return page(f"modalwatch report {report['from'][:10]} – {report['to'][:10]}", body, base, charts.nonce)


def _dur(s: int) -> str:
    from monitor.core.settings import duration_text

    return duration_text(int(s))


def _alert_evidence(charts: Charts, data: dict) -> str:
    out = []
    for s in data["rows"]:
        title, y, pct = _TITLES.get(s["metric"], (s["metric"], s["metric"], False))
        out.append(box(band_chart(charts, [s], f"{title} — the rows this alert reads", y, pct)))
    if data.get("distribution"):
        out.append(box(distribution_chart(charts, data["distribution"])))
    if data.get("reliability"):
        out.append(box(reliability_chart(charts, data["reliability"])))
    for s in data["series"]:
        if s["metric"] in ("error_rate", "ece"):
            title, y, pct = _TITLES[s["metric"]]
            out.append(box(band_chart(charts, [s], f"{title} [{s['slice']}]", y, pct)))
    return "".join(out) or "<p>No evaluation row of this alert is stored.</p>"


def _alert_review(rv: dict) -> str:
    rows = [
        [i["event_id"], i["pred_label"] or "", _fmt(i["confidence"]), i["ts"] or "", i["reason"]]
        for i in rv["items"]
    ]
    if not rows:
        return "<p>No review item of this slice is queued.</p>"
    return (
        f"<p>{rv['queued']} items of this slice wait for review, queued or exported (the least confident"
        " first):</p>" + table(["event", "model said", "confidence", "event time", "why"], rows)
    )


def alert_html(data: dict, base: str = "", nonce: str = "") -> str:
    charts = Charts(nonce)
    a = data["alert"]
    inc = data.get("incident")
    inc_html = (
        f'<p>Part of incident <a href="{base}/incidents/{quote(inc["incident"])}">{e(inc["headline"])}</a>'
        f' <span class="muted">(grouped because {e(inc["grouped_because"])})</span></p>'
        if inc
        else ""
    )
    sil = data["silence"]
    episodes = [
        [_state(x["state"]), e(x["starts_at"] or ""), e(x["ends_at"] or "")] for x in data["episodes"]
    ]
    json_link = f"{base}/v1/alerts/{quote(a['fingerprint'])}"
    body = f"""<h1>{_state(a["state"].upper())} {e(a["rule"])} [{e(a["about"])}]</h1>
<p>{e(a["annotations"].get("summary", ""))}</p>
<p><b>How big, how sure:</b> {e(measured(data.get("lead")))}.</p>
{inc_html}
<h2>Evidence</h2>{_alert_evidence(charts, data)}
<h2>Review</h2>{_alert_review(data["review"])}
<h2>Silence it</h2>
<p>From the command line (on a machine with the daemon's config):</p><pre>{e(sil["cli"])}</pre>
<p>Or through the API (it writes: it takes the same bearer tokens as ingest):</p><pre>{e(sil["api"])}</pre>
<h2>Episodes</h2>{table(["state", "starts", "ends"], episodes, raw=True)}
<h2>Labels</h2>{table(["label", "value"], sorted(a["labels"].items()))}
<h2>Annotations</h2>{table(["annotation", "value"], sorted(a["annotations"].items()))}
<p class="muted">JSON: <a href="{json_link}">{e(json_link)}</a></p>
"""
    return page(f"{a['state']}: {a['rule']} [{a['about']}]", body, base, charts.nonce)


def incident_html(data: dict, base: str = "", nonce: str = "") -> str:
    i = data["incident"]
    block = _incident_block(i, _episodes_by_key(data["alerts"]), base, open_=True)
    return page(f"incident: {i['headline']}", f"<h1>Incident {e(i['incident'])}</h1>{block}", base, nonce)


def alerts_html(alerts: list[dict], incidents: list[dict], base: str = "", nonce: str = "") -> str:
    by_key = _episodes_by_key(alerts)
    inc = "".join(_incident_block(i, by_key, base) for i in incidents) or "<p>Nothing is firing.</p>"
    rows = [
        [
            _state(a["state"]),
            f'<a href="{alert_link(a["fingerprint"], base)}">{e(a["rule"])}</a>',
            e(a["about"]),
            e(a["starts_at"] or ""),
            e(a["ends_at"] or ""),
            e(a["annotations"].get("value", "")),
        ]
        for a in alerts
    ]
    body = (
        "<h1>Alerts</h1><h2>Firing incidents</h2>"
        + inc
        + "<h2>Every alert, latest state</h2>"
        + table(["state", "rule", "where", "starts", "ends", "value"], rows, raw=True)
        + f'<p class="muted">JSON: <a href="{base}/v1/alerts">/v1/alerts</a></p>'
    )
    return page("modalwatch alerts", body, base, nonce)


def index_html(reports: list[dict], base: str = "", nonce: str = "") -> str:
    rows = [
        [
            f'<a href="{e(r["href"])}">{e(r["from"][:16])} – {e(r["to"][:16])}</a>',
            e(r["every"]),
            e(r["generated_at"][:19]),
            e(r["written_by"]),
        ]
        for r in reports
    ]
    body = "<h1>Periodic reports</h1>" + (
        table(["period (event time)", "every", "written at", "by"], rows, raw=True)
        if rows
        else "<p>No periodic report yet: <code>report.every</code> sets how often the daemon writes one.</p>"
    )
    return page("modalwatch reports", body, base, nonce)


def error_html(status: int, message: str, nonce: str = "") -> str:
    return page(f"{status}", f"<h1>{status}</h1><p>{e(message)}</p>", nonce=nonce)


def dumps(obj) -> bytes:
    return json.dumps(obj, default=str).encode()
