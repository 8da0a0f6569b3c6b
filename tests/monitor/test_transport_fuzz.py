"""The hostile corpus through the real daemon, on every transport at once — HTTP (bearer tokens
on), Kafka and a followed JSONL file — into SQLite, PostgreSQL and TimescaleDB (2 pipeline
workers on the servers): the daemon stays up and ready, every valid event is stored once, every
bad message is a dead letter (or, on HTTP, an answer that says why nothing was taken), memory
stays bounded (RSS after four rounds ≤ RSS after the warm-up + 64 MiB), and neither the store
nor the log holds media or any configured secret."""

import json
import os
import re
import signal
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from kafka import KafkaProducer

from tests.conftest import free_port, make_topics, run_daemon
from tests.corpus import PNG, PNG_B64, bad_inference_messages, dump
from tests.helpers import T0, inference

ROUNDS = 4
RSS_MARGIN = 64 * 2**20  # measured: 9-14 MiB over the four rounds
MAX_PAYLOAD = 262_144


def _good(i: int) -> dict:
    ev = inference(i, ts=T0 + timedelta(seconds=i % 7200))
    if i % 10 == 0:  # inline media, measured and never kept
        ev["inputs"]["image"] = {"data_b64": PNG_B64}
    return ev


def _rss(pid: int) -> int:
    """Resident bytes of the daemon and its worker processes."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{p}/status").read_text()
        except FileNotFoundError:
            continue
        total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) * 1024
    return total


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:  # a thread may end between the listing and the read
            out += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return out


class Http:
    def __init__(self, port: int, token: str):
        self.base, self.token = f"http://127.0.0.1:{port}", token
        self.accepted = self.rejected = 0

    def get(self, path: str) -> tuple[int, dict]:
        try:
            with urllib.request.urlopen(self.base + path, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def post(self, body: bytes, ctype="application/json", token: str | None = "") -> tuple[int, dict]:
        headers = {"Content-Type": ctype}
        if token is not None:
            headers["Authorization"] = f"Bearer {token or self.token}"
        req = urllib.request.Request(self.base + "/v1/events", body, headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                code, answer = r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            code, answer = e.code, json.loads(e.read())
        if token is None or token != "":
            return code, answer
        self.accepted += answer.get("accepted", 0)
        self.rejected += len(answer.get("rejected", []))
        return code, answer


def _config(tmp_path: Path, db: str, port: int, bootstrap: str, topic: str, jsonl: Path) -> Path:
    store = f"{{path: {tmp_path / 'mw.db'}}}" if db == "sqlite" else '{kind: postgres, url: "${MW_FUZZ_PG}"}'
    cfg = tmp_path / "fuzz.yaml"
    cfg.write_text(f"""
store: {store}
ingest:
  workers: {0 if db == "sqlite" else 2}
  max_payload_bytes: {MAX_PAYLOAD}
  http: {{port: {port}, auth: required, tokens: ["${{MW_FUZZ_TOKEN}}"]}}
  kafka:
    bootstrap_servers: ["{bootstrap}"]
    group_id: g-{topic}
    events_topic: {topic}
    labels_topic: {topic}-labels
    session_timeout_ms: 6000
  jsonl: {{paths: ["{jsonl}"], follow: true}}
evaluation:
  intervals: [10m]
  lag: 1m
  reference: {{days: 0.02}}
  tick_s: 5
alerts:
  webhooks:
    - name: oncall
      url: http://127.0.0.1:9/hooks/${{MW_FUZZ_HOOK}}
      secret: ${{MW_FUZZ_HOOK_SECRET}}
      timeout_s: 1
  route: {{receiver: oncall, group_wait: 0s}}
  rules:  # something to deliver, to a receiver that refuses: its URL and secret must stay out of the log
    - {{name: AlwaysFires, metric: slice_values, field: value, op: '>=', threshold: 0}}
log_level: DEBUG
""")
    return cfg


def _count(db: str, tmp_path: Path, pg: str | None, sql: str):
    if db == "sqlite":
        import sqlite3

        con = sqlite3.connect(f"file:{tmp_path / 'mw.db'}?mode=ro", uri=True, timeout=10)
        try:
            return con.execute(sql).fetchall()
        except sqlite3.OperationalError:
            return None
        finally:
            con.close()
    import psycopg

    with psycopg.connect(pg) as c:
        try:
            return c.execute(sql).fetchall()
        except psycopg.errors.UndefinedTable:
            return None


def _wait_for(what, want, timeout_s: float = 180):
    deadline, got = time.time() + timeout_s, None
    while time.time() < deadline:
        got = what()
        if got == want:
            return got
        time.sleep(0.3)
    return got


@pytest.mark.parametrize("db", ["sqlite", "postgres", "timescale"])
def test_the_corpus_on_every_transport_leaves_the_daemon_up_and_nothing_raw_or_secret(
    tmp_path, request, kafka_bootstrap, db
):
    secrets = {
        "token": "tok-" + uuid.uuid4().hex,
        "hook": "hook-" + uuid.uuid4().hex,
        "hook secret": "whsec-" + uuid.uuid4().hex,
    }
    pg = None
    if db != "sqlite":  # trust authentication ignores it; the daemon must not show it
        secrets["password"] = "pw-" + uuid.uuid4().hex
        url = request.getfixturevalue("pg_url" if db == "postgres" else "timescale_url")
        pg = url.replace("postgresql://postgres@", f"postgresql://postgres:{secrets['password']}@")
        assert pg != url
    topic = f"fuzz-{uuid.uuid4().hex[:8]}"
    make_topics(kafka_bootstrap, [topic, f"{topic}-labels"])
    port, jsonl = free_port(), tmp_path / "in.jsonl"
    jsonl.write_bytes(b"")
    cfg = _config(tmp_path, db, port, kafka_bootstrap, topic, jsonl)
    env = {
        **os.environ,
        "MW_FUZZ_TOKEN": secrets["token"],
        "MW_FUZZ_HOOK": secrets["hook"],
        "MW_FUZZ_HOOK_SECRET": secrets["hook secret"],
        **({"MW_FUZZ_PG": pg} if pg else {}),
    }
    bad = bad_inference_messages() + [
        ("a PNG file as the body", PNG),
        ("an object too large", json.dumps({"x": "y" * (MAX_PAYLOAD + 10)}).encode()),
    ]
    # a JSONL line cannot hold a newline, a blank line is skipped, and there a label is a label
    line_bad = [
        (n, p) for n, p in bad if b"\n" not in p and p.strip() and n != "a label sent as an inference"
    ]
    http = Http(port, secrets["token"])
    prod = KafkaProducer(bootstrap_servers=kafka_bootstrap, linger_ms=5, max_request_size=2**21)
    expected = {"http": 0, "kafka": 0, "jsonl": 0}  # dead letters
    stored = [0]

    def send_round(r: int, with_bad: bool) -> None:
        base = 100_000 * (r + 1)
        for k, (name, payload) in enumerate(bad if with_bad else []):
            code, answer = http.post(payload, "image/png" if payload is PNG else "application/json")
            assert 400 <= code < 500, (name, code, answer)  # never a 5xx, never taken
            prod.send(topic, payload)
            expected["kafka"] += 1
            if (name, payload) in line_bad:
                with open(jsonl, "ab") as fh:
                    fh.write(payload + b"\n")
                expected["jsonl"] += 1
        if with_bad:
            prod.send(topic, None, key=b"a tombstone")
            expected["kafka"] += 1
        for j in range(30):
            i = base + j
            assert http.post(json.dumps([_good(i), _good(i + 30_000)]).encode())[0] == 200
            prod.send(topic, json.dumps(_good(i + 60_000)).encode())
            with open(jsonl, "ab") as fh:
                fh.write(json.dumps(_good(i + 90_000)).encode() + b"\n")
        stored[0] += 4 * 30
        if with_bad:  # an NDJSON body mixing good and bad lines, and requests without a good token
            lines = [_good(base + 50_000), "{broken", _good(base + 50_001), {**_good(base + 50_002), "ts": 1}]
            body = b"\n".join(x.encode() if isinstance(x, str) else json.dumps(x).encode() for x in lines)
            code, answer = http.post(body, "application/x-ndjson")
            assert code == 400 and answer["accepted"] == 2 and len(answer["rejected"]) == 2, answer
            stored[0] += 2
            assert http.post(json.dumps(_good(base + 50_010)).encode(), token=None)[0] == 401
            assert (
                http.post(json.dumps(_good(base + 50_011)).encode(), token="not-" + secrets["token"])[0]
                == 401
            )
        prod.flush()

    def events():
        rows = _count(db, tmp_path, pg, "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events")
        return rows and tuple(rows[0])

    def letters():
        rows = _count(db, tmp_path, pg, "SELECT source, COUNT(*) FROM dead_letters GROUP BY source")
        return dict(rows or [])

    with open(tmp_path / "daemon.log", "wb") as log:
        daemon = run_daemon(cfg, log, env)
        try:
            assert _wait_for(lambda: http.get("/readyz")[0] if _up(http) else None, 200, 90) == 200
            send_round(0, with_bad=False)  # warm-up: every path taken once
            assert _wait_for(events, (stored[0], stored[0])) == (stored[0], stored[0])
            before = _rss(daemon.pid)
            for r in range(1, ROUNDS + 1):
                send_round(r, with_bad=True)
            assert _wait_for(events, (stored[0], stored[0])) == (stored[0], stored[0])
            expected["http"] = http.rejected
            assert _wait_for(letters, expected) == expected
            assert daemon.poll() is None
            assert http.get("/livez")[0] == 200 and http.get("/readyz")[0] == 200
            after = _rss(daemon.pid)
            assert after <= before + RSS_MARGIN, f"RSS {before / 2**20:.0f} → {after / 2**20:.0f} MiB"
            assert http.accepted == stored[0] - 2 * 30 * ROUNDS - 2 * 30  # the rest came by Kafka/JSONL
        finally:
            prod.close()
            daemon.send_signal(signal.SIGTERM)
            rc = daemon.wait(60)
    assert rc == 0
    text = (tmp_path / "daemon.log").read_bytes()
    assert b"Traceback" not in text
    if db == "sqlite":
        from connectors.sqlite import SqliteStore

        store = SqliteStore(tmp_path / "mw.db")
    else:
        from connectors.postgres import PostgresStore

        store = PostgresStore(pg)
    try:
        everything = dump(store)
    finally:
        store.close()
    for what, secret in secrets.items():
        assert secret.encode() not in text, f"the log shows the {what}"
        assert secret not in everything, f"the store holds the {what}"
    for fragment in (PNG_B64[:24], "\\x89PNG", "data:image/png;base64"):
        assert fragment not in everything, fragment
    assert PNG_B64[:24].encode() not in text and b"\x89PNG" not in text


def _up(http: Http) -> bool:
    try:
        return http.get("/livez")[0] == 200
    except OSError:
        return False
