"""``pagerduty``: Events API v2 — one ``trigger`` per firing alert and one ``resolve`` per resolved
one, ``dedup_key`` = the alert's fingerprint, so PagerDuty keeps one incident per alert however
often it is told. The routing key is added when sending, never stored in the outbox."""

from __future__ import annotations

from typing import Literal

from pydantic import SecretStr, model_validator

from alerts.receivers.base import (
    HttpSender,
    Receiver,
    ReceiverConfig,
    alert_url,
    describe,
    iso,
    register_receiver,
)

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
    """Events API v2 bodies without ``routing_key`` (the sender adds it)."""
    out = []
    for a in n.firing:
        lab = a.labels
        out.append(
            {
                "event_action": "trigger",
                "dedup_key": a.dedup_key,
                "payload": {
                    "summary": (describe(a) + ": " + a.annotations.get("summary", ""))[:1024],
                    "source": f"modalwatch/{lab.get('model', '?')}",
                    "severity": SEVERITY.get(lab.get("severity", "warning"), "warning"),
                    "timestamp": iso(a.starts_at),
                    "component": lab.get("slice", "*"),
                    "group": lab.get("model", ""),
                    "class": lab["alertname"],
                    "custom_details": {"labels": lab, "annotations": a.annotations},
                },
                "client": "modalwatch",
                "client_url": alert_url(external_url, a),
            }
        )
    if send_resolved:
        out += [{"event_action": "resolve", "dedup_key": a.dedup_key} for a in n.resolved]
    return out


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
        """One entry per alert, keyed by its fingerprint."""
        return [(ev["dedup_key"], ev) for ev in pagerduty_events(n, external_url, self.config.send_resolved)]

    def sender(self) -> PagerDutySender:
        c = self.config
        return PagerDutySender(
            c.name, c.url.get_secret_value(), c.routing_key.get_secret_value(), c.timeout_s, c.max_per_minute
        )
