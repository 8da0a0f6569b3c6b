"""What each kind of receiver is sent for one group notification. Pure: dicts in, dicts out.

- ``webhook`` and ``alertmanager``: Alertmanager's webhook payload, version 4 (the generic
  webhook adds an HMAC signature when sent, see alerts/webhook.py);
- ``slack``: an incoming-webhook message with Block Kit blocks and a link to the report;
- ``pagerduty``: one Events API v2 event per alert — ``trigger`` for a firing alert, ``resolve``
  for a resolved one — with ``dedup_key`` = the alert's fingerprint, so PagerDuty keeps one
  incident per alert however often it is told. The routing key is added when sending, never
  stored in the outbox.
"""
from __future__ import annotations

from datetime import datetime

PAGERDUTY_SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


def _iso(dt: datetime | None) -> str:
    return "0001-01-01T00:00:00Z" if dt is None else dt.isoformat().replace("+00:00", "Z")


def _common(dicts: list[dict]) -> dict:
    """The key-value pairs every dict shares."""
    if not dicts:
        return {}
    return {k: v for k, v in sorted(dicts[0].items()) if all(d.get(k) == v for d in dicts[1:])}


def _am_alert(a: dict, status: str, external_url: str) -> dict:
    return {
        "status": status,
        "labels": a["labels"],
        "annotations": a["annotations"],
        "startsAt": _iso(a["starts_at"]),
        "endsAt": _iso(a["ends_at"] if status == "resolved" else None),
        "generatorURL": f"{external_url.rstrip('/')}/v1/alerts/{a['dedup_key']}",
        "fingerprint": a["dedup_key"],
    }


def alertmanager_payload(n, receiver: str, external_url: str, send_resolved: bool = True) -> dict:
    alerts = [_am_alert(a, "firing", external_url) for a in n.firing]
    if send_resolved:
        alerts += [_am_alert(a, "resolved", external_url) for a in n.resolved]
    every = n.firing + (n.resolved if send_resolved else [])
    return {
        "version": "4",
        "groupKey": n.group_key,
        "truncatedAlerts": 0,
        "status": n.status,
        "receiver": receiver,
        "groupLabels": n.group_labels,
        "commonLabels": _common([a["labels"] for a in every]),
        "commonAnnotations": _common([a["annotations"] for a in every]),
        "externalURL": external_url,
        "alerts": alerts,
    }


def _describe(a: dict) -> str:
    lab = a["labels"]
    where = lab.get("slice", "*")
    what = f" {lab['modality']}.{lab['signal']}" if "signal" in lab else ""
    return f"{lab['alertname']} on {lab.get('model', '?')} [{where}]{what}"


def slack_payload(n, external_url: str, send_resolved: bool = True) -> dict:
    report = f"{external_url.rstrip('/')}/report"
    icon = ":rotating_light:" if n.status == "firing" else ":white_check_mark:"
    title = f"{icon} {n.status.upper()}: {len(n.firing)} firing" + (
        f", {len(n.resolved)} resolved" if n.resolved and send_resolved else "")
    group = ", ".join(f"{k}={v}" for k, v in n.group_labels.items())
    blocks: list[dict] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150], "emoji": True}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": f"group: `{group}`"}]},
    ]
    shown = [(a, "firing") for a in n.firing] + ([(a, "resolved") for a in n.resolved] if send_resolved else [])
    for a, status in shown[:20]:  # Slack allows 50 blocks; the rest are counted below
        ann = a["annotations"]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": (
            f"*{'FIRING' if status == 'firing' else 'resolved'}* {_describe(a)}\n"
            f"{ann.get('summary', '')}\nvalue {ann.get('value', '?')}, window {ann.get('window_start', '?')}"
            f" – {ann.get('window_end', '?')}")[:3000]}})
    if len(shown) > 20:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"… and {len(shown) - 20} more"}]})
    blocks.append({"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Open the report"}, "url": report}]})
    return {"text": title, "blocks": blocks}


def pagerduty_events(n, external_url: str, send_resolved: bool = True) -> list[dict]:
    """Events API v2 bodies without ``routing_key`` (the sender adds it)."""
    out = []
    for a in n.firing:
        lab = a["labels"]
        out.append({
            "event_action": "trigger",
            "dedup_key": a["dedup_key"],
            "payload": {
                "summary": (_describe(a) + ": " + a["annotations"].get("summary", ""))[:1024],
                "source": f"modalwatch/{lab.get('model', '?')}",
                "severity": PAGERDUTY_SEVERITY.get(lab.get("severity", "warning"), "warning"),
                "timestamp": _iso(a["starts_at"]),
                "component": lab.get("slice", "*"),
                "group": lab.get("model", ""),
                "class": lab["alertname"],
                "custom_details": {"labels": lab, "annotations": a["annotations"]},
            },
            "client": "modalwatch",
            "client_url": f"{external_url.rstrip('/')}/v1/alerts/{a['dedup_key']}",
        })
    if send_resolved:
        out += [{"event_action": "resolve", "dedup_key": a["dedup_key"]} for a in n.resolved]
    return out
