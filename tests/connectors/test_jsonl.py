"""JSONL → SQLite through `modalwatch ingest`, the command users run."""

import json
import signal
import subprocess
import time

from connectors.sqlite import SqliteStore
from tests.conftest import modalwatch_cmd, ROOT
from tests.helpers import inference, label, write_jsonl


def _config(tmp_path, **extra):
    cfg = tmp_path / "mw.yaml"
    cfg.write_text(f"store:\n  path: {tmp_path / 'mw.db'}\n  batch_size: 500\n" + "".join(extra.values()))
    return cfg


def _run(*args, check=True):
    return subprocess.run(
        modalwatch_cmd() + list(args), cwd=ROOT, capture_output=True, text=True, check=check, timeout=300
    )


def test_interrupted_ingest_rerun_stores_each_event_once(tmp_path):
    n = 20_000
    data = write_jsonl(tmp_path / "events.jsonl", [inference(i) for i in range(n)])
    cfg = _config(tmp_path)
    proc = subprocess.Popen(
        modalwatch_cmd() + ["ingest", "--config", str(cfg), str(data)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    db = tmp_path / "mw.db"
    deadline = time.time() + 120
    stored = 0
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
        if db.exists():
            try:
                stored = SqliteStore(db).db.all("SELECT COUNT(*) FROM events")[0][0]
            except Exception:  # noqa: BLE001 - tables may not exist yet
                continue
            if stored >= 2000:
                break
    assert proc.poll() is None, "ingest finished before it could be interrupted; make the file larger"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = SqliteStore(db).db.all("SELECT COUNT(*) FROM events")[0][0]
    assert 0 < partial < n
    out = _run("ingest", "--config", str(cfg), str(data))
    assert f"read {n}" in out.stdout
    store = SqliteStore(db)
    assert store.db.all("SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events")[0] == (n, n)
    status = json.loads(_run("status", "--config", str(cfg), "--json").stdout)
    assert status["events"] == n and status["dead_letters"] == 0


def test_mixed_file_good_stored_bad_dead_lettered_with_line(tmp_path):
    big = inference(900, embeddings={"clip": [0.5] * 200})
    lines = [
        inference(1),  # 1 ok
        "{not json",  # 2 malformed
        {**inference(2), "output": {"label": "cat", "confidence": 1.7}},  # 3 out of range
        inference(3),  # 4 ok
        json.dumps(inference(4)).replace("100.0", "NaN").replace("104.0", "NaN"),  # 5 NaN
        label(99),  # 6 label for an unknown event: kept
        {**inference(5), "inputs": {"image": {"data_b64": "aGk="}}},  # 7 corrupt image: kept without it
        json.dumps(big),  # 8 too large for the configured limit
        "[1, 2]",  # 9 not an object
        {"event_id": "x"},  # 10 neither kind
    ]
    data = write_jsonl(tmp_path / "mixed.jsonl", lines)
    cfg = _config(tmp_path, ingest="ingest:\n  max_payload_bytes: 700\n")
    out = _run("ingest", "--config", str(cfg), str(data))
    # 3 events (one without its image) and 1 label
    assert (
        "stored 4 (1 without a modality whose media failed)" in out.stdout and "dead letters 6" in out.stdout
    )
    listed = [json.loads(x) for x in _run("dlq", "list", "--json", "--config", str(cfg)).stdout.splitlines()]
    by_line = {d["position"].rsplit(":", 1)[1].replace("#image", ""): d["reason"] for d in listed}
    by_line = {int(k): v for k, v in by_line.items()}
    assert sorted(by_line) == [2, 3, 5, 7, 8, 9, 10]
    assert listed[[d["reason"] for d in listed].index(by_line[7])]["position"].endswith(":7#image")
    assert by_line[2].startswith("malformed JSON")
    assert "output.confidence" in by_line[3] and "less than or equal to 1" in by_line[3]
    assert "finite" in by_line[5]
    assert by_line[7].startswith("image: cannot decode") and "e0000005 kept without it" in by_line[7]
    assert by_line[8].startswith("payload too large")
    assert "JSON object" in by_line[9]
    assert "cannot tell the event kind" in by_line[10]
    # re-ingesting the same file counts nothing twice, dead letters included
    _run("ingest", "--config", str(cfg), str(data))
    st = json.loads(_run("status", "--json", "--config", str(cfg)).stdout)
    assert (st["events"], st["labels"], st["dead_letters"]) == (3, 1, 7)


def test_dead_letters_replay_after_the_limit_is_raised(tmp_path):
    big = inference(1, embeddings={"clip": [0.125] * 200})
    data = write_jsonl(tmp_path / "e.jsonl", [big, inference(2)])
    strict = _config(tmp_path, ingest="ingest:\n  max_payload_bytes: 700\n")
    _run("ingest", "--config", str(strict), str(data))
    assert json.loads(_run("status", "--json", "--config", str(strict)).stdout)["dead_letters_pending"] == 1
    # the limit raised, the kept payload goes through; replaying twice stores it once
    (tmp_path / "loose.yaml").write_text(f"store:\n  path: {tmp_path / 'mw.db'}\n")
    loose = tmp_path / "loose.yaml"
    assert "replayed 1 of 1" in _run("dlq", "replay", "--config", str(loose)).stdout
    assert "replayed 0 of 0" in _run("dlq", "replay", "--config", str(loose)).stdout
    st = json.loads(_run("status", "--json", "--config", str(loose)).stdout)
    assert st["events"] == 2 and st["dead_letters_pending"] == 0
