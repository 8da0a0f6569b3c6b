"""``evaluate``, ``history``, ``report``, ``status``: windows, their series, reports, counts."""

from __future__ import annotations

import json
from pathlib import Path

from monitor.cli.common import date_arg, duration_arg, json_num, now, opened_store, progress


def cmd_evaluate(args, cfg) -> int:
    from monitor.evaluation import Evaluator

    with opened_store(cfg) as store:
        ev = Evaluator(cfg, store, now)
        runs = ev.due(
            store.events.watermark(),
            start=args.from_,
            end=args.to,
            include_finished=args.force,
            interval=args.interval,
            lag=args.lag,
        )
        for i, (key, t1) in enumerate(runs):
            ev.run(key, t1, force=args.force)
            progress(i + 1, len(runs))
    print(f"evaluated {len(runs)} window(s)")
    return 0


def cmd_history(args, cfg) -> int:
    from monitor.checks.base import against_reference_metrics
    from monitor.history import metric_history
    from monitor.reference import reference_range

    ev = cfg.evaluation
    with opened_store(cfg) as store:
        frame = store.evaluations.frame()
        versions = store.events.model_versions()
    model = args.model or (versions[0].model_name if len({v.model_name for v in versions}) == 1 else None)
    h = metric_history(
        frame,
        args.metric,
        args.slice,
        args.signal,
        args.interval or ev.intervals[0],
        args.lag if args.lag is not None else ev.vintage_lags[0],
        args.model,
        reference_ends={
            v.model_version: reference_range(cfg, v.first_ts)[1] for v in versions if v.model_name == model
        },
        against_reference=args.metric in against_reference_metrics(),
    )
    t = h.trend
    if args.json:
        print(
            json.dumps(
                {
                    "metric": h.metric,
                    "slice": h.slice,
                    "signal": h.signal,
                    "model": h.model,
                    "interval": h.interval,
                    "lag": h.lag,
                    "trend": {
                        "direction": t.trend,
                        "p_value": json_num(t.p_value),
                        "tau": json_num(t.tau),
                        "sens_slope_per_interval": json_num(t.slope),
                        "n": t.n,
                        "status": t.status,
                    },
                    "first_change": h.first_change,
                    "points": h.points,
                },
                default=_json_default,
                allow_nan=False,  # strict JSON: a missing number is null
            )
        )
        return 0
    print(
        f"{h.metric} of {h.model}, slice {h.slice}{' ' + h.signal if h.signal else ''}, "
        f"interval {h.interval}, lag {h.lag}"
    )
    for pt in h.points:
        ci = (
            f" [{pt['ci_low']:.4g}, {pt['ci_high']:.4g}]"
            if pt["ci_low"] is not None and pt["ci_high"] is not None
            else ""
        )
        val = "—" if pt["value"] is None else f"{pt['value']:.4g}"
        flag = " *" if pt["decision"] == 1 else ""
        flag += " (reference window)" if pt["in_reference"] else ""
        status = "" if pt["status"] == "ok" else " " + pt["status"]
        print(f"  {pt['window_start'][:16]}  {val:>10}{ci}  n={pt['n']}{status}{flag}")
    if t.status == "ok":
        print(f"trend: {t.trend} (Mann–Kendall p={t.p_value:.3g}, Sen's slope {t.slope:+.4g} per interval)")
    else:
        print(f"trend: not enough intervals ({t.n})")
    if h.first_change:
        print(f"first change from the first 7 intervals' level: {h.first_change} (mean-shift CUSUM)")
    return 0


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer, np.floating)):
        return json_num(float(o))
    return str(o)


def cmd_report(args, cfg) -> int:
    from monitor.report import build_report, write_report

    with opened_store(cfg) as store:
        report = build_report(store, cfg, args.from_, args.to, now())
        jp, hp = write_report(report, Path(args.out), cfg.alerts.external_url)
    print(f"wrote {hp} and {jp}")
    return 0


def cmd_status(args, cfg) -> int:
    from monitor.evaluation import Evaluator

    with opened_store(cfg) as store:
        counts = store.ops.counts()
        wm = store.events.watermark()
        counts["watermark"] = wm.isoformat() if wm else None
        counts["vintages_due"] = len(Evaluator(cfg, store, now).due(wm))  # the evaluation backlog
        counts["store"] = store.describe()
    if args.json:
        print(json.dumps(counts, sort_keys=True))
    else:
        for k, v in counts.items():
            print(f"{k:>22}: {v}")
    return 0


def cmd_trust(args, cfg) -> int:
    from monitor.trust import trust_now

    with opened_store(cfg) as store:
        got = trust_now(store, cfg, model=args.model, slice_=args.slice, modality=args.modality)
    if args.json:
        print(json.dumps(got, sort_keys=True))
        return 0
    if not got["trust"]:
        print("no trust state yet: no window has been evaluated (or none matches)")
        return 0
    for t in got["trust"]:
        # one mention per signal (its PSI and its KS are one reason to a reader)
        named = dict.fromkeys(f"{r['kind']} {r['signal']}" for r in t["reasons"])
        why = "; ".join(named) or ("recovering" if t["recovering"] else "")
        print(
            f"{t['model']} {t['model_version']} {t['slice']:>22} {t['modality']:<6} {t['state']:<9}"
            f" since {t['since'][:16]}  ({t['interval']} window from {t['window_start'][:16]},"
            f" {t['events']} events)" + (f"  {why}" if why else "")
        )
    return 0


def add_commands(add) -> None:
    sp = add("evaluate", cmd_evaluate, "evaluate (backfill) the windows in [--from, --to)")
    sp.add_argument("--from", dest="from_", type=date_arg, required=True)
    sp.add_argument("--to", type=date_arg, required=True)
    sp.add_argument(
        "--force",
        action="store_true",
        help="recompute windows already evaluated (keeps stored rows, sends no alerts)",
    )
    sp.add_argument("--interval", type=duration_arg, help="only this interval (e.g. 1d)")
    sp.add_argument("--lag", type=duration_arg, help="only this label-maturity lag (e.g. 7d)")
    sp = add("history", cmd_history, "print one metric's series across intervals, with its trend")
    sp.add_argument("metric", help="e.g. error_rate, ece, psi, ks, estimated_accuracy")
    sp.add_argument("--slice", default="*", help="K=V, or * for all traffic (default)")
    sp.add_argument("--signal", default="", help="for drift metrics, e.g. image.brightness")
    sp.add_argument("--interval", type=duration_arg, help="default: the first configured interval")
    sp.add_argument("--lag", type=duration_arg, help="default: the first configured lag")
    sp.add_argument("--model", help="model name (default: the only one, else required)")
    sp.add_argument("--json", action="store_true")
    sp = add("report", cmd_report, "write report.html and report.json")
    sp.add_argument("--from", dest="from_", type=date_arg, required=True)
    sp.add_argument("--to", type=date_arg, required=True)
    sp.add_argument("--out", required=True)
    sp = add("status", cmd_status, "print counts")
    sp.add_argument("--json", action="store_true")
    sp = add("trust", cmd_trust, "each stream's trust state now (what GET /v1/trust serves)")
    sp.add_argument("--model")
    sp.add_argument("--slice", help="K=V, or * for all traffic")
    sp.add_argument("--modality", help="image, audio, text …")
    sp.add_argument("--json", action="store_true")
