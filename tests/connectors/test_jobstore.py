"""apscheduler's job store in the modalwatch database, on SQLite and a real PostgreSQL."""

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from apscheduler.jobstores.base import ConflictingIdError, JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler

from connectors.jobstore import SqlJobStore


def _scheduler(store, bind):
    return BackgroundScheduler(
        jobstores={"default": SqlJobStore(store.sibling(), bind=bind)},
        job_defaults={"coalesce": True, "misfire_grace_time": None},
        timezone=timezone.utc,
    )


def test_a_job_survives_a_restart_and_a_missed_run_runs_once(any_store):
    calls = []
    first = _scheduler(any_store, {"j": lambda: calls.append("first")})
    first.start(paused=True)
    past = datetime.now(timezone.utc) - timedelta(hours=5)
    first.add_job("monitor.daemon:evaluation_job", "interval", hours=1, id="j", next_run_time=past)
    first.shutdown(wait=True)  # the process goes away with five runs missed
    assert calls == []
    stored = any_store.db.all("SELECT id, next_run_time FROM scheduler_jobs")
    assert [r[0] for r in stored] == ["j"] and stored[0][1] == pytest.approx(past.timestamp())

    ran = threading.Event()
    second = _scheduler(any_store, {"j": lambda: (calls.append("second"), ran.set())})
    second.start()
    try:
        assert ran.wait(10)
        time.sleep(0.5)
        assert calls == ["second"]  # coalesced: the five missed runs are one run, by the new binding
        job = second.get_job("j")
        assert job.trigger.interval == timedelta(hours=1)
        assert job.next_run_time > datetime.now(timezone.utc)  # rescheduled in the database
        ((nrt,),) = any_store.db.all("SELECT next_run_time FROM scheduler_jobs WHERE id = 'j'")
        assert nrt == pytest.approx(job.next_run_time.timestamp())
    finally:
        second.shutdown(wait=True)


def test_job_store_contract(any_store):
    sched = _scheduler(any_store, {})
    sched.start(paused=True)
    try:
        store = sched._lookup_jobstore("default")
        later = datetime.now(timezone.utc) + timedelta(minutes=5)
        sched.add_job("monitor.daemon:evaluation_job", "interval", minutes=1, id="b", next_run_time=later)
        sched.add_job(
            "monitor.daemon:evaluation_job",
            "interval",
            minutes=1,
            id="a",
            next_run_time=later - timedelta(minutes=2),
        )
        assert [j.id for j in store.get_all_jobs()] == ["a", "b"]  # soonest first
        assert abs((store.get_next_run_time() - (later - timedelta(minutes=2))).total_seconds()) < 1e-3
        assert store.get_due_jobs(later - timedelta(minutes=1))[0].id == "a"
        with pytest.raises(ConflictingIdError):
            store.add_job(store.lookup_job("a"))
        sched.pause_job("a")  # paused: NULL next run time, listed last
        assert [j.id for j in store.get_all_jobs()] == ["b", "a"]
        assert store.lookup_job("a").next_run_time is None
        store.remove_job("a")
        with pytest.raises(JobLookupError):
            store.remove_job("a")
        assert store.lookup_job("a") is None
        store.remove_all_jobs()
        assert store.get_all_jobs() == [] and store.get_next_run_time() is None
    finally:
        sched.shutdown()


def test_each_replica_sees_only_its_own_scope(any_store):
    from connectors.jobstore import SqlJobStore

    a = BackgroundScheduler(
        jobstores={"default": SqlJobStore(any_store.sibling(), scope="r:1/")}, timezone=timezone.utc
    )
    b = BackgroundScheduler(
        jobstores={"default": SqlJobStore(any_store.sibling(), scope="r:12/")}, timezone=timezone.utc
    )
    for sched, name in ((a, "r:1/tick"), (b, "r:12/tick")):
        sched.start(paused=True)
        sched.add_job("monitor.daemon:evaluation_job", "interval", minutes=1, id=name)
    try:
        assert [j.id for j in a.get_jobs()] == ["r:1/tick"] and [j.id for j in b.get_jobs()] == ["r:12/tick"]
        a.remove_all_jobs()
        assert [r[0] for r in any_store.db.all("SELECT id FROM scheduler_jobs")] == ["r:12/tick"]
    finally:
        a.shutdown()
        b.shutdown()
