"""SQLite: the embedded default. One file, WAL mode, one writer at a time."""

from __future__ import annotations

import sqlite3
import struct
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from connectors.sql.dialect import Dialect
from connectors.sql.store import SqlStore

_F8 = struct.Struct(">d")


class _ConcatBytes:
    """``mw_concat(x)``: the bytes of a group's values, concatenated in the order SQLite feeds them."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def step(self, value: bytes | None) -> None:
        if value is not None:
            self.parts.append(value)

    def finalize(self) -> bytes:
        return b"".join(self.parts)


class SqliteDialect(Dialect):
    name = "sqlite"
    transient_errors = (sqlite3.OperationalError,)  # e.g. "database is locked"

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        # what PostgreSQL has built in for the window aggregation
        conn.create_aggregate("mw_concat", 1, _ConcatBytes)
        conn.create_function("mw_f8", 1, lambda x: None if x is None else _F8.pack(x), deterministic=True)
        return conn

    def begin(self, conn) -> None:
        conn.execute("BEGIN IMMEDIATE")

    def sibling(self) -> "SqliteDialect":
        if self.path == ":memory:":
            raise ValueError("an in-memory SQLite store has no second connection; use a file")
        return SqliteDialect(self.path)

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    # SQLite has one writer at a time: BEGIN IMMEDIATE takes the database's write lock for the
    # whole transaction, so every writer's transaction is already serialised and these locks
    # have nothing more to take.
    def lock_migrations(self, conn) -> None:
        pass

    def lock_notifications(self, conn) -> None:
        pass

    def lock_shared_state(self, conn) -> None:
        pass

    @property
    def row_lock(self) -> str:
        return ""  # the write lock of BEGIN IMMEDIATE holds every row

    def ts(self, dt: datetime | None) -> Any:
        # ISO-8601 UTC with microseconds: sortable as text
        return None if dt is None else dt.astimezone(timezone.utc).isoformat(timespec="microseconds")

    def ts_out(self, v: Any) -> datetime | None:
        return None if v is None else datetime.fromisoformat(v)

    def json_field(self, col: str, key: str) -> str:
        return f"json_extract({col}, '$.{key}')"

    def insert_new(self, conn, table: str, cols: Sequence[str], key: str, rows: list[tuple]) -> set:
        if not rows:
            return set()
        k = cols.index(key)
        cur = conn.cursor()
        existing: set = set()
        keys = [r[k] for r in rows]
        for i in range(0, len(keys), self.chunk_size):
            chunk = keys[i : i + self.chunk_size]
            cond, params = self.in_list(key, chunk)
            existing.update(r[0] for r in cur.execute(f"SELECT {key} FROM {table} WHERE {cond}", params))
        fresh, new = [], set()
        for r in rows:
            if r[k] not in existing and r[k] not in new:
                new.add(r[k])
                fresh.append(r)
        if fresh:
            cur.executemany(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                " ON CONFLICT DO NOTHING",
                fresh,
            )
        return new

    def concat_bytes(self, expr: str) -> str:
        return f"mw_concat({expr})"

    def seconds_between(self, later: str, earlier: str) -> str:
        return f"((julianday({later}) - julianday({earlier})) * 86400.0)"

    def float_bytes(self, expr: str) -> str:
        return f"mw_f8({expr})"

    def list_agg(self, expr: str) -> str:
        return f"json_group_array({expr})"

    def list_out(self, v: Any) -> list:
        return self.js_out(v)


class SqliteStore(SqlStore):
    """The store on a SQLite file (``:memory:`` for a throwaway one with no second connection)."""

    def __init__(self, path: str | Path) -> None:
        super().__init__(SqliteDialect(path))
        self.path = self.dialect.path
