"""Delivery of the outbox: every notification was written there before anyone is told (promise 4);
here each due entry is sent once per pass, retried with exponential backoff and jitter until its
receiver takes it, in order per alert and receiver."""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta
from typing import Mapping, NamedTuple

from monitor.core.errors import DeliveryError, RateLimited
from monitor.core.ports import AlertStore, Sender

log = logging.getLogger("modalwatch.alerts")


def backoff(attempts: int, initial_s: float, max_s: float, jitter: float = 0.0) -> timedelta:
    """Delay before attempt ``attempts + 1``: doubling from ``initial_s``, capped at ``max_s``,
    then spread by ``jitter`` (a number in [0, 1): up to that share of the delay is taken off, so
    receivers coming back are not hit by every daemon at once)."""
    delay = min(max_s, initial_s * (2 ** min(attempts, 30)))
    return timedelta(seconds=delay * (1 - 0.5 * jitter))


class DeliveryPass(NamedTuple):
    delivered: int  # accepted by their receivers
    dead: int  # refused for good (a 4xx other than 408/425/429): set aside, never retried


def deliver_due(
    alerts: AlertStore, senders: Mapping[str, Sender], now: datetime, initial_s: float, max_s: float
) -> DeliveryPass:
    """Send every due outbox entry once. Failures are rescheduled with exponential backoff and
    jitter; a rate-limited receiver's entries wait untouched. ``alerts``: the store's alert
    repository (``store.alerts``)."""
    delivered = dead = 0
    for item in alerts.due_outbox(now):
        sender = senders.get(item.receiver)
        if sender is None:
            alerts.outbox_failed(item.id, f"no receiver named {item.receiver!r}", now + timedelta(days=1))
            continue
        try:
            sender.send(item.payload, delivery_id=f"{item.dedup_key}-{item.id}")
        except RateLimited:
            continue
        except DeliveryError as e:
            if e.permanent:
                log.warning("delivery %s refused for good (%s): set aside as dead, not retried", item.id, e)
                alerts.outbox_dead(item.id, str(e), now)
                dead += 1
                continue
            when = now + backoff(item.attempts, initial_s, max_s, jitter=random.random())
            log.warning(
                "delivery %s failed (attempt %d): %s; next at %s",
                item.id,
                item.attempts + 1,
                e,
                when.isoformat(),
            )
            alerts.outbox_failed(item.id, str(e), when)
            continue
        alerts.outbox_delivered(item.id, now)
        delivered += 1
    return DeliveryPass(delivered, dead)
