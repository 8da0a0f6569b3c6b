"""What the command modules share: argument types, the store a command opens (and always
closes), the clock, JSON output."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Iterator


def date_arg(s: str) -> datetime:
    """YYYY-MM-DD or an ISO-8601 time; without a zone, UTC."""
    from monitor.core.settings import parse_time

    try:
        return parse_time(s, naive_is_utc=True)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def duration_arg(s: str):
    from monitor.core.settings import parse_duration

    try:
        return parse_duration(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class TerminalSafe:
    """A terminal's stdout through which no producer string steers the terminal: what a command
    prints (a dead letter's reason, a slice value, an incident's headline) has its escape
    sequences and other controls written visibly; lines stay lines. Pipes get the text as it is."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        from monitor.core.text import printable_lines

        return self._stream.write(printable_lines(text))

    def __getattr__(self, name):
        return getattr(self._stream, name)


def now() -> datetime:
    return datetime.now(timezone.utc)


@contextmanager
def opened_store(cfg, migrate: bool = True, wait: bool = False) -> Iterator:
    """The config's store, migrated, closed when the command ends — however it ends. With
    ``wait`` (the daemon), a database that refuses connections at start is tried again with
    backoff for up to ``store.startup_wait`` (a container's database may still be initialising)."""
    from connectors.stores import open_store

    store = (
        _with_backoff(lambda: open_store(cfg.store), cfg.store.startup_wait)
        if wait
        else open_store(cfg.store)
    )
    try:
        if migrate:
            store.migrate()
        yield store
    finally:
        store.close()


@contextmanager
def opened_pipeline(cfg, store) -> Iterator:
    """A pipeline on ``store`` (the wall clock), closed when the command is done with it."""
    from monitor.pipeline import Pipeline
    from monitor.runtime import check_devices

    check_devices(cfg)
    pipeline = Pipeline(cfg, store, now)
    try:
        yield pipeline
    finally:
        pipeline.close()


def _with_backoff(connect, patience):
    """``connect()``, again after each failure to reach the database, with doubling waits, until
    ``patience`` is spent (then the last error is raised)."""
    import logging
    import time

    log = logging.getLogger("modalwatch.cli")
    deadline = time.monotonic() + patience.total_seconds()
    delay = 0.5
    while True:
        try:
            return connect()
        except Exception as e:  # noqa: BLE001 - only a database's own errors are retried
            if (
                type(e).__module__.split(".")[0] not in ("psycopg", "sqlite3")
                or time.monotonic() + delay > deadline
            ):
                raise
            log.warning("the store is not reachable yet (%s); trying again in %.1fs", type(e).__name__, delay)
            time.sleep(delay)
            delay = min(10.0, delay * 2)


def progress(done: int, total: int) -> None:
    if sys.stderr.isatty() or done == total:
        width = 30
        fill = int(width * done / max(total, 1))
        sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} windows")
        if done == total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def json_num(x):
    """A number for JSON: None for NaN (JSON has no NaN)."""
    return None if x is None or x != x else float(x)
