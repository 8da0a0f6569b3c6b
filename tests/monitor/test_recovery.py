"""After a crash: a dead process's claims and schedule rows do not wait for luck or expiry, and
counters do not count the messages a restart reads again."""

import json
import socket
import subprocess
import sys
from datetime import timedelta

from monitor.config import parse_config
from monitor.core.messages import RawMessage
from monitor.core.window import RunKey
from monitor.evaluation import dead_process_of_this_host
from monitor.pipeline import Pipeline
from tests.helpers import NOW, T0, inference


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_claim_of_a_dead_process_of_this_host_is_taken_at_once(any_store):
    key = RunKey("m", "1", 86400, 0, T0)
    end = T0 + timedelta(days=1)
    dead = f"{socket.gethostname()}:{_dead_pid()}"
    assert dead_process_of_this_host(dead)
    assert not dead_process_of_this_host(f"{socket.gethostname()}:1")  # init: alive
    assert not dead_process_of_this_host(f"another-host:{_dead_pid()}")  # not ours to judge
    assert any_store.evaluations.claim(key, end, dead, T0, timedelta(minutes=10))
    # a live process's claim waits for its expiry; the dead one's is taken at once
    assert not any_store.evaluations.claim(
        key, end, "other:1", T0 + timedelta(minutes=1), timedelta(minutes=10)
    )
    assert any_store.evaluations.claim(
        key, end, "me:2", T0 + timedelta(minutes=1), timedelta(minutes=10), orphaned=dead_process_of_this_host
    )
    assert any_store.evaluations.finish(key, "me:2", T0 + timedelta(minutes=2))


def test_a_restarted_replica_takes_its_own_claims_back(any_store, monkeypatch):
    from monitor.evaluation import owner_id

    monkeypatch.setenv("MODALWATCH_REPLICA", "modalwatch-0")
    assert owner_id() == "modalwatch-0"
    key = RunKey("m", "1", 86400, 0, T0)
    end = T0 + timedelta(days=1)
    assert any_store.evaluations.claim(key, end, owner_id(), T0, timedelta(minutes=10))
    # killed, restarted a minute later under the same name: its unfinished claim is its own
    assert any_store.evaluations.claim(key, end, owner_id(), T0 + timedelta(minutes=1), timedelta(minutes=10))


def test_the_schedule_rows_of_dead_processes_are_removed_at_start(sqlite_store):
    from monitor.daemon import EVALUATION_JOB, Daemon

    gone = f"{EVALUATION_JOB}@{socket.gethostname()}:{_dead_pid()}/tick"
    named = f"{EVALUATION_JOB}@modalwatch-1/tick"  # a named replica's schedule outlives its restarts
    for job_id in (gone, named):
        sqlite_store.db.execute(
            "INSERT INTO scheduler_jobs (id, next_run_time, job_state) VALUES (?, ?, ?)", (job_id, 0.0, b"x")
        )
    d = Daemon(parse_config(""), [], sqlite_store, {})
    d.startup()
    try:
        ids = {r[0] for r in sqlite_store.db.all("SELECT id FROM scheduler_jobs")}
        assert gone not in ids and named in ids
    finally:
        d.shutdown()


def test_a_batch_read_again_after_a_restart_is_not_counted_again(any_store):
    cfg = parse_config("")
    msgs = [
        RawMessage("kafka", f"k/0/{i}", json.dumps(inference(i)).encode(), "inference") for i in range(50)
    ]
    msgs += [RawMessage("kafka", f"k/0/{50 + i}", b"{broken", "inference") for i in range(10)]
    for _ in range(3):  # the same messages, as a source re-reads them after each of two crashes
        Pipeline(cfg, any_store, lambda: NOW).process(msgs)
    (row,) = any_store.db.all("SELECT SUM(messages), SUM(dead_letters) FROM ingest_minutes")
    assert tuple(map(int, row)) == (60, 10)
    assert any_store.ops.counts()["events"] == 50 and any_store.ops.counts()["dead_letters"] == 10


def test_a_trend_waits_for_an_earlier_window_still_being_evaluated(any_store):
    """Windows evaluated out of order (another replica still on day 11, or a killed process's
    claim on it) give the same trend rows as in order: day 12 waits for day 11."""
    import math

    from connectors.sqlite import SqliteStore
    from monitor.evaluation import Evaluator
    from tests.monitor.test_evaluation import CFG, _traffic

    cfg = parse_config(CFG)

    def traffic():
        return _traffic(days=14, per_day=200, error_rate=lambda d, ev: 0.1 + 0.01 * d)

    def trend(rows):
        return {(r.slice, r.signal): r.value for r in rows if r.metric == "trend" and r.status == "ok"}

    Pipeline(cfg, any_store, lambda: NOW).process(traffic())
    ev = Evaluator(cfg, any_store, lambda: NOW, owner="me:1")
    by_day = {(k.window_start - T0).days: (k, t1) for k, t1 in ev.due(any_store.events.watermark())}
    for day in range(11):
        assert ev.run(*by_day[day]) is not None
    k11, end11 = by_day[11]
    assert any_store.evaluations.claim(k11, end11, "other:1", NOW, timedelta(minutes=10))  # busy elsewhere
    assert ev.run(*by_day[12]) is None  # waits: its trend reads day 11
    assert Evaluator(cfg, any_store, lambda: NOW, owner="other:1").run(k11, end11) is not None
    late = trend(ev.run(*by_day[12]))

    ordered = SqliteStore(":memory:")  # the same traffic evaluated in order, in a store of its own
    ordered.migrate()
    Pipeline(cfg, ordered, lambda: NOW).process(traffic())
    Evaluator(cfg, ordered, lambda: NOW, owner="x").run_due(ordered.events.watermark())
    df = ordered.evaluations.frame()
    day12 = df[(df.metric == "trend") & (df.window_start == T0 + timedelta(days=12)) & (df.status == "ok")]
    in_order = {(r.slice, r.signal): r.value for r in day12.itertuples()}
    assert late and late.keys() == in_order.keys()
    assert all(math.isclose(late[k], in_order[k], rel_tol=1e-9, abs_tol=1e-12) for k in late)
