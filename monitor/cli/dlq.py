"""``dlq list`` and ``dlq replay``: dead letters."""

from __future__ import annotations

import json

from monitor.cli.common import now, opened_pipeline, opened_store


def cmd_dlq(args, cfg) -> int:
    with opened_store(cfg) as store:
        if args.dlq_cmd == "list":
            for r in store.ops.dead_letters(include_replayed=args.all, limit=args.limit):
                row = {
                    "id": r.id,
                    "source": r.source,
                    "position": r.position,
                    "reason": r.reason,
                    "received_at": r.received_at.isoformat(),
                    "replayed_at": r.replayed_at.isoformat() if r.replayed_at else None,
                }
                if args.payload:  # its bytes as text (invalid UTF-8 shown as U+FFFD; replay reads the bytes)
                    row["payload"] = (
                        None if r.payload is None else r.payload.decode("utf-8", errors="replace")
                    )
                print(
                    json.dumps(row) if args.json else f"{r.id:>6} {r.source:<8} {r.position:<40} {r.reason}"
                )
            return 0
        from monitor.replay import replay_dead_letters

        with opened_pipeline(cfg, store) as pipeline:
            done = replay_dead_letters(pipeline, set(args.id or []), now())
    for dl_id, status, reason in done.outcomes:
        print(
            f"{dl_id}: {'still rejected' if status == 'dead_letter' else status}"
            f"{': ' + reason if reason else ''}"
        )
    print(f"replayed {len(done.replayed)} of {len(done.outcomes)} dead letter(s)")
    return 0


def add_commands(add) -> None:
    sp = add("dlq", cmd_dlq, "dead letters: list or replay")
    dsub = sp.add_subparsers(dest="dlq_cmd", required=True)
    dl = add("list", None, "list dead letters", dsub)
    dl.add_argument("--json", action="store_true")
    dl.add_argument("--all", action="store_true", help="include replayed ones")
    dl.add_argument("--payload", action="store_true")
    dl.add_argument("--limit", type=int, default=1000)
    dr = add("replay", None, "decode dead letters again; store those that now pass", dsub)
    dr.add_argument("--id", type=int, action="append", help="only these ids (repeatable)")
