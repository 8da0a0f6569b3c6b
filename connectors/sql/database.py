"""One connection to a database, its dialect, and the transactions the repositories share."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

from connectors.sql.dialect import Dialect


class Database:
    """A connection and its transactions. Every repository call runs in the current transaction
    when made inside ``with db.tx():`` (or the store's ``tx()``), else in a transaction of its own.
    One connection is never shared between threads: ``sibling()`` opens another."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.transient_errors = dialect.transient_errors
        self._depth = 0
        self.conn: Any = dialect.connect()

    # -- transactions --------------------------------------------------------------------------
    @contextmanager
    def tx(self) -> Iterator["Database"]:
        if self._depth == 0:
            self.dialect.begin(self.conn)
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

    def execute(self, sql: str, params: Sequence = ()) -> Any:
        with self.tx():
            cur = self.conn.cursor()
            cur.execute(self.dialect.q(sql), params)
            return cur

    def many(self, sql: str, rows: Iterable[Sequence]) -> None:
        rows = list(rows)
        if rows:
            with self.tx():
                self.conn.cursor().executemany(self.dialect.q(sql), rows)

    def all(self, sql: str, params: Sequence = ()) -> list[tuple]:
        return list(self.execute(sql, params).fetchall())

    def one(self, sql: str, params: Sequence = ()) -> Any:
        """The first column of the first row."""
        return self.all(sql, params)[0][0]

    def chunks(self, ids: Iterable) -> Iterator[list]:
        ids = list(ids)
        size = self.dialect.chunk_size
        for i in range(0, len(ids), size):
            yield ids[i : i + size]

    def where_in(self, col: str, ids: Iterable) -> Iterator[tuple[str, list]]:
        """``(condition, params)`` of ``col IN ids``, a chunk at a time."""
        for chunk in self.chunks(ids):
            yield self.dialect.in_list(col, chunk)

    # -- the connection ------------------------------------------------------------------------
    def reconnect(self) -> None:
        """Drop the connection and open a new one (after the database went away)."""
        self._depth = 0
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001 - it is being replaced because it failed
            pass
        self.conn = self.dialect.connect()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def describe(self) -> str:
        return self.dialect.describe()
