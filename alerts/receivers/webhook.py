"""``webhook``: the generic receiver — Alertmanager's webhook v4 JSON, HMAC-signed when ``secret``
is set.

The signature: ``X-Modalwatch-Timestamp`` (Unix seconds) and ``X-Modalwatch-Signature:
sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>``. A receiver recomputes the HMAC over the
exact bytes it got and refuses a mismatch or a timestamp more than ``REPLAY_WINDOW_S`` (300 s)
from its own clock — ``verify`` below is the reference snippet.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Literal

from pydantic import SecretStr

from alerts.receivers.base import (
    HttpSender,
    Receiver,
    UrlReceiverConfig,
    alertmanager_payload,
    register_receiver,
)

SIGNATURE_HEADER = "X-Modalwatch-Signature"
TIMESTAMP_HEADER = "X-Modalwatch-Timestamp"
REPLAY_WINDOW_S = 300


def sign(secret: bytes, body: bytes, timestamp: str) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (Unix seconds, a string)."""
    return "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def verify(
    secret: bytes,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now: float | None = None,
    window_s: int = REPLAY_WINDOW_S,
) -> bool:
    """The receiver's check: the signature matches the exact body and timestamp, and the timestamp
    is within ``window_s`` of the receiver's clock (a replayed old request is refused)."""
    if not timestamp or not signature or not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > window_s:
        return False
    return hmac.compare_digest(sign(secret, body, timestamp), signature)


class WebhookSender(HttpSender):
    """Posts JSON, signed with ``secret`` when one is given (the secret is never logged)."""

    def __init__(
        self, name: str, url: str, secret: str | None = None, timeout_s: float = 5.0, max_per_minute: int = 60
    ):
        super().__init__(name, url, timeout_s, max_per_minute)
        self._secret = secret.encode() if secret else None

    def encode(self, payload: dict) -> tuple[bytes, dict[str, str]]:
        body, headers = super().encode(payload)
        if self._secret:
            ts = str(int(time.time()))
            headers = {**headers, TIMESTAMP_HEADER: ts, SIGNATURE_HEADER: sign(self._secret, body, ts)}
        return body, headers


class WebhookConfig(UrlReceiverConfig):
    kind: Literal["webhook"] = "webhook"
    secret: SecretStr | None = None


@register_receiver
class GenericWebhook(Receiver):
    kind = "webhook"
    Config = WebhookConfig
    config: WebhookConfig

    def payload(self, n, external_url: str) -> dict:
        return alertmanager_payload(n, self.config.name, external_url, self.config.send_resolved)

    def sender(self) -> WebhookSender:
        c = self.config
        return WebhookSender(
            c.name,
            c.url.get_secret_value(),
            c.secret.get_secret_value() if c.secret else None,
            c.timeout_s,
            c.max_per_minute,
        )
