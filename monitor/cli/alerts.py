"""``alerts list`` and ``silence add|list|expire``."""

from __future__ import annotations

import argparse
import json
import os
import sys

from alerts.rules import subject
from monitor.cli.common import duration_arg, now, opened_store
from monitor.core.matchers import check_matchers, check_silence


def _matcher(text: str) -> tuple[str, str]:
    """``label=value`` or ``label=~regex`` (a value may itself hold '=', e.g. slice=device=cam_b)."""
    k, sep, v = text.partition("=")
    if not sep or not k:
        raise argparse.ArgumentTypeError(f"matcher {text!r}: expected label=value or label=~regex")
    try:
        check_matchers({k: v})
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"matcher {text!r}: {e}") from None
    return k, v


def cmd_silence(args, cfg) -> int:
    at = now()
    with opened_store(cfg) as store:
        if args.silence_cmd == "add":
            matchers = dict(args.matcher)
            try:
                check_silence(matchers, args.duration)
            except ValueError as e:
                print(f"error: {e}", file=sys.stderr)
                return 2
            sid = store.alerts.add_silence(matchers, at, at + args.duration, args.author, args.comment, at)
            print(f"silence {sid}: {matchers} until {(at + args.duration).isoformat()}")
        elif args.silence_cmd == "expire":
            if not store.alerts.expire_silence(args.id, at):
                print(f"error: no silence {args.id} in force", file=sys.stderr)
                return 1
            print(f"silence {args.id} expired")
        else:
            for si in store.alerts.silences(active_at=None if args.all else at):
                state = "active" if si.active(at) else "expired"
                row = {
                    "id": si.id,
                    "matchers": si.matchers,
                    "state": state,
                    "starts_at": si.starts_at.isoformat(),
                    "ends_at": si.ends_at.isoformat(),
                    "created_at": si.created_at.isoformat(),
                    "created_by": si.created_by,
                    "comment": si.comment,
                }
                print(
                    json.dumps(row, sort_keys=True)
                    if args.json
                    else f"{si.id:>5} {state:<8} until {row['ends_at']}  {si.matchers}  "
                    f"{si.created_by}: {si.comment}"
                )
    return 0


def _print_incidents(store, as_json: bool) -> int:
    from alerts.incidents import group_incidents
    from monitor.notify import incident_context

    for inc in group_incidents(store.alerts.list("firing"), **incident_context(store)):
        if as_json:
            print(
                json.dumps(
                    {
                        "incident": inc.key,
                        "model": inc.model,
                        "place": inc.place,
                        "families": list(inc.families),
                        "since": inc.since.isoformat(),
                        "headline": inc.headline,
                        "grouped_because": inc.because,
                        "alerts": [a.dedup_key for a in inc.alerts],
                    },
                    sort_keys=True,
                )
            )
        else:
            print(inc.headline)
            print(f"  grouped because {inc.because}")
            for a in inc.alerts:
                lab = a.labels
                print(f"  {a.dedup_key} {lab['alertname']} [{lab.get('slice', '*')}]{subject(lab)}")
    return 0


def cmd_alerts(args, cfg) -> int:
    if args.incidents:
        with opened_store(cfg) as store:
            return _print_incidents(store, args.json)
    from alerts.incidents import group_incidents
    from monitor.notify import incident_context

    with opened_store(cfg) as store:
        if args.episodes:
            alerts = [a for a in store.alerts.episodes() if args.state in (None, a.state)]
        else:
            alerts = store.alerts.list(state=args.state)
        # a person reads the causes first (--json stays one alert per line, for scripts)
        # (what fires now: not over a list of resolved alerts or of the history)
        now_firing = not args.json and not args.episodes and args.state in (None, "firing")
        leading = (
            group_incidents(store.alerts.list("firing"), **incident_context(store)) if now_firing else []
        )
    if leading:
        print(f"{len(leading)} incident(s) firing (--incidents lists their alerts):")
        for inc in leading:
            print(f"  {inc.headline}")
        print()
    for a in alerts:
        row = {
            "fingerprint": a.dedup_key,
            "state": a.state,
            "labels": a.labels,
            "starts_at": a.starts_at.isoformat(),
            "ends_at": a.ends_at.isoformat() if a.ends_at else None,
            "changed_at": a.changed_at.isoformat(),
            "value": a.value,
            "summary": a.annotations.get("summary", ""),
        }
        if args.json:
            print(json.dumps(row, sort_keys=True))
        else:
            lab = a.labels
            what = subject(lab)
            print(
                f"{a.dedup_key} {a.state:<9} {row['starts_at']} .. {row['ends_at'] or 'now':<25} "
                f"{lab['alertname']} {lab.get('model', '')} [{lab.get('slice', '*')}]{what} value={a.value}"
            )
    return 0


def add_commands(add) -> None:
    sp = add("silence", cmd_silence, "silences: add, list, expire")
    ssub = sp.add_subparsers(dest="silence_cmd", required=True)
    sa = add("add", None, "mute alerts matching every matcher for a while", ssub)
    sa.add_argument(
        "--matcher",
        "-m",
        type=_matcher,
        action="append",
        required=True,
        help="label=value or label=~regex, a full match in RE2's syntax (repeatable), e.g. -m"
        " alertname=SignalDrift -m 'slice=~device=cam_.*'",
    )
    sa.add_argument("--duration", "-d", type=duration_arg, required=True, help="e.g. 2h, 1d (at most 365d)")
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
    al.add_argument(
        "--incidents",
        action="store_true",
        help="the firing alerts grouped by cause: one line per incident, its alerts under it",
    )
    al.add_argument(
        "--episodes",
        action="store_true",
        help="every episode (each fire to resolve), not one row per alert in its latest state",
    )
    al.add_argument("--json", action="store_true")
