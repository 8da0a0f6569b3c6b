"""Open the store a config names."""

from __future__ import annotations

from connectors.sql.store import SqlStore


def open_store(cfg) -> SqlStore:
    """The store of ``cfg`` (a ``StoreConfig``), not yet migrated."""
    if cfg.kind == "postgres":
        from connectors.postgres import PostgresStore

        return PostgresStore(cfg.url.get_secret_value())
    from connectors.sqlite import SqliteStore

    return SqliteStore(cfg.path)
