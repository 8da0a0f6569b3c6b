"""Several `modalwatch run` replicas in one Kafka consumer group sharing one PostgreSQL (issue 5):
two daemons plus a third started late, 3 partitions, 30 days of traffic; one daemon SIGKILLed
midway. Every event is stored once, every vintage evaluated exactly once, every week's report
written exactly once (issue 16), and the dead daemon's partitions are taken over by the others."""

import json
import os
import re
import signal
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

import psycopg
from kafka import KafkaProducer

from tests.conftest import make_topics, run_daemon
from connectors.postgres import PostgresStore
from monitor.config import load_config
from tests.helpers import assert_summaries_are_a_recomputation, inference, label

DAYS, PER_DAY, PARTS = 30, 120, 3
VINTAGES = DAYS - 1
# Days before today: the traffic is in the past (future timestamps are dead letters).
T0 = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=DAYS + 5)


def _traffic(days: range) -> tuple[list[dict], list[dict]]:
    events, labels = [], []
    for day in days:
        for j in range(PER_DAY):
            i = day * PER_DAY + j
            ts = T0 + timedelta(days=day, seconds=j * 86400 // PER_DAY)
            events.append(inference(i, ts=ts))
            if i % 2 == 0:
                labels.append(label(i, ts=ts + timedelta(hours=1)))
    return events, labels


def _send(bootstrap, topic, days: range) -> None:
    events, labels = _traffic(days)
    prod = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=20)
    for k, e in enumerate(events):
        prod.send(topic, json.dumps(e).encode(), partition=k % PARTS)
    for k, lab in enumerate(labels):
        prod.send(f"{topic}-labels", json.dumps(lab).encode(), partition=k % PARTS)
    prod.flush()
    prod.close()


def _config(tmp_path, bootstrap, topic, group):
    path = tmp_path / "replica.yaml"
    path.write_text(f"""
store: {{kind: postgres, url: "${{MW_TEST_PG}}", batch_size: 200}}
ingest:
  http: {{enabled: false}}
  kafka:
    bootstrap_servers: ["{bootstrap}"]
    group_id: {group}
    events_topic: {topic}
    labels_topic: {topic}-labels
    max_poll_records: 200
    session_timeout_ms: 6000
    max_poll_interval_ms: 20000
evaluation:
  intervals: [1d]
  lag: 1d
  reference: {{days: 3}}
  tick_s: 1
  claim_expiry: 20s
  checks:
    calibration: {{bootstrap: 50}}
    embedding_drift: {{enabled: false}}
    # trend reads the windows before each one, so with it a series' windows go in order and
    # replicas share work across series only; this test shares the windows of one series
    trend: {{enabled: false}}
report: {{every: 7d, dir: "{tmp_path / "reports"}"}}
""")
    return path


def _weeks() -> list[datetime]:
    """The Monday-to-Monday weeks whose reports are due at the end: the last vintage waits for the
    watermark (day 29's last label, an hour after its event) minus the 1d lag."""
    watermark = T0 + timedelta(days=DAYS - 1, seconds=(PER_DAY - 1) * 86400 // PER_DAY, hours=1)
    closed_before = watermark - timedelta(days=1)
    monday = T0 - timedelta(days=T0.weekday())
    out = []
    while monday + timedelta(days=7) <= closed_before:
        out.append(monday)
        monday += timedelta(days=7)
    return out


def _one(pg_url, sql):
    with psycopg.connect(pg_url) as c:
        try:
            return c.execute(sql).fetchone()[0]
        except psycopg.errors.UndefinedTable:
            return 0


def _wait(pred, timeout_s, what):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def test_three_replicas_one_sigkilled_store_every_event_once_and_evaluate_every_vintage_once(
    tmp_path, pg_url, kafka_bootstrap
):
    topic, group = f"rep-{uuid.uuid4().hex[:8]}", f"mw-{uuid.uuid4().hex[:8]}"
    make_topics(kafka_bootstrap, [topic, f"{topic}-labels"], partitions=PARTS)
    cfg = _config(tmp_path, kafka_bootstrap, topic, group)
    env = {**os.environ, "MW_TEST_PG": pg_url}
    procs, logs = {}, {}

    def start(name):
        logs[name] = open(tmp_path / f"{name}.log", "wb")
        procs[name] = run_daemon(cfg, logs[name], env)

    half = DAYS // 2
    events = lambda: _one(pg_url, "SELECT COUNT(*) FROM events")  # noqa: E731
    finished = lambda: _one(pg_url, "SELECT COUNT(*) FROM eval_runs WHERE finished_at IS NOT NULL")  # noqa: E731
    try:
        _send(kafka_bootstrap, topic, range(0, half))
        start("a")
        start("b")
        _wait(lambda: events() >= PER_DAY * 3, 120, "the first replicas to store events")
        start("c")  # late: the group rebalances to three members
        _wait(lambda: finished() >= 3, 180, "the first vintages")
        _wait(
            lambda: re.search(r"Updated partition assignment: \[T", (tmp_path / "c.log").read_text()),
            120,
            "the late replica's partitions",
        )  # three members now: each holds a partition of each topic
        procs["a"].send_signal(signal.SIGKILL)  # no goodbye: the group notices by session timeout
        procs["a"].wait()
        _send(kafka_bootstrap, topic, range(half, DAYS))  # to every partition, a's among them
        n_events = DAYS * PER_DAY
        _wait(lambda: events() == n_events, 240, f"{n_events} events")
        # windows of days 0..28 are due: the watermark (day 29's last label, an hour after its
        # event) is past day 28's end + the 1d lag
        _wait(lambda: finished() == VINTAGES, 240, f"{VINTAGES} vintages")
        reports = lambda: _one(pg_url, "SELECT COUNT(*) FROM report_runs WHERE finished_at IS NOT NULL")  # noqa: E731
        _wait(lambda: reports() == len(_weeks()), 120, f"{len(_weeks())} weekly reports")
        time.sleep(3)  # a replica that would evaluate a vintage (or write a report) twice has had its chance
        for name in ("b", "c"):
            procs[name].send_signal(signal.SIGTERM)
        for name in ("b", "c"):
            assert procs[name].wait(60) == 0
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.kill()
                p.wait()
        for f in logs.values():
            f.close()

    text = {n: (tmp_path / f"{n}.log").read_text() for n in procs}
    with psycopg.connect(pg_url) as c:
        assert (
            c.execute("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events").fetchone() == (n_events,) * 2
        )
        assert c.execute("SELECT COUNT(*) FROM labels").fetchone()[0] == n_events // 2
    # three writers (one killed mid-batch) and their summaries: each event and pair counted once
    store = PostgresStore(pg_url)
    assert assert_summaries_are_a_recomputation(store, load_config(cfg, env)) > 100
    store.close()
    with psycopg.connect(pg_url) as c:
        runs = c.execute(
            "SELECT window_start, claimed_by FROM eval_runs WHERE finished_at IS NOT NULL"
        ).fetchall()
        per_vintage = c.execute(
            "SELECT COUNT(DISTINCT evaluated_at) FROM evaluations GROUP BY window_start"
        ).fetchall()
    assert sorted(r[0] for r in runs) == [T0 + timedelta(days=d) for d in range(VINTAGES)]
    assert {n for (n,) in per_vintage} == {1}  # each vintage's rows were written by one evaluation
    # every vintage was evaluated exactly once across the three logs (a's may stop mid-way)
    done = Counter(
        m for t in text.values() for m in re.findall(r"evaluated m 1, 86400s window from (\S+) \(lag", t)
    )
    assert len(done) == VINTAGES and set(done.values()) == {1}, done
    assert len({owner for _, owner in runs}) >= 2  # the work was shared
    # each week's report was written once across the replicas, kept in the store, and on disk
    written = Counter(m for t in text.values() for m in re.findall(r"wrote the report of (\S+) –", t))
    assert sorted(written) == [w.isoformat() for w in _weeks()] and set(written.values()) == {1}, written
    with psycopg.connect(pg_url) as c:
        kept = c.execute("SELECT period_start, length(report) FROM report_runs ORDER BY 1").fetchall()
    assert [k[0] for k in kept] == _weeks() and all(n > 1000 for _, n in kept)
    on_disk = sorted(p.name for p in (tmp_path / "reports").iterdir())
    assert len(on_disk) == len(_weeks()) + 1 and on_disk[-1] == "index.html"
    assert all((tmp_path / "reports" / d / "report.html").is_file() for d in on_disk[:-1])
    # the survivors took over the dead replica's partitions: every event sent after the kill, to
    # all three partitions, was stored (above), and only b and c were alive to read it
    stats = [eval(re.search(r"stopped: (\{.*\})", text[n]).group(1)) for n in ("b", "c")]
    assert all(s["dead_letter"] == 0 for s in stats)
    assert sum(s["evaluated"] for s in stats) <= VINTAGES  # each counts only what it evaluated itself
