"""apscheduler 3's job store in the modalwatch database (SQLite or PostgreSQL).

apscheduler's own SQL job store needs SQLAlchemy; this one keeps the same table shape and
semantics (``id``, ``next_run_time`` as UTC epoch seconds — NULL while paused — and the pickled
job state) on a connection of our own stores, so the evaluation schedule survives a restart. It
owns its connection (apscheduler calls a job store from its scheduler thread and from the thread
that adds jobs), serialised by a lock.

``scope``: the store sees only the rows whose id starts with it — each replica keeps its own
schedule in the shared table. (One job shared by every replica was tried: a replica busy with a
long catch-up kept advancing the shared next run time, so the others never ran it and could not
take over an expired claim.)

``bind`` maps a job id to the callable to run in this process: the table keeps the job's textual
function reference, and the job, when read back, runs the bound callable instead.
"""

from __future__ import annotations

import logging
import pickle
import threading
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Callable, Iterator

from apscheduler.job import Job
from apscheduler.jobstores.base import BaseJobStore, ConflictingIdError, JobLookupError
from apscheduler.util import datetime_to_utc_timestamp, utc_timestamp_to_datetime

if TYPE_CHECKING:
    from connectors.sql.database import Database
    from connectors.sql.store import SqlStore

log = logging.getLogger("modalwatch.scheduler")


class SqlJobStore(BaseJobStore):
    def __init__(
        self,
        store: SqlStore,
        bind: dict[str, Callable] | None = None,
        scope: str = "",
        pickle_protocol: int = pickle.HIGHEST_PROTOCOL,
    ) -> None:
        super().__init__()
        self.store = store
        self.scope = scope
        self._in_scope = ("substr(id, 1, ?) = ?", (len(scope), scope))
        self.bind = dict(bind or {})
        self.pickle_protocol = pickle_protocol
        self._lock = threading.RLock()
        self._closed = False

    @contextmanager
    def _db(self) -> Iterator[Database]:
        """One transaction under the lock; after a lost connection, a new one for the next call
        (apscheduler logs the error and asks again after ``jobstore_retry_interval``)."""
        with self._lock:
            try:
                with self.store.db.tx() as db:
                    yield db
            except self.store.transient_errors:
                try:
                    self.store.reconnect()
                except self.store.transient_errors:
                    pass
                raise

    # -- reading -------------------------------------------------------------------------------
    def _reconstitute(self, blob: bytes) -> Job:
        state = pickle.loads(bytes(blob))
        state["jobstore"] = self
        job = Job.__new__(Job)
        job.__setstate__(state)
        job._scheduler = self._scheduler
        job._jobstore_alias = self._alias
        if job.id in self.bind:
            job.func = self.bind[job.id]  # func_ref (what is stored) stays the textual reference
        return job

    def _jobs(self, cond: str = "", params: tuple = ()) -> list[Job]:
        scope_cond, scope_params = self._in_scope
        where = f"WHERE {scope_cond}" + (f" AND {cond}" if cond else "")
        with self._db() as db:
            rows = db.all(
                f"SELECT id, job_state FROM scheduler_jobs {where} ORDER BY next_run_time",
                scope_params + params,
            )
            jobs, failed = [], []
            for job_id, blob in rows:
                try:
                    jobs.append(self._reconstitute(blob))
                except Exception:  # noqa: BLE001 - apscheduler's rule: a job that cannot be restored is dropped
                    log.exception("unable to restore scheduled job %r; removing it", job_id)
                    failed.append(job_id)
            for job_id in failed:
                db.execute("DELETE FROM scheduler_jobs WHERE id = ?", (job_id,))
        return jobs

    def lookup_job(self, job_id: str) -> Job | None:
        jobs = self._jobs("id = ?", (job_id,))
        return jobs[0] if jobs else None

    def get_due_jobs(self, now: datetime) -> list[Job]:
        if self._closed:  # the scheduler thread's last wake-up can come after shutdown()
            return []
        return self._jobs("next_run_time <= ?", (datetime_to_utc_timestamp(now),))

    def get_next_run_time(self) -> datetime | None:
        if self._closed:
            return None
        with self._db() as db:
            rows = db.all(
                "SELECT MIN(next_run_time) FROM scheduler_jobs WHERE next_run_time IS NOT NULL"
                f" AND {self._in_scope[0]}",
                self._in_scope[1],
            )
        return utc_timestamp_to_datetime(rows[0][0]) if rows and rows[0][0] is not None else None

    def get_all_jobs(self) -> list[Job]:
        jobs = self._jobs()
        self._fix_paused_jobs_sorting(jobs)
        return jobs

    # -- writing -------------------------------------------------------------------------------
    def _state(self, job: Job) -> tuple[float | None, bytes]:
        return datetime_to_utc_timestamp(job.next_run_time), pickle.dumps(
            job.__getstate__(), self.pickle_protocol
        )

    def add_job(self, job: Job) -> None:
        with self._db() as db:
            if db.all("SELECT 1 FROM scheduler_jobs WHERE id = ?", (job.id,)):
                raise ConflictingIdError(job.id)
            db.execute(
                "INSERT INTO scheduler_jobs (id, next_run_time, job_state) VALUES (?, ?, ?)",
                (job.id, *self._state(job)),
            )

    def update_job(self, job: Job) -> None:
        with self._db() as db:
            cur = db.execute(
                "UPDATE scheduler_jobs SET next_run_time = ?, job_state = ? WHERE id = ?",
                (*self._state(job), job.id),
            )
            if cur.rowcount == 0:
                raise JobLookupError(job.id)

    def remove_job(self, job_id: str) -> None:
        with self._db() as db:
            if db.execute("DELETE FROM scheduler_jobs WHERE id = ?", (job_id,)).rowcount == 0:
                raise JobLookupError(job_id)

    def remove_all_jobs(self) -> None:
        with self._db() as db:
            db.execute(f"DELETE FROM scheduler_jobs WHERE {self._in_scope[0]}", self._in_scope[1])

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
            self.store.close()

    def __repr__(self) -> str:
        return f"<SqlJobStore ({self.store.describe()})>"


def forget_gone_schedules(store: SqlStore, prefix: str, gone: Callable[[str], bool]) -> list[str]:
    """Remove the job rows under ``prefix`` whose replica (the name after it, up to '/') ``gone``
    says is no more — a process killed before it could remove its own row; return their ids."""
    removed = []
    with store.db.tx() as db:
        for (job_id,) in db.all(
            "SELECT id FROM scheduler_jobs WHERE substr(id, 1, ?) = ?", (len(prefix), prefix)
        ):
            if gone(job_id[len(prefix) :].split("/", 1)[0]):
                db.execute("DELETE FROM scheduler_jobs WHERE id = ?", (job_id,))
                removed.append(job_id)
    return removed
