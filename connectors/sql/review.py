"""The review queue: items, their states, and what reviewers said."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterable, Sequence

from connectors.sql.database import Database
from connectors.sql.events import EventRepository
from monitor.core.records import ReviewCandidate, ReviewItem


class ReviewRepository:
    def __init__(self, db: Database, events: EventRepository) -> None:
        self.db = db
        self._events = events  # the items' signals are unpacked with the events' layouts

    def enqueue(self, candidates: Sequence[ReviewCandidate]) -> None:
        """Queue items not queued before (an event is never queued twice, whatever the reason)."""
        ts = self.db.dialect.ts
        self.db.many(
            "INSERT INTO review_items (event_id, reason, priority, state, created_at, stratum)"
            " VALUES (?, ?, ?, 'queued', ?, ?) ON CONFLICT (event_id) DO NOTHING",
            [(c.event_id, c.reason, c.priority, ts(c.created_at), c.stratum) for c in candidates],
        )

    def close(self, event_ids: Iterable[str]) -> None:
        """Labels arrived for these events (by any route): their open review items are done."""
        for cond, params in self.db.where_in("event_id", event_ids):
            self.db.execute(
                f"UPDATE review_items SET state = 'labelled' WHERE {cond}"
                " AND state IN ('queued', 'exported')",
                params,
            )

    def counts_since(self, since: datetime) -> dict[str, int]:
        """Items queued since ``since``, by stratum (what today's budget has used)."""
        return dict(
            self.db.all(
                "SELECT stratum, COUNT(*) FROM review_items WHERE created_at >= ? GROUP BY stratum",
                (self.db.dialect.ts(since),),
            )
        )

    def expire(self, created_before: datetime, now: datetime) -> int:
        """Queued or exported items older than ``created_before`` nobody labelled: expired."""
        ts = self.db.dialect.ts
        return self.db.execute(
            "UPDATE review_items SET state = 'expired', exported_at = COALESCE(exported_at, ?)"
            " WHERE state IN ('queued', 'exported') AND created_at < ?",
            (ts(now), ts(created_before)),
        ).rowcount

    def stats(self) -> dict[str, Any]:
        """Review throughput and the reviewers' agreement with the model."""
        by_state = dict(self.db.all("SELECT state, COUNT(*) FROM review_items GROUP BY state"))
        rows = self.db.all(
            "SELECT l.ingested_at, l.label = e.pred_label FROM review_items r"
            " JOIN labels l ON l.event_id = r.event_id JOIN events e ON e.event_id = r.event_id"
            " WHERE r.state = 'labelled'"
        )
        per_day: dict[str, int] = {}
        for at, _ in rows:
            day = self.db.dialect.ts_out(at).date().isoformat()
            per_day[day] = per_day.get(day, 0) + 1
        agree = sum(bool(same) for _, same in rows)
        return {
            "by_state": by_state,
            "labelled": len(rows),
            "agreement": agree / len(rows) if rows else None,
            "labelled_per_day": dict(sorted(per_day.items())),
        }

    def created_per_day(self) -> dict[str, dict[str, int]]:
        """Items by the day they were queued (UTC) and the state each is in now."""
        out: dict[str, dict[str, int]] = {}
        for at, state, n in self.db.all(
            "SELECT created_at, state, COUNT(*) FROM review_items GROUP BY created_at, state"
        ):
            day = out.setdefault(self.db.dialect.ts_out(at).date().isoformat(), {})
            day[state] = day.get(state, 0) + int(n)
        return dict(sorted(out.items()))

    def queue(self, state: str = "queued") -> list[ReviewItem]:
        """The items in ``state``, most uncertain first."""
        d = self.db.dialect
        rows = self.db.all(
            "SELECT r.event_id, r.reason, r.priority, r.created_at, e.ts, e.model_name, e.model_version,"
            " e.slice,"
            " e.pred_label, e.confidence, e.probabilities, e.signal_layout, e.signal_values, e.media_uris,"
            " r.stratum"
            " FROM review_items r JOIN events e ON e.event_id = r.event_id"
            " WHERE r.state = ? ORDER BY r.priority DESC, r.event_id",
            (state,),
        )
        signals = self._events.unpack_signals([(r[11], r[12]) for r in rows])
        return [
            ReviewItem(
                r[0],
                r[1],
                r[2],
                d.ts_out(r[3]),
                d.ts_out(r[4]),
                r[5],
                r[6],
                d.js_out(r[7]),
                r[8],
                r[9],
                d.js_out(r[10]),
                sig,
                d.js_out(r[13]) or {},
                r[14],
            )
            for r, sig in zip(rows, signals)
        ]

    def set_state(self, event_ids: Iterable[str], state: str, at: datetime) -> None:
        ts = self.db.dialect.ts
        if state == "exported":
            self.db.many(
                "UPDATE review_items SET state = ?, exported_at = ? WHERE event_id = ? AND state <>"
                " 'labelled'",
                [(state, ts(at), e) for e in event_ids],
            )
        else:
            self.db.many(
                "UPDATE review_items SET state = ? WHERE event_id = ? AND state <> 'labelled'",
                [(state, e) for e in event_ids],
            )
