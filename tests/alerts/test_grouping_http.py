"""The grouping promise end to end: 100 firing alerts of one problem in a real store, the
notification pass and the outbox, a real HTTP receiver — one notification within group_wait, one
when they resolve, a repeat only after repeat_interval."""

from datetime import datetime, timedelta, timezone

from alerts.receiver import WebhookReceiver
from alerts.rules import dedup_key
from alerts.outbox import deliver_due
from alerts.receivers.webhook import WebhookSender
from connectors.sqlite import SqliteStore
from monitor.config import parse_config
from monitor.core.records import AlertRecord
from monitor.notify import run_notifications

T = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)


def _put(store, i, state, at):
    labels = {
        "alertname": "SignalDrift",
        "model": "m",
        "slice": f"device=d{i:03d}",
        "severity": "warning",
        "modality": "image",
        "signal": "brightness",
    }
    store.alerts.put(
        AlertRecord(
            dedup_key(labels),
            "SignalDrift",
            labels,
            {"summary": "brightness moved", "value": "0.4"},
            state,
            T,
            at if state == "resolved" else None,
            0.4,
        ),
        at,
    )


def test_a_hundred_alerts_one_notification_one_resolved_repeat_on_schedule(tmp_path):
    with WebhookReceiver() as recv:
        cfg = parse_config(f"""
alerts:
  webhooks: [{{name: oncall, kind: alertmanager, url: "{recv.url}"}}]
  route: {{receiver: oncall, group_wait: 30s, group_interval: 5m, repeat_interval: 4h}}
""")
        store = SqliteStore(tmp_path / "mw.db")
        store.migrate()
        senders = {"oncall": WebhookSender("oncall", recv.url, max_per_minute=1000)}

        def step(at):
            run_notifications(cfg, store, at)
            deliver_due(store.alerts, senders, at, 0.01, 0.01)
            return [r["payload"] for r in recv.received]

        for i in range(100):  # a burst of findings within group_wait
            _put(store, i, "firing", T + timedelta(seconds=i * 0.25))
            assert step(T + timedelta(seconds=i * 0.25)) == []
        (first,) = step(T + timedelta(seconds=30))
        assert first["status"] == "firing" and len(first["alerts"]) == 100
        # the default route groups by incident: one cause, one notification that says it
        assert set(first["groupLabels"]) == {"model", "incident"} and first["groupLabels"]["model"] == "m"
        assert first["commonAnnotations"]["incident"] == (
            "all traffic: image brightness moved since 2026-11-23 (100 alerts)"
        )
        assert "grouped_because" in first["commonAnnotations"]
        for minutes in (1, 10, 60, 239):
            assert len(step(T + timedelta(minutes=minutes))) == 1  # unchanged: quiet
        sent = step(T + timedelta(hours=4, seconds=30))
        assert len(sent) == 2 and len(sent[1]["alerts"]) == 100  # the repeat
        later = T + timedelta(hours=5)
        for i in range(100):
            _put(store, i, "resolved", later)
        sent = step(later)
        assert len(sent) == 3 and sent[2]["status"] == "resolved" and len(sent[2]["alerts"]) == 100
        assert {a["status"] for a in sent[2]["alerts"]} == {"resolved"}
        assert sent[2]["groupKey"] == first["groupKey"]  # resolved as the incident it was told as
        assert len(step(later + timedelta(days=1))) == 3  # told once
        store.close()
