"""A receiver down for 300 attempts while the daemon is SIGKILLed twice: once it answers, each
notification arrives, and a receiver that deduplicates on the Idempotency-Key (the same on every
retry of one notification) counts each exactly once, in order."""

import signal
import time
from collections import Counter

from alerts.receiver import WebhookReceiver
from connectors.sqlite import SqliteStore
from monitor.config import parse_config
from tests.alerts.test_webhook import EVALUATION, SECRET, _load
from tests.conftest import run_daemon
from tests.monitor.test_daemon import _wait


def test_receiver_down_for_300_attempts_and_two_sigkills_then_each_notification_once(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    with WebhookReceiver(secret=SECRET, refuse_first=300) as recv:
        text = f"""
store: {{path: {tmp_path / "mw.db"}}}
ingest: {{http: {{enabled: false}}, jsonl: {{paths: ["{inbox}"], follow: true}}}}
{EVALUATION.replace("reference: {days: 2}", "reference: {days: 2}, tick_s: 0.02")}
alerts:
  retry_initial_s: 0.005
  retry_max_s: 0.01
  webhooks: [{{name: oncall, url: "{recv.url}", secret: "{SECRET}", max_per_minute: 100000}}]
  route: {{receiver: oncall, group_wait: 0s, group_interval: 0s}}
  rules: [{{name: BrightnessDrift, metric: psi, slice: "*", signal: image.brightness, threshold: 0.25}}]
"""
        cfg_path = tmp_path / "c.yaml"
        cfg_path.write_text(text)
        store = SqliteStore(tmp_path / "mw.db")
        store.migrate()
        _load(store, parse_config(text))  # fires on day 3, resolves on day 4: two notifications
        store.close()
        log = open(tmp_path / "daemon.log", "ab")

        def start():
            return run_daemon(cfg_path, log)

        proc = start()
        try:
            for kill_at in (100, 200):
                assert _wait(lambda k=kill_at: recv.attempts >= k, 120), (
                    tmp_path / "daemon.log"
                ).read_text()[-3000:]
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                proc = start()
            assert _wait(lambda: len({r["delivery"] for r in recv.received}) >= 2, 120), (
                tmp_path / "daemon.log"
            ).read_text()[-3000:]
            time.sleep(1.0)  # a duplicate would show up now
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            log.close()

    assert recv.attempts >= 302
    logged = (tmp_path / "daemon.log").read_text()
    assert "HTTP 503" in logged and SECRET not in logged and recv.url not in logged  # secrets never logged
    by_key = Counter(r["delivery"] for r in recv.received)
    assert len(by_key) == 2  # two notifications, each under one idempotency key across retries and restarts
    firsts = list(dict.fromkeys(r["delivery"] for r in recv.received))
    statuses = [next(r["payload"]["status"] for r in recv.received if r["delivery"] == k) for k in firsts]
    assert statuses == ["firing", "resolved"]
    assert all(r["signature_valid"] for r in recv.received)
    # a receiver deduplicating on (fingerprint, status) counts each alert's firing and resolution once
    firsts_by_key = {r["delivery"]: r for r in reversed(recv.received)}
    per_alert = Counter(
        (a["fingerprint"], a["status"]) for r in firsts_by_key.values() for a in r["payload"]["alerts"]
    )
    assert sorted(s for _, s in per_alert) == ["firing", "resolved"] and set(per_alert.values()) == {1}
    store = SqliteStore(tmp_path / "mw.db")
    assert store.ops.counts()["outbox"] == {"delivered": 2}
    store.close()
