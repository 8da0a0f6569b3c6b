"""The review queue: export what humans should label; import their labels as LabelEvents."""
from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from monitor.pipeline import Outcome, Pipeline, RawMessage


def export_review(store, out: Path, now: datetime, include_exported: bool = False) -> int:
    items = store.review_queue("queued") + (store.review_queue("exported") if include_exported else [])
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        for it in items:
            fh.write(json.dumps({**it, "ts": it["ts"].isoformat(), "queued_at": it["queued_at"].isoformat(),
                                 "label": None}, sort_keys=True) + "\n")
    store.set_review_state([it["event_id"] for it in items], "exported", now)
    return len(items)


def import_labels(pipeline: Pipeline, path: Path, now: datetime, source: str = "review") -> list[Outcome]:
    """Each line ``{"event_id": ..., "label": ...}`` (``ts``/``source`` optional) becomes a LabelEvent."""
    msgs = []
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                msgs.append(RawMessage("review-import", f"{path}:{lineno}", line.rstrip(b"\n"), "label"))
                continue
            if isinstance(obj, dict) and obj.get("label") is None and "event_id" in obj:
                continue  # exported but not labelled yet
            if isinstance(obj, dict):
                obj = {"type": "label", "event_id": obj.get("event_id"), "label": obj.get("label"),
                       "source": obj.get("source", source), "ts": obj.get("labelled_at") or now.isoformat()}
            msgs.append(RawMessage("review-import", f"{path}:{lineno}", json.dumps(obj).encode(), "label"))
    outcomes = pipeline.process(msgs)
    labelled = [json.loads(m.payload)["event_id"] for m, o in zip(msgs, outcomes) if o.status != "dead_letter"]
    pipeline.store.set_review_state(labelled, "labelled", now)
    return outcomes
