"""Senders for each kind of receiver, and the outbox delivery loop.

The generic webhook signs what it sends: ``X-Modalwatch-Timestamp`` (Unix seconds) and
``X-Modalwatch-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``. A receiver
recomputes the HMAC over the exact bytes it got and refuses a mismatch or a timestamp more than
``REPLAY_WINDOW_S`` (300 s) from its own clock — ``verify`` below is the reference snippet. Every
notification also carries ``Idempotency-Key``: the same value on every retry of one
notification, so a receiver can drop a duplicate after a lost acknowledgement.
"""
from __future__ import annotations

import collections
import hashlib
import hmac
import json
import logging
import random
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta

log = logging.getLogger("modalwatch.alerts")

SIGNATURE_HEADER = "X-Modalwatch-Signature"
TIMESTAMP_HEADER = "X-Modalwatch-Timestamp"
REPLAY_WINDOW_S = 300


def sign(secret: bytes, body: bytes, timestamp: str) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (Unix seconds, a string)."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, timestamp: str | None, signature: str | None, now: float | None = None,
           window_s: int = REPLAY_WINDOW_S) -> bool:
    """The receiver's check: the signature matches the exact body and timestamp, and the timestamp
    is within ``window_s`` of the receiver's clock (a replayed old request is refused)."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > window_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), signature)


class DeliveryError(OSError):
    pass


class RateLimited(Exception):
    """The receiver's ``max_per_minute`` is used up: the notification waits in the outbox."""


class WebhookSender:
    """One receiver. The URL, the secret and the routing key are held, never logged or put in an
    error message (they often are the credential: Slack and PagerDuty URLs and keys)."""

    def __init__(self, name: str, url: str, secret: str | None = None, timeout_s: float = 5.0,
                 kind: str = "webhook", routing_key: str | None = None, max_per_minute: int = 60):
        self.name = name
        self.kind = kind
        self.url = url
        self._secret = secret.encode() if secret else None
        self._routing_key = routing_key
        self.timeout_s = timeout_s
        self.max_per_minute = max_per_minute
        self._sent: collections.deque[float] = collections.deque()

    def __repr__(self) -> str:
        return f"WebhookSender(name={self.name!r}, kind={self.kind!r})"  # the URL may hold a token

    def _admit(self) -> None:
        now = time.monotonic()
        while self._sent and now - self._sent[0] >= 60:
            self._sent.popleft()
        if len(self._sent) >= self.max_per_minute:
            raise RateLimited(self.name)
        self._sent.append(now)

    def send(self, payload: dict, delivery_id: str) -> None:
        self._admit()
        if self.kind == "pagerduty":
            payload = {**payload, "routing_key": self._routing_key}
        body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "modalwatch",
                   "X-Modalwatch-Delivery": delivery_id, "Idempotency-Key": delivery_id}
        if self._secret and self.kind == "webhook":
            ts = str(int(time.time()))
            headers[TIMESTAMP_HEADER] = ts
            headers[SIGNATURE_HEADER] = sign(self._secret, body, ts)
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                resp.read()
        except urllib.error.HTTPError as e:
            raise DeliveryError(f"{self.name}: HTTP {e.code}") from None
        except (urllib.error.URLError, OSError) as e:
            raise DeliveryError(f"{self.name}: {getattr(e, 'reason', e)}") from None


def backoff(attempts: int, initial_s: float, max_s: float, jitter: float = 0.0) -> timedelta:
    """Delay before attempt ``attempts + 1``: doubling from ``initial_s``, capped at ``max_s``,
    then spread by ``jitter`` (a number in [0, 1): up to that share of the delay is taken off, so
    receivers coming back are not hit by every daemon at once)."""
    delay = min(max_s, initial_s * (2 ** min(attempts, 30)))
    return timedelta(seconds=delay * (1 - 0.5 * jitter))


def deliver_due(store, senders: dict[str, WebhookSender], now: datetime, initial_s: float, max_s: float) -> int:
    """Send every due outbox entry once; return how many were accepted. Failures are rescheduled
    with exponential backoff and jitter; a rate-limited receiver's entries wait untouched."""
    delivered = 0
    for item in store.due_outbox(now):
        sender = senders.get(item["receiver"])
        if sender is None:
            store.outbox_failed(item["id"], f"no receiver named {item['receiver']!r}", now + timedelta(days=1))
            continue
        try:
            sender.send(item["payload"], delivery_id=f"{item['dedup_key']}-{item['id']}")
        except RateLimited:
            continue
        except DeliveryError as e:
            when = now + backoff(item["attempts"], initial_s, max_s, jitter=random.random())
            log.warning("delivery %s failed (attempt %d): %s; next at %s", item["id"], item["attempts"] + 1, e,
                        when.isoformat())
            store.outbox_failed(item["id"], str(e), when)
            continue
        store.outbox_delivered(item["id"], now)
        delivered += 1
    return delivered
