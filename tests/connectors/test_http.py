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
from tests.helpers import b64, inference, label


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
    req = urllib.request.Request(url, data=body, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


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
