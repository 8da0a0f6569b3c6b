"""A producer's strings in each receiver's own format (issue 24): in Slack mrkdwn a slice value
``<!channel>`` pings nobody and ``<https://…|Open the incident>`` is no link beside the real
button; PagerDuty's one-line fields and Alertmanager's labels and annotations carry no newline or
terminal control."""

import json
from datetime import datetime, timezone

from alerts.receivers.base import alertmanager_payload
from alerts.receivers.pagerduty import pagerduty_events
from alerts.receivers.slack import mrkdwn, slack_payload
from alerts.routing import Notification
from monitor.core.records import AlertRecord

EVIL = "<!channel> <https://evil.example/|Open the incident> & <@U123>\nFIRING fake\x1b[31m"
AT = datetime(2026, 1, 5, tzinfo=timezone.utc)


def _notification() -> Notification:
    a = AlertRecord(
        "fp1",
        "SignalDrift",
        {"alertname": "SignalDrift", "model": "m", "slice": f"device={EVIL}", "signal": "image.x"},
        {"summary": f"drift in {EVIL}", "value": "0.3", "window_start": "a", "window_end": "b"},
        "firing",
        AT,
        None,
        0.3,
    )
    return Notification("gk", "r", "firing", {"model": "m", "slice": f"device={EVIL}`x`"}, [a], [])


def _strings(obj):
    if isinstance(obj, dict):
        for v in obj.values():
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)
    elif isinstance(obj, str):
        yield obj


def test_slack_shows_a_mention_and_a_link_as_the_text_they_are():
    payload = slack_payload(_notification(), "http://mw.example:8787")
    text = json.dumps(payload)
    assert "&lt;!channel&gt;" in text and "&lt;https://evil.example/|Open the incident&gt;" in text
    mrkdwn_texts = [payload["text"]] + [
        t for b in payload["blocks"] for t in _strings(b) if b["type"] in ("section", "context")
    ]
    for t in mrkdwn_texts:
        assert "<" not in t and ">" not in t and "\x1b" not in t, t
    # the only links are the buttons, and they point at the daemon
    urls = [e["url"] for b in payload["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert urls and all(u.startswith("http://mw.example:8787/") for u in urls)
    # the group's code span is not closed early by a backtick of a value
    context = next(b for b in payload["blocks"] if b["type"] == "context")["elements"][0]["text"]
    assert context.count("`") == 2


def test_mrkdwn_cuts_without_leaving_half_an_escape():
    out = mrkdwn("a" * 8 + "<<<<", limit=12)
    assert len(out) <= 12 and out.endswith("…") and not out[:-1].endswith(("&", "&l", "&lt"))


def test_pagerduty_and_alertmanager_carry_no_control_characters():
    n = _notification()
    (event,) = pagerduty_events(n, "http://mw.example:8787")
    for s in _strings(event):
        assert "\n" not in s and "\x1b" not in s, s
    am = alertmanager_payload(n, "am", "http://mw.example:8787")
    for s in _strings(am):
        assert "\n" not in s and "\x1b" not in s, s
    assert am["alerts"][0]["labels"]["slice"].startswith("device=<!channel>")  # data, shown as sent
