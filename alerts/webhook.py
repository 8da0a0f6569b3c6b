"""WebhookSender: POSTs a JSON body signed with HMAC-SHA256, and the outbox delivery loop."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from datetime import datetime, timedelta

log = logging.getLogger("modalwatch.alerts")

SIGNATURE_HEADER = "X-Modalwatch-Signature"


def sign(secret: bytes, body: bytes) -> str:
    """The signature header's value: ``sha256=`` + hex HMAC-SHA256 of the exact body bytes."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(sign(secret, body), header)


class DeliveryError(Exception):
    pass


class WebhookSender:
    """A generic webhook receiver. The URL and the secret are held, never logged or put in an error."""

    def __init__(self, name: str, url: str, secret: str | None = None, timeout_s: float = 5.0):
        self.name = name
        self.url = url
        self._secret = secret.encode() if secret else None
        self.timeout_s = timeout_s

    def __repr__(self) -> str:
        return f"WebhookSender(name={self.name!r})"  # the URL may hold a token

    def send(self, payload: dict, delivery_id: str) -> None:
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "modalwatch",
                   "X-Modalwatch-Delivery": delivery_id, "Idempotency-Key": delivery_id}
        if self._secret:
            headers[SIGNATURE_HEADER] = sign(self._secret, body)
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read()
        except urllib.error.HTTPError as e:
            raise DeliveryError(f"{self.name}: HTTP {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            raise DeliveryError(f"{self.name}: {getattr(e, 'reason', e)}") from None


def backoff(attempts: int, initial_s: float, max_s: float) -> timedelta:
    """Delay before attempt ``attempts + 1``: doubling from ``initial_s``, capped at ``max_s``."""
    return timedelta(seconds=min(max_s, initial_s * (2 ** min(attempts, 30))))


def deliver_due(store, senders: dict[str, WebhookSender], now: datetime, initial_s: float, max_s: float) -> int:
    """Send every due outbox entry once; return how many were accepted. Failures are rescheduled."""
    delivered = 0
    for item in store.due_outbox(now):
        sender = senders.get(item["receiver"])
        if sender is None:
            store.outbox_failed(item["id"], f"no receiver named {item['receiver']!r}", now + timedelta(days=1))
            continue
        try:
            sender.send(item["payload"], delivery_id=f"{item['dedup_key']}-{item['id']}")
        except DeliveryError as e:
            when = now + backoff(item["attempts"], initial_s, max_s)
            log.warning("delivery %s failed (attempt %d): %s; next at %s", item["id"], item["attempts"] + 1, e,
                        when.isoformat())
            store.outbox_failed(item["id"], str(e), when)
            continue
        store.outbox_delivered(item["id"], now)
        delivered += 1
    return delivered
