"""PostgresStore: PostgreSQL through psycopg 3; TimescaleDB hypertables where the extension exists."""
from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any, Sequence

import numpy as np
import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format
from pydantic_core import to_json

from connectors.sqlstore import SqlStore, Window

log = logging.getLogger("modalwatch.store")

# Tables that become hypertables where timescaledb is available, with their time column.
# A hypertable's unique keys must hold the time column, so their keys are widened first.
_HYPERTABLES = {
    "events": ("ts", "ALTER TABLE events DROP CONSTRAINT events_pkey, ADD PRIMARY KEY (event_id, ts)"),
    "evaluations": ("window_start", "ALTER TABLE evaluations DROP CONSTRAINT evaluations_pkey,"
                    " ADD PRIMARY KEY (id, window_start)"),
}


# A window is read in chunks of event time (6 h: fewer scans of labels than hourly, measured),
# each aggregated by the server into a few rows per (slice, signal layout, predicted label,
# abstained): the chunk's packed signals and confidences concatenated, its labels as an array.
# The chunk bounds the server's memory for the aggregation (and keeps each value far below
# PostgreSQL's 1 GB limit).
WINDOW_CHUNK = timedelta(hours=6)
_WINDOW_GROUPS = (
    "SELECT e.slice::text, e.signal_layout, e.pred_label, e.abstained, count(*),"
    " string_agg(e.signal_values, ''::bytea), string_agg(float8send(e.confidence), ''::bytea), array_agg(l.label)"
    " FROM events e LEFT JOIN labels l ON l.event_id = e.event_id AND l.ts < %s"
    " WHERE e.model_name = %s AND e.model_version = %s AND e.ts >= %s AND e.ts < %s AND e.signal_values IS NOT NULL"
    " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
)


class PostgresStore(SqlStore):
    dialect = "postgres"
    transient_errors = (psycopg.OperationalError, psycopg.InterfaceError)

    def __init__(self, url: str, connect_timeout_s: float = 10) -> None:
        super().__init__()
        self._url = url
        self._connect_timeout_s = connect_timeout_s
        self.conn = psycopg.connect(url, autocommit=False, connect_timeout=int(connect_timeout_s))
        _fast_json(self.conn)
        _json_text_dumpers(self.conn)
        info = self.conn.info
        self._where = f"postgresql://{info.host}:{info.port}/{info.dbname}"  # never the password
        self.timescale = False
        self._stages: set[str] = set()  # temp staging tables made on this connection
        self._types: dict[str, list[str]] = {}  # per table: the COPY types of its columns

    def sibling(self) -> "PostgresStore":
        other = PostgresStore(self._url, self._connect_timeout_s)
        other.timescale = self.timescale
        return other

    def describe(self) -> str:
        return self._where

    def reconnect(self) -> None:
        super().reconnect()
        try:
            self.conn.close()
        except psycopg.Error:
            pass
        self.conn = psycopg.connect(self._url, autocommit=False, connect_timeout=int(self._connect_timeout_s))
        _fast_json(self.conn)
        _json_text_dumpers(self.conn)
        self._stages.clear()  # temp tables died with the old session

    def _begin(self) -> None:
        pass  # psycopg opens the transaction on the first statement

    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _in(self, col: str, ids: list[str]) -> tuple[str, list]:
        ids = list(ids)
        if ids and type(ids[0]) is str:
            # text ids as one JSON array, serialised in Rust: psycopg dumps a list element by element
            # in Python (~0.5 µs an id; 2,000 ids a batch for the labels that came before their events)
            return f"{col} = ANY(ARRAY(SELECT jsonb_array_elements_text(%s::jsonb)))", [to_json(ids).decode()]
        return f"{col} = ANY(%b)", [ids]

    def _chunks(self, ids, size: int = 50_000):
        return super()._chunks(ids, size)

    def _json_text(self, col: str) -> str:
        return f"{col}::text"

    def load_window(self, model_name: str, model_version: str, start: datetime, end: datetime,
                    labels_before: datetime) -> Window:
        groups = []
        with self.tx():
            cur = self.conn.cursor(binary=True)
            # one big scan: compiling its expressions (JIT) costs more than it saves, and the labels'
            # hash table should not spill to disk
            cur.execute("SET LOCAL jit = off")
            cur.execute("SET LOCAL work_mem = '64MB'")
            t = start
            while t < end:
                t_next = min(end, t + WINDOW_CHUNK)
                cur.execute(_WINDOW_GROUPS, (labels_before, model_name, model_version, t, t_next))
                groups += cur.fetchall()
                t = t_next
            counts = [g[4] for g in groups]
            n = sum(counts)
            # rows stored before packing (an index holds only those): one row each, after the groups
            slice_text, pred, conf, abstained, label, blocks, legacy = self._row_parts(self._window_rows(
                model_name, model_version, start, end, labels_before, legacy_only=True), offset=n)
        at = np.concatenate(([0], np.cumsum(counts))).astype(int)
        blocks += [(slice(at[i], at[i + 1]), g[1], g[5]) for i, g in enumerate(groups)]
        return self._window(
            np.concatenate([np.repeat(np.array([g[0] for g in groups], dtype=object), counts),
                            np.array(slice_text, dtype=object)]),
            np.concatenate([np.repeat(np.array([g[2] for g in groups], dtype=object), counts),
                            np.array(pred, dtype=object)]),
            np.concatenate([np.frombuffer(b"".join(g[6] for g in groups), dtype=">f8").astype(float),
                            np.array(conf, dtype=float)]),
            np.concatenate([np.repeat(np.array([g[3] for g in groups], dtype=bool), counts),
                            np.array(abstained, dtype=bool)]),
            [x for g in groups for x in g[7]] + label, blocks, legacy)

    def _for_update(self) -> str:
        return " FOR UPDATE"

    def lock_notifications(self) -> None:
        self.conn.cursor().execute("SELECT pg_advisory_xact_lock(727275)")

    def lock_shared_state(self) -> None:
        self.conn.cursor().execute("SELECT pg_advisory_xact_lock(727276)")

    def _lock_migrations(self) -> None:
        # Several replicas may start at once: one applies, the others wait and find nothing to do.
        self.conn.cursor().execute("SELECT pg_advisory_xact_lock(727274)")

    def _after_migrate(self) -> None:
        cur = self.conn.cursor()
        available = cur.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
        if not available:
            log.info("timescaledb is not available on %s: plain tables with time indexes", self._where)
            return
        cur.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        for table, (col, widen) in _HYPERTABLES.items():
            is_hyper = cur.execute(
                "SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = %s", (table,)
            ).fetchone()
            if not is_hyper:
                cur.execute(widen)
                cur.execute("SELECT create_hypertable(%s, %s, migrate_data => TRUE)", (table, col))
        self.timescale = True
        log.info("timescaledb is available on %s: events and evaluations are hypertables", self._where)

    def set_compression(self, compress_after: timedelta | None) -> None:
        """On timescaledb: compress event chunks older than ``compress_after`` (segmented by model
        version, ordered by time), or remove the policy when None. Deletion is not a timescaledb
        retention policy: that drops whole chunks, the reference's among them, so the daemon
        deletes old rows itself (monitor/housekeeping.py). Nothing to do on plain PostgreSQL."""
        if not self.timescale:
            return
        with self.tx():
            cur = self.conn.cursor()
            if compress_after is None:
                cur.execute("SELECT remove_compression_policy('events', if_exists => TRUE)")
                return
            cur.execute("ALTER TABLE events SET (timescaledb.compress,"
                        " timescaledb.compress_segmentby = 'model_name, model_version',"
                        " timescaledb.compress_orderby = 'ts')")
            cur.execute("SELECT remove_compression_policy('events', if_exists => TRUE)")
            cur.execute("SELECT add_compression_policy('events', compress_after => %s)", (compress_after,))
        log.info("timescaledb compresses events older than %s on %s", compress_after, self._where)

    def _ts_out(self, v: Any) -> datetime | None:
        return v

    def _insert_new(self, table: str, cols: Sequence[str], key: str, rows: list[tuple]) -> set[str]:
        """Insert the rows whose key is not stored yet; return their keys. The batch is copied
        straight into ``table`` (binary COPY: the least work for the server, and new events are
        the rule); if one of its keys is stored already (a replay, another writer), the COPY is
        undone to a savepoint and the rows go through a staging table and ``ON CONFLICT DO
        NOTHING`` instead."""
        if not rows:
            return set()
        k = cols.index(key)
        seen: set = set()
        rows = [r for r in rows if not (r[k] in seen or seen.add(r[k]))]  # first of a key in a batch wins
        with self.tx():
            cur = self.conn.cursor()
            cur.execute("SAVEPOINT modalwatch_copy")
            try:
                self._copy(cur, table, cols, rows, self._copy_types(table, cols))
            except psycopg.errors.UniqueViolation:
                cur.execute("ROLLBACK TO SAVEPOINT modalwatch_copy")
                return self._insert_staged(cur, table, cols, key, rows)
            cur.execute("RELEASE SAVEPOINT modalwatch_copy")
            return {r[k] for r in rows}

    def _copy_types(self, table: str, cols: Sequence[str]) -> list[str]:
        """The types of ``cols`` of ``table``, as COPY wants them (asked once per connection)."""
        if table not in self._types:
            udt = dict(self.conn.execute(
                "SELECT column_name, udt_name FROM information_schema.columns WHERE table_name = %s"
                " AND table_schema = current_schema()", (table,)).fetchall())
            self._types[table] = [udt[c] for c in cols]
        return self._types[table]

    @staticmethod
    def _copy(cur, table: str, cols: Sequence[str], rows: list[tuple], types: list[str]) -> None:
        with cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(types)  # json columns: the store's JSON text, dumped by _JsonText*Dumper
            for r in rows:
                copy.write_row(r)

    def _insert_staged(self, cur, table: str, cols: Sequence[str], key: str, rows: list[tuple]) -> set[str]:
        """The rows through a temp table and ``INSERT … ON CONFLICT DO NOTHING``: right whatever
        other writers store meanwhile."""
        stage = f"_stage_{table}"
        if stage not in self._stages:
            cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table}) ON COMMIT DELETE ROWS")
            self._stages.add(stage)
        else:
            cur.execute(f"DELETE FROM {stage}")  # ON COMMIT DELETE ROWS empties it between transactions
        self._copy(cur, stage, cols, rows, self._copy_types(table, cols))
        collist = ", ".join(cols)
        cur.execute(f"INSERT INTO {table} ({collist}) SELECT {collist} FROM {stage} ON CONFLICT DO NOTHING"
                    f" RETURNING {key}")
        return {r[0] for r in cur.fetchall()}


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
    from pydantic_core import from_json

    set_json_loads(from_json, conn)
