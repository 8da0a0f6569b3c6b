"""decode → validate → store, in one transaction per batch; then the online detectors.

Every message becomes exactly one outcome: stored, duplicate (already stored: replays change
nothing) or a dead letter with its reason and source position.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from datetime import datetime, timedelta
from typing import Callable

from pydantic import ValidationError
from pydantic_core import from_json, to_json

from monitor.checks.online import OnlineErrorRate
from monitor.core.events import InferenceEvent, LabelEvent, kind_of
from monitor.core.messages import DEAD_LETTER_PAYLOAD_MAX, Outcome, RawMessage
from monitor.core.records import DeadLetter, EventRow, LabelRow, ReviewCandidate
from monitor.core.text import printable
from monitor.media import Measured, measure_event
from monitor.online import OnlineLane
from monitor.review import review_reason, stratum_of, within_budget
from monitor.schedule import floor_to
from monitor.summaries import Summariser, SummarySpec, ensure_summaries, summarise_batch

log = logging.getLogger("modalwatch.pipeline")


class Rejected(ValueError):
    pass


_VALIDATE = {
    "inference": InferenceEvent.__pydantic_validator__.validate_json,
    "label": LabelEvent.__pydantic_validator__.validate_json,
}
_NUL_ESCAPE = b"\\u0000"


def decode(msg: RawMessage, max_payload_bytes: int) -> InferenceEvent | LabelEvent:
    """The event in ``msg``, or ``Rejected`` with a reason a producer can act on.

    Whatever the bytes hold, the answer is an event or ``Rejected``: JSON is parsed by
    pydantic-core, whose parser bounds nesting depth and number size itself (a deeply nested
    object or a 5,000-digit number is malformed JSON here, not a crash), and validated in strict
    mode, as the JSON Schema says (``"0.9"`` is not a confidence, nor ``1700000000`` a time)."""
    if msg.error:
        raise Rejected(msg.error)
    payload = msg.payload
    if payload is None or len(payload) > max_payload_bytes:
        size = 0 if payload is None else len(payload)
        raise Rejected(f"payload too large: {size} bytes > ingest.max_payload_bytes={max_payload_bytes}")
    kind = msg.kind
    if kind is None:  # a JSONL line: its content says the kind
        try:
            obj = from_json(payload)
        except ValueError as e:
            raise Rejected(f"malformed JSON: {e}") from None
        if not isinstance(obj, dict):
            raise Rejected(f"an event must be a JSON object, got {_json_type(obj)}")
        try:
            kind = kind_of(obj)
        except ValueError as e:
            raise Rejected(str(e)) from None
    if _NUL_ESCAPE in payload and _holds_nul(payload):
        raise Rejected("a string holds U+0000 (NUL), which text columns cannot store: remove it")
    try:
        return _VALIDATE[kind](payload)
    except ValidationError as e:
        errors = e.errors()
        if any(err["type"] == "json_invalid" for err in errors):
            raise Rejected(f"malformed JSON: {errors[0]['msg']}") from None
        sent = next((err["input"] for err in errors if err["loc"] == ("type",)), None)
        if sent is not None and msg.kind is not None:
            raise Rejected(f"a {shown(sent)!r} event was sent where {msg.kind!r} events go") from None
        raise Rejected("schema violation: " + _explain(e)) from None


def _json_type(obj) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(obj), "a number"
    )


def _holds_nul(payload: bytes) -> bool:
    """Whether JSON text holds an escaped U+0000 (a raw NUL byte is not JSON at all): an escape
    counts unless its backslash is itself escaped (preceded by an odd run of backslashes)."""
    i = payload.find(_NUL_ESCAPE)
    while i >= 0:
        j = i
        while j > 0 and payload[j - 1] == 0x5C:
            j -= 1
        if (i - j) % 2 == 0:
            return True
        i = payload.find(_NUL_ESCAPE, i + 1)
    return False


def shown(text) -> str:
    """A producer's ``text`` in a reason: controls escaped (monitor/core/text.py; a NUL cannot be
    stored), capped."""
    s = printable(str(text))
    return s if len(s) <= 200 else s[:200] + "…"


def _first_jump(latest: datetime | None, times: list[datetime], limit: timedelta):
    """(from, to) of the first stretch longer than ``limit`` without events that ``times`` leave
    above the watermark ``latest`` (None: none, or no watermark yet)."""
    if latest is None:
        return None
    frontier = latest
    for t in sorted(t for t in times if t > latest):
        if t - frontier > limit:
            return frontier, t
        frontier = t
    return None


def _ahead(d) -> str:
    s = d.total_seconds()
    return f"{s / 86400:.1f} d" if s >= 86400 else f"{s / 3600:.1f} h" if s >= 3600 else f"{s:.0f} s"


def _explain(e: ValidationError, limit: int = 5) -> str:
    parts = []
    for err in e.errors()[:limit]:
        loc = ".".join(shown(p) for p in err["loc"]) or "(event)"
        parts.append(f"{loc}: {shown(err['msg'])}")
    more = e.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def scrub_payload(payload: bytes | None) -> bytes | None:
    """The payload as kept in dead letters: its own bytes (a replay reads them again), raw media
    cut out (promise 1) — inline base64 and a URI of another scheme than ``file`` (a ``data:`` URI
    is the media itself) become a note with their size or a hash —, size-capped. A payload that
    cannot be parsed and may hold media is not kept."""
    if payload is None or len(payload) > DEAD_LETTER_PAYLOAD_MAX:
        return None
    try:
        obj = from_json(payload)
    except ValueError:
        return None if _may_hold_media(payload) else payload
    inputs = obj.get("inputs") if isinstance(obj, dict) else None
    cut = False
    for inp in inputs.values() if isinstance(inputs, dict) else ():
        if not isinstance(inp, dict):
            continue
        if "data_b64" in inp:
            inp["_modalwatch_dropped"] = (
                f"inline media of {len(str(inp['data_b64']))} base64 characters was not kept"
            )
            inp["data_b64"] = None
            cut = True
        uri = inp.get("uri")
        if isinstance(uri, str) and not uri.startswith("file:"):
            inp["uri"] = uri_stand_in(uri)
            inp["_modalwatch_dropped"] = "a URI modalwatch does not read was not kept"
            cut = True
    return to_json(obj) if cut else payload


# the first bytes of the image and audio files a producer might post as a body by mistake
_MEDIA_MAGIC = (
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"RIFF",
    b"ID3",
    b"fLaC",
    b"OggS",
    b"II*\x00",
    b"MM\x00*",
)


def _may_hold_media(payload: bytes) -> bool:
    """Whether a payload that is not JSON may be media: inline base64, a media file's first bytes,
    or mostly not text (a JSON line with a stray byte is text and is kept, to be replayed)."""
    if b"data_b64" in payload or b";base64," in payload:
        return True
    if payload.startswith(_MEDIA_MAGIC) or payload[4:8] == b"ftyp":
        return True
    text = payload.decode("utf-8", "replace")
    odd = sum(c == "\ufffd" or (not c.isprintable() and c not in "\t\n\r") for c in text)
    return odd > max(16, len(text) // 100)


def uri_stand_in(uri: str) -> str:
    """What is kept of a URI modalwatch does not read: its scheme and a hash, never its body (a
    ``data:`` URI is the media itself)."""
    scheme = uri.split(":", 1)[0][:32] if ":" in uri else ""
    return f"{shown(scheme) or 'no-scheme'}:sha256:{hashlib.sha256(uri.encode()).hexdigest()[:16]}"


def event_row(ev: InferenceEvent, position: str, now: datetime, m: Measured) -> EventRow:
    out = ev.output
    return EventRow(
        ev.event_id,
        ev.ts,
        ev.model.name,
        ev.model.version,
        dict(ev.slice),
        m.signals,
        ",".join(sorted(m.present)),
        out.label,
        out.confidence,
        out.probabilities,
        out.abstained,
        ev.embeddings,
        position,
        now,
        # where the media came from (never the media): a review task points the reviewer there
        {
            mod: inp.uri if inp.uri.startswith("file:") else uri_stand_in(inp.uri)
            for mod, inp in ev.inputs.items()
            if inp.uri
        }
        or None,
        out.per_modality_plain(),
        m.tokens,
    )


def _first_stored(pairs, new_ids: set[str]):
    """(position, stored) of each (position, event): the first of an id in the batch is the one
    stored, when its id is new; a repeat of it is a duplicate."""
    seen: set[str] = set()
    for p, e in pairs:
        i = e.event_id
        yield p, i in new_ids and i not in seen
        seen.add(i)


class Pipeline:
    """Stores batches of raw messages and feeds the per-slice error detectors (ADWIN)."""

    def __init__(
        self,
        config,
        store,
        clock: Callable[[], datetime],
        read_media: Callable[[str, str | None, str | None], bytes] | None = None,
    ):
        self.config = config
        self.store = store
        self.clock = clock
        if read_media is None:  # the only media I/O: connectors/media.py
            from connectors.media import MediaReader

            read_media = MediaReader.from_config(config.media).read
        self.read_media = read_media
        self._pool = None
        self._summariser = Summariser(SummarySpec.of(config))
        self._summaries_ready = False  # checked once, before the first batch (ensure_summaries)
        online = config.evaluation.checks.online
        self._online = (
            OnlineLane(OnlineErrorRate(online, config.evaluation.fdr), store) if online.enabled else None
        )

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def _measure(self, events: list[tuple[str, InferenceEvent]]) -> list[Measured]:
        """Each event's signals; raw media is decoded on ``media.workers`` threads (Pillow, libsndfile
        and NumPy release the GIL for the heavy parts). With ``media.torch_device`` the images of
        the batch are measured together in torch first."""
        media = self.config.media
        n_media = sum(1 for _, e in events if e.has_raw_media)
        if not n_media:  # producer-computed signals only: nothing to decode
            return [measure_event(e, self.read_media, media, raw_media=False) for _, e in events]
        map_fn = map
        if n_media >= 2 and media.workers >= 2:
            if self._pool is None:
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(media.workers, thread_name_prefix="modalwatch-media")
            map_fn = self._pool.map
        pre: dict[int, dict] = {}
        if media.torch_device is not None and n_media:
            pre = self._measure_images_in_torch(events, map_fn)
        return list(
            map_fn(
                lambda k: measure_event(events[k][1], self.read_media, media, pre.get(k)), range(len(events))
            )
        )

    def _measure_images_in_torch(self, events, map_fn) -> dict[int, dict]:
        from monitor.core.errors import MediaError
        from monitor.media import measure_images_batched

        media = self.config.media
        todo = [
            k for k, (_, e) in enumerate(events) if "image" in e.inputs and e.inputs["image"].has_raw_media
        ]

        def fetch(k):
            inp = events[k][1].inputs["image"]
            try:
                return self.read_media("image", inp.data_b64, inp.uri)
            except MediaError as e:
                return e

        fetched = list(map_fn(fetch, todo))
        ok = [(k, d) for k, d in zip(todo, fetched) if not isinstance(d, MediaError)]
        results = measure_images_batched([d for _, d in ok], media.torch_device, media.max_pixels, map_fn)
        pre = {k: {"image": d} for k, d in zip(todo, fetched) if isinstance(d, MediaError)}
        pre.update((k, {"image": r}) for (k, _), r in zip(ok, results))
        return pre

    def process(self, messages: list[RawMessage], record_dead: bool = True) -> list[Outcome]:
        """Store what ``messages`` hold, in one transaction; each message's outcome. Those that
        fail become dead letters — unless ``record_dead`` is False (a replay of dead letters,
        whose letters are there already)."""
        now = self.clock()
        limit = self.config.ingest.max_payload_bytes
        events: list[tuple[str, InferenceEvent]] = []
        labels: list[tuple[str, LabelEvent]] = []
        dead: list[DeadLetter] = []
        outcomes: dict[str, Outcome] = {}
        ing = self.config.ingest
        skew = ing.max_future_skew
        ahead_of = now + skew if skew is not None else None
        # the event-time watermark before this batch (of inference events: labels follow them)
        latest = max((mv.last_ts for mv in self.store.events.model_versions()), default=None)
        for msg in messages:
            try:
                ev = decode(msg, limit)
                if ahead_of is not None and ev.ts > ahead_of:
                    raise Rejected(
                        f"{'event' if isinstance(ev, InferenceEvent) else 'label'} time {ev.ts.isoformat()} "
                        f"is {_ahead(ev.ts - now)} ahead of the clock (ingest.max_future_skew="
                        f"{_ahead(skew)}): check the producer's clock"
                    )
            except Rejected as e:
                reason = str(e)
                dead.append(
                    DeadLetter(msg.source, msg.position, reason, scrub_payload(msg.payload), now, msg.kind)
                )
                outcomes[msg.position] = Outcome(msg.position, "dead_letter", reason)
                continue
            (events if isinstance(ev, InferenceEvent) else labels).append((msg.position, ev))
        if ing.max_watermark_jump is not None and events:
            events = self._refuse_a_jump(latest, events, messages, dead, outcomes, now)
        partial: dict[str, str] = {}
        rows = []
        if events:
            kept = []
            by_position = None
            keep_partial = self.config.media.keep_partial_events
            for (p, e), m in zip(events, self._measure(events)):
                if m.failures:
                    if by_position is None:
                        by_position = {m.position: m for m in messages}
                    msg = by_position[p]
                    if not keep_partial:
                        reason = "; ".join(r for _, r in m.failures) + " (media.keep_partial_events is false)"
                        dead.append(
                            DeadLetter(msg.source, p, reason, scrub_payload(msg.payload), now, msg.kind)
                        )
                        outcomes[p] = Outcome(p, "dead_letter", reason)
                        continue
                    for modality, reason in m.failures:
                        dead.append(
                            DeadLetter(
                                msg.source,
                                f"{p}#{modality}",
                                f"{reason} (event {e.event_id} kept without it)",
                                scrub_payload(msg.payload),
                                now,
                                msg.kind,
                            )
                        )
                    partial[p] = "partial: " + "; ".join(r for _, r in m.failures)
                kept.append((p, e))
                rows.append(event_row(e, p, now, m))
            events = kept
        store = self.store
        if not self._summaries_ready:
            ensure_summaries(store, self._summariser)
            self._summaries_ready = True
        with store.tx():
            new_events = store.events.insert(rows)
            new_labels = store.events.insert_labels(
                [LabelRow(e.event_id, e.label, e.source, e.ts, p, now) for p, e in labels]
            )
            # (source, position) of the letters new now
            new_dead = store.ops.insert_dead_letters(dead) if record_dead else set()
            # the health counters count a message once — the first time it is stored or
            # dead-lettered, not again when a source re-reads it after a restart — so a crash
            # cannot double them (a modality's letter, at <position>#<modality>, is not a message)
            first = {p for p, stored in _first_stored(events, new_events) if stored}
            first |= {p for p, stored in _first_stored(labels, new_labels) if stored}
            received = Counter(
                m.source for m in messages if m.position in first or (m.source, m.position) in new_dead
            )
            rejected = Counter(m.source for m in messages if (m.source, m.position) in new_dead)
            store.ops.count_ingest(
                now.replace(second=0, microsecond=0), {k: (n, rejected[k]) for k, n in received.items()}
            )
            if new_labels:  # from the labels topic, POST /v1/labels or a review import alike
                store.review.close(new_labels)
            times: dict[tuple[str, str], list[datetime]] = {}
            for _, e in events:
                times.setdefault((e.model.name, e.model.version), []).append(e.ts)
            store.events.note_model_versions({k: (min(ts), max(ts)) for k, ts in times.items()})
            # what the new events and the pairs the batch completes add to the summaries, and
            # those pairs for the online lane, all under the shared-state lock (monitor/online.py).
            # A batch that stored nothing new (a replay) completes nothing, moves no watermark,
            # and takes no lock.
            new_rows = [r for (_, new), r in zip(_first_stored(events, new_events), rows) if new]
            if new_rows or new_labels:
                pairs = summarise_batch(store, self._summariser, new_rows, new_labels)
                if self._online is not None:
                    stored = {e.event_id: e.ts for _, e in labels if e.event_id in new_labels}
                    stored.update((r.event_id, r.ts) for r in new_rows)
                    self._online.feed(stored, pairs, now)
            rc = self.config.review
            candidates = [
                ReviewCandidate(
                    e.event_id,
                    reason,
                    round(1 - e.output.confidence, 6),
                    now,
                    stratum_of(e.slice, rc.stratify_by),
                )
                for _, e in events
                if e.event_id in new_events
                for reason in [review_reason(e.output, rc)]
                if reason
            ]
            if candidates:
                store.ops.lock_shared_state()  # the day's counts per stratum: one writer at a time
                day = floor_to(now, timedelta(days=1), self.config.evaluation.tz)
                store.review.enqueue(
                    within_budget(candidates, store.review.counts_since(day), rc.daily_budget_per_stratum)
                )
        self._warn_of_a_jump(latest, events, new_events)
        for p, stored in _first_stored(events, new_events):
            outcomes[p] = Outcome(p, "stored" if stored else "duplicate", partial.get(p, ""))
        for p, stored in _first_stored(labels, new_labels):
            outcomes[p] = Outcome(p, "stored" if stored else "duplicate")
        if dead and record_dead:
            n_dead = sum(o.status == "dead_letter" for o in outcomes.values())
            log.warning(
                "%d of %d messages went to dead letters, %d events were kept without a modality "
                "(first: %s: %s)",
                n_dead,
                len(messages),
                len(partial),
                dead[0].position,
                dead[0].reason[:200],
            )
        return [outcomes[m.position] for m in messages]

    def _refuse_a_jump(self, latest, events, messages, dead, outcomes, now):
        """The events before the batch's first jump of more than ``ingest.max_watermark_jump``
        beyond the watermark; those after it become dead letters."""
        limit = self.config.ingest.max_watermark_jump
        jump = _first_jump(latest, [e.ts for _, e in events], limit)
        if jump is None:
            return events
        frontier, cutoff = jump
        by_position = {m.position: m for m in messages}
        kept = []
        for p, e in events:
            if e.ts < cutoff:
                kept.append((p, e))
                continue
            reason = (
                f"event time {e.ts.isoformat()} is {_ahead(cutoff - frontier)} after the latest event"
                f" time {frontier.isoformat()} (ingest.max_watermark_jump={_ahead(limit)}): check the"
                " producer's clock, or raise the limit and replay the dead letters"
            )
            msg = by_position[p]
            dead.append(DeadLetter(msg.source, p, reason, scrub_payload(msg.payload), now, msg.kind))
            outcomes[p] = Outcome(p, "dead_letter", reason)
        return kept

    def _warn_of_a_jump(self, latest, events, new_events: set[str]) -> None:
        """One warning where this batch's events leave a stretch of event time longer than
        ``ingest.watermark_jump_warning`` without events above the watermark: a producer's clock,
        or traffic after a long pause (a replayed batch spanning days is neither)."""
        warn = self.config.ingest.watermark_jump_warning
        stored = {e.ts: (p, e) for p, e in events if e.event_id in new_events}
        jump = _first_jump(latest, list(stored), warn) if warn is not None else None
        if jump is None:
            return
        frontier, ts = jump
        p, e = stored[ts]
        log.warning(
            "the event-time watermark jumped %s, from %s to %s, with event %s of model %s (%s):"
            " windows between without events are recorded as empty, not evaluated; if this"
            " clock is wrong, ingest.max_watermark_jump refuses such events",
            _ahead(ts - frontier),
            frontier.isoformat(),
            ts.isoformat(),
            shown(e.event_id),
            shown(e.model.name),
            shown(p),
        )
