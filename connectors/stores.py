"""Open the store a config names."""
from __future__ import annotations

from connectors.sqlstore import SqlStore


def open_store(cfg) -> SqlStore:
    """A migrated store for ``cfg`` (a ``StoreConfig``)."""
    if cfg.kind == "postgres":
        from connectors.postgres import PostgresStore

        store: SqlStore = PostgresStore(cfg.url.get_secret_value())
    else:
        from connectors.sqlite import SqliteStore

        store = SqliteStore(cfg.path)
    return store
