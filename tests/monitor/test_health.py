"""Data health (issue 6): dead-letter rate and silence per source, ingest lag per model, the share
of events missing an expected modality — through the ordinary rules, `for` and notifications."""

import json
from datetime import timedelta

from monitor.config import parse_config
from monitor.evaluation import Evaluator
from monitor.pipeline import Pipeline, RawMessage
from tests.helpers import T0, inference
from tests.monitor.test_evaluation import CFG, _traffic

HEALTH = """
alerts:
  rules:
    - {name: SourceSilent, metric: source_silence_s, threshold: 600, severity: critical}
    - {name: DeadLetters, metric: dead_letter_rate, threshold: 0.2, for: 5m}
"""


def _feed(store, cfg, at, n_good, n_bad, source="kafka", start=0):
    msgs = [
        RawMessage(source, f"{source}:{start + i}", json.dumps(inference(start + i)).encode())
        for i in range(n_good)
    ]
    msgs += [RawMessage(source, f"{source}:bad{start + i}", b"{not json") for i in range(n_bad)]
    Pipeline(cfg, store, lambda: at).process(msgs)


def health_rows(cfg, store, now):
    return Evaluator(cfg, store, lambda: now).health_rows(now)


def _by(rows):
    return {(r.metric, r.source or r.model_name): r for r in rows}


def test_health_rows_measure_dead_letters_silence_and_lag(any_store):
    cfg = parse_config(HEALTH)
    t = T0 + timedelta(days=1)
    _feed(any_store, cfg, t, 80, 20)
    _feed(any_store, cfg, t, 10, 0, source="http", start=1000)
    rows = _by(health_rows(cfg, any_store, t + timedelta(minutes=5)))
    assert rows[("dead_letter_rate", "kafka")].value == 0.2 and rows[("dead_letter_rate", "kafka")].n == 100
    assert rows[("dead_letter_rate", "http")].value == 0.0
    assert rows[("source_silence_s", "kafka")].value == 240  # last message in the minute that ended 4 min ago
    lag = rows[("ingest_lag_s", "m")].value
    assert lag == (t + timedelta(minutes=5) - (T0 + timedelta(seconds=1009))).total_seconds()
    later = _by(health_rows(cfg, any_store, t + timedelta(minutes=30)))
    assert later[("dead_letter_rate", "kafka")].status == "insufficient_data"  # nothing in the last 15 min
    assert later[("source_silence_s", "kafka")].value == 29 * 60
    assert not [r for r in health_rows(cfg, any_store, t + timedelta(days=2)) if r.source]  # out of lookback
    from monitor.housekeeping import purge

    purge(cfg, any_store, t + timedelta(days=1, hours=23))
    assert any_store.db.all("SELECT COUNT(*) FROM ingest_minutes") == [(2,)]  # kept: within lookback + a day
    purge(cfg, any_store, t + timedelta(days=2, minutes=1))
    assert any_store.db.all("SELECT COUNT(*) FROM ingest_minutes") == [(0,)]


def test_a_silent_source_fires_and_resolves_and_a_dead_letter_burst_must_hold_for_its_for(any_store):
    cfg = parse_config(HEALTH)
    t = T0 + timedelta(days=1)
    ev = Evaluator(cfg, any_store, lambda: t, owner="a")
    _feed(any_store, cfg, t, 60, 40)
    state = lambda: {a.rule: a.state for a in any_store.alerts.list()}  # noqa: E731
    ev.apply_health(t + timedelta(minutes=1))
    assert state() == {"DeadLetters": "pending"}  # 40 % dead letters, but `for: 5m` has not passed
    ev.apply_health(t + timedelta(minutes=7))
    assert state() == {"DeadLetters": "firing"}
    ev.apply_health(t + timedelta(minutes=12))
    assert state() == {"DeadLetters": "firing", "SourceSilent": "firing"}  # 11 min without a message
    (silent,) = [a for a in any_store.alerts.list() if a.rule == "SourceSilent"]
    assert silent.labels["source"] == "kafka" and silent.labels["severity"] == "critical"
    _feed(any_store, cfg, t + timedelta(minutes=13), 50, 0, start=500)
    ev.apply_health(t + timedelta(minutes=14))  # 40 of 150 in the last 15 minutes: still above 0.2
    assert state() == {"DeadLetters": "firing", "SourceSilent": "resolved"}
    ev.apply_health(t + timedelta(minutes=27))  # the burst left the 15-minute window: 0 of 50
    assert state() == {"DeadLetters": "resolved", "SourceSilent": "firing"}  # and silent again for 13 min


def _evaluated_without_audio(store, drop):
    """Six days of traffic where, from day 4, the inference events ``drop(event)`` picks come
    without their audio; ingested and evaluated. The evaluation rows."""
    from tests.helpers import NOW

    cfg = parse_config(CFG + "media: {expected_modalities: [image, audio]}\n")
    msgs = []
    for m in _traffic(days=6):
        obj = json.loads(m.payload)
        if obj["type"] == "inference" and obj["ts"] >= (T0 + timedelta(days=4)).isoformat() and drop(obj):
            obj["inputs"].pop("audio")
            m = m._replace(payload=json.dumps(obj).encode())
        msgs.append(m)
    Pipeline(cfg, store, lambda: NOW).process(msgs)
    Evaluator(cfg, store, lambda: NOW, owner="a").run_due(store.events.watermark())
    return store.evaluations.frame()


def test_missing_modality_share_is_an_evaluation_row(any_store):
    # on day 4, every third event comes without audio
    df = _evaluated_without_audio(any_store, lambda ev: int(ev["event_id"][1:]) % 3 == 0)
    audio = df[(df.metric == "missing_modality_share") & (df.signal == "audio")]
    miss = audio[audio.slice == "*"].sort_values("window_start")
    assert list(miss["value"].round(3))[:3] == [0.0, 0.0, 0.0]
    day4 = miss[miss.window_start == T0 + timedelta(days=4)].iloc[0]
    assert abs(day4["value"] - 1 / 3) < 0.01 and day4["ci_low"] < day4["value"] < day4["ci_high"]
    assert day4["reference_value"] == 0.0
    # and per slice: every slice of the window has its row, with its own reference share
    day4_slices = audio[audio.window_start == T0 + timedelta(days=4)]
    assert set(day4_slices.slice) == set(df[df.window_start == T0 + timedelta(days=4)].slice)


def test_a_device_that_lost_a_modality_shows_in_its_own_slice(any_store):
    """20 % of one device's events lose their audio: all traffic sees a few percent, the device's
    slice sees 20 %, and the other devices nothing."""
    df = _evaluated_without_audio(
        any_store, lambda ev: ev["slice"]["device"] == "d1" and int(ev["event_id"][1:]) % 5 == 0
    )
    day4 = df[
        (df.metric == "missing_modality_share")
        & (df.signal == "audio")
        & (df.window_start == T0 + timedelta(days=4))
    ].set_index("slice")
    assert (
        abs(day4.loc["device=d1", "value"] - 0.2) < 0.06 and day4.loc["device=d1", "reference_value"] == 0.0
    )
    assert day4.loc["device=d1", "ci_low"] > 0.1
    others = [s for s in day4.index if s.startswith("device=") and s != "device=d1"]
    assert others and all(day4.loc[s, "value"] == 0.0 for s in others)
    assert 0 < day4.loc["*", "value"] < day4.loc["device=d1", "value"]


def test_the_daemon_tells_on_call_about_a_silent_source(any_store):
    from alerts.receiver import WebhookReceiver
    from monitor.daemon import Daemon
    from monitor.wiring import build_senders

    t = T0 + timedelta(days=1)
    with WebhookReceiver() as recv:
        cfg = parse_config(
            HEALTH
            + f"""  webhooks: [{{name: oncall, kind: alertmanager, url: "{recv.url}"}}]
  route: {{receiver: oncall, group_wait: 0s, group_by: [alertname, source]}}
"""
        )
        _feed(any_store, cfg, t, 50, 0)
        d = Daemon(cfg, [], any_store, build_senders(cfg), clock=lambda: t + timedelta(minutes=12))
        d.tick()
        d.drain_outbox(timeout_s=10)
    (got,) = [r["payload"] for r in recv.received]
    assert (
        got["groupLabels"] == {"alertname": "SourceSilent", "source": "kafka"} and got["status"] == "firing"
    )
