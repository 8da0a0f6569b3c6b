"""What differs between SQL databases, as one object per connection.

The repositories write their SQL once, with ``?`` placeholders, and ask the dialect for what
differs: placeholders, time and JSON adapters, id lists, the bulk insert of new rows, the
fragments of the window aggregation — and the locks. The locks are abstract on purpose: a
backend that does not say how it serialises notification passes, shared detector state and
migrations cannot be constructed (one that silently did nothing would lose updates the day two
writers met).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from datetime import datetime, timedelta
from typing import Any, Sequence

from pydantic_core import from_json, to_json


def json_text(v: Any) -> str:
    """JSON text of ``v`` (pydantic-core's serializer: ~8x the json module on the hot path)."""
    return to_json(v).decode()


class Dialect(ABC):
    """One connection's way of speaking to its database."""

    name: str  # the migrations folder: "sqlite" or "postgres"
    # errors after which the same work may succeed once the database is back
    transient_errors: tuple[type[BaseException], ...] = ()
    chunk_size = 500  # ids per IN list

    # -- connection ----------------------------------------------------------------------------
    @abstractmethod
    def connect(self) -> Any:
        """A new DB-API connection, not in autocommit (transactions are ``Database.tx``'s)."""

    @abstractmethod
    def begin(self, conn: Any) -> None:
        """Start a transaction (PostgreSQL opens one on the first statement)."""

    @abstractmethod
    def sibling(self) -> "Dialect":
        """The same database for another connection (another thread)."""

    @abstractmethod
    def describe(self) -> str:
        """Where this is, for logs: never a password."""

    # -- locks: what two writers (workers, replicas) must not do at once --------------------------
    @abstractmethod
    def lock_migrations(self, conn: Any) -> None:
        """Within a transaction: one replica applies migrations while the others wait."""

    @abstractmethod
    def lock_notifications(self, conn: Any) -> None:
        """Within a transaction: one notification pass (and one alert-state move) at a time."""

    @abstractmethod
    def lock_shared_state(self, conn: Any) -> None:
        """Within a transaction: hold what writers read, update and write back (online detector
        states, the day's review counts per stratum) until it ends."""

    @property
    @abstractmethod
    def row_lock(self) -> str:
        """The clause that locks the rows a SELECT reads until the transaction ends."""

    # -- values --------------------------------------------------------------------------------
    def q(self, sql: str) -> str:
        """The statement with this driver's placeholders."""
        return sql

    def ts(self, dt: datetime | None) -> Any:
        return dt

    def ts_out(self, v: Any) -> datetime | None:
        return v

    def js(self, v: Any) -> Any:
        return None if v is None else json_text(v)

    def js_out(self, v: Any) -> Any:
        return from_json(v) if isinstance(v, (str, bytes)) else v  # pydantic-core: ~5x the json module

    def json_as_text(self, col: str) -> str:
        """A JSON column read as its text (parsed by the caller, once per distinct value)."""
        return col

    @abstractmethod
    def json_field(self, col: str, key: str) -> str:
        """The text of ``key`` in the JSON object of ``col``."""

    def in_list(self, col: str, ids: list) -> tuple[str, list]:
        """``col IN (...)`` for one chunk of ids."""
        return f"{col} IN ({','.join('?' * len(ids))})", list(ids)

    # -- writes --------------------------------------------------------------------------------
    @abstractmethod
    def insert_new(self, conn: Any, table: str, cols: Sequence[str], key: str, rows: list[tuple]) -> set:
        """Insert the rows whose ``key`` is not stored yet (the first of a key in ``rows`` wins);
        return their keys. Right whatever other writers store meanwhile."""

    def add_rows(
        self, conn: Any, table: str, key: Sequence[str], added: Sequence[str], rows: list[tuple]
    ) -> None:
        """Insert ``rows`` (``key`` then ``added`` columns; one per key, in key order), adding the
        ``added`` columns to those of a stored row with the same key."""
        cols = [*key, *added]
        conn.cursor().executemany(
            self.q(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                f" ON CONFLICT ({', '.join(key)}) DO UPDATE SET "
                + ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in added)
            ),
            rows,
        )

    # -- the window aggregation ----------------------------------------------------------------
    # A window is read as a few rows per (slice, signal layout, predicted label, abstained), the
    # aggregates of one group fed the same rows in the same order: the packed signals and the
    # confidences (big-endian float64) concatenated, the labels as a list.
    @abstractmethod
    def concat_bytes(self, expr: str) -> str:
        """An aggregate concatenating ``expr``'s bytes."""

    @abstractmethod
    def seconds_between(self, later: str, earlier: str) -> str:
        """SQL of ``later - earlier`` (two timestamp columns) in seconds."""

    @abstractmethod
    def float_bytes(self, expr: str) -> str:
        """``expr`` (a float) as 8 big-endian bytes."""

    @abstractmethod
    def list_agg(self, expr: str) -> str:
        """An aggregate of ``expr``'s values (NULL included), read back by ``list_out``."""

    def list_out(self, v: Any) -> list:
        return list(v)

    def read_cursor(self, conn: Any) -> Any:
        """A cursor for the window aggregation."""
        return conn.cursor()

    def prepare_window_read(self, cur: Any) -> None:
        """Settings for one big scan, inside its transaction."""

    # -- schema --------------------------------------------------------------------------------
    def after_migrate(self, conn: Any) -> None:
        """Database-specific set-up once the migrations ran (TimescaleDB hypertables)."""

    def set_compression(self, conn: Any, compress_after: timedelta | None) -> None:
        """Compress old event rows where the database can (TimescaleDB)."""
