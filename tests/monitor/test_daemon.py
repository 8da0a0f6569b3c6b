"""`modalwatch run` on the embedded default: HTTP ingest, a tailed JSONL directory, SIGTERM."""

import json
from datetime import timedelta
import signal
import time
import urllib.request

from connectors.sqlite import SqliteStore
from tests.conftest import free_port, run_daemon
from tests.helpers import inference, label


def _wait(pred, timeout_s=30):
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if pred():
                return True
        except Exception:  # noqa: BLE001 - not up yet
            pass
        time.sleep(0.1)
    return False


def test_run_serves_http_tails_jsonl_and_stops_on_sigterm(tmp_path):
    port = free_port()
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"store: {{path: {tmp_path / 'mw.db'}}}\n"
        f"ingest:\n  http: {{port: {port}}}\n  jsonl: {{paths: [{inbox}], follow: true}}\n"
    )
    log = open(tmp_path / "daemon.log", "wb")
    proc = run_daemon(cfg, log)
    base = f"http://127.0.0.1:{port}"
    try:
        assert _wait(lambda: urllib.request.urlopen(base + "/healthz", timeout=2).status == 200), (
            tmp_path / "daemon.log"
        ).read_text()[-2000:]
        body = json.dumps([inference(i) for i in range(10)]).encode()
        req = urllib.request.Request(
            base + "/v1/events", data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        assert json.loads(urllib.request.urlopen(req, timeout=10).read())["accepted"] == 10
        # a file dropped in the watched directory, then a line appended to it, are both picked up
        f = inbox / "a.jsonl"
        f.write_text("".join(json.dumps(inference(i)) + "\n" for i in range(10, 15)))
        assert _wait(lambda: SqliteStore(tmp_path / "mw.db").ops.counts()["events"] == 15)
        with open(f, "a") as fh:
            fh.write(json.dumps(label(3)) + "\n")
        assert _wait(lambda: SqliteStore(tmp_path / "mw.db").ops.counts()["labels_joined"] == 1)
        status = json.loads(urllib.request.urlopen(base + "/v1/status", timeout=5).read())
        assert status["stored"] == 16 and status["dead_letter"] == 0
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


def test_a_failing_evaluation_does_not_stop_ingest(tmp_path, caplog):
    from monitor.config import Config
    from monitor.daemon import Daemon
    from monitor.pipeline import RawMessage

    class Src:
        name, exhausted = "test", False

        def commit(self, outcomes):
            pass

    store = SqliteStore(tmp_path / "mw.db")
    store.migrate()
    d = Daemon(Config(), [], store, {})

    def broken(watermark, progress=None):
        raise RuntimeError("a bug in one evaluation")

    d.evaluator.run_due = broken
    d.tick()  # logged, not raised
    assert "a bug in one evaluation" in caplog.text
    d.ingest(Src(), [RawMessage("t", "t:1", json.dumps(inference(1)).encode())])
    assert store.ops.counts()["events"] == 1


def test_catch_up_after_downtime_shows_a_backlog_gauge_and_progress(tmp_path, caplog):
    import logging

    from monitor.config import parse_config
    from monitor.daemon import Daemon
    from monitor.pipeline import Pipeline
    from tests.helpers import NOW
    from tests.monitor.test_evaluation import CFG, _traffic

    cfg = parse_config(CFG)
    store = SqliteStore(tmp_path / "mw.db")
    store.migrate()
    Pipeline(cfg, store, lambda: NOW).process(_traffic(days=7))  # a week arrived while no daemon ran
    d = Daemon(cfg, [], store, {})
    seen = []
    real = d._catch_up
    d._catch_up = lambda done, total: (real(done, total), seen.append(d.stats["evaluation_backlog"]))
    with caplog.at_level(logging.INFO, logger="modalwatch.daemon"):
        d.tick()
    assert seen == sorted(seen, reverse=True) and seen[0] > 0 and seen[-1] == 0
    assert d.stats["evaluated"] == len(seen) and d.stats["evaluation_backlog"] == 0
    assert f"evaluation catch-up: {len(seen)}/{len(seen)} vintages" in caplog.text
    store.close()


class _Trickle:
    """A source that never runs dry: a few new events on every poll, as production traffic."""

    name, exhausted = "trickle", False

    def __init__(self):
        self.i = 0

    def poll(self, max_records, timeout_s=0.0):
        from monitor.pipeline import RawMessage
        from tests.helpers import T0

        time.sleep(0.01)
        msgs = []
        for _ in range(5):
            self.i += 1
            ev = inference(100_000 + self.i, ts=T0 + timedelta(days=1, seconds=self.i))
            msgs.append(RawMessage("trickle", f"trickle:{self.i}", json.dumps(ev).encode()))
        return msgs

    def commit(self, outcomes):
        pass

    def close(self):
        pass


def test_evaluation_runs_beside_ingest_and_its_schedule_lives_in_the_database(tmp_path, caplog, monkeypatch):
    """A catch-up of slow vintages does not stall ingest (it runs in the scheduler's worker, on its
    own connection); the evaluation job is a row of the database, resumed by the next daemon."""
    import logging
    import threading

    from monitor.config import parse_config
    from monitor.daemon import EVALUATION_JOB, Daemon
    from monitor.pipeline import Pipeline
    from tests.helpers import NOW
    from tests.monitor.test_evaluation import CFG, _traffic

    monkeypatch.setenv("MODALWATCH_REPLICA", "replica-a")  # a stable name: the schedule is resumed
    cfg = parse_config(CFG)
    cfg.evaluation.tick_s = 0.2
    store = SqliteStore(tmp_path / "mw.db")
    store.migrate()
    Pipeline(cfg, store, lambda: NOW).process(_traffic(days=7))
    d = Daemon(cfg, [_Trickle()], store, {}, clock=lambda: NOW)
    real, ingested_meanwhile = d.evaluator.compute, []

    def slow(key, window_end):  # a vintage that takes as long as a big window would
        before = d.stats["messages"]
        time.sleep(0.3)
        rows = real(key, window_end)
        ingested_meanwhile.append(d.stats["messages"] - before)
        return rows

    d.evaluator.compute = slow
    worker = threading.Thread(target=d.run)
    with caplog.at_level(logging.INFO, logger="modalwatch.daemon"):
        worker.start()
        assert _wait(lambda: d.stats["evaluated"] >= 4, timeout_s=60), d.stats
        d.should_exit = True
        worker.join(30)
    assert not worker.is_alive()
    assert len(ingested_meanwhile) >= 4 and min(ingested_meanwhile) > 0  # ingest went on during each vintage
    assert "evaluation job scheduled every 0.2s (new in sqlite:" in caplog.text
    job = f"{EVALUATION_JOB}@replica-a/tick"
    assert [r[0] for r in store.db.all("SELECT id FROM scheduler_jobs")] == [job]

    caplog.clear()
    again = Daemon(cfg, [], store, {}, clock=lambda: NOW)
    with caplog.at_level(logging.INFO, logger="modalwatch.daemon"):
        again.startup()
        again.shutdown()
    assert "evaluation job resumed from sqlite:" in caplog.text
    assert [r[0] for r in store.db.all("SELECT id FROM scheduler_jobs")] == [job]

    # each replica keeps its own schedule; one without a stable name removes its own when it stops
    monkeypatch.delenv("MODALWATCH_REPLICA")
    other = Daemon(cfg, [], store, {}, clock=lambda: NOW)
    other.startup()
    assert len(store.db.all("SELECT id FROM scheduler_jobs")) == 2
    other.shutdown()
    assert [r[0] for r in store.db.all("SELECT id FROM scheduler_jobs")] == [job]
    store.close()
