"""SqliteStore: the embedded default. One file, WAL mode, one writer."""
from __future__ import annotations

import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from connectors.sqlstore import SqlStore


class SqliteStore(SqlStore):
    dialect = "sqlite"
    transient_errors = (sqlite3.OperationalError,)  # e.g. "database is locked"

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._connect()

    def _connect(self) -> None:
        self.conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA synchronous=NORMAL")
        self.conn.execute("PRAGMA foreign_keys=ON")

    def sibling(self) -> "SqliteStore":
        if self.path == ":memory:":
            raise ValueError("an in-memory SQLite store has no second connection; use a file")
        return SqliteStore(self.path)

    def reconnect(self) -> None:
        super().reconnect()
        self.close()
        self._connect()

    def describe(self) -> str:
        return f"sqlite:{self.path}"

    def _begin(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")

    def _ts(self, dt: datetime | None) -> Any:
        if dt is None:
            return None
        return dt.astimezone(timezone.utc).isoformat(timespec="microseconds")

    def _ts_out(self, v: Any) -> datetime | None:
        return None if v is None else datetime.fromisoformat(v)

    def _insert_new(self, table: str, cols: Sequence[str], key: str, rows: list[tuple]) -> set[str]:
        if not rows:
            return set()
        k = cols.index(key)
        with self.tx():
            existing = set()
            for chunk in self._chunks([r[k] for r in rows]):
                cond, params = self._in(key, chunk)
                existing.update(r[0] for r in self._all(f"SELECT {key} FROM {table} WHERE {cond}", params))
            fresh, new = [], set()
            for r in rows:
                if r[k] not in existing and r[k] not in new:
                    new.add(r[k])
                    fresh.append(r)
            self._many(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) ON CONFLICT DO NOTHING",
                fresh,
            )
        return new
