"""Receiver kinds: one file each (webhook, alertmanager, slack, pagerduty), each owning its config
model, its payload and its send. Importing this package registers them; a new kind is a module
with a ``@register_receiver``-ed class (see alerts/receivers/base.py)."""

from alerts.receivers import alertmanager, pagerduty, slack, webhook  # noqa: F401 - imported to register
from alerts.receivers.base import (
    HttpSender,
    Receiver,
    ReceiverConfig,
    on_kinds_change,
    receiver_for,
    receiver_kinds,
    register_receiver,
    unregister_receiver,
)

__all__ = [
    "HttpSender",
    "Receiver",
    "ReceiverConfig",
    "on_kinds_change",
    "receiver_for",
    "receiver_kinds",
    "register_receiver",
    "unregister_receiver",
]
