"""KafkaSource against a real broker that is down at first (the daemon waits and retries, then
reads), or that goes away mid-stream (HTTP ingest goes on, /readyz says why)."""

import json
import signal
import time
import urllib.error
import urllib.request
import uuid

from kafka import KafkaProducer

from connectors.sqlite import SqliteStore
from tests.conftest import _unavailable, free_port, make_topics, run_daemon, start_tansu, stop_process
from tests.helpers import http_json, inference, label


def test_broker_down_then_up_daemon_retries_without_crashing(tmp_path):
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    topic = f"inf-{uuid.uuid4().hex[:6]}"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"""
store: {{path: {tmp_path / "mw.db"}}}
ingest:
  http: {{enabled: false}}
  kafka:
    bootstrap_servers: ["{bootstrap}"]
    group_id: g-{topic}
    events_topic: {topic}
    labels_topic: {topic}-labels
    session_timeout_ms: 6000
    max_poll_interval_ms: 5000
    retry_initial_s: 0.5
    retry_max_s: 2
""")
    log = open(tmp_path / "daemon.log", "wb")
    daemon = run_daemon(cfg, log)
    broker = None
    try:
        time.sleep(4)
        assert daemon.poll() is None, (tmp_path / "daemon.log").read_text()[-2000:]
        broker, why = start_tansu(port)
        assert broker is not None, why
        make_topics(bootstrap, [topic, f"{topic}-labels"])
        prod = KafkaProducer(bootstrap_servers=bootstrap)
        for i in range(100):
            prod.send(topic, json.dumps(inference(i)).encode())
        prod.send(f"{topic}-labels", json.dumps(label(3)).encode())
        prod.send(topic, b"{oops")
        prod.flush()
        prod.close()
        deadline = time.time() + 90
        counts = {}
        while time.time() < deadline:
            try:
                counts = SqliteStore(tmp_path / "mw.db").ops.counts()
            except Exception:  # noqa: BLE001 - schema may still be being created
                counts = {}
            if counts.get("events") == 100 and counts.get("labels") == 1 and counts.get("dead_letters") == 1:
                break
            time.sleep(0.5)
        assert (counts.get("events"), counts.get("labels"), counts.get("labels_joined")) == (100, 1, 1)
        dl = SqliteStore(tmp_path / "mw.db").ops.dead_letters()
        assert dl[0].position == f"{topic}/0/100" and dl[0].reason.startswith("malformed JSON")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        if broker is not None:
            stop_process(broker)
        log.close()


def _get(url: str) -> tuple[int, dict]:
    return http_json(url, timeout=10)


def test_kafka_stopped_mid_stream_http_ingest_goes_on_and_readyz_says_why(tmp_path):
    kport, hport = free_port(), free_port()
    broker, why = start_tansu(kport)
    if broker is None:
        _unavailable("Kafka", why)
    bootstrap, topic = f"127.0.0.1:{kport}", f"inf-{uuid.uuid4().hex[:6]}"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"""
store: {{path: {tmp_path / "mw.db"}}}
ingest:
  http: {{port: {hport}}}
  kafka: {{bootstrap_servers: ["{bootstrap}"], group_id: g-{topic}, events_topic: {topic},
          labels_topic: {topic}-labels, session_timeout_ms: 6000}}
""")
    base = f"http://127.0.0.1:{hport}"
    log = open(tmp_path / "daemon.log", "wb")
    daemon = run_daemon(cfg, log)
    try:
        make_topics(bootstrap, [topic, f"{topic}-labels"])
        prod = KafkaProducer(bootstrap_servers=bootstrap)
        for i in range(200):
            prod.send(topic, json.dumps(inference(i)).encode())
        prod.flush()
        prod.close()
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                status = _get(base + "/v1/status")[1]
            except OSError:
                status = {}
            if status.get("stored") == 200:
                break
            time.sleep(0.3)
        assert _get(base + "/readyz")[0] == 200
        stop_process(broker)  # mid-stream: the consumer was connected and reading
        broker = None
        started = time.monotonic()
        for i in range(200, 210):
            req = urllib.request.Request(
                base + "/v1/events", json.dumps(inference(i)).encode(), {"Content-Type": "application/json"}
            )
            with urllib.request.urlopen(req, timeout=10) as r:
                assert r.status == 200 and json.loads(r.read())["accepted"] == 1
        assert time.monotonic() - started < 5  # not held up by the lost broker
        deadline = time.time() + 30
        while time.time() < deadline:
            code, ready = _get(base + "/readyz")
            if code == 503:
                break
            time.sleep(0.3)
        assert code == 503 and any(r.startswith("kafka: no connection to a broker") for r in ready["reasons"])
        assert _get(base + "/livez")[0] == 200
        assert SqliteStore(tmp_path / "mw.db").ops.counts()["events"] == 210
        stopped = time.monotonic()
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0 and time.monotonic() - stopped < 20
    finally:
        if daemon.poll() is None:
            daemon.kill()
        if broker is not None:
            stop_process(broker)
        log.close()
    assert b"Traceback" not in (tmp_path / "daemon.log").read_bytes()


def _new_topics(bootstrap: str, **settings):
    """A fresh inference topic and its labels topic, and a consumer config of a group of its own."""
    from monitor.config import KafkaConfig

    topic = f"inf-{uuid.uuid4().hex[:6]}"
    make_topics(bootstrap, [topic, f"{topic}-labels"])
    kc = KafkaConfig(
        bootstrap_servers=[bootstrap],
        group_id=f"g-{topic}",
        events_topic=topic,
        labels_topic=f"{topic}-labels",
        session_timeout_ms=6000,
        **settings,
    )
    return topic, kc


def test_commit_covers_only_the_polls_the_store_has_committed(kafka_bootstrap):
    """The daemon polls ahead of the store (worker processes): committing the oldest poll must
    commit its end, not the consumer's position, which already covers the next poll."""
    from kafka import KafkaConsumer, TopicPartition

    from connectors.kafka import KafkaSource

    topic, kc = _new_topics(kafka_bootstrap, max_poll_interval_ms=5000)
    prod = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    for i in range(30):
        prod.send(topic, json.dumps(inference(i)).encode(), partition=0)
    prod.flush()
    prod.close()
    src = KafkaSource(kc, 1 << 20)

    def committed() -> int | None:
        c = KafkaConsumer(bootstrap_servers=kafka_bootstrap, group_id=kc.group_id, enable_auto_commit=False)
        try:
            return c.committed(TopicPartition(topic, 0))
        finally:
            c.close(autocommit=False)

    try:
        first: list = []
        deadline = time.time() + 60
        while not first and time.time() < deadline:
            first = src.poll(10, timeout_s=0.5)
        second = src.poll(10, timeout_s=5)
        assert [m.position for m in first] == [f"{topic}/0/{i}" for i in range(10)]
        assert [m.position for m in second] == [f"{topic}/0/{i}" for i in range(10, 20)]
        src.commit([])  # the first poll is stored; the second is not yet
        deadline = time.time() + 10
        while committed() != 10 and time.time() < deadline:
            time.sleep(0.1)
        assert committed() == 10
        src.commit([])  # sent now, or — while the first request is unanswered — with the next poll
        deadline = time.time() + 10
        while committed() != 20 and time.time() < deadline:
            src.poll(10, timeout_s=0.2)  # the third poll (20-29) is never committed
        assert committed() == 20
    finally:
        src.close()  # makes the last asynchronous commit sure
    assert committed() == 20


def test_ready_only_once_the_group_assigned_the_partitions(kafka_bootstrap):
    """/readyz asks the source's health: a consumer that is connected but has not finished joining
    its group reads nothing yet, and must not be called ready."""
    from connectors.kafka import KafkaSource

    topic, kc = _new_topics(kafka_bootstrap)
    src = KafkaSource(kc, 1 << 20)
    seen = []
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            why = src.health()
            if not seen or seen[-1][0] != why:
                seen.append((why, src.assigned_partitions()))
            if why is None:
                break
            src.poll(10, timeout_s=0.05)
        assert seen[0][0] == "connecting"
        assert any(w and w.startswith(f"joining consumer group g-{topic}") for w, _ in seen), seen
        assert seen[-1] == (None, [f"{topic}-labels/0", f"{topic}/0"]), seen
    finally:
        src.close()
