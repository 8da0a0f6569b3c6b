"""Webhook payloads in Alertmanager's version-4 shape, which on-call tooling already reads."""
from __future__ import annotations

from datetime import datetime


def _iso(dt: datetime | None) -> str:
    return "0001-01-01T00:00:00Z" if dt is None else dt.isoformat().replace("+00:00", "Z")


def webhook_payload(alert: dict, receiver: str, external_url: str) -> dict:
    status = "firing" if alert["state"] == "firing" else "resolved"
    labels = alert["labels"]
    return {
        "version": "4",
        "groupKey": alert["dedup_key"],
        "status": status,
        "receiver": receiver,
        "groupLabels": {"alertname": labels["alertname"]},
        "commonLabels": labels,
        "commonAnnotations": alert["annotations"],
        "externalURL": external_url,
        "truncatedAlerts": 0,
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": alert["annotations"],
            "startsAt": _iso(alert["starts_at"]),
            "endsAt": _iso(alert["ends_at"]),
            "generatorURL": f"{external_url.rstrip('/')}/v1/alerts/{alert['dedup_key']}",
            "fingerprint": alert["dedup_key"],
        }],
    }
