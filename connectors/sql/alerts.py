"""Alerts, notification groups, silences and the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Iterable

from connectors.sql.database import Database
from monitor.core.records import AlertRecord, GroupState, OutboxEntry, Silence

_ALERT_COLS = "dedup_key, rule, labels, annotations, state, starts_at, ends_at, value, updated_at"
_STATE_COLS = _ALERT_COLS + ", quiet_since"  # an alert's current state; its episodes have no quiet_since
_GROUP_COLS = "group_key, route, receiver, group_labels, notified, created_at, last_flush_at"
_SILENCE_COLS = "id, matchers, starts_at, ends_at, created_by, comment, created_at"


class AlertRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def lock(self) -> None:
        """Within a transaction: one notification pass, or one move of alert states, at a time
        across replicas."""
        self.db.dialect.lock_notifications(self.db.conn)

    # -- alerts --------------------------------------------------------------------------------
    def _alert(self, r: tuple) -> AlertRecord:
        d = self.db.dialect
        return AlertRecord(
            r[0],
            r[1],
            d.js_out(r[2]),
            d.js_out(r[3]),
            r[4],
            d.ts_out(r[5]),
            d.ts_out(r[6]),
            r[7],
            d.ts_out(r[8]),
            d.ts_out(r[9]) if len(r) > 9 else None,
        )

    def get(self, dedup_keys: Iterable[str]) -> dict[str, AlertRecord]:
        """The alerts of these fingerprints that exist, by fingerprint."""
        out: dict[str, AlertRecord] = {}
        for cond, params in self.db.where_in("dedup_key", dedup_keys):
            out.update(
                (a.dedup_key, a)
                for a in map(
                    self._alert, self.db.all(f"SELECT {_STATE_COLS} FROM alerts WHERE {cond}", params)
                )
            )
        return out

    def put(self, a: AlertRecord, now: datetime) -> None:
        d = self.db.dialect
        self.db.execute(
            "INSERT INTO alerts (dedup_key, rule, labels, annotations, state, starts_at, ends_at, value,"
            " updated_at, quiet_since)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO UPDATE SET labels ="
            " excluded.labels,"
            " annotations = excluded.annotations, state = excluded.state, starts_at = excluded.starts_at,"
            " ends_at = excluded.ends_at, value = excluded.value, updated_at = excluded.updated_at,"
            " quiet_since = excluded.quiet_since",
            (
                a.dedup_key,
                a.rule,
                d.js(a.labels),
                d.js(a.annotations),
                a.state,
                d.ts(a.starts_at),
                d.ts(a.ends_at),
                a.value,
                d.ts(now),
                d.ts(a.quiet_since),
            ),
        )
        if a.state in ("firing", "resolved"):  # a pending alert that never fired is no episode
            self._put_episode(a, now)

    def _put_episode(self, a: AlertRecord, now: datetime) -> None:
        d = self.db.dialect
        self.db.execute(
            "INSERT INTO alert_episodes (dedup_key, starts_at, rule, labels, annotations, state, ends_at,"
            " value, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedup_key, starts_at)"
            " DO UPDATE SET labels = excluded.labels, annotations = excluded.annotations,"
            " state = excluded.state, ends_at = excluded.ends_at, value = excluded.value,"
            " updated_at = excluded.updated_at",
            (
                a.dedup_key,
                d.ts(a.starts_at),
                a.rule,
                d.js(a.labels),
                d.js(a.annotations),
                a.state,
                d.ts(a.ends_at),
                a.value,
                d.ts(now),
            ),
        )

    def episodes(self, dedup_key: str | None = None) -> list[AlertRecord]:
        """Every episode (each fire → resolve) of every alert, or of one, oldest first."""
        where, params = (" WHERE dedup_key = ?", (dedup_key,)) if dedup_key else ("", ())
        return [
            self._alert(r)
            for r in self.db.all(
                f"SELECT {_ALERT_COLS} FROM alert_episodes{where} ORDER BY starts_at, dedup_key", params
            )
        ]

    def list(self, state: str | None = None) -> list[AlertRecord]:
        """Every alert (or those in ``state``), oldest first."""
        where, params = (" WHERE state = ?", (state,)) if state else ("", ())
        return [
            self._alert(r)
            for r in self.db.all(
                f"SELECT {_STATE_COLS} FROM alerts{where} ORDER BY starts_at, dedup_key", params
            )
        ]

    def to_notify(self, told: Iterable[str]) -> list[AlertRecord]:
        """What a notification pass needs, not the whole history: the firing alerts, and those of
        ``told`` (fingerprints some group last told as firing) that have resolved since."""
        out = self.list("firing")
        for cond, params in self.db.where_in("dedup_key", told):
            out += [
                self._alert(r)
                for r in self.db.all(
                    f"SELECT {_STATE_COLS} FROM alerts WHERE state = 'resolved' AND {cond}", params
                )
            ]
        return out

    # -- notification groups -------------------------------------------------------------------
    def groups(self) -> list[GroupState]:
        d = self.db.dialect
        return [
            GroupState(r[0], r[1], r[2], d.js_out(r[3]), d.js_out(r[4]), d.ts_out(r[5]), d.ts_out(r[6]))
            for r in self.db.all(f"SELECT {_GROUP_COLS} FROM alert_groups")
        ]

    def put_group(self, g: GroupState) -> None:
        d = self.db.dialect
        self.db.execute(
            f"INSERT INTO alert_groups ({_GROUP_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (group_key)"
            " DO UPDATE SET notified = excluded.notified, last_flush_at = excluded.last_flush_at",
            (
                g.group_key,
                g.route,
                g.receiver,
                d.js(g.group_labels),
                d.js(g.notified),
                d.ts(g.created_at),
                d.ts(g.last_flush_at),
            ),
        )

    # -- silences ------------------------------------------------------------------------------
    def add_silence(
        self,
        matchers: dict[str, str],
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
        now: datetime,
    ) -> int:
        d = self.db.dialect
        with self.db.tx():  # the returned id is read before the commit
            return int(
                self.db.one(
                    "INSERT INTO silences (matchers, starts_at, ends_at, created_by, comment, created_at)"
                    " VALUES (?, ?, ?, ?, ?, ?) RETURNING id",  # not MAX(id): races
                    (d.js(matchers), d.ts(starts_at), d.ts(ends_at), created_by, comment, d.ts(now)),
                )
            )

    def silences(self, active_at: datetime | None = None) -> list[Silence]:
        """Every silence, or those in force at ``active_at``."""
        d = self.db.dialect
        where, params = (
            ("", ())
            if active_at is None
            else (" WHERE starts_at <= ? AND ends_at > ?", (d.ts(active_at), d.ts(active_at)))
        )
        return [
            Silence(r[0], d.js_out(r[1]), d.ts_out(r[2]), d.ts_out(r[3]), r[4], r[5], d.ts_out(r[6]))
            for r in self.db.all(f"SELECT {_SILENCE_COLS} FROM silences{where} ORDER BY id", params)
        ]

    def expire_silence(self, silence_id: int, now: datetime) -> bool:
        """End a silence now; False if there is none in force with that id."""
        ts = self.db.dialect.ts
        return (
            self.db.execute(
                "UPDATE silences SET ends_at = ? WHERE id = ? AND ends_at > ?", (ts(now), silence_id, ts(now))
            ).rowcount
            == 1
        )

    # -- the outbox ----------------------------------------------------------------------------
    def add_outbox(self, dedup_key: str, receiver: str, payload: dict, now: datetime) -> None:
        d = self.db.dialect
        self.db.execute(
            "INSERT INTO outbox (dedup_key, receiver, status, payload, attempts, next_attempt_at, created_at)"
            " VALUES (?, ?, 'pending', ?, 0, ?, ?)",
            (dedup_key, receiver, d.js(payload), d.ts(now), d.ts(now)),
        )

    def due_outbox(self, now: datetime, limit: int = 100) -> list[OutboxEntry]:
        # Per alert and receiver, notifications go out in order: a "resolved" never overtakes
        # the "firing" it resolves while that one is still being retried.
        d = self.db.dialect
        rows = self.db.all(
            "SELECT o.id, o.dedup_key, o.receiver, o.payload, o.attempts FROM outbox o WHERE o.status ="
            " 'pending'"
            " AND o.next_attempt_at <= ? AND NOT EXISTS (SELECT 1 FROM outbox p WHERE p.dedup_key ="
            " o.dedup_key"
            " AND p.receiver = o.receiver AND p.status = 'pending' AND p.id < o.id) ORDER BY o.id LIMIT ?",
            (d.ts(now), limit),
        )
        return [OutboxEntry(r[0], r[1], r[2], d.js_out(r[3]), r[4]) for r in rows]

    def outbox_pending(self) -> int:
        return self.db.one("SELECT COUNT(*) FROM outbox WHERE status = 'pending'")

    def outbox_by_receiver(self) -> dict[tuple[str, str], tuple[int, int]]:
        """Per (receiver, status): the entries, and the failed delivery attempts among them."""
        rows = self.db.all(
            "SELECT receiver, status, COUNT(*), SUM(CASE WHEN status = 'delivered' THEN attempts - 1"
            " ELSE attempts END) FROM outbox GROUP BY receiver, status"
        )
        return {(r, s): (int(n), int(f or 0)) for r, s, n, f in rows}

    def outbox_delivered(self, outbox_id: int, now: datetime) -> None:
        self.db.execute(
            "UPDATE outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?, last_error"
            " = NULL"
            " WHERE id = ?",
            (self.db.dialect.ts(now), outbox_id),
        )

    def outbox_dead(self, outbox_id: int, error: str, now: datetime) -> None:
        """The receiver refused it for good: kept, with the reason, and no longer attempted."""
        self.db.execute(
            "UPDATE outbox SET status = 'dead', attempts = attempts + 1, last_error = ?, delivered_at = ?"
            " WHERE id = ?",
            (error[:500], self.db.dialect.ts(now), outbox_id),
        )

    def outbox_failed(self, outbox_id: int, error: str, next_attempt_at: datetime) -> None:
        self.db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
            (error[:500], self.db.dialect.ts(next_attempt_at), outbox_id),
        )
