"""``pagerduty``: Events API v2 — one event per notification group (with the default route, one per
incident of ours): ``trigger`` while its alerts fire, ``resolve`` when none does, ``dedup_key`` =
the group key, so PagerDuty keeps one incident per cause however often it is told. The routing key
is added when sending, never stored in the outbox."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr, model_validator

from alerts.receivers.base import (
    HttpSender,
    Receiver,
    ReceiverConfig,
    alert_url,
    describe,
    incident_lines,
    iso,
    register_receiver,
)
from monitor.core.text import printable

EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
SEVERITY = {"critical": "critical", "warning": "warning", "info": "info"}


class PagerDutyConfig(ReceiverConfig):
    kind: Literal["pagerduty"]
    routing_key: SecretStr | None = None

    @model_validator(mode="after")
    def _key(self) -> "PagerDutyConfig":
        if self.routing_key is None:
            raise ValueError(f"receiver {self.name!r}: routing_key is required for pagerduty")
        if self.url is None:
            self.url = SecretStr(EVENTS_URL)
        return self


def pagerduty_events(n, external_url: str, send_resolved: bool = True) -> list[dict]:
    """Events API v2 bodies without ``routing_key`` (the sender adds it): one per notification
    group (``dedup_key`` = the group key, as Alertmanager's own PagerDuty integration keys it), so
    one incident of ours (the default route's group) is one PagerDuty incident however many
    alerts it folds and however often it is told: ``trigger`` while any of its alerts fires,
    ``resolve`` once none does."""
    if not n.firing:
        return [{"event_action": "resolve", "dedup_key": n.group_key}] if send_resolved else []
    first = n.firing[0]
    lab = first.labels
    incidents = incident_lines(n)
    summary = "; ".join(h for h, _ in incidents) or (
        describe(first) + ": " + first.annotations.get("summary", "")
        if len(n.firing) == 1
        else f"{len(n.firing)} alerts: " + ", ".join(describe(a) for a in n.firing)
    )
    severities = {a.labels.get("severity", "warning") for a in n.firing}
    severity = next((s for s in SEVERITY if s in severities), "warning")  # the gravest
    # PagerDuty shows these as plain text, one line each: controls (a newline among them) escaped
    return [
        {
            "event_action": "trigger",
            "dedup_key": n.group_key,
            "payload": {
                "summary": printable(summary)[:1024],
                "source": printable(f"modalwatch/{lab.get('model', '?')}")[:255],
                "severity": severity,
                "timestamp": iso(min(a.starts_at for a in n.firing)),
                "component": printable(", ".join(sorted({a.labels.get("slice", "*") for a in n.firing})))[
                    :255
                ],
                "group": printable(lab.get("model", ""))[:255],
                "class": ", ".join(sorted({a.labels["alertname"] for a in n.firing}))[:255],
                "custom_details": {
                    "incidents": [
                        {"headline": printable(h), "grouped_because": printable(b)} for h, b in incidents
                    ],
                    "alerts": [
                        {
                            "labels": {k: printable(v) for k, v in a.labels.items()},
                            "annotations": {k: printable(v) for k, v in a.annotations.items()},
                            "url": alert_url(external_url, a),
                        }
                        for a in n.firing[:50]
                    ],
                    "alerts_firing": len(n.firing),
                },
            },
            "client": "modalwatch",
            "client_url": alert_url(external_url, first),
            "links": [
                {"href": alert_url(external_url, a), "text": printable(describe(a))[:200]}
                for a in n.firing[:10]
            ],
        }
    ]


class PagerDutySender(HttpSender):
    def __init__(
        self, name: str, url: str, routing_key: str, timeout_s: float = 5.0, max_per_minute: int = 60
    ):
        super().__init__(name, url, timeout_s, max_per_minute)
        self._routing_key = routing_key

    def encode(self, payload: dict) -> tuple[bytes, dict[str, str]]:
        return super().encode({**payload, "routing_key": self._routing_key})


@register_receiver
class PagerDuty(Receiver):
    kind = "pagerduty"
    Config = PagerDutyConfig
    config: PagerDutyConfig

    def outbox_entries(self, n, external_url: str) -> list[tuple[str, dict]]:
        """One entry per group, keyed by it."""
        return [(ev["dedup_key"], ev) for ev in pagerduty_events(n, external_url, self.config.send_resolved)]

    def sender(self) -> PagerDutySender:
        c = self.config
        return PagerDutySender(
            c.name, c.url.get_secret_value(), c.routing_key.get_secret_value(), c.timeout_s, c.max_per_minute
        )
