"""The daemon: ``startup()`` → ``main_loop()`` → ``shutdown()``.

The main loop polls the sources and hands each batch to be stored — on the ingest connection
in this process, or to one of ``ingest.workers`` pipeline processes (monitor/workers.py) — and
commits a batch's source once the store has committed it and every batch polled before it (at
least once, in poll order). Evaluation never runs on that thread:
apscheduler's background scheduler runs the evaluation job (``EVALUATION_JOB``: evaluate the
windows the event-time watermark has closed, then deliver the outbox) in its own worker thread
on a second connection, so a long catch-up never stalls ingest (nor a Kafka consumer's poll
loop). The job lives in the modalwatch database (connectors/jobstore.py), one per replica
(``MODALWATCH_REPLICA``, else this host and process): a replica restarted under the same name
resumes its schedule — a run missed while it was down runs once at start-up. Which replica
evaluates a window is decided by its claim row. Signal
handlers only set ``should_exit``; an evaluation in progress stops after the vintage it is on.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import threading
import time
from collections import deque
from datetime import datetime, timezone
from typing import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler

from alerts.outbox import deliver_due
from connectors.jobstore import SqlJobStore, forget_gone_schedules
from monitor.core.messages import Outcome, RawMessage
from monitor.core.ports import Sender, Source, Store
from monitor.evaluation import Evaluator, dead_process_of_this_host, owner_id
from monitor.housekeeping import purge
from monitor.metrics import DaemonMetrics
from monitor.notify import run_notifications
from monitor.periodic import write_due_reports
from monitor.pipeline import Pipeline
from monitor.runtime import MemoryRelease, start_process, utcnow
from monitor.workers import InProcess, Workers, reconnect, store_with_retry

log = logging.getLogger("modalwatch.daemon")

EVALUATION_JOB = "modalwatch-evaluation"


def evaluation_job() -> None:
    """What the stored evaluation job names; a daemon's job store binds it to that daemon's tick."""
    log.warning("evaluation job run without a daemon bound to it; nothing done")


class _Stopping(Exception):
    """Raised between vintages when the daemon is asked to stop."""


class Daemon:
    def __init__(
        self,
        config,
        sources: list[Source],
        store: Store,
        senders: dict[str, Sender],
        clock: Callable[[], datetime] = utcnow,
        owner: str | None = None,
        stop_when_idle: bool = False,
        evaluate: bool = True,
    ):
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
        self.evaluation_left = False  # set when a stop left an evaluation running (the CLI exits)
        self._tick_lock = threading.Lock()  # one evaluation at a time: the job, or the final one
        self._eval_store: Store | None = None  # the evaluation thread's connection, from startup()
        self._scheduler: BackgroundScheduler | None = None
        self.stats = {
            "messages": 0,
            "stored": 0,
            "partial": 0,
            "duplicate": 0,
            "dead_letter": 0,
            "evaluated": 0,
            "evaluation_backlog": 0,
            "delivered": 0,
            "notifications_dead": 0,
            "purged_events": 0,
            "orphan_labels": 0,
            "review_expired": 0,
            "reports_written": 0,
        }
        self._purged_at: datetime | None = None
        self._writers: InProcess | Workers | None = None  # while main_loop runs
        # batches handed over, not committed, in poll order: (id, source, when handed over)
        self._in_flight: deque[tuple[int, Source, float]] = deque()
        self._started = False
        self._store_trouble: str | None = None  # why the ingest connection fails, while it does
        self._eval_trouble: str | None = None  # why the last evaluation run failed on the store
        self._finished: dict[int, list[Outcome] | None] = {}  # their outcomes, as they come
        self._batch_ids = itertools.count()
        self._memory = MemoryRelease()
        self.metrics = DaemonMetrics()
        self._started_at = time.time()
        self.web = None  # the web face (monitor/web.py), on a connection of its own, from startup()

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
        start_process(self.config, evaluates=self.evaluate)
        applied = self.store.migrate()
        log.info("store %s ready (%d migrations applied)", self.store.describe(), len(applied))
        for s in self.sources:
            start = getattr(s, "start", None)
            if start:
                start()
        self.store.set_compression(self.config.store.compress_after)
        self._eval_store = self.store.sibling()
        self.evaluator.store = self._eval_store
        self._open_web()
        scope = f"{EVALUATION_JOB}@{owner_id()}/"  # '/' ends the name: no replica's scope prefixes another's
        self._job_id = scope + "tick"
        for gone in forget_gone_schedules(self.store, f"{EVALUATION_JOB}@", dead_process_of_this_host):
            log.info("removed the evaluation job %s of a process of this host that is gone", gone)
        jobs = SqlJobStore(self.store.sibling(), bind={self._job_id: self.tick}, scope=scope)
        self._scheduler = BackgroundScheduler(
            jobstores={"default": jobs},
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=timezone.utc,
        )
        self._scheduler.start(paused=True)
        every = self.config.evaluation.tick_s
        job = self._scheduler.get_job(self._job_id)
        if job is None:
            self._scheduler.add_job(
                f"{__name__}:evaluation_job",
                "interval",
                seconds=every,
                id=self._job_id,
                next_run_time=datetime.now(timezone.utc),
            )  # catch up at once
            log.info("evaluation job scheduled every %gs (new in %s)", every, self.store.describe())
        else:
            if job.trigger.interval.total_seconds() != every:
                self._scheduler.reschedule_job(self._job_id, trigger="interval", seconds=every)
            # a run due while no daemon was up runs once now (coalesced, no grace limit)
            log.info(
                "evaluation job resumed from %s: every %gs, next run was due at %s",
                self.store.describe(),
                every,
                job.next_run_time.isoformat() if job.next_run_time else "never (paused)",
            )
        self._scheduler.resume()
        self._started = True

    def _open_web(self) -> None:
        from monitor.web import WebFace

        try:
            self.web = WebFace(
                self.config, self.store.sibling(), metrics=self._metrics_text, clock=self.clock
            )
        except (ValueError, *self.store.transient_errors) as e:  # an in-memory SQLite store has no second
            log.warning("no web face: the store gives no second connection (%s)", e)

    def _metrics_text(self, store) -> tuple[str, bytes]:
        reasons = self.readiness()
        return self.metrics.render(
            store,
            {
                "ready": ("1 when the daemon can take traffic (GET /readyz)", float(not reasons)),
                "vintages_due": (
                    "Vintages waiting to be evaluated (the evaluation backlog)",
                    float(self.stats["evaluation_backlog"]),
                ),
                "batches_in_flight": (
                    "Polled batches handed over and not yet committed",
                    float(len(self._in_flight)),
                ),
                "started_time_seconds": ("When the daemon started (Unix time)", self._started_at),
            },
        )

    def main_loop(self) -> None:
        max_records = self.config.store.batch_size
        self._writers = self._open_writers()
        try:
            while not self.should_exit:
                busy = False
                for src in self.sources:
                    if not self._writers.idle():
                        self._settle(timeout=None)  # every worker has a batch: wait for one
                    msgs = src.poll(max_records, timeout_s=0.0 if busy or self._in_flight else 0.05)
                    if msgs:
                        busy = True
                        batch_id = next(self._batch_ids)
                        self._in_flight.append((batch_id, src, time.monotonic()))
                        self._writers.submit(batch_id, msgs)
                        self._memory.note(msgs)
                    self._settle(timeout=0)
                    if self.should_exit:
                        break
                if self.should_exit:
                    break
                if not busy and self._in_flight:
                    self._settle(timeout=0.05)  # nothing new: wait for the workers, not in a spin
                if not busy and not self._in_flight:
                    self._memory.idle()
                if (
                    self.stop_when_idle
                    and not busy
                    and not self._in_flight
                    and all(s.exhausted for s in self.sources)
                ):
                    self.tick()  # a finite run: evaluate what the input closed before it ends
                    self.drain_outbox()
                    return
            # SIGTERM: the batches handed over are finished and committed (a retry loop gives up)
            self._writers.stop()
            while self._in_flight:
                self._settle(timeout=None)
        finally:
            self._writers.close()
            self._writers = None

    def _open_writers(self) -> InProcess | Workers:
        n = self.config.ingest.workers
        if not n:
            return InProcess(self._store)
        if self.clock is not utcnow:
            raise ValueError(
                f"ingest.workers: {n} runs the pipeline on the wall clock; this daemon has its own clock"
                " (use 0 workers)"
            )
        return Workers(self.config, n)

    def _settle(self, timeout: float | None) -> None:
        """Collect finished batches (waiting up to ``timeout``, None: for one) and commit the
        sources of those whose earlier batches are all committed, in poll order. Waiting for one,
        a stop makes the workers give up a batch they are retrying (the database is away)."""
        done = self._writers.wait(timeout if timeout is not None else 0.5)
        while not done and timeout is None and self._writers.holding():
            if self.should_exit:
                self._writers.stop()
            done = self._writers.wait(0.5)
        self._finished.update(done)
        while self._in_flight and self._in_flight[0][0] in self._finished:
            batch_id, src, handed = self._in_flight.popleft()
            outcomes = self._finished.pop(batch_id)
            if outcomes is None:
                # given up while stopping: neither it nor a later batch is committed (re-read after restart)
                self._in_flight.clear()
                self._finished.clear()
                return
            self._committed(src, outcomes, time.monotonic() - handed)

    def ingest(self, src: Source, msgs: list[RawMessage]) -> None:
        """Store ``msgs`` and commit ``src`` on this thread, outside the main loop (tools, tests)."""
        t0 = time.monotonic()
        outcomes = self._store(msgs)
        if outcomes is not None:
            self._committed(src, outcomes, time.monotonic() - t0)

    def _store(self, msgs: list[RawMessage]) -> list[Outcome] | None:
        # The database went away: keep the batch, reconnect with backoff, never crash.
        return store_with_retry(
            self.pipeline.process,
            self.store,
            msgs,
            lambda: self.should_exit,
            trouble=self._note_store_trouble,
        )

    def _note_store_trouble(self, why: str | None) -> None:
        self._store_trouble = why

    STALL_S = 30.0  # a batch not stored this long makes the daemon not ready
    STOP_WAIT_S = 3.0  # how long a stop waits for an evaluation in progress

    def readiness(self) -> list[str]:
        """Why the daemon cannot take traffic now (empty: it can): still starting, a source down
        (Kafka not reachable), the store unreachable, or batches not stored for a while (workers
        retrying against a database that is away). Answered by ``GET /readyz``, from any thread."""
        reasons = [] if self._started else ["starting"]
        for src in self.sources:
            health = getattr(src, "health", None)
            why = health() if health is not None else None
            if why:
                reasons.append(f"{src.name}: {why}")
        for why in (self._store_trouble, self._eval_trouble):
            if why:
                reasons.append(f"store: {why}")
        in_flight = list(self._in_flight)
        if in_flight and time.monotonic() - in_flight[0][2] > self.STALL_S:
            reasons.append(
                f"ingest: a batch handed over {time.monotonic() - in_flight[0][2]:.0f} s ago is not stored"
            )
        return reasons

    def _committed(self, src: Source, outcomes: list[Outcome], seconds: float = 0.0) -> None:
        src.commit(outcomes)  # after the store: at least once, never lost
        self.metrics.committed(src.name, outcomes, seconds)
        self.stats["messages"] += len(outcomes)
        for o in outcomes:
            self.stats[o.status] += 1
            if o.status == "stored" and o.reason:
                self.stats["partial"] += 1  # stored without a modality whose media failed

    def tick(self) -> None:
        """Evaluate due windows and deliver the outbox (the evaluation job; on the evaluation
        connection once started). A failure here never stops ingest: the window's claim expires
        and a later run (or another replica) evaluates it again."""
        store = self._eval_store or self.store
        with self._tick_lock, self.metrics.evaluation_seconds.time():
            try:
                self._tick_once(store)
                self._eval_trouble = None
            except _Stopping:
                log.info("evaluation stopped between vintages: the daemon is stopping")
            except store.transient_errors as e:
                log.warning(
                    "evaluation failed on %s (%s: %s); the next run retries",
                    store.describe(),
                    type(e).__name__,
                    str(e).splitlines()[0] if str(e) else "",
                )
                self._eval_trouble = f"{store.describe()} unreachable ({type(e).__name__})"
                self.metrics.errors.labels("store").inc()
                reconnect(store)
            except Exception:  # noqa: BLE001 - a bug in one evaluation must not take ingest down
                # (the store's transaction was rolled back on the way out of ``tx()``)
                self.metrics.errors.labels("bug").inc()
                log.exception(
                    "evaluation failed; ingest goes on, the window is retried after its claim expires"
                )

    def _tick_once(self, store: Store) -> None:
        if self.evaluate:
            done = self.evaluator.run_due(store.events.watermark(), progress=self._catch_up)
            self.stats["evaluated"] += done
            self.metrics.vintages.inc(done)
            self.stats["evaluation_backlog"] = 0
        if self.evaluate:
            self.evaluator.apply_health(self.clock())  # data health on the ingest clock
        # what data health changed, and group timers that came due between vintages
        run_notifications(self.config, store, self.clock())
        if self.evaluate and self.config.report.every is not None:
            due = self.evaluator.due(store.events.watermark())
            written = write_due_reports(
                self.config, store, due, self.evaluator.owner, self.clock(), lambda: self.should_exit
            )
            self.stats["reports_written"] += len(written)
        self._deliver(store)
        now = self.clock()
        if self._purged_at is None or now - self._purged_at >= self.config.store.purge_every:
            done = purge(self.config, store, now)
            self.stats["purged_events"] += done.events
            self.stats["orphan_labels"] += done.orphan_labels
            self.stats["review_expired"] += done.review_expired
            self._purged_at = now

    def _catch_up(self, done: int, total: int) -> None:
        """The backlog gauge (``GET /v1/status`` answers from another thread meanwhile) and, after
        downtime, a progress line every tenth of the vintages to catch up."""
        self.stats["evaluation_backlog"] = total - done
        step = max(1, total // 10)
        if total > 1 and (done % step == 0 or done == total):
            log.info("evaluation catch-up: %d/%d vintages", done, total)
        if self.should_exit and done < total:
            raise _Stopping

    def drain_outbox(self, timeout_s: float = 30.0) -> None:
        """Deliver what is pending before a finite run ends (retries with backoff, up to a deadline)."""
        deadline = time.monotonic() + timeout_s
        store = self._eval_store or self.store
        while time.monotonic() < deadline and not self.should_exit:
            with self._tick_lock:  # the evaluation connection is the job's too: one thread at a time
                if not store.alerts.outbox_pending():
                    return
                self._deliver(store)
            time.sleep(0.05)

    def _deliver(self, store: Store) -> None:
        done = deliver_due(
            store.alerts,
            self.senders,
            self.clock(),
            self.config.alerts.retry_initial_s,
            self.config.alerts.retry_max_s,
        )
        self.stats["delivered"] += done.delivered
        self.stats["notifications_dead"] += done.dead
        self.metrics.delivered.inc(done.delivered)
        self.metrics.notifications_dead.inc(done.dead)

    def shutdown(self) -> None:
        if self._scheduler is not None:
            if "MODALWATCH_REPLICA" not in os.environ:  # a per-process schedule nobody will resume
                self._scheduler.pause()
                # twice: a connection the database dropped while it restarted fails once, and the
                # job store reconnects for the next call
                for attempt in (1, 2):
                    try:
                        self._scheduler.remove_job(self._job_id)
                        break
                    except self.store.transient_errors as e:  # the database is away: stop all the same
                        if attempt == 2:
                            log.warning(
                                "could not remove this process's evaluation job %s from %s (%s); its row"
                                " stays",
                                self._job_id,
                                self.store.describe(),
                                type(e).__name__,
                            )
            # an evaluation in progress stops after its current vintage or report; one that
            # does not within STOP_WAIT_S is left (its claim is taken back after a restart)
            self._scheduler.shutdown(wait=False)
            if self._tick_lock.acquire(timeout=self.STOP_WAIT_S):
                self._tick_lock.release()
            else:
                self.evaluation_left = True
                log.warning(
                    "an evaluation still runs %gs after the stop was asked: left unfinished (its"
                    " vintage is claimed again and evaluated after a restart)",
                    self.STOP_WAIT_S,
                )
        if self._eval_store is not None and not self.evaluation_left:
            self._eval_store.close()
        if self.web is not None:
            self.web.close()
        for s in self.sources:
            try:
                s.close()
            except Exception:  # noqa: BLE001 - closing must not hide the reason we stopped
                log.exception("closing source %s failed", getattr(s, "name", s))
        self.pipeline.close()
        log.info("stopped: %s", self.stats)
