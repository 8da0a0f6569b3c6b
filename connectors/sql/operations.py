"""The daemon's own bookkeeping: dead letters, ingest tallies, online detector states and their
findings, and the counts ``modalwatch status`` prints."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Iterable, Sequence

from connectors.sql import claims
from connectors.sql.database import Database
from monitor.core.messages import reason_class
from monitor.core.records import DeadLetter, Finding, ReportRun, SourceActivity


class OperationsRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._reports = claims.Claims(db, "report_runs", ("period_start", "every_s"))

    # -- dead letters --------------------------------------------------------------------------
    def insert_dead_letters(self, rows: Sequence[DeadLetter]) -> set[tuple[str, str]]:
        """Store the dead letters not stored yet (a re-read message is one letter, not two);
        return the (source, position) of those that are new."""
        if not rows:
            return set()
        ts = self.db.dialect.ts
        with self.db.tx():
            known: set[tuple[str, str]] = set()
            by_source: dict[str, set[str]] = {}
            for r in rows:
                by_source.setdefault(r.source, set()).add(r.position)
            for src, positions in by_source.items():  # (source, position) is the letters' unique key
                for cond, params in self.db.where_in("position", positions):
                    known.update(
                        (src, p)
                        for (p,) in self.db.all(
                            f"SELECT position FROM dead_letters WHERE source = ? AND {cond}", [src, *params]
                        )
                    )
            self.db.many(
                "INSERT INTO dead_letters (source, position, reason, raw, kind, received_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, position) DO NOTHING",
                [(r.source, r.position, r.reason, r.payload, r.kind, ts(r.received_at)) for r in rows],
            )
        return {(r.source, r.position) for r in rows} - known

    def dead_letters(self, include_replayed: bool = False, limit: int = 1000) -> list[DeadLetter]:
        ts_out = self.db.dialect.ts_out
        where = "" if include_replayed else " WHERE replayed_at IS NULL"
        rows = self.db.all(
            "SELECT id, source, position, reason, raw, payload, kind, received_at, replayed_at"
            f" FROM dead_letters{where} ORDER BY id LIMIT ?",
            (limit,),
        )
        # ``payload`` holds the text of dead letters stored before migration 0009
        return [
            DeadLetter(
                r[1],
                r[2],
                r[3],
                bytes(r[4]) if r[4] is not None else r[5] and r[5].encode(),
                ts_out(r[7]),
                r[6],
                id=r[0],
                replayed_at=ts_out(r[8]),
            )
            for r in rows
        ]

    def mark_replayed(self, ids: Iterable[int], at: datetime) -> None:
        ts = self.db.dialect.ts
        self.db.many("UPDATE dead_letters SET replayed_at = ? WHERE id = ?", [(ts(at), i) for i in ids])

    # -- ingest tallies (data health) ----------------------------------------------------------
    def count_ingest(self, minute: datetime, counts: dict[str, tuple[int, int]]) -> None:
        """Add a batch's (messages, dead letters) per source to ``minute``'s row."""
        ts = self.db.dialect.ts
        self.db.many(
            "INSERT INTO ingest_minutes (minute, source, messages, dead_letters) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (minute, source) DO UPDATE SET messages = ingest_minutes.messages +"
            " excluded.messages,"
            " dead_letters = ingest_minutes.dead_letters + excluded.dead_letters",
            [(ts(minute), src, n, dead) for src, (n, dead) in sorted(counts.items())],
        )

    def forget_ingest_before(self, before: datetime) -> int:
        return self.db.execute(
            "DELETE FROM ingest_minutes WHERE minute < ?", (self.db.dialect.ts(before),)
        ).rowcount

    def ingest_by_source(self, since: datetime, recent: datetime) -> list[SourceActivity]:
        """Per source seen since ``since``: its last minute with messages, and its messages and dead
        letters since ``recent``."""
        d = self.db.dialect
        rows = self.db.all(
            "SELECT source, MAX(minute), SUM(CASE WHEN minute >= ? THEN messages ELSE 0 END),"
            " SUM(CASE WHEN minute >= ? THEN dead_letters ELSE 0 END) FROM ingest_minutes WHERE minute >= ?"
            " AND messages > 0 GROUP BY source ORDER BY source",
            (d.ts(recent), d.ts(recent), d.ts(since)),
        )
        return [SourceActivity(src, d.ts_out(last), int(n), int(dead)) for src, last, n, dead in rows]

    # -- online detectors ----------------------------------------------------------------------
    def lock_shared_state(self) -> None:
        """Within a transaction: hold what writers read, update and write back (the online
        detectors' states, the day's review counts per stratum) until it ends, so that two writers
        (workers, replicas) never lose each other's updates."""
        self.db.dialect.lock_shared_state(self.db.conn)

    def states(self, keys: Iterable[str]) -> dict[str, dict]:
        js_out = self.db.dialect.js_out
        out = {}
        for cond, params in self.db.where_in("key", keys):
            out.update(
                {
                    k: js_out(v)
                    for k, v in self.db.all(f"SELECT key, state FROM detector_state WHERE {cond}", params)
                }
            )
        return out

    def put_states(self, states: dict[str, dict], at: datetime) -> None:
        d = self.db.dialect
        self.db.many(
            "INSERT INTO detector_state (key, state, updated_at) VALUES (?, ?, ?)"
            " ON CONFLICT (key) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at",
            [(k, d.js(v), d.ts(at)) for k, v in states.items()],
        )

    def insert_findings(self, rows: Sequence[Finding]) -> None:
        d = self.db.dialect
        self.db.many(
            "INSERT INTO findings (ts, model_name, model_version, slice, detector, metric, value, detail,"
            " created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    d.ts(r.ts),
                    r.model_name,
                    r.model_version,
                    r.slice,
                    r.detector,
                    r.metric,
                    r.value,
                    d.js(r.detail),
                    d.ts(r.created_at),
                )
                for r in rows
            ],
        )

    def findings(
        self, model_name: str, model_version: str, start: datetime, end: datetime, labels_before: datetime
    ) -> list[Finding]:
        """The findings of one model version whose observation's event time is in [start, end) and
        whose label was known (label time) before ``labels_before``: what a vintage's cut-off saw,
        whenever it is evaluated."""
        d = self.db.dialect
        rows = self.db.all(
            "SELECT f.ts, f.model_name, f.model_version, f.slice, f.detector, f.metric, f.value, f.detail,"
            " f.created_at FROM findings f JOIN labels l ON l.event_id ="
            f" {d.json_field('f.detail', 'event_id')}"
            " WHERE f.model_name = ? AND f.model_version = ? AND f.ts >= ? AND f.ts < ? AND l.ts < ?"
            " ORDER BY f.ts, f.id",
            (model_name, model_version, d.ts(start), d.ts(end), d.ts(labels_before)),
        )
        return [
            Finding(d.ts_out(r[0]), r[1], r[2], r[3], r[4], r[5], r[6], d.js_out(r[7]), d.ts_out(r[8]))
            for r in rows
        ]

    # -- periodic reports ----------------------------------------------------------------------
    def claim_report(
        self, start: datetime, end: datetime, every_s: int, owner: str, now: datetime, expire: timedelta
    ) -> bool:
        """Claim the report of [start, end) for ``owner`` (connectors/sql/claims.py)."""
        d = self.db.dialect
        return self._reports.claim(
            (d.ts(start), every_s), owner, now, expire, extra={"period_end": d.ts(end)}
        )

    def finish_report(self, start: datetime, every_s: int, owner: str, now: datetime, report: str) -> bool:
        """Keep a claimed period's report (its JSON text); False if the claim was lost."""
        return self._reports.finish(
            (self.db.dialect.ts(start), every_s), owner, now, extra={"report": report}
        )

    def reports(self) -> list[ReportRun]:
        """The periodic reports written, newest period first."""
        ts_out = self.db.dialect.ts_out
        rows = self.db.all(
            "SELECT period_start, period_end, every_s, claimed_by, finished_at FROM report_runs"
            " WHERE finished_at IS NOT NULL ORDER BY period_start DESC, every_s"
        )
        return [ReportRun(ts_out(r[0]), ts_out(r[1]), int(r[2]), r[3], ts_out(r[4])) for r in rows]

    def report(self, start: datetime, every_s: int) -> str | None:
        """A written report's JSON text."""
        return self.db.one(
            "SELECT report FROM report_runs WHERE period_start = ? AND every_s = ?"
            " AND finished_at IS NOT NULL",
            (self.db.dialect.ts(start), every_s),
        )

    # -- status --------------------------------------------------------------------------------
    def dead_letter_reasons(self) -> dict[tuple[str, str], int]:
        """Dead letters not replayed, by (source, reason class: monitor.core.messages.reason_class)."""
        out: dict[tuple[str, str], int] = {}
        for source, reason, n in self.db.all(
            "SELECT source, reason, COUNT(*) FROM dead_letters WHERE replayed_at IS NULL"
            " GROUP BY source, reason"
        ):
            key = (source, reason_class(reason))
            out[key] = out.get(key, 0) + int(n)
        return out

    def counts(self) -> dict[str, Any]:
        one = self.db.one

        def by(sql: str) -> dict:
            return dict(self.db.all(sql))

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
            "alert_episodes": one("SELECT COUNT(*) FROM alert_episodes"),
            "outbox": by("SELECT status, COUNT(*) FROM outbox GROUP BY status"),
            "review": by("SELECT state, COUNT(*) FROM review_items GROUP BY state"),
        }
