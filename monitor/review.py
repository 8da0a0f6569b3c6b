"""The review queue: what humans should label, within a budget; exported as JSONL or Label Studio
tasks; their labels imported back as LabelEvents, closing the items.

Candidates: events less confident than ``review.confidence_below``, abstained, or whose
per-modality answers (``output.per_modality``) disagree (at ingest), the
unlabelled events of a slice whose alert fired or whose label-free accuracy estimate fell below
``review.estimated_accuracy_below`` (at evaluation). Each day (of the ingest clock, in
``evaluation.timezone``) each stratum — the values of ``review.stratify_by`` (default: every
slice attribute) — takes at most ``review.daily_budget_per_stratum`` items, the most uncertain
first, so one loud slice cannot use up everyone's budget. An event is queued once; an item nobody
labels within ``review.item_ttl`` expires.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Protocol, Sequence

from monitor.core.messages import Outcome, RawMessage
from monitor.core.records import ReviewCandidate, ReviewItem


class BatchPipeline(Protocol):
    """What importing labels needs of the pipeline (monitor/pipeline.py)."""

    store: Any

    def process(self, messages: list[RawMessage]) -> list[Outcome]: ...


def stratum_of(slice_: Mapping[str, str], by: list[str] | None) -> str:
    """``k=v`` of the stratifying attributes, comma-joined (``*`` when the event has none)."""
    keys = sorted(slice_) if by is None else by
    return ",".join(f"{k}={slice_.get(k, '')}" for k in keys) or "*"


def review_reason(output, rc) -> str | None:
    """Why an event's own answer makes it a review candidate, or None."""
    if rc.abstained and output.abstained:
        return "abstained"
    if rc.modalities_disagree and output.modalities_disagree:
        return "modalities_disagree"
    if output.confidence < rc.confidence_below:
        return "low_confidence"
    return None


def within_budget(
    candidates: Sequence[ReviewCandidate], used: Mapping[str, int], budget: int
) -> list[ReviewCandidate]:
    """The candidates to queue: most uncertain first (highest ``priority``), at most ``budget`` per
    stratum counting what ``used`` says is queued already today."""
    taken = dict(used)
    out = []
    for c in sorted(candidates, key=lambda c: (-c.priority, c.event_id)):
        if taken.get(c.stratum, 0) < budget:
            taken[c.stratum] = taken.get(c.stratum, 0) + 1
            out.append(c)
    return out


def labelstudio_task(item: ReviewItem) -> dict:
    """One Label Studio task: media by the URI the event named (never bytes), the model's answer as
    a pre-filled prediction (a ``choices`` result named ``label``), and the event id to come back."""
    data = {
        "event_id": item.event_id,
        "model": item.model_name,
        "model_version": item.model_version,
        "ts": item.ts.isoformat(),
        "reason": item.reason,
        **{f"slice_{k}": v for k, v in item.slice.items()},
    }
    data.update(item.media_uris)  # image / audio / text: file:// URIs (map them to your storage)
    to_name = next((m for m in ("image", "audio", "text") if m in item.media_uris), "image")
    return {
        "data": data,
        "predictions": [
            {
                "model_version": item.model_version,
                "score": item.confidence,
                "result": [
                    {
                        "from_name": "label",
                        "to_name": to_name,
                        "type": "choices",
                        "value": {"choices": [item.pred_label]},
                    }
                ],
            }
        ],
        "meta": {"modalwatch_event_id": item.event_id, "priority": item.priority},
    }


def jsonl_record(item: ReviewItem) -> dict:
    """One JSONL export line: the item, with ``label`` for the reviewer to fill in."""
    return {
        "event_id": item.event_id,
        "reason": item.reason,
        "priority": item.priority,
        "queued_at": item.queued_at.isoformat(),
        "ts": item.ts.isoformat(),
        "model": {"name": item.model_name, "version": item.model_version},
        "slice": item.slice,
        "output": {
            "label": item.pred_label,
            "confidence": item.confidence,
            "probabilities": item.probabilities,
        },
        "signals": item.signals,
        "media_uris": item.media_uris,
        "stratum": item.stratum,
        "label": None,
    }


def review_items(store, include_exported: bool = False, fmt: str = "jsonl") -> list[dict]:
    """The queue as export records: JSONL items (``label`` to fill in) or Label Studio tasks."""
    items = store.review.queue("queued") + (store.review.queue("exported") if include_exported else [])
    return [labelstudio_task(it) if fmt == "labelstudio" else jsonl_record(it) for it in items]


def _event_id(record: dict) -> str:
    return record.get("event_id") or record["data"]["event_id"]


def export_review(store, out: Path, now: datetime, include_exported: bool = False, fmt: str = "jsonl") -> int:
    """Write the queue as JSONL (one item a line, ``label`` to fill in) or as a Label Studio task
    list (``fmt="labelstudio"``); the items become ``exported``."""
    records = review_items(store, include_exported, fmt)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", encoding="utf-8") as fh:
        if fmt == "labelstudio":
            json.dump(records, fh, indent=1, sort_keys=True)
        else:
            for r in records:
                fh.write(json.dumps(r, sort_keys=True) + "\n")
    store.review.set_state([_event_id(r) for r in records], "exported", now)
    return len(records)


def send_review(store, send, now: datetime, include_exported: bool = False, fmt: str = "jsonl") -> int:
    """Hand the queue to ``send(records)`` (a Kafka topic, a webhook); the items become
    ``exported`` only once it returned, so a failed send loses nothing."""
    records = review_items(store, include_exported, fmt)
    if records:
        send(records)
        store.review.set_state([_event_id(r) for r in records], "exported", now)
    return len(records)


def _labelstudio_labels(tasks, source: str, now: datetime) -> list[dict | str]:
    """Label Studio's JSON export → label dicts (the newest annotation that was not cancelled and
    holds a ``choices`` result); a task that cannot be read becomes a string saying why."""
    out: list[dict | str] = []
    for i, task in enumerate(tasks if isinstance(tasks, list) else []):
        if not isinstance(task, dict):
            out.append(f"task {i}: not an object")
            continue
        eid = (task.get("data") or {}).get("event_id") or (task.get("meta") or {}).get("modalwatch_event_id")
        anns = [a for a in (task.get("annotations") or []) if not a.get("was_cancelled")]
        anns.sort(key=lambda a: a.get("updated_at") or a.get("created_at") or "")
        choice, when = None, None
        for a in reversed(anns):
            for r in a.get("result", []):
                if r.get("type") == "choices" and r.get("value", {}).get("choices"):
                    choice, when = r["value"]["choices"][0], a.get("updated_at") or a.get("created_at")
                    break
            if choice is not None:
                break
        if eid is None:
            out.append(f"task {i}: no data.event_id")
        elif choice is not None:
            out.append(
                {
                    "type": "label",
                    "event_id": eid,
                    "label": choice,
                    "source": source,
                    "ts": when or now.isoformat(),
                }
            )
    return out


def import_labels(
    pipeline: BatchPipeline, path: Path, now: datetime, source: str = "review"
) -> list[Outcome]:
    """Labels back from reviewers: JSONL lines ``{"event_id": ..., "label": ...}`` (``labelled_at``
    and ``source`` optional), or Label Studio's JSON export (a list of tasks with annotations).
    Each becomes a LabelEvent through the pipeline (bad ones are dead letters with the reason);
    the review items of the stored labels are closed."""
    raw = Path(path).read_bytes()
    msgs = []
    if raw.lstrip()[:1] == b"[":  # Label Studio's JSON export
        try:
            tasks = json.loads(raw)
        except ValueError as e:
            raise ValueError(f"{path}: not valid JSON: {e}") from None
        for i, obj in enumerate(_labelstudio_labels(tasks, "labelstudio", now)):
            payload = obj.encode() if isinstance(obj, str) else json.dumps(obj).encode()
            msgs.append(RawMessage("review-import", f"{path}#{i}", payload, "label"))
    else:
        for lineno, line in enumerate(raw.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except ValueError:
                msgs.append(RawMessage("review-import", f"{path}:{lineno}", line, "label"))
                continue
            if isinstance(obj, dict) and obj.get("label") is None and "event_id" in obj:
                continue  # exported but not labelled yet
            if isinstance(obj, dict):
                obj = {
                    "type": "label",
                    "event_id": obj.get("event_id"),
                    "label": obj.get("label"),
                    "source": obj.get("source", source),
                    "ts": obj.get("labelled_at") or now.isoformat(),
                }
            msgs.append(RawMessage("review-import", f"{path}:{lineno}", json.dumps(obj).encode(), "label"))
    outcomes = pipeline.process(msgs)
    labelled = [
        json.loads(m.payload)["event_id"] for m, o in zip(msgs, outcomes) if o.status != "dead_letter"
    ]
    pipeline.store.review.set_state(labelled, "labelled", now)
    return outcomes
