"""``review export`` and ``review import``: the review queue's way out and the labels' way back."""

from __future__ import annotations

import sys
from pathlib import Path

from monitor.cli.common import now, opened_pipeline, opened_store


def _export(args, cfg, store) -> tuple[int, str]:
    from monitor.review import export_review, send_review

    if args.to == "file":
        if not args.out:
            raise ValueError("review export --to file needs --out FILE")
        return export_review(
            store, Path(args.out), now(), include_exported=args.all, fmt=args.format
        ), args.out
    if args.to == "kafka":
        from connectors.kafka import produce_json

        if cfg.ingest.kafka is None:
            raise ValueError("review export --to kafka needs ingest.kafka (its brokers) in the config")
        kafka, topic = cfg.ingest.kafka, cfg.review.export_topic
        n = send_review(
            store,
            lambda recs: produce_json(kafka, topic, recs),
            now(),
            include_exported=args.all,
            fmt=args.format,
        )
        return n, f"Kafka topic {topic}"
    from alerts.receivers import receiver_for
    from alerts.receivers.webhook import WebhookConfig

    rc = cfg.review
    if rc.export_url is None:
        raise ValueError("review export --to webhook needs review.export_url in the config")
    # the generic webhook receiver: signed like the alert webhooks when export_secret is set
    sender = receiver_for(
        WebhookConfig(name="review-export", url=rc.export_url, secret=rc.export_secret)
    ).sender()
    at = now()
    n = send_review(
        store,
        lambda recs: sender.send(
            {"format": args.format, "items": recs}, f"review-{at.strftime('%Y%m%dT%H%M%S')}"
        ),
        at,
        include_exported=args.all,
        fmt=args.format,
    )
    return n, "the review webhook"


def cmd_review(args, cfg) -> int:
    with opened_store(cfg) as store:
        if args.review_cmd == "export":
            n, where = _export(args, cfg, store)
            print(f"exported {n} review item(s) to {where}")
            return 0
        from monitor.review import import_labels

        with opened_pipeline(cfg, store) as pipeline:
            outcomes = import_labels(pipeline, Path(args.file), now())
    bad = [o for o in outcomes if o.status == "dead_letter"]
    for o in bad:
        print(f"{o.position}: {o.reason}", file=sys.stderr)
    print(f"imported {len(outcomes) - len(bad)} label(s), {len(bad)} rejected")
    return 0


def add_commands(add) -> None:
    sp = add("review", cmd_review, "review queue: export items, import labels")
    rsub = sp.add_subparsers(dest="review_cmd", required=True)
    rx = add("export", None, "hand queued items to reviewers: a file, a Kafka topic or a webhook", rsub)
    rx.add_argument(
        "--to",
        choices=["file", "kafka", "webhook"],
        default="file",
        help="file (--out), kafka (review.export_topic), webhook (review.export_url)",
    )
    rx.add_argument("--out")
    rx.add_argument("--all", action="store_true", help="include items already exported")
    rx.add_argument(
        "--format",
        choices=["jsonl", "labelstudio"],
        default="jsonl",
        help="jsonl (one item a line) or a Label Studio task list (JSON)",
    )
    ri = add(
        "import", None, "read labels back: JSONL of event_id, label; or Label Studio's JSON export", rsub
    )
    ri.add_argument("file")
