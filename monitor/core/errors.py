"""Errors that cross from one part to another and name what failed."""

from __future__ import annotations


class MediaError(ValueError):
    """A modality's raw media could not be read, decoded or measured; the message names the
    modality and the reason (it becomes the dead letter's reason)."""

    def __init__(self, modality: str, reason: str):
        super().__init__(f"{modality}: {reason}")
        self.modality = modality


class DeliveryError(OSError):
    """A receiver did not take a notification; the outbox retries it with backoff — unless
    ``permanent`` (the receiver refused it for good, e.g. HTTP 400/401/403/404): then the entry is
    set aside as dead, with the reason, instead of being retried for ever."""

    def __init__(self, message: str, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


class RateLimited(Exception):
    """The receiver's ``max_per_minute`` is used up: the notification waits in the outbox."""
