"""Pipeline worker processes (ingest.workers) against a real PostgreSQL: the same outcomes as the
daemon's own process, failures that stop the daemon loudly, and detector states that two writers
update without losing each other's observations."""

import json
import os
import signal
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone

import numpy as np
import psycopg
import pytest

from connectors.postgres import PostgresStore
from monitor.config import parse_config
from monitor.runtime import utcnow
from monitor.pipeline import Pipeline, RawMessage
from monitor.workers import WorkerError, Workers
from tests.helpers import T0, assert_summaries_are_a_recomputation, b64, inference, label


def _cfg(url: str, workers: int = 1):
    return parse_config(
        f'store: {{kind: postgres, url: "{url}", batch_size: 100}}\ningest: {{workers: {workers}}}\n'
    )


def _batches():
    bad = inference(3)
    bad["output"]["confidence"] = 1.5
    partial = inference(
        4,
        inputs={"image": {"data_b64": b64(b"GIF89a not an image")}, "text": {"data_b64": b64(b"some words")}},
    )
    first = [
        json.dumps(inference(1)).encode(),
        json.dumps(inference(2)).encode(),
        b"{oops",
        json.dumps(bad).encode(),
        json.dumps(partial).encode(),
    ]
    second = [json.dumps(inference(1)).encode(), json.dumps(label(2)).encode(), json.dumps(label(2)).encode()]
    return (
        [RawMessage("t", f"t/0/{i}", p, "inference") for i, p in enumerate(first)],
        [
            RawMessage("t", f"t/0/{5 + i}", p, "inference" if i == 0 else "label")
            for i, p in enumerate(second)
        ],
    )


def test_workers_give_the_outcomes_and_rows_of_the_daemons_own_process(pg_url, second_pg_url):
    for url in (pg_url, second_pg_url):
        PostgresStore(url).migrate()
    store = PostgresStore(pg_url)
    pipeline = Pipeline(_cfg(pg_url), store, utcnow)
    expected = [pipeline.process(b) for b in _batches()]
    store.close()

    workers = Workers(
        _cfg(second_pg_url), 1
    )  # one worker: the two batches in order, like the daemon's process
    try:
        first, second = _batches()
        workers.submit(7, first)
        workers.submit(8, second)
        got: dict = {}
        deadline = time.time() + 60
        while len(got) < 2 and time.time() < deadline:
            got.update(workers.wait(timeout=1))
    finally:
        workers.close()
    assert [got[7], got[8]] == expected
    statuses = [o.status for o in got[7]] + [o.status for o in got[8]]
    assert statuses == [
        "stored",
        "stored",
        "dead_letter",
        "dead_letter",
        "stored",
        "duplicate",
        "stored",
        "duplicate",
    ]
    assert got[7][4].reason.startswith("partial: image: cannot decode")

    def rows(url):
        with psycopg.connect(url) as c:
            return (
                c.execute(
                    "SELECT event_id, slice, signal_values, position FROM events ORDER BY 1"
                ).fetchall(),
                c.execute("SELECT event_id, label FROM labels ORDER BY 1").fetchall(),
                c.execute("SELECT position, reason FROM dead_letters ORDER BY 1").fetchall(),
            )

    assert rows(second_pg_url) == rows(pg_url)


def test_a_worker_that_dies_stops_the_daemon_with_the_reason(pg_url):
    PostgresStore(pg_url).migrate()
    workers = Workers(_cfg(pg_url), 1)
    try:
        workers.submit(1, _batches()[0])  # held by the worker when it dies (or before it read it)
        os.kill(workers._procs[0].pid, signal.SIGKILL)
        with pytest.raises(
            WorkerError,
            match=r"pipeline worker 0 exited \(exit code -9\); the batches it held were"
            r" not committed",
        ):
            workers.wait(timeout=30)
        with pytest.raises(WorkerError, match=r"pipeline worker 0 exited \(exit code -9\)"):
            workers.submit(2, _batches()[1])
    finally:
        workers.close()


def test_a_worker_that_cannot_start_names_the_reason(pg_server_url):
    url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"
    with pytest.raises(WorkerError, match=r"(?s)pipeline worker 0 failed.*OperationalError"):
        Workers(_cfg(url), 1)


def test_two_writers_update_the_detector_states_without_losing_observations(pg_url):
    """Two writers (workers, replicas) feed labels of the same slices at once: every (event,
    label) pair is counted once in each slice's ADWIN state."""
    PostgresStore(pg_url).migrate()
    n = 400
    store = PostgresStore(pg_url)
    Pipeline(_cfg(pg_url), store, utcnow).process(
        [RawMessage("seed", f"s:{i}", json.dumps(inference(i)).encode(), "inference") for i in range(n)]
    )
    store.close()

    def feed(source: str, ids: range) -> None:
        st = PostgresStore(pg_url)
        p = Pipeline(_cfg(pg_url), st, utcnow)
        for k in range(ids.start, ids.stop, 10):  # many small batches: many chances to interleave
            p.process(
                [
                    RawMessage(source, f"{source}:{i}", json.dumps(label(i)).encode(), "label")
                    for i in range(k, min(k + 10, ids.stop))
                ]
            )
        st.close()

    # different sources: their ingest counters are different rows, so nothing else serialises them
    threads = [
        threading.Thread(target=feed, args=("a", range(0, n // 2))),
        threading.Thread(target=feed, args=("b", range(n // 2, n))),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    store = PostgresStore(pg_url)
    _feed_what_is_held(store)
    state = store.ops.states(["adwin:m|*"])["adwin:m|*"]
    store.close()
    from detectors.online import ADWINDetector

    assert ADWINDetector.from_state_dict(state).n_seen == n


def _feed_what_is_held(store) -> None:
    """Feed the pairs the online check's hold keeps behind the watermark, as an evaluation does."""
    from monitor.checks.online import OnlineConfig, OnlineErrorRate
    from monitor.online import OnlineLane

    OnlineLane(OnlineErrorRate(OnlineConfig(), 0.05), store).advance(store.events.watermark(), utcnow())


def test_events_and_their_labels_stored_by_two_writers_at_once_find_what_one_writer_finds(
    pg_url, second_pg_url
):
    """One writer stores events while another stores their labels, batch against batch, up to 3
    batches apart, each taking neighbouring batches in either order: each pair is fed once — by
    whichever writer completes it, after the other's commit — in event-time order, so the
    findings are those of one writer storing everything in order, row for row."""
    from tests.monitor.test_pipeline import _stream

    msgs = _stream(n=3000, change_at=1500)
    events = [m for m in msgs if ":e" in m.position]
    labels = [m for m in msgs if ":l" in m.position]
    cfg = (
        f'store: {{kind: postgres, url: "{pg_url}", batch_size: 100}}\n'
        "evaluation: {checks: {online: {hold: 15m}}}\n"
    )
    for url in (pg_url, second_pg_url):
        PostgresStore(url).migrate()
    one = PostgresStore(second_pg_url)
    p = Pipeline(parse_config(cfg.replace(pg_url, second_pg_url)), one, lambda: T0 + timedelta(days=9))
    for k in range(0, len(events), 10):
        p.process(events[k : k + 10])
        p.process(labels[k : k + 10])
    done = [0, 0]
    turn = threading.Condition()

    def feed(who: int, part: list) -> None:
        st = PostgresStore(pg_url)
        pipe = Pipeline(parse_config(cfg), st, lambda: T0 + timedelta(days=9))
        batches = [part[k : k + 10] for k in range(0, len(part), 10)]
        rng = np.random.default_rng(who)
        for i in range(0, len(batches) - 1, 2):
            if rng.uniform() < 0.5:
                batches[i], batches[i + 1] = batches[i + 1], batches[i]
        for n, batch in enumerate(batches):
            with turn:  # at most 3 batches ahead of the other writer: 400 s of event time < the hold
                turn.wait_for(lambda: n - done[1 - who] <= 3, timeout=60)
            pipe.process(batch)
            with turn:
                done[who] += 1
                turn.notify_all()
        st.close()

    threads = [
        threading.Thread(target=feed, args=(0, events)),
        threading.Thread(target=feed, args=(1, labels)),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    two = PostgresStore(pg_url)
    for st in (one, two):
        _feed_what_is_held(st)

    def found(st):
        return st.db.all("SELECT ts, slice, value, detail FROM findings ORDER BY ts, slice")

    from detectors.online import ADWINDetector

    states = [ADWINDetector.from_state_dict(st.ops.states(["adwin:m|*"])["adwin:m|*"]) for st in (one, two)]
    assert [s.n_seen for s in states] == [3000, 3000]
    assert found(one) and any(r[1] == "device=d1" for r in found(one))
    assert found(two) == found(one)
    # and each pair is in the summaries once: those of two writers are a recomputation's
    for st, url in ((one, second_pg_url), (two, pg_url)):
        assert assert_summaries_are_a_recomputation(st, parse_config(cfg.replace(pg_url, url))) > 100
    one.close()
    two.close()


def test_workers_refuse_a_daemon_with_its_own_clock(pg_url):
    """Workers stamp batches with the wall clock: a daemon on another clock (the demo's accelerated
    event time) must run its pipeline in its own process, and is told so."""
    from datetime import datetime, timezone

    from monitor.daemon import Daemon

    store = PostgresStore(pg_url)
    store.migrate()
    d = Daemon(_cfg(pg_url, 2), [], store, {}, clock=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))
    with pytest.raises(ValueError, match=r"ingest\.workers: 2 runs the pipeline on the wall clock"):
        d.main_loop()
    store.close()


def test_two_writers_keep_the_daily_review_budget(pg_url):
    """Two writers (here two model versions, so nothing else orders their transactions) queue
    uncertain events of one stratum at once: the stratum's daily budget holds."""
    PostgresStore(pg_url).migrate()
    cfg = parse_config(
        f'store: {{kind: postgres, url: "{pg_url}"}}\n'
        "review: {daily_budget_per_stratum: 30, stratify_by: [device]}\n"
    )
    now = datetime.now(timezone.utc)

    def batch(version: str, ids: range) -> list[RawMessage]:
        return [
            RawMessage(
                version,
                f"{version}:{i}",
                json.dumps(
                    inference(
                        i,
                        ts=now - timedelta(hours=1),
                        model={"name": "m", "version": version},
                        slice={"device": "cam"},
                        output={"label": "cat", "confidence": 0.1},
                    )
                ).encode(),
                "inference",
            )
            for i in ids
        ]

    a, b = PostgresStore(pg_url), PostgresStore(pg_url)
    # the signal layout is stored first (inserting a new one would order the two transactions)
    Pipeline(cfg, a, utcnow).process(
        [RawMessage("0", "0:0", json.dumps(inference(999)).encode(), "inference")]
    )
    with a.tx():  # a's batch fills the budget and is not committed yet when b's comes
        Pipeline(cfg, a, utcnow).process(batch("1", range(0, 40)))
        t = threading.Thread(target=lambda: Pipeline(cfg, b, utcnow).process(batch("2", range(40, 80))))
        t.start()
        t.join(1.0)
    t.join(30)
    with psycopg.connect(pg_url) as c:
        assert c.execute("SELECT count(*) FROM review_items").fetchone()[0] == 30
    a.close()
    b.close()


class _Proxy:
    """A TCP proxy to PostgreSQL that the test can cut: the database 'goes away' for the daemon."""

    def __init__(self, host: str, port: int):
        import socket

        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.socks: list = []
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import socket

        while self.open:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.open:
                client.close()
                return
            server = socket.create_connection(self.target)
            self.socks += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a, b) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.close()
                except OSError:
                    pass

    def cut(self) -> None:
        import socket

        self.open = False
        for s in [self.listener, *self.socks]:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


def test_sigterm_while_the_database_is_away_stops_workers_and_commits_nothing(tmp_path, pg_url):
    """A worker retrying a batch against a database that went away gives it up when the daemon is
    stopped: the daemon exits promptly, the waiting HTTP client is told to retry (503)."""
    import urllib.error
    import urllib.parse
    import urllib.request

    from tests.conftest import free_port, run_daemon

    PostgresStore(pg_url).migrate()
    u = urllib.parse.urlsplit(pg_url)
    proxy = _Proxy(u.hostname, u.port or 5432)
    via_proxy = pg_url.replace(f"{u.hostname}:{u.port or 5432}", f"127.0.0.1:{proxy.port}", 1)
    port = free_port()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f'store: {{kind: postgres, url: "{via_proxy}"}}\n'
        f"ingest: {{workers: 1, http: {{port: {port}}}}}\nevaluation: {{tick_s: 3600}}\n"
    )
    log = open(tmp_path / "daemon.log", "wb")
    proc = run_daemon(cfg, log)
    base = f"http://127.0.0.1:{port}"

    def post(ids, timeout=30):
        req = urllib.request.Request(
            base + "/v1/events",
            data=json.dumps([inference(i) for i in ids]).encode(),
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code

    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                urllib.request.urlopen(base + "/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        assert post(range(10)) == 200
        proxy.cut()
        answers = {}
        t = threading.Thread(target=lambda: answers.update(second=post(range(10, 20), timeout=60)))
        t.start()
        time.sleep(3)  # the worker is retrying the batch
        assert t.is_alive() and proc.poll() is None
        t0 = time.time()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert time.time() - t0 < 15
        t.join(10)
        assert answers["second"] == 503
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    text = (tmp_path / "daemon.log").read_text()
    assert "retrying the batch" in text
    with psycopg.connect(pg_url) as c:
        assert c.execute("SELECT count(*) FROM events").fetchone()[0] == 10


def test_kafka_events_and_labels_through_two_workers(tmp_path, pg_url, kafka_bootstrap):
    """`modalwatch run` with 2 workers reads events and their labels from Kafka: every event
    stored once, every label joined, each (event, label) pair fed once to the slices' detectors."""

    from kafka import KafkaProducer

    from tests.conftest import make_topics, run_daemon

    n = 2000
    topic = f"inf-{uuid.uuid4().hex[:8]}"
    make_topics(kafka_bootstrap, [topic, f"{topic}-labels"], partitions=2)
    prod = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=20)
    for i in range(n):
        prod.send(topic, json.dumps(inference(i)).encode(), partition=i % 2)
        if i % 2 == 0:  # half of them labelled, some labels before their event
            prod.send(f"{topic}-labels", json.dumps(label(i)).encode(), partition=i % 2)
    prod.flush()
    prod.close()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f'store: {{kind: postgres, url: "{pg_url}", batch_size: 100}}\n'
        f"ingest:\n  workers: 2\n  http: {{enabled: false}}\n"
        f"  kafka: {{bootstrap_servers: ['{kafka_bootstrap}'], group_id: g-{topic}, events_topic: {topic},"
        f" labels_topic: {topic}-labels, max_poll_records: 100, session_timeout_ms: 6000,"
        f" max_poll_interval_ms: 5000}}\nevaluation: {{tick_s: 3600}}\n"
    )
    PostgresStore(pg_url).migrate()
    with open(tmp_path / "daemon.log", "wb") as log:
        proc = run_daemon(cfg, log)
        try:
            store = PostgresStore(pg_url)
            deadline = time.time() + 120
            while time.time() < deadline:
                counts = store.ops.counts()
                if counts["events"] == n and counts["labels_joined"] == n // 2:
                    break
                time.sleep(0.3)
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    counts = store.ops.counts()
    assert (counts["events"], counts["labels"], counts["labels_joined"]) == (n, n // 2, n // 2)
    from detectors.online import ADWINDetector

    _feed_what_is_held(store)  # the pairs of the hold's last minute, as a window's evaluation would
    states = store.ops.states(["adwin:m|*", "adwin:m|device=d0"])
    assert ADWINDetector.from_state_dict(states["adwin:m|*"]).n_seen == n // 2
    assert ADWINDetector.from_state_dict(states["adwin:m|device=d0"]).n_seen == len(range(0, n, 6))
    assert assert_summaries_are_a_recomputation(store, parse_config(cfg.read_text())) > 10
    store.close()
