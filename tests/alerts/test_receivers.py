"""Each receiver kind end to end: a daemon's evaluation fires alerts in several slices; routed
and grouped notifications reach real HTTP receivers on loopback in each kind's own format."""

import json
import re
from datetime import timedelta

from alerts.receiver import WebhookReceiver
from connectors.sqlite import SqliteStore
from monitor.config import parse_config
from monitor.daemon import Daemon
from monitor.wiring import build_senders
from tests.alerts.test_webhook import EVALUATION, _load

ROUTING_KEY = "R0UTINGKEY0000000000000000000000"  # PagerDuty integration keys are 32 characters


def _config(urls, tmp_path):
    return parse_config(
        EVALUATION
        + f"""
alerts:
  retry_initial_s: 0.05
  webhooks:
    - {{name: am, kind: alertmanager, url: "{urls["am"]}"}}
    - {{name: slack, kind: slack, url: "{urls["slack"]}"}}
    - {{name: pd, kind: pagerduty, url: "{urls["pd"]}", routing_key: "{ROUTING_KEY}"}}
  route:
    receiver: am
    group_wait: 0s
    group_interval: 0s
    routes:
      - {{receiver: slack, continue: true}}
      - {{receiver: pd, matchers: {{severity: critical}}}}
  rules:
    - {{name: BrightnessDrift, metric: psi, signal: image.brightness, threshold: 0.25}}
    - {{name: BrightnessDriftAll, metric: psi, slice: "*", signal: image.brightness, threshold: 0.25,
       severity: critical}}
"""
    )


def test_alertmanager_slack_and_pagerduty_payloads(tmp_path):
    with WebhookReceiver() as am, WebhookReceiver() as slack, WebhookReceiver() as pd:
        cfg = _config({"am": am.url, "slack": slack.url, "pd": pd.url}, tmp_path)
        store = SqliteStore(tmp_path / "mw.db")
        store.migrate()
        _load(store, cfg)  # brightness shifted on day 3 in every slice: fires on day 3, resolves on day 4
        d = Daemon(cfg, [], store, build_senders(cfg))
        d.tick()
        d.drain_outbox(timeout_s=10)
        stored = json.dumps(store.db.all("SELECT * FROM outbox"), default=str)
        assert ROUTING_KEY not in stored and pd.url not in stored  # added when sending, never stored
        store.close()

    # every alert matched the slack child (no matchers, continue); critical ones also pd; a child
    # took each, so the root's receiver got nothing
    assert am.received == []
    got = [r["payload"] for r in slack.received]
    # brightness moved in every slice (two rules): one cause, so one message when it fires, one when
    # it resolves, headed by the incident
    assert [p["text"].split()[1] for p in got] == ["FIRING:", "RESOLVED:"]
    assert got[0]["text"].startswith(":rotating_light: FIRING: all traffic: image brightness (PSI ")
    assert "_grouped because no slice value fires alone" in json.dumps(got[0]["blocks"])
    for p in got:  # Slack Block Kit: a header, a context, sections of mrkdwn text, an actions button
        assert p["blocks"][0]["type"] == "header" and p["blocks"][0]["text"]["type"] == "plain_text"
        assert len(p["blocks"][0]["text"]["text"]) <= 150 and len(p["blocks"]) <= 50
        assert all(b["type"] in ("header", "context", "section", "actions") for b in p["blocks"])
        assert all(
            b["text"]["type"] == "mrkdwn" and len(b["text"]["text"]) <= 3000
            for b in p["blocks"]
            if b["type"] == "section"
        )
        assert p["blocks"][-1]["elements"][-1]["url"].endswith("/report")
    firing_slices = {
        re.search(r"\[(.*?)\]", b["text"]["text"]).group(1)
        for b in got[0]["blocks"]
        if b["type"] == "section" and "[" in b["text"]["text"]
    }
    assert len(firing_slices) > 3  # the incident's alerts, listed under it: every slice

    # PagerDuty Events API v2: required fields; trigger then resolve of the incident's group (the
    # critical alert alone was routed there)
    events = [r["payload"] for r in pd.received]
    assert [e["event_action"] for e in events] == ["trigger", "resolve"]
    assert {e["dedup_key"] for e in events} == {events[0]["dedup_key"]}
    for e in events:
        assert e["routing_key"] == ROUTING_KEY and len(e["dedup_key"]) <= 255
    p = events[0]["payload"]
    assert p["summary"] and len(p["summary"]) <= 1024 and p["source"] and p["severity"] == "critical"
    assert p["timestamp"].endswith("Z")
    assert p["summary"].startswith("all traffic: image brightness (PSI ")
    assert events[0]["client_url"].startswith(f"{cfg.alerts.external_url.rstrip('/')}/alerts/")


def test_alertmanager_v4_payload(tmp_path):
    with WebhookReceiver() as am:
        cfg = parse_config(
            EVALUATION
            + f"""
alerts:
  webhooks: [{{name: am, kind: alertmanager, url: "{am.url}"}}]
  route: {{receiver: am, group_wait: 0s, group_interval: 0s, group_by: [alertname]}}
  rules: [{{name: BrightnessDrift, metric: psi, signal: image.brightness, threshold: 0.25, for: 1d}}]
"""
        )
        store = SqliteStore(tmp_path / "mw.db")
        store.migrate()
        _load(store, cfg, shifted_day=3, days=7, shifted_days=2)  # firing for days 3 and 4, resolved on 5
        d = Daemon(cfg, [], store, build_senders(cfg))
        d.tick()
        d.drain_outbox(timeout_s=10)
        alerts = store.alerts.list()
        store.close()
    payloads = [r["payload"] for r in am.received]
    assert [p["status"] for p in payloads] == ["firing", "resolved"]
    for p in payloads:
        assert (
            p["version"] == "4"
            and p["receiver"] == "am"
            and p["groupLabels"] == {"alertname": "BrightnessDrift"}
        )
        assert set(p) >= {
            "version",
            "groupKey",
            "truncatedAlerts",
            "status",
            "receiver",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "alerts",
        }
        for a in p["alerts"]:
            assert set(a) >= {
                "status",
                "labels",
                "annotations",
                "startsAt",
                "endsAt",
                "generatorURL",
                "fingerprint",
            }
        assert p["commonLabels"]["alertname"] == "BrightnessDrift"
    # for: 1d: day 3 alone made them pending; the breach held through day 4, so they fired with
    # startsAt = day 3, and resolved on day 5
    first = payloads[0]["alerts"][0]
    assert first["startsAt"].startswith(_day(3).date().isoformat())
    assert first["annotations"]["window_start"].startswith(
        _day(4).date().isoformat()
    )  # fired by day 4's window
    assert {a.state for a in alerts} <= {"resolved", "cleared"}


def _day(n):
    from tests.helpers import T0

    return T0 + timedelta(days=n)


def test_slack_message_is_json_serialisable_without_secrets(tmp_path):
    from alerts.receivers.slack import slack_payload
    from alerts.routing import Notification

    from monitor.core.records import AlertRecord

    a = AlertRecord(
        "f" * 24,
        "X",
        {"alertname": "X", "model": "m", "slice": "*"},
        {"summary": "s"},
        "firing",
        None,
        None,
        None,
    )
    msg = slack_payload(Notification("g", "slack", "firing", {"alertname": "X"}, [a] * 30, []), "http://mw")
    assert json.loads(json.dumps(msg))["blocks"][-2]["elements"][0]["text"] == "… and 10 more"
