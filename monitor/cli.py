"""``modalwatch`` command line. Only this module exits."""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from monitor.config import LOG_FORMAT, ConfigError, load_config


def _date(s: str) -> datetime:
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {s!r} (use YYYY-MM-DD or an ISO-8601 time)") from None
    return dt.replace(tzinfo=timezone.utc) if dt.tzinfo is None else dt.astimezone(timezone.utc)


def _duration(s: str):
    from monitor.config import parse_duration

    try:
        return parse_duration(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty() or done == total:
        width = 30
        fill = int(width * done / max(total, 1))
        sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} windows")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _store(cfg):
    from connectors.stores import open_store

    store = open_store(cfg.store)
    store.migrate()
    return store


def cmd_schema(args, cfg) -> int:
    from monitor.events import json_schemas

    print(json.dumps(json_schemas(), indent=2))
    return 0


def cmd_check_config(args, cfg) -> int:
    print(f"{args.file}: ok (store {cfg.store.kind}, {len(cfg.alerts.rules)} rules, "
          f"{len(cfg.alerts.webhooks)} webhooks)")
    return 0


def cmd_migrate(args, cfg) -> int:
    from connectors.stores import open_store

    store = open_store(cfg.store)
    applied = store.migrate()
    print(f"{store.describe()}: applied {len(applied)} migration(s){': ' + ', '.join(applied) if applied else ''}")
    return 0


def cmd_run(args, cfg) -> int:
    from monitor.daemon import Daemon
    from monitor.wiring import build_senders, build_sources

    store = _store(cfg)
    daemon: Daemon | None = None
    sources = build_sources(cfg, should_stop=lambda: daemon is not None and daemon.should_exit,
                            status=lambda: dict(daemon.stats) if daemon else {})
    daemon = Daemon(cfg, sources, store, build_senders(cfg))
    daemon.install_signal_handlers()
    daemon.run()
    store.close()
    return 0


def cmd_ingest(args, cfg) -> int:
    from connectors.jsonl import JsonlSource
    from monitor.daemon import Daemon

    store = _store(cfg)
    src = JsonlSource(args.paths, follow=False, max_payload_bytes=cfg.ingest.max_payload_bytes)
    daemon = Daemon(cfg, [src], store, {}, stop_when_idle=True, evaluate=False)
    daemon.install_signal_handlers()
    daemon.run()
    st = daemon.stats
    partial = f" ({st['partial']} without a modality whose media failed)" if st["partial"] else ""
    print(f"read {st['messages']}: stored {st['stored']}{partial}, already stored {st['duplicate']}, "
          f"dead letters {st['dead_letter']}")
    store.close()
    return 0


def cmd_evaluate(args, cfg) -> int:
    from monitor.evaluation import Evaluator

    store = _store(cfg)
    ev = Evaluator(cfg, store, _now)
    runs = ev.due(store.watermark(), start=args.from_, end=args.to, include_finished=args.force,
                  interval=args.interval, lag=args.lag)
    for i, (key, t1) in enumerate(runs):
        ev.run(key, t1, force=args.force)
        _progress(i + 1, len(runs))
    print(f"evaluated {len(runs)} window(s)")
    store.close()
    return 0


def cmd_history(args, cfg) -> int:
    import numpy as np

    from detectors.online import MeanShiftCUSUM
    from detectors.trend import mann_kendall
    from monitor.evaluation import duration_text

    ev = cfg.evaluation
    interval = args.interval or ev.intervals[0]
    lag = args.lag if args.lag is not None else ev.vintage_lags[0]
    store = _store(cfg)
    df = store.evaluations()
    store.close()
    models = sorted(set(df["model_name"])) if len(df) else []
    model = args.model or (models[0] if len(models) == 1 else None)
    if model is None:
        raise ValueError(f"several models were evaluated ({', '.join(models)}): say which with --model"
                         if models else "nothing has been evaluated yet")
    sel = df[(df["model_name"] == model) & (df["metric"] == args.metric) & (df["slice"] == args.slice)
             & (df["signal"] == args.signal) & (df["interval_s"] == int(interval.total_seconds()))
             & (df["lag_s"] == int(lag.total_seconds()))].sort_values("window_start")
    if sel.empty:
        raise ValueError(f"no {args.metric} rows for slice {args.slice!r}"
                         f"{f', signal {args.signal!r}' if args.signal else ''}, interval "
                         f"{duration_text(int(interval.total_seconds()))}, lag {duration_text(int(lag.total_seconds()))}")
    values = [v if s == "ok" and v is not None else float("nan") for v, s in zip(sel["value"], sel["status"])]
    trend = mann_kendall(values)
    ok = [v for v in values if v == v]
    change_at = None
    if len(ok) >= 8 and np.std(ok[:7], ddof=1) > 0:
        det = MeanShiftCUSUM(mean=float(np.mean(ok[:7])), std=float(np.std(ok[:7], ddof=1)))
        hit = next((i for i, v in enumerate(values) if v == v and det.update(v)), None)
        change_at = sel["window_start"].iloc[hit].isoformat() if hit is not None else None
    points = [{"window_start": w.isoformat(), "model_version": mv, "value": None if v != v else v,
               "ci_low": lo, "ci_high": hi, "n": int(n), "status": st, "decision": d}
              for w, mv, v, lo, hi, n, st, d in zip(sel["window_start"], sel["model_version"], values, sel["ci_low"],
                                                     sel["ci_high"], sel["n"], sel["status"], sel["decision"])]
    summary = {"metric": args.metric, "slice": args.slice, "signal": args.signal, "model": model,
               "interval": duration_text(int(interval.total_seconds())), "lag": duration_text(int(lag.total_seconds())),
               "trend": {"direction": trend.trend, "p_value": _json_num(trend.p_value), "tau": _json_num(trend.tau),
                         "sens_slope_per_interval": _json_num(trend.slope), "n": trend.n, "status": trend.status},
               "first_change": change_at}
    if args.json:
        print(json.dumps({**summary, "points": points}, default=_json_default))
        return 0
    print(f"{args.metric} of {model}, slice {args.slice}{' ' + args.signal if args.signal else ''}, "
          f"interval {summary['interval']}, lag {summary['lag']}")
    for pt in points:
        ci = f" [{pt['ci_low']:.4g}, {pt['ci_high']:.4g}]" if pt["ci_low"] is not None and pt["ci_high"] is not None \
            and pt["ci_low"] == pt["ci_low"] else ""
        val = "—" if pt["value"] is None else f"{pt['value']:.4g}"
        flag = " *" if pt["decision"] == 1 else ""
        print(f"  {pt['window_start'][:16]}  {val:>10}{ci}  n={pt['n']}{'' if pt['status'] == 'ok' else ' ' + pt['status']}{flag}")
    if trend.status == "ok":
        print(f"trend: {trend.trend} (Mann–Kendall p={trend.p_value:.3g}, Sen's slope {trend.slope:+.4g} per interval)")
    else:
        print(f"trend: not enough intervals ({trend.n})")
    if change_at:
        print(f"first change from the first 7 intervals' level: {change_at} (mean-shift CUSUM)")
    return 0


def _json_num(x):
    return None if x is None or x != x else float(x)


def _json_default(o):
    import numpy as np

    if isinstance(o, (np.integer, np.floating)):
        return _json_num(float(o))
    return str(o)


def cmd_report(args, cfg) -> int:
    from monitor.report import build_report, write_report

    store = _store(cfg)
    jp, hp = write_report(build_report(store, args.from_, args.to, _now()), Path(args.out))
    print(f"wrote {hp} and {jp}")
    store.close()
    return 0


def cmd_status(args, cfg) -> int:
    store = _store(cfg)
    counts = store.counts()
    wm = store.watermark()
    counts["watermark"] = wm.isoformat() if wm else None
    from monitor.evaluation import Evaluator

    counts["vintages_due"] = len(Evaluator(cfg, store, _now).due(wm))  # the evaluation backlog
    counts["store"] = store.describe()
    if args.json:
        print(json.dumps(counts, sort_keys=True))
    else:
        for k, v in counts.items():
            print(f"{k:>22}: {v}")
    store.close()
    return 0


def cmd_dlq(args, cfg) -> int:
    from monitor.pipeline import Pipeline, RawMessage

    store = _store(cfg)
    if args.dlq_cmd == "list":
        rows = store.dead_letters(include_replayed=args.all, limit=args.limit)
        for r in rows:
            r = {**r, "received_at": r["received_at"].isoformat(),
                 "replayed_at": r["replayed_at"].isoformat() if r["replayed_at"] else None}
            if not args.payload:
                r.pop("payload")
            print(json.dumps(r) if args.json else f"{r['id']:>6} {r['source']:<8} {r['position']:<40} {r['reason']}")
        return 0
    wanted = set(args.id or [])
    rows = [r for r in store.dead_letters(limit=100_000) if not wanted or r["id"] in wanted]
    msgs = [RawMessage(r["source"], r["position"], r["payload"].encode() if r["payload"] is not None else None)
            for r in rows]
    pipeline = Pipeline(cfg, store, _now)
    outcomes = pipeline.process(msgs) if msgs else []
    ok = [r["id"] for r, o in zip(rows, outcomes) if o.status != "dead_letter"]
    store.mark_replayed(ok, _now())
    for r, o in zip(rows, outcomes):
        if o.status == "dead_letter":
            print(f"{r['id']}: still rejected: {o.reason}")
    print(f"replayed {len(ok)} of {len(rows)} dead letter(s)")
    store.close()
    return 0


def _matcher(text: str) -> tuple[str, str]:
    """``label=value`` or ``label=~regex`` (a value may itself hold '=', e.g. slice=device=cam_b)."""
    k, sep, v = text.partition("=")
    if not sep or not k:
        raise argparse.ArgumentTypeError(f"matcher {text!r}: expected label=value or label=~regex")
    if v.startswith("~"):
        import re

        try:
            re.compile(v[1:])
        except re.error as e:
            raise argparse.ArgumentTypeError(f"matcher {text!r}: bad regex: {e}") from None
    return k, v


def cmd_silence(args, cfg) -> int:
    store = _store(cfg)
    now = _now()
    if args.silence_cmd == "add":
        matchers = dict(args.matcher)
        sid = store.add_silence(matchers, now, now + args.duration, args.author, args.comment, now)
        print(f"silence {sid}: {matchers} until {(now + args.duration).isoformat()}")
    elif args.silence_cmd == "expire":
        if not store.expire_silence(args.id, now):
            print(f"error: no silence {args.id} in force", file=sys.stderr)
            store.close()
            return 1
        print(f"silence {args.id} expired")
    else:
        for si in store.silences(active_at=None if args.all else now):
            state = "active" if si["starts_at"] <= now < si["ends_at"] else "expired"
            row = {**si, "state": state, **{k: si[k].isoformat() for k in ("starts_at", "ends_at", "created_at")}}
            print(json.dumps(row, sort_keys=True) if args.json else
                  f"{si['id']:>5} {state:<8} until {row['ends_at']}  {si['matchers']}  {si['created_by']}: "
                  f"{si['comment']}")
    store.close()
    return 0


def cmd_alerts(args, cfg) -> int:
    store = _store(cfg)
    for a in store.alerts(state=args.state):
        row = {"fingerprint": a["dedup_key"], "state": a["state"], "labels": a["labels"],
               "starts_at": a["starts_at"].isoformat(), "ends_at": a["ends_at"].isoformat() if a["ends_at"] else None,
               "changed_at": a["changed_at"].isoformat(), "value": a["value"],
               "summary": a["annotations"].get("summary", "")}
        if args.json:
            print(json.dumps(row, sort_keys=True))
        else:
            lab = a["labels"]
            what = f" {lab['modality']}.{lab['signal']}" if "signal" in lab else ""
            print(f"{a['dedup_key']} {a['state']:<9} {row['starts_at']} .. {row['ends_at'] or 'now':<25} "
                  f"{lab['alertname']} {lab.get('model', '')} [{lab.get('slice', '*')}]{what} value={a['value']}")
    store.close()
    return 0


def cmd_review(args, cfg) -> int:
    from monitor.pipeline import Pipeline
    from monitor.review import export_review, import_labels, send_review

    store = _store(cfg)
    if args.review_cmd == "export":
        if args.to == "file":
            if not args.out:
                raise ValueError("review export --to file needs --out FILE")
            n = export_review(store, Path(args.out), _now(), include_exported=args.all, fmt=args.format)
            where = args.out
        elif args.to == "kafka":
            from connectors.kafka import produce_json

            if cfg.ingest.kafka is None:
                raise ValueError("review export --to kafka needs ingest.kafka (its brokers) in the config")
            brokers, topic = cfg.ingest.kafka.bootstrap_servers, cfg.review.export_topic
            n = send_review(store, lambda recs: produce_json(brokers, topic, recs), _now(),
                            include_exported=args.all, fmt=args.format)
            where = f"Kafka topic {topic}"
        else:
            from alerts.webhook import WebhookSender

            rc = cfg.review
            if rc.export_url is None:
                raise ValueError("review export --to webhook needs review.export_url in the config")
            sender = WebhookSender("review-export", rc.export_url.get_secret_value(),
                                   rc.export_secret.get_secret_value() if rc.export_secret else None)
            now = _now()
            n = send_review(store, lambda recs: sender.send({"format": args.format, "items": recs},
                                                            f"review-{now.strftime('%Y%m%dT%H%M%S')}"),
                            now, include_exported=args.all, fmt=args.format)
            where = "the review webhook"
        print(f"exported {n} review item(s) to {where}")
    else:
        outcomes = import_labels(Pipeline(cfg, store, _now), Path(args.file), _now())
        bad = [o for o in outcomes if o.status == "dead_letter"]
        for o in bad:
            print(f"{o.position}: {o.reason}", file=sys.stderr)
        print(f"imported {len(outcomes) - len(bad)} label(s), {len(bad)} rejected")
    store.close()
    return 0


def cmd_signals(args, cfg) -> int:
    from monitor.media import describe_file

    failed = 0
    for f in args.files:
        out = describe_file(Path(f))
        failed += "error" in out
        print(json.dumps(out, sort_keys=True))
    return 1 if failed else 0


def cmd_demo(args, cfg) -> int:
    from monitor.demo import run_demo

    summary = run_demo(Path(args.out), days=args.days, seed=args.seed, events_per_day=args.events_per_day)
    print(json.dumps(summary, indent=1))
    print(f"\nreport: {Path(args.out).resolve() / 'report.html'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    # --config is accepted before or after any (sub)command.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", "-c", default=argparse.SUPPRESS,
                        help="YAML config (default: the embedded default, config/default.yaml)")
    p = argparse.ArgumentParser(prog="modalwatch", description="Monitor a deployed multimodal model.",
                                parents=[common])
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name, fn, help_, parent=sub):
        sp = parent.add_parser(name, help=help_, parents=[common])
        if fn is not None:
            sp.set_defaults(fn=fn)
        return sp

    add("run", cmd_run, "run the daemon")
    sp = add("ingest", cmd_ingest, "ingest JSONL files, directories or - (stdin) once")
    sp.add_argument("paths", nargs="+")
    add("migrate", cmd_migrate, "apply the database migrations")
    add("schema", cmd_schema, "print the JSON Schema of the events")
    sp = add("check-config", cmd_check_config, "validate a config file")
    sp.add_argument("file")
    sp = add("evaluate", cmd_evaluate, "evaluate (backfill) the windows in [--from, --to)")
    sp.add_argument("--from", dest="from_", type=_date, required=True)
    sp.add_argument("--to", type=_date, required=True)
    sp.add_argument("--force", action="store_true",
                    help="recompute windows already evaluated (keeps stored rows, sends no alerts)")
    sp.add_argument("--interval", type=_duration, help="only this interval (e.g. 1d)")
    sp.add_argument("--lag", type=_duration, help="only this label-maturity lag (e.g. 7d)")
    sp = add("history", cmd_history, "print one metric's series across intervals, with its trend")
    sp.add_argument("metric", help="e.g. error_rate, ece, psi, ks, estimated_accuracy")
    sp.add_argument("--slice", default="*", help="K=V, or * for all traffic (default)")
    sp.add_argument("--signal", default="", help="for drift metrics, e.g. image.brightness")
    sp.add_argument("--interval", type=_duration, help="default: the first configured interval")
    sp.add_argument("--lag", type=_duration, help="default: the first configured lag")
    sp.add_argument("--model", help="model name (default: the only one, else required)")
    sp.add_argument("--json", action="store_true")
    sp = add("report", cmd_report, "write report.html and report.json")
    sp.add_argument("--from", dest="from_", type=_date, required=True)
    sp.add_argument("--to", type=_date, required=True)
    sp.add_argument("--out", required=True)
    sp = add("status", cmd_status, "print counts")
    sp.add_argument("--json", action="store_true")
    sp = add("dlq", cmd_dlq, "dead letters: list or replay")
    dsub = sp.add_subparsers(dest="dlq_cmd", required=True)
    dl = add("list", None, "list dead letters", dsub)
    dl.add_argument("--json", action="store_true")
    dl.add_argument("--all", action="store_true", help="include replayed ones")
    dl.add_argument("--payload", action="store_true")
    dl.add_argument("--limit", type=int, default=1000)
    dr = add("replay", None, "decode dead letters again; store those that now pass", dsub)
    dr.add_argument("--id", type=int, action="append", help="only these ids (repeatable)")
    sp = add("silence", cmd_silence, "silences: add, list, expire")
    ssub = sp.add_subparsers(dest="silence_cmd", required=True)
    sa = add("add", None, "mute alerts matching every matcher for a while", ssub)
    sa.add_argument("--matcher", "-m", type=_matcher, action="append", required=True,
                    help="label=value or label=~regex (repeatable), e.g. -m alertname=SignalDrift -m slice=device=cam_b")
    sa.add_argument("--duration", "-d", type=_duration, required=True, help="e.g. 2h, 1d")
    sa.add_argument("--comment", required=True)
    sa.add_argument("--author", default=os.environ.get("USER", "unknown"))
    sl = add("list", None, "list silences in force (--all: expired ones too)", ssub)
    sl.add_argument("--all", action="store_true")
    sl.add_argument("--json", action="store_true")
    se = add("expire", None, "end a silence now", ssub)
    se.add_argument("id", type=int)
    sp = add("alerts", cmd_alerts, "alert history")
    asub = sp.add_subparsers(dest="alerts_cmd", required=True)
    al = add("list", None, "list alerts (all states unless --state)", asub)
    al.add_argument("--state", choices=["pending", "firing", "resolved", "cleared"])
    al.add_argument("--json", action="store_true")
    sp = add("review", cmd_review, "review queue: export items, import labels")
    rsub = sp.add_subparsers(dest="review_cmd", required=True)
    rx = add("export", None, "hand queued items to reviewers: a file, a Kafka topic or a webhook", rsub)
    rx.add_argument("--to", choices=["file", "kafka", "webhook"], default="file",
                    help="file (--out), kafka (review.export_topic), webhook (review.export_url)")
    rx.add_argument("--out")
    rx.add_argument("--all", action="store_true", help="include items already exported")
    rx.add_argument("--format", choices=["jsonl", "labelstudio"], default="jsonl",
                    help="jsonl (one item a line) or a Label Studio task list (JSON)")
    ri = add("import", None, "read labels back: JSONL of event_id, label; or Label Studio's JSON export", rsub)
    ri.add_argument("file")
    sp = add("signals", cmd_signals, "print the quality signals of image, audio or text files (one JSON line each)")
    sp.add_argument("files", nargs="+")
    sp = add("demo", cmd_demo, "replay a synthetic multimodal stream through the real pipeline")
    sp.add_argument("--out", default="demo-out")
    sp.add_argument("--days", type=int, default=28)
    sp.add_argument("--seed", type=int, default=7)
    sp.add_argument("--events-per-day", type=int, default=2000)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    path = getattr(args, "config", None)
    if args.cmd == "check-config":
        path = args.file
    try:
        cfg = load_config(path)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=cfg.log_level, format=LOG_FORMAT, stream=sys.stderr)
    try:
        return args.fn(args, cfg)
    except Exception as e:  # noqa: BLE001 - only the expected kinds are turned into a message
        if isinstance(e, (ValueError, OSError)) or type(e).__module__.split(".")[0] in ("psycopg", "kafka", "sqlite3"):
            print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
