"""Where the daemon's batches are decoded, validated, measured and stored.

One Python process runs the pipeline on one core at most (the GIL), and the pipeline — pydantic
validation, the store's COPY, the detectors — is the most of what the daemon does per event. With
``ingest.workers: N`` (PostgreSQL) the daemon keeps the sources and hands each polled batch to
one of N worker processes, each running its own ``Pipeline`` on its own connection; the daemon
commits a batch's source once that batch and every batch polled before it are stored (at least
once, in poll order; ``Daemon._settle``). With 0 workers the daemon's own process stores each
batch as it is polled (``InProcess``): the embedded default, and any run with a custom clock.

Both kinds answer the same calls: ``idle()`` (can a batch be submitted now), ``holding()``
(batches not finished yet), ``submit(batch_id, msgs)``, ``wait(timeout)`` (the batches finished
since the last call, as ``(batch_id, outcomes)``; outcomes ``None`` for a batch given up because
the daemon is stopping), ``stop()`` (give up batches being retried) and ``close()``.

A worker retries a batch while the database is away (reconnecting with backoff) until the daemon
stops; a worker that raises or dies ends the daemon with ``WorkerError`` (nothing is lost: what
was not committed is re-read). Workers ignore SIGINT/SIGTERM — the daemon decides when they stop,
after their batches — and exit when the daemon's end of their pipe closes; on Linux the kernel
kills them when the daemon dies, even by SIGKILL. Workers are started with ``spawn`` (the daemon
runs threads): a program that embeds a ``Daemon`` with workers guards its entry point with
``if __name__ == "__main__":``, as multiprocessing requires.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
import traceback
from collections import deque
from multiprocessing.connection import Connection, wait as wait_any
from typing import Callable

from monitor.core.messages import Outcome, RawMessage

log = logging.getLogger("modalwatch.workers")

_STATUS = ("stored", "duplicate", "dead_letter")
_CODE = {s: i for i, s in enumerate(_STATUS)}


class WorkerError(RuntimeError):
    """A worker process failed; the daemon stops (its uncommitted batches are re-read on restart)."""


def store_with_retry(
    process: Callable[[list[RawMessage]], list[Outcome]],
    store,
    msgs: list[RawMessage],
    stopping: Callable[[], bool],
    sleep: Callable[[float], object] = time.sleep,
    trouble: Callable[[str | None], None] = lambda why: None,
) -> list[Outcome] | None:
    """``process(msgs)``, retried with backoff while the database is away; None when asked to stop
    first (the source is then not committed, so nothing is lost: at least once). ``sleep`` waits
    between attempts (a worker's wakes up when the daemon stops); ``trouble`` is told why the
    store fails, and None once it works again (the daemon's readiness)."""
    delay = 0.5
    while True:
        try:
            outcomes = process(msgs)
            trouble(None)
            return outcomes
        except store.transient_errors as e:
            trouble(f"{store.describe()} unreachable ({type(e).__name__})")
            log.warning(
                "store %s failed (%s: %s); retrying the batch in %.1fs",
                store.describe(),
                type(e).__name__,
                str(e).splitlines()[0] if str(e) else "",
                delay,
            )
            if stopping():
                return None
            sleep(delay)
            if stopping():
                return None
            delay = min(60.0, delay * 2)
            reconnect(store)


def reconnect(store) -> None:
    """Reconnect ``store``; a failure is logged and left to the next attempt."""
    try:
        store.reconnect()
    except store.transient_errors as e:
        log.warning("reconnecting to %s failed: %s", store.describe(), type(e).__name__)


class InProcess:
    """0 workers: each batch is stored on the calling thread when it is submitted."""

    def __init__(self, store_batch: Callable[[list[RawMessage]], list[Outcome] | None]):
        self._store_batch = store_batch
        self._done: list[tuple[int, list[Outcome] | None]] = []

    def idle(self) -> bool:
        return True

    def holding(self) -> int:
        return 0

    def submit(self, batch_id: int, msgs: list[RawMessage]) -> None:
        self._done.append((batch_id, self._store_batch(msgs)))

    def wait(self, timeout: float | None) -> list[tuple[int, list[Outcome] | None]]:
        done, self._done = self._done, []
        return done

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


class Workers:
    """``n`` pipeline worker processes. Each holds up to ``DEPTH`` batches — the one it works on
    and the next, read ahead by its reader thread — so that it never idles while the daemon
    commits, polls and hands over; a sender thread per worker pickles and writes the batches, so
    that the daemon's loop never waits on a pipe (bench/ingest.py: README)."""

    DEPTH = 2

    def __init__(self, config, n: int):
        ctx = multiprocessing.get_context(
            "spawn"
        )  # the daemon runs threads (Kafka, HTTP, scheduler): no fork
        self._stopping = ctx.Event()
        self._procs: list[multiprocessing.process.BaseProcess] = []
        self._conns: list[Connection] = []
        self._held: list[
            deque[list[RawMessage]]
        ] = []  # per worker: the messages of its batches, oldest first
        for i in range(n):
            ours, theirs = ctx.Pipe()
            p = ctx.Process(
                target=_worker_main,
                args=(config, theirs, self._stopping, os.getpid()),
                name=f"modalwatch-worker-{i}",
                daemon=True,
            )
            p.start()
            theirs.close()
            self._procs.append(p)
            self._conns.append(ours)
            self._held.append(deque())
        self._outbox: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(n)]
        self._senders = [
            threading.Thread(target=self._send_loop, args=(i,), name=f"modalwatch-send-{i}", daemon=True)
            for i in range(n)
        ]
        for t in self._senders:
            t.start()
        try:
            for i in range(n):  # ready: imported, connected to the store
                self._recv(i)
        except WorkerError:
            self.close()
            raise
        log.info(
            "%d pipeline worker processes started (pids %s)", n, ", ".join(str(p.pid) for p in self._procs)
        )

    def idle(self) -> bool:
        return any(len(h) < self.DEPTH for h in self._held)

    def holding(self) -> int:
        """Batches handed over and not finished yet."""
        return sum(len(h) for h in self._held)

    def submit(self, batch_id: int, msgs: list[RawMessage]) -> None:
        i = min(range(len(self._held)), key=lambda k: len(self._held[k]))
        if not self._procs[i].is_alive():
            raise self._exited(i)
        self._held[i].append(msgs)
        # columns of plain values: pickled several times faster than a list of NamedTuples
        self._outbox[i].put((batch_id, tuple(zip(*msgs))))

    def _send_loop(self, i: int) -> None:
        while True:
            item = self._outbox[i].get()
            try:
                self._conns[i].send(item)
            except OSError:  # the worker is gone: submit() and wait() say so
                return
            if item is None:
                return

    def wait(self, timeout: float | None) -> list[tuple[int, list[Outcome] | None]]:
        """The batches finished within ``timeout`` (None: block until one is)."""
        busy = [c for c, h in zip(self._conns, self._held) if h]
        if not busy:
            return []
        done = []
        for c in wait_any(busy, timeout):
            i = self._conns.index(c)
            while True:  # every result already in the pipe
                done.append(self._result(i))
                if not self._held[i] or not c.poll():
                    break
        return done

    def _recv(self, i: int) -> tuple:
        """The worker's next message; ``WorkerError`` when it failed or is gone."""
        try:
            msg = self._conns[i].recv()
        except (EOFError, OSError):
            raise self._exited(i) from None
        if msg[0] == "error":
            raise WorkerError(f"pipeline worker {i} failed:\n{msg[1]}")
        return msg

    def _result(self, i: int) -> tuple[int, list[Outcome] | None]:
        _, batch_id, codes, reasons = self._recv(i)
        msgs = self._held[i].popleft()
        if codes is None:
            return batch_id, None
        return batch_id, [
            Outcome(m.position, _STATUS[c], reasons.get(k, "")) for k, (m, c) in enumerate(zip(msgs, codes))
        ]

    def _exited(self, i: int) -> WorkerError:
        self._procs[i].join(5)
        return WorkerError(
            f"pipeline worker {i} exited (exit code {self._procs[i].exitcode}); the batches it held"
            " were not committed and are read again after a restart"
        )

    def stop(self) -> None:
        """Batches in a retry loop are given up (the daemon is stopping); others finish."""
        self._stopping.set()

    def close(self) -> None:
        for q in self._outbox:
            q.put(None)  # after the batches before it: the worker stops once they are done
        for t in self._senders:
            t.join(10)
        for p in self._procs:
            p.join(10)
            if p.is_alive():
                p.terminate()
                p.join(5)
        for c in self._conns:
            c.close()


def _die_with_parent(parent_pid: int) -> None:
    """On Linux the kernel SIGKILLs this worker when the daemon dies, even by SIGKILL: no orphan
    goes on writing (its open transaction is rolled back). Elsewhere the closed pipe ends it."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the daemon died before the line above
        os._exit(0)


def _worker_main(config, conn: Connection, stopping, parent_pid: int) -> None:
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    from monitor.config import WORKER_LOG_FORMAT
    from monitor.runtime import configure_logging

    configure_logging(config.log_level, WORKER_LOG_FORMAT)
    try:
        from connectors.stores import open_store
        from monitor.pipeline import Pipeline
        from monitor.runtime import MemoryRelease, start_process, utcnow

        store = open_store(config.store)
        pipeline = Pipeline(config, store, utcnow)
        start_process(config, evaluates=False)
    except Exception:  # noqa: BLE001 - reported to the daemon, which stops with it
        conn.send(("error", traceback.format_exc()))
        return
    conn.send(("ready",))
    jobs: queue.SimpleQueue = queue.SimpleQueue()

    def read_ahead() -> None:
        """Receive (and unpickle) the next batch while this one is being stored."""
        while True:
            try:
                job = conn.recv()
            except (EOFError, OSError):
                job = None  # the daemon is gone
            jobs.put(job)
            if job is None:
                return

    threading.Thread(target=read_ahead, name="modalwatch-worker-reader", daemon=True).start()
    memory = MemoryRelease()
    try:
        while True:
            if jobs.empty():
                memory.idle()
            job = jobs.get()
            if job is None:
                return
            batch_id, columns = job
            msgs = list(map(RawMessage, *columns))
            memory.note(msgs)
            try:
                outcomes = store_with_retry(pipeline.process, store, msgs, stopping.is_set, stopping.wait)
            except Exception:  # noqa: BLE001 - reported to the daemon, which stops with it
                conn.send(("error", traceback.format_exc()))
                return
            if outcomes is None:
                conn.send(("done", batch_id, None, None))
            else:
                conn.send(
                    (
                        "done",
                        batch_id,
                        bytes(_CODE[o.status] for o in outcomes),
                        {k: o.reason for k, o in enumerate(outcomes) if o.reason},
                    )
                )
            job = columns = msgs = outcomes = None  # the batch's memory can go before the next
    except (BrokenPipeError, EOFError):
        return
    finally:
        pipeline.close()
        store.close()
