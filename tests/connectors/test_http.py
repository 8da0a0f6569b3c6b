"""HTTP ingest served by the daemon: answers after the store commit, 400/413 with reasons."""

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from connectors.http import HttpSource
from connectors.sqlite import SqliteStore
from monitor.config import Config
from monitor.daemon import Daemon
from tests.helpers import b64, http_json, inference, label


@pytest.fixture
def daemon(tmp_path):
    cfg = Config()
    cfg.ingest.max_payload_bytes = 4096
    store = SqliteStore(tmp_path / "mw.db")
    src = HttpSource("127.0.0.1", 0, cfg.ingest.max_payload_bytes)
    d = Daemon(cfg, [src], store, {})
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    reader = SqliteStore(tmp_path / "mw.db")  # the daemon's connection belongs to its thread
    yield d, f"http://127.0.0.1:{src.port}", reader
    d.should_exit = True
    t.join(10)
    reader.close()
    store.close()


def _post(url, body: bytes, ctype="application/json"):
    return http_json(url, body, ctype)


def test_array_and_ndjson_are_stored_before_the_answer(daemon):
    d, base, store = daemon
    code, body = _post(base + "/v1/events", json.dumps([inference(i) for i in range(5)]).encode())
    assert (code, body["accepted"], body["rejected"]) == (200, 5, [])
    assert store.ops.counts()["events"] == 5  # committed when the answer came
    nd = "\n".join(json.dumps(label(i)) for i in range(3)).encode()
    code, body = _post(base + "/v1/labels", nd, "application/x-ndjson")
    assert (code, body["accepted"]) == (200, 3)
    assert store.ops.counts()["labels_joined"] == 3


def test_bad_items_get_400_with_reasons_and_the_good_ones_are_kept(daemon):
    d, base, store = daemon
    bad = inference(2)
    bad["output"]["confidence"] = -0.1
    items = [inference(1), bad, label(1)]  # a label where inference events go
    code, body = _post(base + "/v1/events", json.dumps(items).encode())
    assert code == 400 and body["accepted"] == 1
    reasons = {r["index"]: r["reason"] for r in body["rejected"]}
    assert set(reasons) == {1, 2}
    assert "output.confidence" in reasons[1] and "'label' event was sent where 'inference'" in reasons[2]
    dl = store.ops.dead_letters()
    assert {r.position for r in dl} == {f"http:{body['request_id']}#1", f"http:{body['request_id']}#2"}
    assert store.ops.counts()["events"] == 1


def test_media_that_fails_is_named_in_a_200_answer_and_the_event_kept(daemon):
    d, base, store = daemon
    ok = inference(1, inputs={"text": {"data_b64": b64("hello world".encode())}})
    bad = inference(
        2, inputs={"image": {"data_b64": b64(b"GIF89a not really")}, "text": {"data_b64": b64(b"two words")}}
    )
    code, body = _post(base + "/v1/events", json.dumps([ok, bad]).encode())
    assert (code, body["accepted"], body["rejected"]) == (200, 2, [])
    (p,) = body["partial"]
    assert p["index"] == 1 and p["reason"].startswith("partial: image: cannot decode")
    assert store.ops.counts()["events"] == 2
    assert [r.position for r in store.ops.dead_letters()] == [f"http:{body['request_id']}#1#image"]


def test_malformed_body_and_oversize(daemon):
    d, base, store = daemon
    code, body = _post(base + "/v1/events", b"[{broken")
    assert code == 400 and body["rejected"][0]["reason"].startswith("malformed JSON")
    code, body = _post(base + "/v1/events", json.dumps([inference(i) for i in range(40)]).encode())
    assert code == 413 and "ingest.max_payload_bytes=4096" in body["error"]
    assert store.ops.counts()["dead_letters"] == 2 and store.ops.counts()["events"] == 0
    # the daemon is still serving
    assert _post(base + "/v1/events", json.dumps(inference(9)).encode())[0] == 200


def test_a_commit_answers_only_the_requests_of_the_poll_it_is_for():
    """The daemon may poll again before the store has committed the last poll (worker
    processes): a request is answered when its own poll is committed, not before."""
    from monitor.pipeline import Outcome

    src = HttpSource("127.0.0.1", 0, 4096)
    src.start()
    url = f"http://127.0.0.1:{src.port}/v1/events"
    answers: dict[int, tuple] = {}

    def post(i: int) -> None:
        answers[i] = _post(url, json.dumps(inference(i)).encode())

    def poll_one():
        deadline = time.time() + 10
        while time.time() < deadline:
            msgs = src.poll(100, timeout_s=0.2)
            if msgs:
                return msgs
        raise AssertionError("no request came")

    try:
        threads = [threading.Thread(target=post, args=(i,)) for i in (1, 2)]
        threads[0].start()
        first = poll_one()
        threads[1].start()
        second = poll_one()
        src.commit([Outcome(m.position, "stored") for m in first])
        threads[0].join(10)
        assert answers[1][0] == 200 and answers[1][1]["accepted"] == 1
        time.sleep(0.3)
        assert 2 not in answers  # its poll is not committed yet
        src.commit([Outcome(m.position, "stored") for m in second])
        threads[1].join(10)
        assert answers[2][0] == 200 and answers[2][1]["accepted"] == 1
    finally:
        src.close()


def _request(url, body: bytes | None = None, headers: dict | None = None, method="POST"):
    req = urllib.request.Request(
        url, data=body, headers={"Content-Type": "application/json", **(headers or {})}, method=method
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_request_ids_are_the_servers_and_a_client_id_is_only_echoed(daemon):
    """Two requests at once with one X-Request-Id: both answered, each with its own id, and their
    dead letters are two rows (the client's id is a label, not a key)."""
    d, base, store = daemon
    bad = inference(1)
    bad["output"]["confidence"] = 2.0
    answers = []
    threads = [
        threading.Thread(
            target=lambda: answers.append(
                _request(base + "/v1/events", json.dumps(bad).encode(), {"X-Request-Id": "same"})
            )
        )
        for _ in range(5)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [code for code, _ in answers] == [400] * 5
    assert {b["client_request_id"] for _, b in answers} == {"same"}
    assert len({b["request_id"] for _, b in answers}) == 5
    assert len(store.ops.dead_letters()) == 5


def test_one_json_document_is_one_item_and_ndjson_is_decided_by_content_type(daemon):
    d, base, store = daemon
    pretty = json.dumps(inference(1), indent=2).encode()  # one object over many lines
    code, body = _post(base + "/v1/events", pretty)
    assert code == 200 and body["accepted"] == 1 and body["rejected"] == []
    deep = b"[" * 100_000 + b"]" * 100_000  # an array a hundred thousand levels deep
    code, body = _post(base + "/v1/events", deep[:4000])
    assert code == 400 and "malformed JSON" in body["rejected"][0]["reason"]
    code, body = _post(base + "/v1/events", deep)  # over the size limit first
    assert code == 413
    nd = (json.dumps(inference(2)) + "\n" + json.dumps(inference(3)) + "\n").encode()
    assert _post(base + "/v1/events", nd, "application/json")[0] == 400  # two documents are not one
    code, body = _post(base + "/v1/events", nd, "application/x-ndjson")
    assert code == 200 and body["accepted"] == 2


def test_bearer_tokens_guard_the_writing_endpoints(tmp_path):
    cfg = Config()
    store = SqliteStore(tmp_path / "mw.db")
    tokens = ["first-token-0123456789", "second-token-0123456789"]
    src = HttpSource("127.0.0.1", 0, 1 << 20, tokens=tokens, ready=lambda: [])
    d = Daemon(cfg, [src], store, {})
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{src.port}"
    try:
        body = json.dumps(inference(1)).encode()
        assert _request(base + "/v1/events", body)[0] == 401
        assert _request(base + "/v1/events", body, {"Authorization": "Bearer nope"})[0] == 401
        assert _request(base + "/v1/events", body, {"Authorization": "Basic Zm9vOmJhcg=="})[0] == 401
        for token in tokens:  # either, while one is rotated in
            assert _request(base + "/v1/events", body, {"Authorization": f"Bearer {token}"})[0] == 200
        assert _request(base + "/livez", method="GET")[0] == 200  # reading endpoints stay open
        code, ready = _request(base + "/readyz", method="GET")
        assert code == 200 and ready["ready"] is True and ready["reasons"] == []
    finally:
        d.should_exit = True
        t.join(10)
        store.close()


def test_tokens_are_required_beyond_loopback_and_named_when_missing():
    from monitor.config import ConfigError, parse_config

    with pytest.raises(
        ConfigError, match=r"ingest\.http\.tokens: none given, and host 0\.0\.0\.0 binds beyond"
    ):
        parse_config("ingest:\n  http: {host: 0.0.0.0}\n")
    with pytest.raises(ConfigError, match="at least 16 characters"):
        parse_config("ingest:\n  http: {host: 0.0.0.0, tokens: [short]}\n")
    assert parse_config("ingest:\n  http: {host: 0.0.0.0, auth: off}\n").ingest.http.tokens_required is False


def test_with_kafka_away_http_ingest_goes_on_and_readyz_says_why(tmp_path):
    """Kafka unreachable: the daemon's loop does not wait for it — HTTP events are stored at once,
    /livez is up, /readyz is 503 naming Kafka — and a stop is prompt."""
    from connectors.kafka import KafkaSource
    from monitor.config import parse_config
    from tests.conftest import free_port

    cfg = parse_config(f"""
ingest:
  kafka: {{bootstrap_servers: ["127.0.0.1:{free_port()}"], retry_initial_s: 0.5, retry_max_s: 2}}
""")
    store = SqliteStore(tmp_path / "mw.db")
    d: Daemon | None = None
    src = HttpSource("127.0.0.1", 0, 1 << 20, ready=lambda: d.readiness())
    kafka = KafkaSource(cfg.ingest.kafka, cfg.ingest.max_payload_bytes, should_stop=lambda: d.should_exit)
    d = Daemon(cfg, [kafka, src], store, {})
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    base = f"http://127.0.0.1:{src.port}"
    try:
        started = time.monotonic()
        code, body = _request(base + "/v1/events", json.dumps(inference(1)).encode())
        assert code == 200 and body["accepted"] == 1 and time.monotonic() - started < 5
        assert _request(base + "/livez", method="GET")[0] == 200
        deadline = time.time() + 10
        while True:
            code, ready = _request(base + "/readyz", method="GET")
            if (
                code == 503
                and any(r.startswith("kafka:") for r in ready["reasons"])
                or time.time() > deadline
            ):
                break
            time.sleep(0.2)
        assert code == 503 and any("not reachable" in r or "connecting" in r for r in ready["reasons"]), ready
    finally:
        stopped = time.monotonic()
        d.should_exit = True
        t.join(15)
        assert not t.is_alive() and time.monotonic() - stopped < 10
        store.close()


def test_fifty_concurrent_clients_are_all_answered(daemon):
    d, base, store = daemon
    codes = []

    def client(k: int) -> None:
        for j in range(10):
            codes.append(_post(base + "/v1/events", json.dumps(inference(1000 + 10 * k + j)).encode())[0])

    threads = [threading.Thread(target=client, args=(k,)) for k in range(50)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert codes == [200] * 500 and store.ops.counts()["events"] == 500
