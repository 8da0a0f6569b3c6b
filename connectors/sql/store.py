"""SqlStore: a database, its migrations, and one repository per aggregate."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator

from connectors.sql.alerts import AlertRepository
from connectors.sql.database import Database
from connectors.sql.dialect import Dialect, json_text
from connectors.sql.evaluations import EvaluationRepository
from connectors.sql.events import EventRepository
from connectors.sql.operations import OperationsRepository
from connectors.sql.packing import SignalPacker
from connectors.sql.review import ReviewRepository
from connectors.sql.summaries import SummaryRepository
from migrations import migration_files

log = logging.getLogger("modalwatch.store")


class SqlStore:
    """One connection to a modalwatch database, seen through its aggregates:

    - ``events``: events and labels, model versions, windows (``EventRepository``);
    - ``evaluations``: claims on vintages and their rows (``EvaluationRepository``);
    - ``alerts``: alert states, notification groups, silences, the outbox (``AlertRepository``);
    - ``review``: the review queue (``ReviewRepository``);
    - ``ops``: dead letters, ingest tallies, online detector states and findings, counts;
    - ``summaries``: what events and labels add to per time bucket and slice (``SummaryRepository``).

    ``with store.tx():`` makes the calls inside one transaction. One store is one connection:
    another thread takes ``sibling()``."""

    def __init__(self, dialect: Dialect) -> None:
        self.db = Database(dialect)
        self.dialect = dialect
        self.transient_errors = dialect.transient_errors
        self.events = EventRepository(self.db)
        self.evaluations = EvaluationRepository(self.db)
        self.alerts = AlertRepository(self.db)
        self.review = ReviewRepository(self.db, self.events)
        self.ops = OperationsRepository(self.db)
        self.summaries = SummaryRepository(self.db)

    @contextmanager
    def tx(self) -> Iterator["SqlStore"]:
        with self.db.tx():
            yield self

    def sibling(self) -> "SqlStore":
        """Another connection to the same database, for another thread (the evaluation job, the
        scheduler's job store): one connection is never shared between threads."""
        return SqlStore(self.dialect.sibling())

    def reconnect(self) -> None:
        self.db.reconnect()

    def close(self) -> None:
        self.db.close()

    def describe(self) -> str:
        return self.dialect.describe()

    def set_compression(self, compress_after: timedelta | None) -> None:
        """Compress raw event rows older than ``compress_after`` where the database can (TimescaleDB)."""
        with self.db.tx():
            self.dialect.set_compression(self.db.conn, compress_after)

    # -- migrations ----------------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply the migrations not yet recorded, in one transaction; return their names.
        Idempotent; several replicas starting at once apply them once."""
        with self.db.tx():
            # the lock first: two replicas starting on an empty database would otherwise race even
            # on CREATE TABLE IF NOT EXISTS (PostgreSQL raises a unique violation on pg_type)
            self.dialect.lock_migrations(self.db.conn)
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = {r[0] for r in self.db.all("SELECT version FROM schema_migrations")}
            applied = []
            for version, name, sql in migration_files(self.dialect.name):
                if version in done:
                    continue
                step = DATA_STEPS.get(version)
                if step is not None:
                    step(self)
                self._run_script(sql)
                self.db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, datetime.now(timezone.utc).isoformat()),
                )
                applied.append(name)
            self.dialect.after_migrate(self.db.conn)
        for name in applied:
            log.info("applied migration %s", name)
        return applied

    def _run_script(self, sql: str) -> None:
        # Migrations hold no string literal with ';' or '--', so a plain split is exact.
        code = "\n".join(line.split("--", 1)[0] for line in sql.splitlines())
        for stmt in (s.strip() for s in code.split(";")):
            if stmt:
                self.db.conn.cursor().execute(stmt)


def _pack_legacy_signals(store: SqlStore, chunk: int = 10_000) -> None:
    """Migration 0008's data step: events stored before migration 0007 kept their signals as JSON;
    they are packed like every later event, so that one encoding is read."""
    db, d = store.db, store.dialect
    packer = SignalPacker()
    while True:
        rows = db.all(
            f"SELECT event_id, {d.json_as_text('signals')} FROM events WHERE signal_values IS NULL"
            f" LIMIT {chunk}"
        )
        if not rows:
            return
        layouts, updates = {}, []
        for event_id, text in rows:
            lid, names, packed = packer.pack(d.js_out(text) or {})
            layouts[lid] = names
            updates.append((lid, packed, event_id))
        db.many(
            "INSERT INTO signal_layouts (id, names) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [(lid, json_text(list(names))) for lid, names in sorted(layouts.items())],
        )
        db.many("UPDATE events SET signal_layout = ?, signal_values = ? WHERE event_id = ?", updates)
        log.info("migration 0008: packed the signals of %d events stored before 0007", len(rows))


# Data steps run before the SQL of their migration version, in the same transaction.
DATA_STEPS: dict[int, Callable[[SqlStore], None]] = {8: _pack_legacy_signals}
