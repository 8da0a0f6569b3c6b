"""Where each model version's reference comes from: its first days, a fixed range, or a file."""

from __future__ import annotations

import logging
import os
from datetime import datetime, timedelta

from monitor.core.events import InferenceEvent
from monitor.core.window import ModalityAnswers, ReferenceReads, TokenWindow, Window
from monitor.schedule import floor_to

log = logging.getLogger("modalwatch.evaluation")


def reference_range(cfg, first_event_at: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the reference of a model version whose traffic began at ``first_event_at``:
    ``evaluation.reference``'s fixed range, or its first ``days`` whole local days (an empty range
    at the first day for a file reference, which is complete from the start)."""
    ref = cfg.evaluation.reference
    if ref.from_at is not None:
        return ref.from_at, ref.to_at
    tz = cfg.evaluation.tz
    start = floor_to(first_event_at, timedelta(days=1), tz)
    if ref.file is not None:  # a file reference is complete from the start: no window waits for it
        return start, start
    # whole local days: add days to the local date, not 24-hour steps
    local = start.astimezone(tz)
    end = (local.replace(tzinfo=None) + timedelta(days=ref.days)).replace(tzinfo=tz).astimezone(start.tzinfo)
    return start, end


def reference_from_file(cfg, path: str, model_name: str) -> tuple[Window, ReferenceReads]:
    """The reference of ``model_name`` from a JSONL file of events and labels: read by the JSONL
    source, decoded and measured like ingested traffic (raw media included), every label counts."""
    from connectors.jsonl import JsonlSource
    from connectors.media import MediaReader
    from monitor.media import measure_event
    from monitor.pipeline import Rejected, decode

    if not os.path.exists(path):
        raise ValueError(f"evaluation.reference.file: {path} does not exist")
    src = JsonlSource([path], follow=False, max_payload_bytes=cfg.ingest.max_payload_bytes)
    read = MediaReader.from_config(cfg.media).read
    events, labels, bad = [], {}, 0
    while not src.exhausted:
        for msg in src.poll(10_000):
            try:
                ev = decode(msg, cfg.ingest.max_payload_bytes)
            except Rejected:
                bad += 1
                continue
            if isinstance(ev, InferenceEvent):
                if ev.model.name == model_name:
                    events.append(ev)
            else:
                labels[ev.event_id] = ev.label
    src.close()
    if bad:
        log.warning("reference file %s: %d lines were not valid events and were left out", path, bad)
    if not events:
        raise ValueError(f"evaluation.reference.file: {path} holds no event of model {model_name!r}")
    measured, embeddings, tokens = [], {}, []
    for ev in events:
        m = measure_event(ev, read, cfg.media)
        measured.append(m.signals)
        if m.tokens is not None:
            tokens.append((dict(ev.slice), m.tokens))
        for name, vec in (ev.embeddings or {}).items():
            embeddings.setdefault(name, []).append(vec)
    window = Window.of(
        [dict(ev.slice) for ev in events],
        measured,
        [ev.output.label for ev in events],
        [ev.output.confidence for ev in events],
        [ev.output.abstained for ev in events],
        [labels.get(ev.event_id) for ev in events],
    )
    answered = [ev for ev in events if ev.output.per_modality]
    answers = ModalityAnswers.of(
        Window.of(
            [dict(ev.slice) for ev in answered],
            [{}] * len(answered),
            [ev.output.label for ev in answered],
            [ev.output.confidence for ev in answered],
            [ev.output.abstained for ev in answered],
            [labels.get(ev.event_id) for ev in answered],
        ),
        [ev.output.per_modality_plain() for ev in answered],
    )
    n = len(tokens)
    texts = TokenWindow.of(
        Window.of([sl for sl, _ in tokens], [{}] * n, [""] * n, [0.0] * n, [False] * n, [None] * n),
        [t for _, t in tokens],
    )
    return window, ReferenceReads(embeddings, answers, texts)
