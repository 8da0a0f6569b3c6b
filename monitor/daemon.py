"""The daemon: ``startup()`` → ``main_loop()`` → ``shutdown()``.

The main loop owns the store: it polls the sources, runs the pipeline on each batch, commits the
store and then the sources (at least once), and on each tick evaluates the windows the event-time
watermark has closed and delivers the outbox. apscheduler's background scheduler only raises the
tick flag; signal handlers only set ``should_exit``.
"""
from __future__ import annotations

import gc
import logging
import signal
import threading
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Callable

from apscheduler.schedulers.background import BackgroundScheduler

from alerts.webhook import deliver_due
from monitor.evaluation import Evaluator
from monitor.pipeline import Pipeline

if TYPE_CHECKING:
    from connectors.sqlstore import SqlStore
    from monitor.protocols import Sender, Source

log = logging.getLogger("modalwatch.daemon")


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def tune_gc() -> None:
    """Fewer cyclic-GC passes: a batch of events is thousands of short-lived objects, and CPython's
    default gen-0 threshold (700) made decoding 2-3x slower (measured in bench/ingest.py). The
    objects of start-up (modules, config) are frozen out of collection."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


class Daemon:
    def __init__(self, config, sources: list[Source], store: SqlStore, senders: dict[str, Sender],
                 clock: Callable[[], datetime] = utcnow,
                 owner: str | None = None, stop_when_idle: bool = False, evaluate: bool = True):
        self.config = config
        self.sources = sources
        self.store = store
        self.senders = senders
        self.clock = clock
        self.stop_when_idle = stop_when_idle
        self.evaluate = evaluate
        self.pipeline = Pipeline(config, store, clock)
        self.evaluator = Evaluator(config, store, clock, owner)
        self.should_exit = False
        self.force_exit = False
        self._tick = threading.Event()
        self._scheduler: BackgroundScheduler | None = None
        self.stats = {"messages": 0, "stored": 0, "partial": 0, "duplicate": 0, "dead_letter": 0, "evaluated": 0,
                      "evaluation_backlog": 0, "delivered": 0}

    # -- signals -------------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        def handle(signum, frame):
            if self.should_exit:  # a second signal: stop now; what is not committed is re-read
                self.force_exit = True
                raise SystemExit(128 + signum)
            self.should_exit = True

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    # -- lifecycle -----------------------------------------------------------------------------
    def run(self) -> None:
        self.startup()
        try:
            self.main_loop()
        finally:
            self.shutdown()

    def startup(self) -> None:
        tune_gc()
        applied = self.store.migrate()
        log.info("store %s ready (%d migrations applied)", self.store.describe(), len(applied))
        for s in self.sources:
            start = getattr(s, "start", None)
            if start:
                start()
        self._scheduler = BackgroundScheduler(timezone=timezone.utc)
        self._scheduler.add_job(self._tick.set, "interval", seconds=self.config.evaluation.tick_s,
                                id="modalwatch-tick", max_instances=1, coalesce=True)
        self._scheduler.start()
        self._tick.set()  # catch up on start-up

    def main_loop(self) -> None:
        max_records = self.config.store.batch_size
        while not self.should_exit:
            busy = False
            for src in self.sources:
                msgs = src.poll(max_records, timeout_s=0.05 if not busy else 0.0)
                if msgs:
                    busy = True
                    self.ingest(src, msgs)
                if self.should_exit:
                    break
            if self.should_exit:
                break
            idle = self.stop_when_idle and not busy and all(s.exhausted for s in self.sources)
            if self._tick.is_set() or idle:
                self._tick.clear()
                self.tick()
            if idle:
                self.drain_outbox()
                return

    def ingest(self, src, msgs) -> None:
        delay = 0.5
        while True:
            try:
                outcomes = self.pipeline.process(msgs)  # commits the store
                break
            except self.store.transient_errors as e:
                # The database went away: keep the batch, reconnect with backoff, never crash.
                # The source is not committed, so a stop here loses nothing (at least once).
                log.warning("store %s failed (%s: %s); retrying the batch in %.1fs", self.store.describe(),
                            type(e).__name__, str(e).splitlines()[0] if str(e) else "", delay)
                if self.should_exit:
                    return
                time.sleep(delay)
                delay = min(60.0, delay * 2)
                self._reconnect()
        src.commit(outcomes)  # then the source: at least once, never lost
        self.stats["messages"] += len(msgs)
        for o in outcomes:
            self.stats[o.status] += 1
            if o.status == "stored" and o.reason:
                self.stats["partial"] += 1  # stored without a modality whose media failed

    def _reconnect(self) -> None:
        try:
            self.store.reconnect()
        except self.store.transient_errors as e:
            log.warning("reconnecting to %s failed: %s", self.store.describe(), type(e).__name__)

    def tick(self) -> None:
        """Evaluate due windows and deliver the outbox. A failure here never stops ingest: the
        window's claim expires and a later tick (or another replica) evaluates it again."""
        try:
            self._tick_once()
        except self.store.transient_errors as e:
            log.warning("evaluation tick failed on %s (%s); next tick retries", self.store.describe(),
                        type(e).__name__)
            self._reconnect()
        except Exception:  # noqa: BLE001 - a bug in one evaluation must not take ingest down
            # (the store's transaction was rolled back on the way out of ``tx()``)
            log.exception("evaluation tick failed; ingest goes on, the window is retried after its claim expires")

    def _tick_once(self) -> None:
        if self.evaluate:
            self.stats["evaluated"] += self.evaluator.run_due(self.store.watermark(), progress=self._catch_up)
            self.stats["evaluation_backlog"] = 0
        self.stats["delivered"] += deliver_due(self.store, self.senders, self.clock(),
                                               self.config.alerts.retry_initial_s, self.config.alerts.retry_max_s)

    def _catch_up(self, done: int, total: int) -> None:
        """The backlog gauge (``GET /v1/status`` answers from another thread meanwhile) and, after
        downtime, a progress line every tenth of the vintages to catch up."""
        self.stats["evaluation_backlog"] = total - done
        step = max(1, total // 10)
        if total > 1 and (done % step == 0 or done == total):
            log.info("evaluation catch-up: %d/%d vintages", done, total)

    def drain_outbox(self, timeout_s: float = 30.0) -> None:
        """Deliver what is pending before a finite run ends (retries with backoff, up to a deadline)."""
        deadline = time.monotonic() + timeout_s
        while self.store.outbox_pending() and time.monotonic() < deadline and not self.should_exit:
            self.stats["delivered"] += deliver_due(self.store, self.senders, self.clock(),
                                                   self.config.alerts.retry_initial_s, self.config.alerts.retry_max_s)
            time.sleep(0.05)

    def shutdown(self) -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
        for s in self.sources:
            try:
                s.close()
            except Exception:  # noqa: BLE001 - closing must not hide the reason we stopped
                log.exception("closing source %s failed", getattr(s, "name", s))
        self.pipeline.close()
        log.info("stopped: %s", self.stats)
