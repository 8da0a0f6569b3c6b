"""An alert goes through the outbox to a real HTTP receiver: retried, signed, delivered once."""

import json
import time
from datetime import timedelta

import pytest

from alerts.receiver import WebhookReceiver
from alerts.outbox import backoff
from alerts.receivers.webhook import WebhookSender, sign, verify
from connectors.sqlite import SqliteStore
from monitor.config import parse_config
from monitor.daemon import Daemon
from monitor.pipeline import Pipeline, RawMessage
from tests.helpers import NOW, T0, inference

SECRET = "s3cret-for-tests"


# daily windows evaluated at once (no lag), two reference days: what _load's traffic needs
EVALUATION = (
    "evaluation: {intervals: [1d], lag: 0s, reference: {days: 2}, checks: {signal_drift: {min_n: 50}}}\n"
)


def _config(url):
    return parse_config(
        EVALUATION
        + f"""
alerts:
  retry_initial_s: 0.05
  retry_max_s: 0.2
  webhooks: [{{name: oncall, url: "{url}", secret: "{SECRET}"}}]
  route: {{receiver: oncall, group_wait: 0s, group_interval: 0s}}
  rules:
    - {{name: BrightnessDrift, metric: psi, slice: "*", signal: image.brightness, threshold: 0.25}}
"""
    )


def _load(store, cfg, shifted_day=3, days=6, shifted_days=1):
    msgs = []
    for i in range(days * 200):
        day = i // 200
        ev = inference(i, ts=T0 + timedelta(days=day, seconds=(i % 200) * 400))
        if shifted_day <= day < shifted_day + shifted_days:
            ev["inputs"]["image"]["signals"]["brightness"] += 60
        msgs.append(RawMessage("test", f"t:{i}", json.dumps(ev).encode()))
    Pipeline(cfg, store, lambda: NOW).process(msgs)


def test_refused_three_times_then_delivered_once_across_a_restart(tmp_path):
    with WebhookReceiver(secret=SECRET, refuse_first=3) as recv:
        cfg = _config(recv.url)
        store = SqliteStore(tmp_path / "mw.db")
        store.migrate()
        _load(store, cfg)
        senders = {"oncall": WebhookSender("oncall", recv.url, SECRET)}
        first = Daemon(cfg, [], store, senders)
        first.tick()  # evaluates days 0..3, fires on day 3, resolves on day 4; first attempt refused
        assert recv.attempts >= 1 and recv.received == []
        pending = [json.loads(p)["status"] for (p,) in store.db.all("SELECT payload FROM outbox ORDER BY id")]
        assert pending == ["firing", "resolved"] and store.ops.counts()["outbox"] == {"pending": 2}
        store.close()  # the daemon goes away between attempts

        store = SqliteStore(tmp_path / "mw.db")
        second = Daemon(cfg, [], store, senders)
        deadline = time.time() + 20
        while len(recv.received) < 2 and time.time() < deadline:
            second.tick()
            time.sleep(0.05)
        assert recv.attempts == 3 + 2  # three refusals, then each notification once
        got = [r["payload"] for r in recv.received]
        assert [p["status"] for p in got] == ["firing", "resolved"]
        assert all(r["signature_valid"] for r in recv.received)
        fp = {p["alerts"][0]["fingerprint"] for p in got}
        assert len(fp) == 1  # one alert, one stable dedup key, fired then resolved
        labels = got[0]["alerts"][0]["labels"]
        assert labels["alertname"] == "BrightnessDrift" and labels["signal"] == "brightness"
        assert got[0]["alerts"][0]["startsAt"].startswith((T0 + timedelta(days=3)).date().isoformat())
        for _ in range(3):
            second.tick()
        assert len(recv.received) == 2  # nothing sent twice
        assert store.ops.counts()["outbox"] == {"delivered": 2}
        store.close()


def test_signature_is_hmac_sha256_of_timestamp_and_body_and_the_documented_check_refuses_tampering():
    import hashlib
    import hmac

    body, now = b'{"a":1}', 1_800_000_000
    ts = str(now)
    expected = "sha256=" + hmac.new(b"k", ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    assert sign(b"k", body, ts) == expected
    assert verify(b"k", body, ts, expected, now=now + 299)
    assert not verify(b"k", body + b" ", ts, expected, now=now)  # a tampered body
    assert not verify(b"k", body, str(now + 1), expected, now=now)  # a tampered timestamp
    assert not verify(b"k", body, ts, expected, now=now + 301)  # replayed after the 300 s window
    assert not verify(b"k", body, ts, None, now=now) and not verify(b"k", body, None, expected, now=now)
    assert not verify(b"other", body, ts, expected, now=now)


def test_backoff_doubles_is_capped_and_jitter_only_shortens():
    assert [backoff(a, 1, 10).total_seconds() for a in range(6)] == [1, 2, 4, 8, 10, 10]
    assert backoff(3, 1, 10, jitter=0.999).total_seconds() == pytest.approx(4.004, abs=1e-3)


def test_a_receiver_is_sent_at_most_max_per_minute_and_the_rest_waits_in_the_outbox(tmp_path):
    from alerts.outbox import deliver_due

    with WebhookReceiver() as recv:
        store = SqliteStore(tmp_path / "mw.db")
        store.migrate()
        for i in range(5):
            store.alerts.add_outbox(f"k{i}", "oncall", {"n": i}, NOW)
        sender = WebhookSender("oncall", recv.url, max_per_minute=3)
        assert deliver_due(store.alerts, {"oncall": sender}, NOW, 1, 10).delivered == 3
        assert (
            deliver_due(store.alerts, {"oncall": sender}, NOW, 1, 10).delivered == 0
        )  # the minute is used up
        assert store.ops.counts()["outbox"] == {"delivered": 3, "pending": 2}
        sender._sent.clear()  # a minute later
        assert deliver_due(store.alerts, {"oncall": sender}, NOW, 1, 10).delivered == 2
        assert [r["payload"]["n"] for r in recv.received] == [0, 1, 2, 3, 4]
        store.close()


def test_the_readme_verification_snippet_refuses_a_tampered_body_and_a_stale_timestamp():
    """The snippet on-call teams copy from the README, run as written, against what the sender signs."""
    import re
    import time as _time

    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    (snippet,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "def verify(" in b]
    scope: dict = {}
    exec(snippet, scope)  # noqa: S102 - the documented code itself is under test
    verify_doc = scope["verify"]
    body, ts = b'{"status":"firing"}', str(int(_time.time()))
    good = sign(b"k", body, ts)
    assert verify_doc(b"k", body, ts, good)
    assert not verify_doc(b"k", body + b" ", ts, good)  # tampered body
    stale = str(int(_time.time()) - 301)
    assert not verify_doc(b"k", body, stale, sign(b"k", body, stale))  # replayed outside the window
    assert not verify_doc(b"k", body, ts, sign(b"other", body, ts))
