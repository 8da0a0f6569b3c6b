"""PostgreSQL through psycopg 3; TimescaleDB hypertables where the extension exists."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Sequence

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from pydantic_core import from_json, to_json

from connectors.sql.dialect import Dialect
from connectors.sql.store import SqlStore

log = logging.getLogger("modalwatch.store")

# Tables that become hypertables where timescaledb is available, with their time column.
# A hypertable's unique keys must hold the time column, so their keys are widened first.
_HYPERTABLES = {
    "events": ("ts", "ALTER TABLE events DROP CONSTRAINT events_pkey, ADD PRIMARY KEY (event_id, ts)"),
    "evaluations": (
        "window_start",
        "ALTER TABLE evaluations DROP CONSTRAINT evaluations_pkey, ADD PRIMARY KEY (id, window_start)",
    ),
}

# Advisory lock keys (transaction-scoped): one per thing two writers must not do at once.
_LOCK_MIGRATIONS, _LOCK_NOTIFICATIONS, _LOCK_SHARED_STATE, _LOCK_EVENT_IDS = 727274, 727275, 727276, 727277


class PostgresDialect(Dialect):
    name = "postgres"
    transient_errors = (psycopg.OperationalError, psycopg.InterfaceError)
    # text id lists go as one JSON array (below), so a chunk can be large
    chunk_size = 50_000

    def __init__(self, url: str, connect_timeout_s: float = 10) -> None:
        self.url = url
        self.connect_timeout_s = connect_timeout_s
        self.timescale = False
        self._where = "postgresql"  # set on connect: never the password
        self._stages: set[str] = set()  # temp staging tables made on this connection
        self._types: dict[str, list[str]] = {}  # per table: the COPY types of its columns
        self._hyper: bool | None = None  # whether events is a hypertable (asked once per connection)

    def connect(self) -> psycopg.Connection:
        conn = psycopg.connect(self.url, autocommit=False, connect_timeout=int(self.connect_timeout_s))
        # No server-side prepared statements: psycopg prepares a query run five times, and a plan
        # made then — when events was small — would be kept while the table grows (a sequential
        # scan per batch at half a million rows). Planned afresh, a batch's lookups use their index
        # whatever the statistics say; planning a few statements a batch costs next to nothing.
        conn.prepare_threshold = None
        _fast_json(conn)
        _json_text_dumpers(conn)
        info = conn.info
        self._where = f"postgresql://{info.host}:{info.port}/{info.dbname}"
        self._stages.clear()  # temp tables die with their session
        self._hyper = None
        return conn

    def begin(self, conn) -> None:
        pass  # psycopg opens the transaction on the first statement

    def sibling(self) -> "PostgresDialect":
        other = PostgresDialect(self.url, self.connect_timeout_s)
        other.timescale = self.timescale
        return other

    def describe(self) -> str:
        return self._where

    def lock_migrations(self, conn) -> None:
        # Several replicas may start at once: one applies, the others wait and find nothing to do.
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_MIGRATIONS,))

    def lock_notifications(self, conn) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_NOTIFICATIONS,))

    def lock_shared_state(self, conn) -> None:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_SHARED_STATE,))

    @property
    def row_lock(self) -> str:
        return " FOR UPDATE"

    def q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def json_as_text(self, col: str) -> str:
        return f"{col}::text"

    def json_field(self, col: str, key: str) -> str:
        return f"({col}->>'{key}')"

    def in_list(self, col: str, ids: list) -> tuple[str, list]:
        ids = list(ids)
        if ids and type(ids[0]) is str:
            # text ids as one JSON array, serialised in Rust: psycopg dumps a list element by element
            # in Python (~0.5 µs an id; 2,000 ids a batch for the labels that came before their events)
            return f"{col} = ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)))", [to_json(ids).decode()]
        return f"{col} = ANY(%b)", [ids]

    # -- the window aggregation ----------------------------------------------------------------
    def concat_bytes(self, expr: str) -> str:
        return f"string_agg({expr}, ''::bytea)"

    def seconds_between(self, later: str, earlier: str) -> str:
        return f"EXTRACT(EPOCH FROM ({later} - {earlier}))"

    def float_bytes(self, expr: str) -> str:
        return f"float8send({expr})"

    def list_agg(self, expr: str) -> str:
        return f"array_agg({expr})"

    def read_cursor(self, conn) -> Any:
        return conn.cursor(binary=True)  # bytea and floats without text conversion

    def prepare_window_read(self, cur) -> None:
        # one big scan: compiling its expressions (JIT) costs more than it saves, and the labels'
        # hash table should not spill to disk
        cur.execute("SET LOCAL jit = off")
        cur.execute("SET LOCAL work_mem = '64MB'")

    # -- writes --------------------------------------------------------------------------------
    def insert_new(self, conn, table: str, cols: Sequence[str], key: str, rows: list[tuple]) -> set:
        """The batch is copied straight into ``table`` (binary COPY: the least work for the server,
        and new events are the rule); if one of its keys is stored already (a replay, another
        writer), the COPY is undone to a savepoint and the rows go through a staging table and
        ``ON CONFLICT DO NOTHING`` instead."""
        if not rows:
            return set()
        k = cols.index(key)
        first: dict = {}
        for r in rows:
            first.setdefault(r[k], r)  # the first of a key in a batch wins
        rows = list(first.values())
        cur = conn.cursor()
        if table == "events" and self._events_hypertable(conn):
            # a hypertable's key holds the time too: (event_id, ts) would take an event re-sent
            # with another time a second time. Writers take turns, and an id stored at any time
            # is a duplicate.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_EVENT_IDS,))
            return self._insert_staged(conn, cur, table, cols, key, rows, unseen_by=key)
        cur.execute("SAVEPOINT modalwatch_copy")
        try:
            self._copy(cur, table, cols, rows, self._copy_types(conn, table, cols))
        except psycopg.errors.UniqueViolation:
            cur.execute("ROLLBACK TO SAVEPOINT modalwatch_copy")
            return self._insert_staged(conn, cur, table, cols, key, rows)
        cur.execute("RELEASE SAVEPOINT modalwatch_copy")
        return {r[k] for r in rows}

    def add_rows(self, conn, table: str, key: Sequence[str], added: Sequence[str], rows: list[tuple]) -> None:
        """One statement for the batch: the rows as one JSON array (serialised in Rust), read by
        ``jsonb_to_recordset`` — one plan instead of one per row."""
        if not rows:
            return
        cols = [*key, *added]
        types = self._copy_types(conn, table, cols)
        record = ", ".join(f"{c} {t}" for c, t in zip(cols, types))
        conn.execute(
            f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(cols)}"
            f" FROM jsonb_to_recordset(%s::jsonb) AS r({record})"
            f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
            + ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in added),
            (to_json([dict(zip(cols, r)) for r in rows]).decode(),),
        )

    def _copy_types(self, conn, table: str, cols: Sequence[str]) -> list[str]:
        """The types of ``cols`` of ``table``, as COPY wants them (asked once per connection)."""
        if table not in self._types:
            udt = dict(
                conn.execute(
                    "SELECT column_name, udt_name FROM information_schema.columns WHERE table_name = %s"
                    " AND table_schema = current_schema()",
                    (table,),
                ).fetchall()
            )
            self._types[table] = [udt[c] for c in cols]
        return self._types[table]

    @staticmethod
    def _copy(cur, table: str, cols: Sequence[str], rows: list[tuple], types: list[str]) -> None:
        with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)  # json columns: the store's JSON text, dumped by _JsonText*Dumper
            for r in rows:
                copy.write_row(r)

    def _events_hypertable(self, conn) -> bool:
        """Whether ``events`` is a TimescaleDB hypertable here (asked once per connection: a
        pipeline worker's store is never migrated, so it cannot know from ``after_migrate``)."""
        if self._hyper is None:
            cur = conn.cursor()
            cur.execute("SAVEPOINT modalwatch_probe")
            try:
                cur.execute(
                    "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = 'events'"
                    " AND hypertable_schema = current_schema()"
                )
                self._hyper = cur.fetchone() is not None
            except psycopg.errors.UndefinedTable:  # no timescaledb on this server
                self._hyper = False
            cur.execute("ROLLBACK TO SAVEPOINT modalwatch_probe")
        return self._hyper

    def _insert_staged(
        self,
        conn,
        cur,
        table: str,
        cols: Sequence[str],
        key: str,
        rows: list[tuple],
        unseen_by: str | None = None,
    ) -> set:
        """The rows through a temp table and ``INSERT … ON CONFLICT DO NOTHING`` (``unseen_by``: and
        only those whose value of that column is not stored at all)."""
        stage = f"_stage_{table}"
        if stage not in self._stages:
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DELETE ROWS")
            self._stages.add(stage)
        else:
            cur.execute(f"DELETE FROM {stage}")  # ON COMMIT DELETE ROWS empties it between transactions
        self._copy(cur, stage, cols, rows, self._copy_types(conn, table, cols))
        collist = ", ".join(cols)
        unseen = (
            f" WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE t.{unseen_by} = {stage}.{unseen_by})"
            if unseen_by
            else ""
        )
        cur.execute(
            f"INSERT INTO {table} ({collist}) SELECT {collist} FROM {stage}{unseen} ON CONFLICT DO NOTHING"
            f" RETURNING {key}"
        )
        return {r[0] for r in cur.fetchall()}

    # -- schema --------------------------------------------------------------------------------
    def after_migrate(self, conn) -> None:
        cur = conn.cursor()
        available = cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
        if not available:
            log.info("timescaledb is not available on %s: plain tables with time indexes", self._where)
            return
        cur.execute("SAVEPOINT modalwatch_extension")
        try:
            cur.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        except psycopg.Error as e:  # its files are there, but the server does not preload it
            cur.execute("ROLLBACK TO SAVEPOINT modalwatch_extension")
            log.warning(
                "timescaledb is installed on %s but cannot be loaded (%s: is it in"
                " shared_preload_libraries?): plain tables with time indexes",
                self._where,
                type(e).__name__,
            )
            return
        for table, (col, widen) in _HYPERTABLES.items():
            is_hyper = cur.execute(
                "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = %s", (table,)
            ).fetchone()
            if not is_hyper:
                cur.execute(widen)
                cur.execute("SELECT create_hypertable(%s, %s, migrate_data => TRUE)", (table, col))
        self.timescale = True
        self._hyper = None  # asked again on the next insert
        log.info("timescaledb is available on %s: events and evaluations are hypertables", self._where)

    def set_compression(self, conn, compress_after: timedelta | None) -> None:
        """On timescaledb: compress event chunks older than ``compress_after`` (segmented by model
        version, ordered by time), or remove the policy when None. Deletion is not a timescaledb
        retention policy: that drops whole chunks, the reference's among them, so the daemon
        deletes old rows itself (monitor/housekeeping.py). Nothing to do on plain PostgreSQL."""
        if not self.timescale:
            return
        cur = conn.cursor()
        if compress_after is None:
            cur.execute("SELECT remove_compression_policy('events', if_exists => TRUE)")
            return
        cur.execute(
            "ALTER TABLE events SET (timescaledb.compress,"
            " timescaledb.compress_segmentby = 'model_name, model_version',"
            " timescaledb.compress_orderby = 'ts')"
        )
        cur.execute("SELECT remove_compression_policy('events', if_exists => TRUE)")
        cur.execute("SELECT add_compression_policy('events', compress_after => %s)", (compress_after,))
        log.info("timescaledb compresses events older than %s on %s", compress_after, self._where)


class PostgresStore(SqlStore):
    """The store on PostgreSQL (TimescaleDB where the extension is available)."""

    def __init__(self, url: str, connect_timeout_s: float = 10) -> None:
        super().__init__(PostgresDialect(url, connect_timeout_s))

    @property
    def timescale(self) -> bool:
        return self.dialect.timescale


class _JsonText(str):
    """Marks nothing: the class the JSON-text dumpers are registered under (COPY picks a dumper by
    column type, and the store's JSON values are already serialised text)."""


class _JsonTextDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: str) -> bytes:
        return obj.encode()


class _JsonbTextDumper(Dumper):
    format = Format.BINARY

    def dump(self, obj: str) -> bytes:
        return b"\x01" + obj.encode()  # jsonb's binary format: a version byte, then the text


def _json_text_dumpers(conn) -> None:
    """COPY into json/jsonb columns takes the store's serialised JSON as it is (psycopg's own
    dumpers would serialise the text again, as a JSON string)."""
    for name, dumper in (("json", _JsonTextDumper), ("jsonb", _JsonbTextDumper)):
        cls = type(dumper.__name__, (dumper,), {"oid": conn.adapters.types[name].oid})
        conn.adapters.register_dumper(_JsonText, cls)


def _fast_json(conn) -> None:
    """jsonb comes back through pydantic-core's parser (several times faster than the json
    module on the million-row windows an evaluation reads)."""
    from psycopg.types.json import set_json_loads

    set_json_loads(from_json, conn)
