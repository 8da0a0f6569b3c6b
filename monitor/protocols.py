"""The small interfaces the shell wires: sources and senders. Stores are ``connectors.sqlstore.SqlStore``."""
from __future__ import annotations

from typing import Protocol

from monitor.pipeline import Outcome, RawMessage


class Source(Protocol):
    name: str
    exhausted: bool  # True once a finite source (a file, stdin) has nothing more to give

    def poll(self, max_records: int, timeout_s: float = 0.0) -> list[RawMessage]: ...

    def commit(self, outcomes: list[Outcome]) -> None:
        """Called after the store committed every message of the last poll."""

    def close(self) -> None: ...


class Sender(Protocol):
    name: str

    def send(self, payload: dict, delivery_id: str) -> None:
        """Deliver or raise ``alerts.webhook.DeliveryError``."""
