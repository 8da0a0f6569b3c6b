"""KafkaSource against a real broker that is down at first: the daemon waits and retries, then reads."""
import json
import signal
import subprocess
import time
import uuid

from kafka import KafkaProducer

from connectors.sqlite import SqliteStore
from tests.conftest import ROOT, free_port, make_topics, modalwatch_cmd, start_tansu, stop_process
from tests.helpers import inference, label


def test_broker_down_then_up_daemon_retries_without_crashing(tmp_path):
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    topic = f"inf-{uuid.uuid4().hex[:6]}"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"""
store: {{path: {tmp_path / 'mw.db'}}}
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
    daemon = subprocess.Popen(modalwatch_cmd() + ["run", "--config", str(cfg)], cwd=ROOT, stdout=log,
                              stderr=subprocess.STDOUT)
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
                counts = SqliteStore(tmp_path / "mw.db").counts()
            except Exception:  # noqa: BLE001 - schema may still be being created
                counts = {}
            if counts.get("events") == 100 and counts.get("labels") == 1 and counts.get("dead_letters") == 1:
                break
            time.sleep(0.5)
        assert (counts.get("events"), counts.get("labels"), counts.get("labels_joined")) == (100, 1, 1)
        dl = SqliteStore(tmp_path / "mw.db").dead_letters()
        assert dl[0]["position"] == f"{topic}/0/100" and dl[0]["reason"].startswith("malformed JSON")
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(30) == 0
    finally:
        if daemon.poll() is None:
            daemon.kill()
        if broker is not None:
            stop_process(broker)
        log.close()
