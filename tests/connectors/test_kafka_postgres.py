"""Kafka → PostgreSQL with the real daemon process: SIGKILL midway, restart, nothing lost or doubled;
with the pipeline in the daemon's process and in worker processes (ingest.workers)."""

import re
import signal
import time
import uuid

import psycopg
import pytest
from kafka import KafkaConsumer, TopicPartition

from tests.conftest import make_topics, produce_inferences, run_daemon
from connectors.postgres import PostgresStore
from monitor.config import load_config
from tests.helpers import assert_summaries_are_a_recomputation, http_json


def _config(tmp_path, pg_url, bootstrap, topic, group, batch=250, workers=0):
    path = tmp_path / "kafka.yaml"
    path.write_text(f"""
store:
  kind: postgres
  url: ${{MW_TEST_PG}}
  batch_size: {batch}
ingest:
  workers: {workers}
  http:
    enabled: false
  kafka:
    bootstrap_servers: ["{bootstrap}"]
    group_id: {group}
    events_topic: {topic}
    labels_topic: {topic}-labels
    max_poll_records: {batch}
    session_timeout_ms: 6000
    max_poll_interval_ms: 5000
evaluation:
  tick_s: 3600
""")
    return path


def _count(pg_url):
    with psycopg.connect(pg_url) as c:
        try:
            return c.execute("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events").fetchone()
        except psycopg.errors.UndefinedTable:
            return (0, 0)


def _start(cfg, pg_url, log):
    env = {**__import__("os").environ, "MW_TEST_PG": pg_url}
    return run_daemon(cfg, log, env)


def _committed(bootstrap, group, topic, partitions):
    """The group's committed offsets, summed (read with OffsetFetch, without joining the group)."""
    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    try:
        return sum(c.committed(TopicPartition(topic, p)) or 0 for p in range(partitions))
    finally:
        c.close(autocommit=False)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _settled_count(pg_url, quiet_s: float = 1.0):
    """The stored count once it has stopped changing (a killed daemon's workers die with it)."""
    last, since = _count(pg_url)[0], time.time()
    while time.time() - since < quiet_s:
        time.sleep(0.1)
        now = _count(pg_url)[0]
        if now != last:
            last, since = now, time.time()
    return last


@pytest.mark.parametrize("db", ["postgres", "timescale"])
@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "2-workers"])
def test_sigkill_midway_then_restart_stores_exactly_every_event(
    tmp_path, request, kafka_bootstrap, workers, db
):
    pg_url = request.getfixturevalue("pg_url" if db == "postgres" else "timescale_url")
    n, parts = 10_000, 2
    topic, group = f"inf-{uuid.uuid4().hex[:8]}", f"mw-{uuid.uuid4().hex[:8]}"
    make_topics(kafka_bootstrap, [topic, f"{topic}-labels"], partitions=parts)
    produce_inferences(kafka_bootstrap, topic, n, parts)

    cfg = _config(tmp_path, pg_url, kafka_bootstrap, topic, group, workers=workers)
    with open(tmp_path / "run1.log", "wb") as log:
        p1 = _start(cfg, pg_url, log)
        deadline = time.time() + 120
        while _count(pg_url)[0] < 1500 and time.time() < deadline and p1.poll() is None:
            time.sleep(0.02)
        p1.send_signal(signal.SIGKILL)
        p1.wait()
    if workers:  # the kernel ends the workers with the daemon: no orphan goes on writing
        pids = (
            re.search(
                r"pipeline worker processes started \(pids ([\d, ]+)\)", (tmp_path / "run1.log").read_text()
            )
            .group(1)
            .split(", ")
        )
        deadline = time.time() + 10
        while time.time() < deadline and any(_alive(int(p)) for p in pids):
            time.sleep(0.05)
        assert not any(_alive(int(p)) for p in pids)
    stored_at_kill = _settled_count(pg_url)
    assert 0 < stored_at_kill < n, f"kill landed at {stored_at_kill}; the test needs it midway"
    committed_at_kill = _committed(kafka_bootstrap, group, topic, parts)
    assert committed_at_kill <= stored_at_kill  # offsets never run ahead of the store

    with open(tmp_path / "run2.log", "wb") as log:
        p2 = _start(cfg, pg_url, log)
        deadline = time.time() + 180
        while _committed(kafka_bootstrap, group, topic, parts) < n and time.time() < deadline:
            time.sleep(0.2)
        p2.send_signal(signal.SIGTERM)  # finishes the batch, commits, exits
        assert p2.wait(30) == 0
    assert _count(pg_url) == (n, n)
    assert _committed(kafka_bootstrap, group, topic, parts) == n
    store = PostgresStore(pg_url)  # the summaries count each event once, the killed batch's too
    assert assert_summaries_are_a_recomputation(store, load_config(cfg, {"MW_TEST_PG": pg_url})) > 10
    store.close()
    stats = re.search(r"stopped: (\{.*\})", (tmp_path / "run2.log").read_text()).group(1)
    resumed = eval(stats)  # the daemon's own summary line: a dict literal of ints
    # the restart resumed from the committed offsets: it re-read at most what was not committed
    assert resumed["messages"] == n - committed_at_kill
    assert resumed["stored"] == n - stored_at_kill


@pytest.mark.parametrize("workers", [0, 2], ids=["in-process", "2-workers"])
def test_postgres_restarted_mid_stream_the_daemon_recovers_alone(tmp_path, kafka_bootstrap, workers):
    """The database goes away under a running daemon (a failover, a restart for an upgrade) and
    comes back: the daemon stays up, says why it is not ready meanwhile, and ends with every
    event stored once, without a restart of its own."""
    from tests.conftest import PgCluster, _unavailable, free_port

    cluster, why = PgCluster.start()
    if cluster is None:  # under CI=true a failure, not a skip
        _unavailable("a PostgreSQL cluster of its own (initdb/pg_ctl)", why)
    try:
        n, parts = 6000, 2
        topic, group = f"inf-{uuid.uuid4().hex[:8]}", f"mw-{uuid.uuid4().hex[:8]}"
        make_topics(kafka_bootstrap, [topic, f"{topic}-labels"], partitions=parts)
        produce_inferences(kafka_bootstrap, topic, n, parts)
        hport = free_port()
        cfg = _config(tmp_path, cluster.url, kafka_bootstrap, topic, group, batch=100, workers=workers)
        cfg.write_text(cfg.read_text().replace("enabled: false", f"port: {hport}"))
        ready = f"http://127.0.0.1:{hport}/readyz"
        with open(tmp_path / "daemon.log", "wb") as log:
            daemon = _start(cfg, cluster.url, log)
            try:
                deadline = time.time() + 120
                while _count(cluster.url)[0] < 1000 and time.time() < deadline and daemon.poll() is None:
                    time.sleep(0.02)
                cluster.ctl("stop", "-m", "fast")
                reasons, deadline = [], time.time() + 45
                while not reasons and time.time() < deadline and daemon.poll() is None:
                    reasons = http_json(ready, timeout=5)[1]["reasons"]
                    time.sleep(0.5)
                assert daemon.poll() is None, "the daemon exited while the database was away"
                assert any(r.startswith(("store:", "ingest:")) for r in reasons), reasons
                cluster.ctl("start")
                deadline = time.time() + 120
                while _committed(kafka_bootstrap, group, topic, parts) < n and time.time() < deadline:
                    time.sleep(0.3)
                assert http_json(ready, timeout=5)[0] == 200
                daemon.send_signal(signal.SIGTERM)
                assert daemon.wait(30) == 0
            finally:
                if daemon.poll() is None:
                    daemon.kill()
        assert _count(cluster.url) == (n, n)
        with psycopg.connect(cluster.url) as c:  # the stopped process took its schedule with it
            assert c.execute("SELECT COUNT(*) FROM scheduler_jobs").fetchone() == (0,)
        assert b"Traceback" not in (tmp_path / "daemon.log").read_bytes()
    finally:
        cluster.stop()
