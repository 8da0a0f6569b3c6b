"""``alertmanager``: the Alertmanager webhook v4 payload, unsigned, for existing Alertmanager tooling."""

from __future__ import annotations

from typing import Literal

from alerts.receivers.base import Receiver, UrlReceiverConfig, alertmanager_payload, register_receiver


class AlertmanagerConfig(UrlReceiverConfig):
    kind: Literal["alertmanager"]


@register_receiver
class Alertmanager(Receiver):
    kind = "alertmanager"
    Config = AlertmanagerConfig

    def payload(self, n, external_url: str) -> dict:
        return alertmanager_payload(n, self.config.name, external_url, self.config.send_resolved)
