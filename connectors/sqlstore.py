"""What SQLite and PostgreSQL stores share: the queries, written once.

SQL here uses ``?`` placeholders; a dialect rewrites them. Timestamps and JSON are adapted by the
dialect's ``_ts``/``_ts_out`` and ``_js``/``_js_out``. Every public method runs in the current
transaction when called inside ``with store.tx():``, else in a transaction of its own.
"""
from __future__ import annotations

import hashlib
import logging
import struct
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import pandas as pd
from pydantic_core import from_json, to_json

from migrations import migration_files

log = logging.getLogger("modalwatch.store")

EVENT_COLS = (
    "event_id", "ts", "model_name", "model_version", "slice", "signals", "modalities", "pred_label",
    "confidence", "probabilities", "abstained", "embeddings", "position", "ingested_at", "media_uris",
    "signal_layout", "signal_values",
)
LABEL_COLS = ("event_id", "label", "source", "ts", "position", "ingested_at")
EVAL_COLS = (
    "model_name", "model_version", "interval_s", "lag_s", "window_start", "window_end", "slice", "detector",
    "metric", "signal", "variant", "status", "value", "reference_value", "ci_low", "ci_high", "n",
    "n_reference", "evaluated_at", "p_value", "p_adjusted", "effect", "decision",
)
_EVAL_OPTIONAL = {"p_value", "p_adjusted", "effect", "decision"}  # rows without a test leave them NULL
# What the JSON ``signals`` column holds for events stored since migration 0007: their signals are
# packed (``signal_layout``, ``signal_values``); the column keeps the signals of older rows.
PACKED_SIGNALS_JSON = "{}"



def _JSON(v: Any) -> str:
    # pydantic-core's serializer: ~8x faster than the json module on the hot path
    return to_json(v).decode()


class SignalPacker:
    """Signals as packed float64 values (little-endian) in the order of a layout: the sorted signal
    names, named by a 64-bit hash of them so that every writer derives the same id without asking
    the database (migration 0007). Layouts are cached by the names in the order an event gave them."""

    def __init__(self) -> None:
        self._by_keys: dict[tuple[str, ...], tuple[int, tuple[str, ...], struct.Struct]] = {}

    @staticmethod
    def layout_id(names: tuple[str, ...]) -> int:
        digest = hashlib.blake2b("\n".join(names).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "little", signed=True)

    def pack(self, signals: dict[str, float]) -> tuple[int, tuple[str, ...], bytes]:
        """(layout id, layout names, packed values) of one event's signals."""
        keys = tuple(signals)
        hit = self._by_keys.get(keys)
        if hit is None:
            names = tuple(sorted(keys))
            hit = self._by_keys[keys] = (self.layout_id(names), names, struct.Struct(f"<{len(names)}d"))
        lid, names, st = hit
        return lid, names, st.pack(*[signals[n] for n in names])


@dataclass
class Window:
    """A window's events in columns, in the store's order: ``frame`` (pred_label, confidence,
    abstained, label: None where no label was known), ``slices`` (a column per slice attribute,
    None where an event lacks it) and ``signals`` (a float column per signal, NaN where absent)."""

    frame: pd.DataFrame
    slices: pd.DataFrame
    signals: pd.DataFrame

    @classmethod
    def of(cls, slices: Sequence[dict], signals: Sequence[dict], pred_label: Sequence[str],
           confidence: Sequence[float], abstained: Sequence[bool], label: Sequence[str | None]) -> "Window":
        """From per-event values (a reference file's events)."""
        n = len(pred_label)
        index = pd.RangeIndex(n)
        return cls(_outputs(pred_label, confidence, abstained, label),
                   pd.DataFrame.from_records(list(slices), index=index) if n else pd.DataFrame(index=index),
                   pd.DataFrame.from_records(list(signals), index=index).astype(float) if n
                   else pd.DataFrame(index=index))

    def __len__(self) -> int:
        return len(self.frame)


def _outputs(pred_label, confidence, abstained, label) -> pd.DataFrame:
    return pd.DataFrame({"pred_label": np.asarray(pred_label, dtype=object),
                         "confidence": np.asarray(confidence, dtype=float),
                         "abstained": np.asarray(abstained, dtype=bool),
                         "label": np.asarray(label, dtype=object)})


@dataclass(frozen=True)
class RunKey:
    """One scheduled evaluation: a window of one model version at one interval and lag."""

    model_name: str
    model_version: str
    interval_s: int
    lag_s: int
    window_start: datetime


class SqlStore:
    dialect = "?"
    # Errors after which the same work may succeed once the database is back (set per dialect).
    transient_errors: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        self._depth = 0
        self.conn: Any = None
        self._packer = SignalPacker()

    # -- dialect hooks -------------------------------------------------------------------------
    def _q(self, sql: str) -> str:
        return sql

    def _ts(self, dt: datetime | None) -> Any:
        return dt

    def _ts_out(self, v: Any) -> datetime | None:
        return v

    def _js(self, v: Any) -> Any:
        return None if v is None else _JSON(v)

    def _js_out(self, v: Any) -> Any:
        return from_json(v) if isinstance(v, str) else v  # pydantic-core: ~5x the json module

    def _json_text(self, col: str) -> str:
        """A JSON column read as its text (parsed by the caller, once per distinct value)."""
        return col

    def _insert_new(self, table: str, cols: Sequence[str], key: str, rows: list[tuple]) -> set[str]:
        raise NotImplementedError

    def _begin(self) -> None:
        raise NotImplementedError

    def _after_migrate(self) -> None:
        pass

    # -- transactions --------------------------------------------------------------------------
    @contextmanager
    def tx(self) -> Iterator["SqlStore"]:
        if self._depth == 0:
            self._begin()
        self._depth += 1
        try:
            yield self
        except BaseException:
            self._depth -= 1
            if self._depth == 0:
                try:
                    self.conn.rollback()
                except self.transient_errors:
                    pass  # the connection is gone; the error being raised says why
            raise
        self._depth -= 1
        if self._depth == 0:
            self.conn.commit()

    def _exec(self, sql: str, params: Sequence = ()) -> Any:
        with self.tx():
            cur = self.conn.cursor()
            cur.execute(self._q(sql), params)
            return cur

    def _many(self, sql: str, rows: Iterable[Sequence]) -> None:
        rows = list(rows)
        if rows:
            with self.tx():
                self.conn.cursor().executemany(self._q(sql), rows)

    def _all(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return list(self._exec(sql, params).fetchall())

    def reconnect(self) -> None:
        """Drop the connection and open a new one (after the database went away)."""
        self._depth = 0

    def sibling(self) -> "SqlStore":
        """Another connection to the same database, for another thread (the evaluation job, the
        scheduler's job store): one connection is never shared between threads."""
        raise NotImplementedError

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    # -- migrations ----------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded; return their names. Idempotent."""
        with self.tx():
            # the lock first: two replicas starting on an empty database would otherwise race even
            # on CREATE TABLE IF NOT EXISTS (PostgreSQL raises a unique violation on pg_type)
            self._lock_migrations()
            self._exec(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                " applied_at TEXT NOT NULL)"
            )
            done = {r[0] for r in self._all("SELECT version FROM schema_migrations")}
            applied = []
            for version, name, sql in migration_files(self.dialect):
                if version in done:
                    continue
                self._run_script(sql)
                self._exec(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, datetime.now(timezone.utc).isoformat()),
                )
                applied.append(name)
            self._after_migrate()
        for name in applied:
            log.info("applied migration %s", name)
        return applied

    def _lock_migrations(self) -> None:
        pass

    def _run_script(self, sql: str) -> None:
        # Migrations hold no string literal with ';' or '--', so a plain split is exact.
        code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
        for stmt in (s.strip() for s in code.split(";")):
            if stmt:
                self.conn.cursor().execute(stmt)

    # -- events and labels ---------------------------------------------------------------------
    def insert_events(self, rows: list[dict]) -> set[str]:
        """Insert events not yet stored; return the ids that were new. Signals are stored packed
        (``SignalPacker``); the batch's layouts are added in the same transaction."""
        js, ts, pack = self._js, self._ts, self._packer.pack
        tuples, layouts = [], {}
        for r in rows:
            lid, names, packed = pack(r["signals"])
            layouts[lid] = names
            tuples.append(
                (r["event_id"], ts(r["ts"]), r["model_name"], r["model_version"], js(r["slice"]), PACKED_SIGNALS_JSON,
                 r["modalities"], r["pred_label"], r["confidence"], js(r["probabilities"]), r["abstained"],
                 js(r["embeddings"]), r["position"], ts(r["ingested_at"]), js(r.get("media_uris")), lid, packed))
        with self.tx():
            if layouts:  # in id order: two writers adding the same new layouts never deadlock
                self._many("INSERT INTO signal_layouts (id, names) VALUES (?, ?) ON CONFLICT DO NOTHING",
                           [(lid, _JSON(list(names))) for lid, names in sorted(layouts.items())])
            return self._insert_new("events", EVENT_COLS, "event_id", tuples)

    def insert_labels(self, rows: list[dict]) -> set[str]:
        tuples = [
            tuple(self._ts(r[c]) if c in ("ts", "ingested_at") else r[c] for c in LABEL_COLS) for r in rows
        ]
        return self._insert_new("labels", LABEL_COLS, "event_id", tuples)

    def _chunks(self, ids: Iterable[str], size: int = 500) -> Iterator[list[str]]:
        ids = list(ids)
        for i in range(0, len(ids), size):
            yield ids[i : i + size]

    def _in(self, col: str, ids: list[str]) -> tuple[str, list]:
        """``col IN (...)`` for one chunk of ids; PostgreSQL overrides it with ``= ANY(array)``."""
        return f"{col} IN ({','.join('?' * len(ids))})", list(ids)

    def labels_for(self, event_ids: Iterable[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        for chunk in self._chunks(event_ids):
            cond, params = self._in("event_id", chunk)
            out.update(self._all(f"SELECT event_id, label FROM labels WHERE {cond}", params))
        return out

    def events_for(self, event_ids: Iterable[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for chunk in self._chunks(event_ids):
            cond, params = self._in("event_id", chunk)
            for eid, ts, mn, mv, sl, pred, conf in self._all(
                f"SELECT event_id, ts, model_name, model_version, slice, pred_label, confidence FROM events WHERE {cond}",
                params,
            ):
                out[eid] = {
                    "ts": self._ts_out(ts), "model_name": mn, "model_version": mv, "slice": self._js_out(sl),
                    "pred_label": pred, "confidence": conf,
                }
        return out

    def note_model_versions(self, spans: dict[tuple[str, str], tuple[datetime, datetime]]) -> None:
        """Widen each model version's [first, last] event time with a batch's span."""
        self._many(
            "INSERT INTO model_versions (model_name, model_version, first_ts, last_ts) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (model_name, model_version) DO UPDATE SET"
            " first_ts = CASE WHEN excluded.first_ts < model_versions.first_ts THEN excluded.first_ts"
            " ELSE model_versions.first_ts END,"
            " last_ts = CASE WHEN excluded.last_ts > model_versions.last_ts THEN excluded.last_ts"
            " ELSE model_versions.last_ts END",
            [(mn, mv, self._ts(a), self._ts(b)) for (mn, mv), (a, b) in sorted(spans.items())],
        )

    def count_ingest(self, minute: datetime, counts: dict[str, tuple[int, int]]) -> None:
        """Add a batch's (messages, dead letters) per source to ``minute``'s row."""
        self._many(
            "INSERT INTO ingest_minutes (minute, source, messages, dead_letters) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (minute, source) DO UPDATE SET messages = ingest_minutes.messages + excluded.messages,"
            " dead_letters = ingest_minutes.dead_letters + excluded.dead_letters",
            [(self._ts(minute), src, n, d) for src, (n, d) in sorted(counts.items())])

    def forget_ingest_before(self, before: datetime) -> int:
        return self._exec("DELETE FROM ingest_minutes WHERE minute < ?", (self._ts(before),)).rowcount

    def ingest_by_source(self, since: datetime, recent: datetime) -> list[tuple[str, datetime, int, int]]:
        """Per source seen since ``since``: its last minute with messages, and its messages and dead
        letters since ``recent``."""
        rows = self._all(
            "SELECT source, MAX(minute), SUM(CASE WHEN minute >= ? THEN messages ELSE 0 END),"
            " SUM(CASE WHEN minute >= ? THEN dead_letters ELSE 0 END) FROM ingest_minutes WHERE minute >= ?"
            " AND messages > 0 GROUP BY source ORDER BY source",
            (self._ts(recent), self._ts(recent), self._ts(since)))
        return [(src, self._ts_out(last), int(n), int(d)) for src, last, n, d in rows]

    def model_versions(self) -> list[tuple[str, str, datetime, datetime]]:
        rows = self._all("SELECT model_name, model_version, first_ts, last_ts FROM model_versions ORDER BY first_ts,"
                         " model_name, model_version")
        return [(a, b, self._ts_out(c), self._ts_out(d)) for a, b, c, d in rows]

    def watermark(self) -> datetime | None:
        """The latest event time seen, inference or label."""
        vals = [self._ts_out(r[0]) for r in self._all(
            "SELECT MAX(last_ts) FROM model_versions UNION ALL SELECT MAX(ts) FROM labels")]
        vals = [v for v in vals if v is not None]
        return max(vals) if vals else None

    def load_window(
        self, model_name: str, model_version: str, start: datetime, end: datetime, labels_before: datetime
    ) -> Window:
        """Events of [start, end) in columns, with the labels known before ``labels_before``.

        Built for windows of millions of events: signals come packed and are read as arrays, each
        distinct slice is parsed once, and no event id or timestamp becomes a Python object. The
        order of the events is the store's: every computation on a window is order-free (or, like
        the calibration bootstrap, puts its input in a canonical order first)."""
        return self._window(*self._row_parts(self._window_rows(model_name, model_version, start, end, labels_before)))

    def _window_rows(self, model_name: str, model_version: str, start: datetime, end: datetime,
                     labels_before: datetime, legacy_only: bool = False) -> list[tuple]:
        """The window's events one row each (``legacy_only``: those stored before packing)."""
        return self._all(
            f"SELECT {self._json_text('e.slice')}, e.signal_layout, e.signal_values,"
            f" CASE WHEN e.signal_values IS NULL THEN {self._json_text('e.signals')} END,"
            " e.pred_label, e.confidence, e.abstained, l.label"
            " FROM events e LEFT JOIN labels l ON l.event_id = e.event_id AND l.ts < ?"
            " WHERE e.model_name = ? AND e.model_version = ? AND e.ts >= ? AND e.ts < ?"
            + (" AND e.signal_values IS NULL" if legacy_only else ""),
            (self._ts(labels_before), model_name, model_version, self._ts(start), self._ts(end)),
        )

    @staticmethod
    def _row_parts(rows: list[tuple], offset: int = 0) -> tuple:
        """``_window``'s arguments from ``_window_rows`` (row numbers start at ``offset``)."""
        if not rows:
            return [], [], [], [], [], [], []
        slice_text, layout, packed, legacy_json, pred, conf, abstained, label = zip(*rows)
        is_legacy = np.fromiter((p is None for p in packed), dtype=bool, count=len(rows))
        codes, ids = pd.factorize(pd.Series(layout, dtype=object).where(~is_legacy), sort=False)
        blocks = []
        for code, lid in enumerate(ids):
            idx = np.flatnonzero(codes == code)
            blocks.append((idx + offset, int(lid), b"".join([packed[i] for i in idx])))
        legacy = [(i + offset, legacy_json[i]) for i in np.flatnonzero(is_legacy)]
        return list(slice_text), list(pred), list(conf), list(abstained), list(label), blocks, legacy

    def _window(self, slice_text: Sequence[str], pred_label: Sequence[str], confidence: Any, abstained: Sequence,
                label: Sequence, blocks: list[tuple[Any, int, bytes]], legacy: list[tuple[int, Any]]) -> Window:
        """A Window from per-event columns (slices as JSON text) and the signals as ``blocks`` —
        (rows: an index array or a slice, layout id, the rows' packed values in row order) — plus
        ``legacy`` (row, JSON signals) for rows stored before packing."""
        n = len(pred_label)
        codes, distinct = pd.factorize(pd.Series(slice_text, dtype=object), sort=False)
        slices = (pd.DataFrame.from_records([self._js_out(t) for t in distinct]).take(codes).reset_index(drop=True)
                  if n else pd.DataFrame(index=pd.RangeIndex(0)))
        names_of = self.signal_layouts({lid for _, lid, _ in blocks})
        legacy = [(i, self._js_out(text) or {}) for i, text in legacy]
        columns = sorted({c for names in names_of.values() for c in names} | {c for _, d in legacy for c in d})
        where = {c: j for j, c in enumerate(columns)}
        mat = np.full((n, len(columns)), np.nan)
        for rows, lid, packed in blocks:
            names = names_of[lid]
            if names:
                cols = [where[c] for c in names]
                at = (rows, cols) if isinstance(rows, slice) else np.ix_(rows, cols)
                mat[at] = np.frombuffer(packed, dtype="<f8").reshape(-1, len(names))
        for i, d in legacy:
            for c, v in d.items():
                mat[i, where[c]] = v
        return Window(_outputs(pred_label, confidence, abstained, label), slices, pd.DataFrame(mat, columns=columns))

    def signal_layouts(self, ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
        """The signal names of each packed layout id."""
        ids = list(ids)
        out: dict[int, tuple[str, ...]] = {}
        for chunk in self._chunks(ids):
            cond, params = self._in("id", chunk)
            out.update((int(i), tuple(self._js_out(names))) for i, names in
                       self._all(f"SELECT id, names FROM signal_layouts WHERE {cond}", params))
        missing = set(ids) - set(out)
        if missing:
            raise RuntimeError(f"signal layouts {sorted(missing)} are referenced by events but not stored")
        return out

    def window_embeddings(self, model_name: str, model_version: str, start: datetime, end: datetime
                          ) -> dict[str, list[list[float]]]:
        """The embeddings of [start, end), by name (events without embeddings are skipped)."""
        rows = self._all(
            "SELECT embeddings FROM events WHERE model_name = ? AND model_version = ? AND ts >= ? AND ts < ?"
            " AND embeddings IS NOT NULL ORDER BY ts, event_id",
            (model_name, model_version, self._ts(start), self._ts(end)),
        )
        out: dict[str, list[list[float]]] = {}
        for (raw,) in rows:
            for name, vec in (self._js_out(raw) or {}).items():
                out.setdefault(name, []).append(vec)
        return out

    # -- retention -----------------------------------------------------------------------------
    def purge_events(self, model_name: str, model_version: str, before: datetime, keep_from: datetime,
                     keep_to: datetime) -> int:
        """Delete one model version's events with ``ts < before`` except those in
        [``keep_from``, ``keep_to``) (its reference), with their labels and review items, in one
        transaction. Evaluations are never deleted. Returns the number of events deleted."""
        cond = "model_name = ? AND model_version = ? AND ts < ? AND NOT (ts >= ? AND ts < ?)"
        params = (model_name, model_version, self._ts(before), self._ts(keep_from), self._ts(keep_to))
        with self.tx():
            for table in ("labels", "review_items"):
                self._exec(f"DELETE FROM {table} WHERE event_id IN (SELECT event_id FROM events WHERE {cond})",
                           params)
            return self._exec(f"DELETE FROM events WHERE {cond}", params).rowcount

    def expire_orphan_labels(self, ingested_before: datetime, now: datetime, reason: str) -> int:
        """Labels ingested before ``ingested_before`` whose event is not stored become dead letters
        (source ``labels``, their own position, ``reason``), in one transaction."""
        with self.tx():
            rows = self._all(
                "SELECT event_id, label, source, ts, position FROM labels l WHERE ingested_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = l.event_id)",
                (self._ts(ingested_before),))
            if not rows:
                return 0
            self.insert_dead_letters([
                {"source": "labels", "position": position, "reason": reason, "received_at": now,
                 "payload": _JSON({"type": "label", "event_id": event_id, "label": label, "source": source,
                                   "ts": self._ts_out(ts).isoformat()})}
                for event_id, label, source, ts, position in rows])
            for chunk in self._chunks([r[0] for r in rows]):
                cond, params = self._in("event_id", chunk)
                self._exec(f"DELETE FROM labels WHERE {cond}", params)
        return len(rows)

    def set_compression(self, compress_after: timedelta | None) -> None:
        """Compress raw event rows older than ``compress_after`` where the database can (timescaledb)."""

    # -- dead letters --------------------------------------------------------------------------
    def insert_dead_letters(self, rows: list[dict]) -> None:
        self._many(
            "INSERT INTO dead_letters (source, position, reason, payload, received_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (source, position) DO NOTHING",
            [(r["source"], r["position"], r["reason"], r["payload"], self._ts(r["received_at"])) for r in rows],
        )

    def dead_letters(self, include_replayed: bool = False, limit: int = 1000) -> list[dict]:
        where = "" if include_replayed else " WHERE replayed_at IS NULL"
        rows = self._all(
            f"SELECT id, source, position, reason, payload, received_at, replayed_at FROM dead_letters{where}"
            " ORDER BY id LIMIT ?",
            (limit,),
        )
        keys = ("id", "source", "position", "reason", "payload", "received_at", "replayed_at")
        return [dict(zip(keys, r[:5] + (self._ts_out(r[5]), self._ts_out(r[6])))) for r in rows]

    def mark_replayed(self, ids: list[int], at: datetime) -> None:
        self._many("UPDATE dead_letters SET replayed_at = ? WHERE id = ?", [(self._ts(at), i) for i in ids])

    # -- online detector state and findings ----------------------------------------------------
    def get_states(self, keys: Iterable[str]) -> dict[str, dict]:
        out = {}
        for chunk in self._chunks(keys):
            cond, params = self._in("key", chunk)
            out.update({k: self._js_out(v) for k, v in self._all(f"SELECT key, state FROM detector_state WHERE {cond}",
                                                                  params)})
        return out

    def lock_shared_state(self) -> None:
        """Hold what writers read, update and write back — the online detectors' states, the day's
        review counts per stratum — until this transaction ends, so that two writers (workers,
        replicas) never lose each other's updates (SQLite: one writer anyway)."""

    def put_states(self, states: dict[str, dict], at: datetime) -> None:
        self._many(
            "INSERT INTO detector_state (key, state, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            [(k, self._js(v), self._ts(at)) for k, v in states.items()],
        )

    def insert_findings(self, rows: list[dict]) -> None:
        self._many(
            "INSERT INTO findings (ts, model_name, model_version, slice, detector, metric, value, detail, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(self._ts(r["ts"]), r["model_name"], r["model_version"], r["slice"], r["detector"], r["metric"],
              r["value"], self._js(r["detail"]), self._ts(r["created_at"])) for r in rows],
        )

    # -- scheduled evaluations -----------------------------------------------------------------
    def claim_run(self, key: RunKey, window_end: datetime, owner: str, now: datetime, expire: timedelta) -> bool:
        """Claim ``key`` for ``owner``; True if it is ours to evaluate: new, an expired claim, or
        an unfinished claim of ``owner``'s own (its run failed, e.g. the database went away, and
        is retried at once rather than after the expiry)."""
        with self.tx():
            row = self._all(
                "SELECT claimed_by, claimed_at, finished_at FROM eval_runs WHERE model_name = ? AND model_version = ?"
                " AND interval_s = ? AND lag_s = ? AND window_start = ?" + self._for_update(),
                (key.model_name, key.model_version, key.interval_s, key.lag_s, self._ts(key.window_start)),
            )
            if not row:
                cur = self._exec(
                    "INSERT INTO eval_runs (model_name, model_version, interval_s, lag_s, window_start, window_end,"
                    " claimed_by, claimed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (key.model_name, key.model_version, key.interval_s, key.lag_s, self._ts(key.window_start),
                     self._ts(window_end), owner, self._ts(now)),
                )
                return cur.rowcount == 1
            claimed_by, claimed_at, finished_at = row[0]
            if finished_at is not None or (claimed_by != owner and self._ts_out(claimed_at) + expire > now):
                return False
            self._exec(
                "UPDATE eval_runs SET claimed_by = ?, claimed_at = ? WHERE model_name = ? AND model_version = ?"
                " AND interval_s = ? AND lag_s = ? AND window_start = ?",
                (owner, self._ts(now), key.model_name, key.model_version, key.interval_s, key.lag_s,
                 self._ts(key.window_start)),
            )
            return True

    def _for_update(self) -> str:
        return ""

    def finish_run(self, key: RunKey, owner: str, now: datetime) -> bool:
        """Mark ``key`` finished if ``owner`` still holds its claim; False if another replica took
        it over (the claim expired) or finished it — the caller then rolls its result back."""
        return self._exec(
            "UPDATE eval_runs SET finished_at = ? WHERE model_name = ? AND model_version = ? AND interval_s = ?"
            " AND lag_s = ? AND window_start = ? AND claimed_by = ? AND finished_at IS NULL",
            (self._ts(now), key.model_name, key.model_version, key.interval_s, key.lag_s, self._ts(key.window_start),
             owner),
        ).rowcount == 1

    def finished_runs(self, model_name: str, model_version: str, interval_s: int, lag_s: int) -> set[datetime]:
        return {self._ts_out(r[0]) for r in self._all(
            "SELECT window_start FROM eval_runs WHERE model_name = ? AND model_version = ? AND interval_s = ?"
            " AND lag_s = ? AND finished_at IS NOT NULL",
            (model_name, model_version, interval_s, lag_s),
        )}

    def insert_evaluations(self, rows: list[dict]) -> None:
        cols = ", ".join(EVAL_COLS)
        marks = ", ".join("?" * len(EVAL_COLS))
        ts_cols = {"window_start", "window_end", "evaluated_at"}
        self._many(
            f"INSERT INTO evaluations ({cols}) VALUES ({marks}) ON CONFLICT"
            " (model_name, model_version, interval_s, lag_s, window_start, slice, metric, signal) DO NOTHING",
            [tuple(self._ts(r[c]) if c in ts_cols else r.get(c) if c in _EVAL_OPTIONAL else r[c] for c in EVAL_COLS)
             for r in rows],
        )

    def previous_values(self, model_name: str, model_version: str, interval_s: int, lag_s: int,
                        before: datetime) -> dict[tuple[str, str, str], float | None]:
        """The values of the latest window before ``before`` of the same model version, interval and
        lag, by (slice, metric, signal)."""
        key = (model_name, model_version, interval_s, lag_s)
        rows = self._all(
            "SELECT slice, metric, signal, value FROM evaluations WHERE model_name = ? AND model_version = ?"
            " AND interval_s = ? AND lag_s = ? AND window_start = (SELECT MAX(window_start) FROM evaluations"
            " WHERE model_name = ? AND model_version = ? AND interval_s = ? AND lag_s = ? AND window_start < ?)",
            (*key, *key, self._ts(before)))
        return {(sl, m, sig): v for sl, m, sig, v in rows}

    def earlier_lag_values(self, model_name: str, model_version: str, interval_s: int, lag_s: int,
                           window_start: datetime) -> dict[tuple[str, str, str], float | None]:
        """The same window's values at the next shorter lag (its previous vintage), by (slice, metric,
        signal)."""
        key = (model_name, model_version, interval_s)
        ws = self._ts(window_start)
        rows = self._all(
            "SELECT slice, metric, signal, value FROM evaluations WHERE model_name = ? AND model_version = ?"
            " AND interval_s = ? AND window_start = ? AND lag_s = (SELECT MAX(lag_s) FROM evaluations"
            " WHERE model_name = ? AND model_version = ? AND interval_s = ? AND window_start = ? AND lag_s < ?)",
            (*key, ws, *key, ws, lag_s))
        return {(sl, m, sig): v for sl, m, sig, v in rows}

    def evaluations(self, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        where, params = _range("window_start", start, end, self._ts)
        rows = self._all(f"SELECT {', '.join(EVAL_COLS)} FROM evaluations{where} ORDER BY window_start, id", params)
        df = pd.DataFrame(rows, columns=list(EVAL_COLS))
        for c in ("window_start", "window_end", "evaluated_at"):
            df[c] = [self._ts_out(v) for v in df[c]]
        return df

    # -- alerts and the outbox -----------------------------------------------------------------
    def get_alert(self, dedup_key: str) -> dict | None:
        rows = self._all(f"SELECT {self._ALERT_COLS} FROM alerts WHERE dedup_key = ?", (dedup_key,))
        return self._alert(rows[0]) if rows else None

    def _alert(self, r: tuple) -> dict:
        return {
            "dedup_key": r[0], "rule": r[1], "labels": self._js_out(r[2]), "annotations": self._js_out(r[3]),
            "state": r[4], "starts_at": self._ts_out(r[5]), "ends_at": self._ts_out(r[6]), "value": r[7],
            "changed_at": self._ts_out(r[8]),
        }

    def put_alert(self, a: dict, now: datetime) -> None:
        self._exec(
            "INSERT INTO alerts (dedup_key, rule, labels, annotations, state, starts_at, ends_at, value, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO UPDATE SET labels = excluded.labels,"
            " annotations = excluded.annotations, state = excluded.state, starts_at = excluded.starts_at,"
            " ends_at = excluded.ends_at, value = excluded.value, updated_at = excluded.updated_at",
            (a["dedup_key"], a["rule"], self._js(a["labels"]), self._js(a["annotations"]), a["state"],
             self._ts(a["starts_at"]), self._ts(a["ends_at"]), a["value"], self._ts(now)),
        )

    _ALERT_COLS = "dedup_key, rule, labels, annotations, state, starts_at, ends_at, value, updated_at"

    def alerts(self, state: str | None = None) -> list[dict]:
        where, params = (" WHERE state = ?", (state,)) if state else ("", ())
        return [self._alert(r) for r in self._all(
            f"SELECT {self._ALERT_COLS} FROM alerts{where} ORDER BY starts_at, dedup_key", params)]

    def alerts_to_notify(self, told: Iterable[str]) -> list[dict]:
        """What a notification pass needs, not the whole history: the firing alerts, and those of
        ``told`` (fingerprints some group last told as firing) that have resolved since."""
        out = self.alerts("firing")
        for chunk in self._chunks(list(told)):
            cond, params = self._in("dedup_key", chunk)
            out += [self._alert(r) for r in self._all(
                f"SELECT {self._ALERT_COLS} FROM alerts WHERE state = 'resolved' AND {cond}", params)]
        return out

    # -- notification groups and silences ------------------------------------------------------
    def lock_notifications(self) -> None:
        """Within a transaction: one notification pass at a time across replicas (SQLite's
        BEGIN IMMEDIATE already serialises writers)."""

    def alert_groups(self) -> list[dict]:
        keys = ("group_key", "route", "receiver", "group_labels", "notified", "created_at", "last_flush_at")
        return [dict(zip(keys, (r[0], r[1], r[2], self._js_out(r[3]), self._js_out(r[4]), self._ts_out(r[5]),
                                self._ts_out(r[6]))))
                for r in self._all("SELECT group_key, route, receiver, group_labels, notified, created_at, last_flush_at"
                                   " FROM alert_groups")]

    def put_alert_group(self, g: dict) -> None:
        self._exec(
            "INSERT INTO alert_groups (group_key, route, receiver, group_labels, notified, created_at, last_flush_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (group_key) DO UPDATE SET notified = excluded.notified,"
            " last_flush_at = excluded.last_flush_at",
            (g["group_key"], g["route"], g["receiver"], self._js(g["group_labels"]), self._js(g["notified"]),
             self._ts(g["created_at"]), self._ts(g["last_flush_at"])))

    def add_silence(self, matchers: dict[str, str], starts_at: datetime, ends_at: datetime, created_by: str,
                    comment: str, now: datetime) -> int:
        with self.tx():  # the returned id is read before the commit
            return int(self._all("INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment,"
                                 " created_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",  # not MAX(id): races
                                 (self._js(matchers), self._ts(starts_at), self._ts(ends_at), created_by, comment,
                                  self._ts(now)))[0][0])

    def silences(self, active_at: datetime | None = None) -> list[dict]:
        """Every silence, or those in force at ``active_at``."""
        where, params = ("", ()) if active_at is None else (" WHERE starts_at <= ? AND ends_at > ?",
                                                           (self._ts(active_at), self._ts(active_at)))
        keys = ("id", "matchers", "starts_at", "ends_at", "created_by", "comment", "created_at")
        return [dict(zip(keys, (r[0], self._js_out(r[1]), self._ts_out(r[2]), self._ts_out(r[3]), r[4], r[5],
                                self._ts_out(r[6]))))
                for r in self._all("SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at"
                                   f" FROM silences{where} ORDER BY id", params)]

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        """End a silence now; False if there is none in force with that id."""
        return self._exec("UPDATE silences SET ends_at = ? WHERE id = ? AND ends_at > ?",
                          (self._ts(now), silence_id, self._ts(now))).rowcount == 1

    def add_outbox(self, dedup_key: str, receiver: str, payload: dict, now: datetime) -> None:
        self._exec(
            "INSERT INTO outbox (dedup_key, receiver, status, payload, attempts, next_attempt_at, created_at)"
            " VALUES (?, ?, 'pending', ?, 0, ?, ?)",
            (dedup_key, receiver, self._js(payload), self._ts(now), self._ts(now)),
        )

    def due_outbox(self, now: datetime, limit: int = 100) -> list[dict]:
        # Per alert and receiver, notifications go out in order: a "resolved" never overtakes
        # the "firing" it resolves while that one is still being retried.
        rows = self._all(
            "SELECT o.id, o.dedup_key, o.receiver, o.payload, o.attempts FROM outbox o WHERE o.status = 'pending'"
            " AND o.next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.dedup_key = o.dedup_key"
            " AND p.receiver = o.receiver AND p.status = 'pending' AND p.id < o.id) ORDER BY o.id LIMIT ?",
            (self._ts(now), limit),
        )
        return [{"id": r[0], "dedup_key": r[1], "receiver": r[2], "payload": self._js_out(r[3]), "attempts": r[4]}
                for r in rows]

    def outbox_pending(self) -> int:
        return self._all("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")[0][0]

    def outbox_delivered(self, outbox_id: int, now: datetime) -> None:
        self._exec(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, last_error = NULL"
            " WHERE id = ?", (self._ts(now), outbox_id))

    def outbox_failed(self, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
        self._exec(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
            (error[:500], self._ts(next_attempt_at), outbox_id),
        )

    # -- review queue --------------------------------------------------------------------------
    def enqueue_review(self, rows: list[dict]) -> None:
        """Queue items not queued before (an event is never queued twice, whatever the reason)."""
        self._many(
            "INSERT INTO review_items (event_id, reason, priority, state, created_at, stratum)"
            " VALUES (?, ?, ?, 'queued', ?, ?) ON CONFLICT (event_id) DO NOTHING",
            [(r["event_id"], r["reason"], r["priority"], self._ts(r["created_at"]), r.get("stratum", ""))
             for r in rows],
        )

    def close_review_items(self, event_ids: Iterable[str]) -> None:
        """Labels arrived for these events (by any route): their open review items are done."""
        for chunk in self._chunks(list(event_ids)):
            cond, params = self._in("event_id", chunk)
            self._exec(f"UPDATE review_items SET state = 'labelled' WHERE {cond} AND state IN ('queued', 'exported')",
                       params)

    def review_counts_since(self, since: datetime) -> dict[str, int]:
        """Items queued since ``since``, by stratum (what today's budget has used)."""
        return dict(self._all("SELECT stratum, COUNT(*) FROM review_items WHERE created_at >= ? GROUP BY stratum",
                              (self._ts(since),)))

    def expire_review_items(self, created_before: datetime, now: datetime) -> int:
        """Queued or exported items older than ``created_before`` nobody labelled: expired."""
        return self._exec("UPDATE review_items SET state = 'expired', exported_at = COALESCE(exported_at, ?)"
                          " WHERE state IN ('queued', 'exported') AND created_at < ?",
                          (self._ts(now), self._ts(created_before))).rowcount

    def review_stats(self) -> dict[str, Any]:
        """Review throughput and the reviewers' agreement with the model."""
        by_state = dict(self._all("SELECT state, COUNT(*) FROM review_items GROUP BY state"))
        rows = self._all("SELECT l.ingested_at, l.label = e.pred_label FROM review_items r"
                         " JOIN labels l ON l.event_id = r.event_id JOIN events e ON e.event_id = r.event_id"
                         " WHERE r.state = 'labelled'")
        per_day: dict[str, int] = {}
        for at, _ in rows:
            day = self._ts_out(at).date().isoformat()
            per_day[day] = per_day.get(day, 0) + 1
        agree = sum(bool(same) for _, same in rows)
        return {"by_state": by_state, "labelled": len(rows), "agreement": agree / len(rows) if rows else None,
                "labelled_per_day": dict(sorted(per_day.items()))}

    def unlabelled_events(self, model_name: str, model_version: str, start: datetime,
                          end: datetime) -> list[tuple[str, float, dict]]:
        """(event_id, confidence, slice) of the unlabelled events of a model version in [start, end),
        least confident first."""
        rows = self._all(
            "SELECT e.event_id, e.confidence, e.slice FROM events e LEFT JOIN labels l ON l.event_id = e.event_id"
            " WHERE l.event_id IS NULL AND e.model_name = ? AND e.model_version = ? AND e.ts >= ? AND e.ts < ?"
            " ORDER BY e.confidence, e.event_id",
            (model_name, model_version, self._ts(start), self._ts(end)),
        )
        return [(eid, float(conf), self._js_out(sl)) for eid, conf, sl in rows]

    def review_queue(self, state: str = "queued") -> list[dict]:
        rows = self._all(
            "SELECT r.event_id, r.reason, r.priority, r.created_at, e.ts, e.model_name, e.model_version, e.slice,"
            " e.pred_label, e.confidence, e.signals, e.media_uris, e.probabilities, r.stratum, e.signal_layout,"
            " e.signal_values FROM review_items r JOIN events e ON e.event_id = r.event_id"
            " WHERE r.state = ? ORDER BY r.priority DESC, r.event_id",
            (state,),
        )
        signals = self._signal_dicts([(r[10], r[14], r[15]) for r in rows])
        return [
            {"event_id": r[0], "reason": r[1], "priority": r[2], "queued_at": self._ts_out(r[3]),
             "ts": self._ts_out(r[4]), "model": {"name": r[5], "version": r[6]}, "slice": self._js_out(r[7]),
             "output": {"label": r[8], "confidence": r[9], "probabilities": self._js_out(r[12])},
             "signals": sig, "media_uris": self._js_out(r[11]) or {}, "stratum": r[13]}
            for r, sig in zip(rows, signals)
        ]

    def signals_for(self, event_ids: Iterable[str]) -> dict[str, dict[str, float]]:
        """Each stored event's signals, by id."""
        out: dict[str, dict[str, float]] = {}
        for chunk in self._chunks(event_ids):
            cond, params = self._in("event_id", chunk)
            rows = self._all(f"SELECT event_id, signals, signal_layout, signal_values FROM events WHERE {cond}", params)
            out.update(zip([r[0] for r in rows], self._signal_dicts([r[1:] for r in rows])))
        return out

    def _signal_dicts(self, rows: list[tuple]) -> list[dict[str, float]]:
        """Signals as dicts from (JSON, layout, packed values): packed where the row has them."""
        names_of = self.signal_layouts({lid for _, lid, packed in rows if packed is not None})
        return [(self._js_out(js) or {}) if packed is None else
                dict(zip(names_of[lid], np.frombuffer(packed, dtype="<f8").tolist())) for js, lid, packed in rows]

    def set_review_state(self, event_ids: Iterable[str], state: str, at: datetime) -> None:
        col = ", exported_at = ?" if state == "exported" else ""
        self._many(
            f"UPDATE review_items SET state = ?{col} WHERE event_id = ? AND state <> 'labelled'",
            [((state, self._ts(at), e) if col else (state, e)) for e in event_ids],
        )

    # -- status --------------------------------------------------------------------------------
    def counts(self) -> dict[str, Any]:
        one = lambda sql: self._all(sql)[0][0]  # noqa: E731
        by = lambda sql: {k: v for k, v in self._all(sql)}  # noqa: E731
        return {
            "events": one("SELECT COUNT(*) FROM events"),
            "labels": one("SELECT COUNT(*) FROM labels"),
            "labels_joined": one("SELECT COUNT(*) FROM labels l JOIN events e ON e.event_id = l.event_id"),
            "dead_letters": one("SELECT COUNT(*) FROM dead_letters"),
            "dead_letters_pending": one("SELECT COUNT(*) FROM dead_letters WHERE replayed_at IS NULL"),
            "evaluations": one("SELECT COUNT(*) FROM evaluations"),
            "evaluation_runs": one("SELECT COUNT(*) FROM eval_runs WHERE finished_at IS NOT NULL"),
            "findings": one("SELECT COUNT(*) FROM findings"),
            "alerts": by("SELECT state, COUNT(*) FROM alerts GROUP BY state"),
            "outbox": by("SELECT status, COUNT(*) FROM outbox GROUP BY status"),
            "review": by("SELECT state, COUNT(*) FROM review_items GROUP BY state"),
        }


def _range(col: str, start: datetime | None, end: datetime | None, ts) -> tuple[str, tuple]:
    conds, params = [], []
    if start is not None:
        conds.append(f"{col} >= ?")
        params.append(ts(start))
    if end is not None:
        conds.append(f"{col} < ?")
        params.append(ts(end))
    return ((" WHERE " + " AND ".join(conds)) if conds else ""), tuple(params)
