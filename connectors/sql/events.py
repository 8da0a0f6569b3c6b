"""Events and labels: stored idempotently by event id, read back as windows of columns."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from connectors.sql.database import Database
from connectors.sql.dialect import json_text
from connectors.sql.packing import SignalPacker, unpack
from monitor.core.records import EventRow, LabelledEvent, LabelRow, ModelVersion, StoredAnswer
from monitor.core.window import ModalityAnswers, TokenWindow, Window, outputs_frame

EVENT_COLS = (
    "event_id",
    "ts",
    "model_name",
    "model_version",
    "slice",
    "modalities",
    "pred_label",
    "confidence",
    "probabilities",
    "abstained",
    "embeddings",
    "position",
    "ingested_at",
    "media_uris",
    "signal_layout",
    "signal_values",
    "per_modality",
    "text_tokens",
)
LABEL_COLS = LabelRow._fields

# A window is read in chunks of event time (6 h: fewer scans of labels than hourly, measured),
# each aggregated by the database into a few rows per (slice, signal layout, predicted label,
# abstained). The chunk bounds the database's memory for the aggregation (and keeps each value
# far below PostgreSQL's 1 GB limit).
WINDOW_CHUNK = timedelta(hours=6)
# No aggregated value may come near the databases' limit on one value (1 GiB: PostgreSQL's field
# size; SQLite's SQLITE_MAX_LENGTH): a chunk whose events could make a group's packed signals
# larger than this is read in halves of event time, until each half is small enough.
WINDOW_GROUP_BYTES = 256 * 2**20


class EventRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._packer = SignalPacker()
        d = db.dialect
        self._window_groups = (
            f"SELECT {d.json_as_text('e.slice')}, e.signal_layout, e.pred_label, e.abstained, count(*),"
            f" {d.concat_bytes('e.signal_values')}, {d.concat_bytes(d.float_bytes('e.confidence'))},"
            f" {d.list_agg('l.label')}"
            " FROM events e LEFT JOIN labels l ON l.event_id = e.event_id AND l.ts < ?"
            " WHERE e.model_name = ? AND e.model_version = ? AND e.ts >= ? AND e.ts < ?"
            " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
        )

    # -- writes --------------------------------------------------------------------------------
    def insert(self, rows: Sequence[EventRow]) -> set[str]:
        """Store the events not yet stored; return the ids that were new. Signals are stored packed
        (``SignalPacker``); the batch's layouts are added in the same transaction, so a rolled-back
        batch never leaves an event without its layout."""
        d = self.db.dialect
        js, ts, pack = d.js, d.ts, self._packer.pack
        tuples, layouts = [], {}
        for r in rows:
            lid, names, packed = pack(r.signals)
            layouts[lid] = names
            tuples.append(
                (
                    r.event_id,
                    ts(r.ts),
                    r.model_name,
                    r.model_version,
                    js(r.slice),
                    r.modalities,
                    r.pred_label,
                    r.confidence,
                    js(r.probabilities),
                    r.abstained,
                    js(r.embeddings),
                    r.position,
                    ts(r.ingested_at),
                    js(r.media_uris),
                    lid,
                    packed,
                    js(r.per_modality),
                    r.text_tokens,
                )
            )
        with self.db.tx():
            if layouts:  # in id order: two writers adding the same new layouts never deadlock
                self.db.many(
                    "INSERT INTO signal_layouts (id, names) VALUES (?, ?) ON CONFLICT DO NOTHING",
                    [(lid, json_text(list(names))) for lid, names in sorted(layouts.items())],
                )
            return d.insert_new(self.db.conn, "events", EVENT_COLS, "event_id", tuples)

    def insert_labels(self, rows: Sequence[LabelRow]) -> set[str]:
        ts = self.db.dialect.ts
        tuples = [(r.event_id, r.label, r.source, ts(r.ts), r.position, ts(r.ingested_at)) for r in rows]
        with self.db.tx():
            return self.db.dialect.insert_new(self.db.conn, "labels", LABEL_COLS, "event_id", tuples)

    def note_model_versions(self, spans: dict[tuple[str, str], tuple[datetime, datetime]]) -> None:
        """Widen each model version's [first, last] event time with a batch's span."""
        ts = self.db.dialect.ts
        self.db.many(
            "INSERT INTO model_versions (model_name, model_version, first_ts, last_ts) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (model_name, model_version) DO UPDATE SET"
            " first_ts = CASE WHEN excluded.first_ts < model_versions.first_ts THEN excluded.first_ts"
            " ELSE model_versions.first_ts END,"
            " last_ts = CASE WHEN excluded.last_ts > model_versions.last_ts THEN excluded.last_ts"
            " ELSE model_versions.last_ts END",
            [(mn, mv, ts(a), ts(b)) for (mn, mv), (a, b) in sorted(spans.items())],
        )

    # -- reads by id ---------------------------------------------------------------------------
    _LABELLED = (
        "SELECT e.event_id, e.ts, e.model_name, e.model_version, e.slice, e.pred_label, l.label, l.ts,"
        " e.confidence, e.abstained, e.per_modality"
        " FROM events e JOIN labels l ON l.event_id = e.event_id"
    )

    def labelled(self, event_ids: Iterable[str]) -> list[LabelledEvent]:
        """The events of ``event_ids`` that have a label, with it."""
        out: list[LabelledEvent] = []
        for cond, params in self.db.where_in("e.event_id", event_ids):
            out += self._labelled_rows(f"{self._LABELLED} WHERE {cond}", params)
        return out

    def labels_of(self, event_ids: Iterable[str]) -> dict[str, tuple[str, datetime]]:
        """The stored label (value, time) of each of ``event_ids`` that has one."""
        ts_out = self.db.dialect.ts_out
        out: dict[str, tuple[str, datetime]] = {}
        for cond, params in self.db.where_in("event_id", event_ids):
            for eid, value, t in self.db.all(f"SELECT event_id, label, ts FROM labels WHERE {cond}", params):
                out[eid] = (value, ts_out(t))
        return out

    def completed_between(self, after: datetime | None, until: datetime) -> list[LabelledEvent]:
        """The (event, label) pairs complete — both stored, the later of their two times — in
        (``after``, ``until``]: those whose event is in it (per model version, on its index), and
        those whose label is in it for an event before it."""
        ts = self.db.dialect.ts
        out: list[LabelledEvent] = []
        for mv in self.model_versions():
            if (after is not None and mv.last_ts <= after) or mv.first_ts > until:
                continue
            cond, params = "e.ts <= ? AND l.ts <= ?", [ts(until), ts(until)]
            if after is not None:
                cond, params = "e.ts > ? AND " + cond, [ts(after), *params]
            out += self._labelled_rows(
                f"{self._LABELLED} WHERE e.model_name = ? AND e.model_version = ? AND {cond}",
                [mv.model_name, mv.model_version, *params],
            )
        if after is not None:
            out += self._labelled_rows(
                f"{self._LABELLED} WHERE l.ts > ? AND l.ts <= ? AND e.ts <= ?",
                [ts(after), ts(until), ts(after)],
            )
        return out

    def _labelled_rows(self, sql: str, params) -> list[LabelledEvent]:
        return self._as(LabelledEvent, self.db.all(sql, params))

    def _as(self, cls, rows) -> list:
        """Rows of ``_LABELLED``'s columns as ``cls`` (``LabelledEvent`` or ``StoredAnswer``)."""
        d = self.db.dialect
        return [
            cls(
                eid,
                d.ts_out(t),
                mn,
                mv,
                d.js_out(sl),
                pred,
                label,
                d.ts_out(lt),
                conf,
                bool(ab),
                d.js_out(pm),
            )
            for eid, t, mn, mv, sl, pred, label, lt, conf, ab, pm in rows
        ]

    def stored_answers(self, start: datetime, end: datetime) -> list[StoredAnswer]:
        """The stored events of [start, end) with their answers, labels and signals (on the
        events' time index: a rebuild reads the table range by range, never sorting the rest)."""
        ts = self.db.dialect.ts
        sql = self._LABELLED.replace(" FROM", ", e.signal_layout, e.signal_values FROM")
        sql = sql.replace(" JOIN labels", " LEFT JOIN labels") + " WHERE e.ts >= ? AND e.ts < ?"
        rows = self.db.all(sql, [ts(start), ts(end)])
        signals = self.unpack_signals([(r[-2], r[-1]) for r in rows])
        return [
            a._replace(signals=s) for a, s in zip(self._as(StoredAnswer, [r[:-2] for r in rows]), signals)
        ]

    def signals_for(self, event_ids: Iterable[str]) -> dict[str, dict[str, float]]:
        """Each stored event's signals, by id."""
        out: dict[str, dict[str, float]] = {}
        for cond, params in self.db.where_in("event_id", event_ids):
            rows = self.db.all(
                f"SELECT event_id, signal_layout, signal_values FROM events WHERE {cond}", params
            )
            out.update(zip([r[0] for r in rows], self.unpack_signals([r[1:] for r in rows])))
        return out

    def unpack_signals(self, rows: Sequence[tuple[int, bytes]]) -> list[dict[str, float]]:
        """Signals as dicts from (layout id, packed values) pairs."""
        names_of = self.signal_layouts({lid for lid, _ in rows})
        return [unpack(names_of[lid], bytes(packed)) for lid, packed in rows]

    def signal_layouts(self, ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
        """The signal names of each packed layout id."""
        ids = list(ids)
        out: dict[int, tuple[str, ...]] = {}
        for cond, params in self.db.where_in("id", ids):
            out.update(
                (int(i), tuple(self.db.dialect.js_out(names)))
                for i, names in self.db.all(f"SELECT id, names FROM signal_layouts WHERE {cond}", params)
            )
        missing = set(ids) - set(out)
        if missing:
            raise RuntimeError(f"signal layouts {sorted(missing)} are referenced by events but not stored")
        return out

    # -- the event-time clock ------------------------------------------------------------------
    def model_versions(self) -> list[ModelVersion]:
        ts_out = self.db.dialect.ts_out
        rows = self.db.all(
            "SELECT model_name, model_version, first_ts, last_ts FROM model_versions"
            " ORDER BY first_ts, model_name, model_version"
        )
        return [ModelVersion(a, b, ts_out(c), ts_out(d)) for a, b, c, d in rows]

    def arrivals(
        self, model_name: str, start: datetime, end: datetime
    ) -> tuple[int, float | None, float | None]:
        """The events of ``model_name`` with event time in [start, end): how many, and their ingest
        lag (stored minus event time) in seconds, mean and largest."""
        d = self.db.dialect
        lag = d.seconds_between("ingested_at", "ts")
        n, mean, most = self.db.all(
            f"SELECT COUNT(*), AVG({lag}), MAX({lag}) FROM events WHERE model_name = ? AND ts >= ?"
            " AND ts < ?",
            (model_name, d.ts(start), d.ts(end)),
        )[0]
        return int(n), None if mean is None else float(mean), None if most is None else float(most)

    def watermark(self) -> datetime | None:
        """The latest event time seen, inference or label."""
        vals = [
            self.db.dialect.ts_out(r[0])
            for r in self.db.all(
                "SELECT MAX(last_ts) FROM model_versions UNION ALL SELECT MAX(ts) FROM labels"
            )
        ]
        vals = [v for v in vals if v is not None]
        return max(vals) if vals else None

    def next_event_at(self, model_name: str, model_version: str, at: datetime) -> datetime | None:
        """The first event time of a model version at or after ``at`` (None: none yet): one
        index probe, so a stretch of windows without events is found without reading them."""
        d = self.db.dialect
        first = self.db.all(
            "SELECT MIN(ts) FROM events WHERE model_name = ? AND model_version = ? AND ts >= ?",
            (model_name, model_version, d.ts(at)),
        )[0][0]
        return None if first is None else d.ts_out(first)

    # -- windows -------------------------------------------------------------------------------
    def load_window(
        self, model_name: str, model_version: str, start: datetime, end: datetime, labels_before: datetime
    ) -> Window:
        """Events of [start, end) in columns, with the labels known before ``labels_before``.

        Built for windows of millions of events: the database aggregates each chunk of event time
        into a few rows per (slice, layout, predicted label, abstained), signals come packed and
        are read as arrays, each distinct slice is parsed once, and no event id or timestamp
        becomes a Python object. The events' order is the store's: every computation on a window
        is order-free (or, like the calibration bootstrap, puts its input in a canonical order)."""
        d = self.db.dialect
        groups = []
        with self.db.tx():
            cur = d.read_cursor(self.db.conn)
            d.prepare_window_read(cur)
            sql = d.q(self._window_groups)
            where = "WHERE model_name = ? AND model_version = ? AND ts >= ? AND ts < ?"
            count, size = (
                d.q(f"SELECT count(*) FROM events {where}"),
                d.q(f"SELECT sum(length(signal_values)) FROM events {where}"),
            )
            # a group holds at most a chunk's events, at 8 bytes a signal and the confidence: the
            # widest layout bounds them from an index-only count; where that bound is too high (a
            # producer's wide signals), the chunk's stored bytes decide
            widest = max(
                (len(d.js_out(n)) for (n,) in self.db.all("SELECT names FROM signal_layouts")), default=0
            )

            def pieces(t0: datetime, t1: datetime):
                span = (model_name, model_version, d.ts(t0), d.ts(t1))
                n = cur.execute(count, span).fetchone()[0]
                fits = n * 8 * (widest + 1) <= WINDOW_GROUP_BYTES
                if not fits:
                    fits = 8 * n + (cur.execute(size, span).fetchone()[0] or 0) <= WINDOW_GROUP_BYTES
                if fits or t1 - t0 <= timedelta(milliseconds=1):
                    yield t0, t1
                else:
                    mid = t0 + (t1 - t0) / 2
                    yield from pieces(t0, mid)
                    yield from pieces(mid, t1)

            t = start
            while t < end:
                t_next = min(end, t + WINDOW_CHUNK)
                for t0, t1 in pieces(t, t_next):
                    cur.execute(sql, (d.ts(labels_before), model_name, model_version, d.ts(t0), d.ts(t1)))
                    groups += cur.fetchall()
                t = t_next
        counts = np.array([g[4] for g in groups], dtype=np.int64)
        at = np.concatenate(([0], np.cumsum(counts))).astype(int)
        blocks = [(slice(at[i], at[i + 1]), int(g[1]), bytes(g[5])) for i, g in enumerate(groups)]
        return self._window(
            np.repeat(np.array([g[0] for g in groups], dtype=object), counts),
            np.repeat(np.array([g[2] for g in groups], dtype=object), counts),
            np.frombuffer(b"".join(bytes(g[6]) for g in groups), dtype=">f8").astype(float),
            np.repeat(np.array([bool(g[3]) for g in groups], dtype=bool), counts),
            [x for g in groups for x in d.list_out(g[7])],
            blocks,
        )

    def _window(
        self,
        slice_text: Sequence[str],
        pred_label: Sequence[str],
        confidence,
        abstained: Sequence,
        label: Sequence,
        blocks: list[tuple[slice, int, bytes]],
    ) -> Window:
        """A Window from per-event columns (slices as JSON text) and the signals as ``blocks``:
        (rows, layout id, the rows' packed values in row order)."""
        n = len(pred_label)
        codes, distinct = pd.factorize(pd.Series(slice_text, dtype=object), sort=False)
        js_out = self.db.dialect.js_out
        slices = (
            pd.DataFrame.from_records([js_out(t) for t in distinct]).take(codes).reset_index(drop=True)
            if n
            else pd.DataFrame(index=pd.RangeIndex(0))
        )
        names_of = self.signal_layouts({lid for _, lid, _ in blocks})
        columns = sorted({c for names in names_of.values() for c in names})
        where = {c: j for j, c in enumerate(columns)}
        mat = np.full((n, len(columns)), np.nan)
        for rows, lid, packed in blocks:
            names = names_of[lid]
            if names:
                mat[rows, [where[c] for c in names]] = np.frombuffer(packed, dtype="<f8").reshape(
                    -1, len(names)
                )
        return Window(
            outputs_frame(pred_label, confidence, abstained, label),
            slices,
            pd.DataFrame(mat, columns=columns),
        )

    def window_embeddings(
        self, model_name: str, model_version: str, start: datetime, end: datetime
    ) -> dict[str, list[list[float]]]:
        """The embeddings of [start, end), by name (events without embeddings are skipped)."""
        d = self.db.dialect
        rows = self.db.all(
            "SELECT embeddings FROM events WHERE model_name = ? AND model_version = ? AND ts >= ? AND ts < ?"
            " AND embeddings IS NOT NULL ORDER BY ts, event_id",
            (model_name, model_version, d.ts(start), d.ts(end)),
        )
        out: dict[str, list[list[float]]] = {}
        for (raw,) in rows:
            for name, vec in (d.js_out(raw) or {}).items():
                out.setdefault(name, []).append(vec)
        return out

    def window_answers(
        self, model_name: str, model_version: str, start: datetime, end: datetime, labels_before: datetime
    ) -> ModalityAnswers:
        """The events of [start, end) that carry per-modality answers, with the labels known
        before ``labels_before`` (as ``load_window`` counts them)."""
        d = self.db.dialect
        rows = self.db.all(
            f"SELECT {d.json_as_text('e.slice')}, e.pred_label, e.confidence, e.abstained, e.per_modality,"
            " l.label FROM events e LEFT JOIN labels l ON l.event_id = e.event_id AND l.ts < ?"
            " WHERE e.model_name = ? AND e.model_version = ? AND e.ts >= ? AND e.ts < ?"
            " AND e.per_modality IS NOT NULL ORDER BY e.ts, e.event_id",
            (d.ts(labels_before), model_name, model_version, d.ts(start), d.ts(end)),
        )
        window = self._window(
            [r[0] for r in rows],
            [r[1] for r in rows],
            np.array([r[2] for r in rows], dtype=float),
            [bool(r[3]) for r in rows],
            [r[5] for r in rows],
            [],
        )
        return ModalityAnswers.of(window, [d.js_out(r[4]) for r in rows])

    def window_tokens(
        self, model_name: str, model_version: str, start: datetime, end: datetime
    ) -> TokenWindow:
        """The events of [start, end) whose raw text was measured: their slices and their words'
        hashed buckets, in event-time order."""
        d = self.db.dialect
        rows = self.db.all(
            f"SELECT {d.json_as_text('slice')}, text_tokens FROM events WHERE model_name = ? AND"
            " model_version = ? AND ts >= ? AND ts < ? AND text_tokens IS NOT NULL ORDER BY ts, event_id",
            (model_name, model_version, d.ts(start), d.ts(end)),
        )
        n = len(rows)
        window = self._window([r[0] for r in rows], [""] * n, np.zeros(n), [False] * n, [None] * n, [])
        return TokenWindow.of(window, [bytes(r[1]) for r in rows])

    def unlabelled(
        self, model_name: str, model_version: str, start: datetime, end: datetime
    ) -> list[tuple[str, float, dict]]:
        """(event_id, confidence, slice) of the unlabelled events of a model version in [start, end),
        least confident first."""
        d = self.db.dialect
        rows = self.db.all(
            "SELECT e.event_id, e.confidence, e.slice FROM events e LEFT JOIN labels l ON l.event_id ="
            " e.event_id"
            " WHERE l.event_id IS NULL AND e.model_name = ? AND e.model_version = ? AND e.ts >= ? AND e.ts"
            " < ?"
            " ORDER BY e.confidence, e.event_id",
            (model_name, model_version, d.ts(start), d.ts(end)),
        )
        return [(eid, float(conf), d.js_out(sl)) for eid, conf, sl in rows]

    # -- retention -----------------------------------------------------------------------------
    def purge(
        self, model_name: str, model_version: str, before: datetime, keep_from: datetime, keep_to: datetime
    ) -> int:
        """Delete one model version's events with ``ts < before`` except those in
        [``keep_from``, ``keep_to``) (its reference), with their labels and review items, in one
        transaction. Returns the number of events deleted."""
        d = self.db.dialect
        cond = "model_name = ? AND model_version = ? AND ts < ? AND NOT (ts >= ? AND ts < ?)"
        params = (model_name, model_version, d.ts(before), d.ts(keep_from), d.ts(keep_to))
        with self.db.tx():
            for table in ("labels", "review_items"):
                self.db.execute(
                    f"DELETE FROM {table} WHERE event_id IN (SELECT event_id FROM events WHERE {cond})",
                    params,
                )
            return self.db.execute(f"DELETE FROM events WHERE {cond}", params).rowcount

    def orphan_labels(self, ingested_before: datetime) -> list[LabelRow]:
        """Labels ingested before ``ingested_before`` whose event is not stored."""
        d = self.db.dialect
        rows = self.db.all(
            f"SELECT {', '.join(LABEL_COLS)} FROM labels l WHERE ingested_at < ?"
            " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = l.event_id)",
            (d.ts(ingested_before),),
        )
        return [
            LabelRow(eid, lab, src, d.ts_out(ts), pos, d.ts_out(ing)) for eid, lab, src, ts, pos, ing in rows
        ]

    def delete_labels(self, event_ids: Iterable[str]) -> None:
        with self.db.tx():
            for cond, params in self.db.where_in("event_id", event_ids):
                self.db.execute(f"DELETE FROM labels WHERE {cond}", params)
