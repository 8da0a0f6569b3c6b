"""Errors that cross from one part to another and name what failed."""

from __future__ import annotations


class MediaError(ValueError):
    """A modality's raw media could not be read, decoded or measured; the message names the
    modality and the reason (it becomes the dead letter's reason)."""

    def __init__(self, modality: str, reason: str):
        super().__init__(f"{modality}: {reason}")
        self.modality = modality


class DeliveryError(OSError):
    """A receiver did not take a notification; the outbox retries it with backoff."""


class RateLimited(Exception):
    """The receiver's ``max_per_minute`` is used up: the notification waits in the outbox."""
