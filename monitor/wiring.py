"""Build the parts a config names: sources and senders."""

from __future__ import annotations

from typing import Callable

from alerts.receivers import receiver_for
from monitor.core.ports import Sender, Source


def build_senders(config) -> dict[str, Sender]:
    """One sender per receiver of ``alerts.webhooks``, by name (each kind builds its own), and the
    trust topic's when ``trust.topic`` is set."""
    senders = {w.name: receiver_for(w).sender() for w in config.alerts.webhooks if w.enabled}
    if config.trust.topic:
        from connectors.kafka import TopicSender
        from monitor.trust import TRUST_RECEIVER

        senders[TRUST_RECEIVER] = TopicSender(TRUST_RECEIVER, config.ingest.kafka, config.trust.topic)
    return senders


def build_sources(
    config,
    should_stop: Callable[[], bool] = lambda: False,
    status: Callable[[], dict] | None = None,
    ready: Callable[[], list[str]] | None = None,
    web: Callable[[str, str, str, bytes], tuple[int, str, bytes]] | None = None,
) -> list[Source]:
    """The sources a config names. ``status`` answers ``GET /v1/status`` (the daemon's counters),
    ``ready`` ``GET /readyz`` (why the daemon cannot take traffic, if it cannot), ``web`` the
    pages, the JSON API and ``/metrics`` (the daemon's web face, monitor/web.py)."""
    ing = config.ingest
    sources: list[Source] = []
    if ing.kafka is not None:
        from connectors.kafka import KafkaSource

        sources.append(KafkaSource(ing.kafka, ing.max_payload_bytes, should_stop=should_stop))
    if ing.http.enabled:
        from connectors.http import HttpSource

        http = ing.http
        tokens = [t.get_secret_value() for t in http.tokens] if http.auth != "off" else []
        from monitor.web import serves

        sources.append(
            HttpSource(
                http.host,
                http.port,
                ing.max_payload_bytes,
                status=status,
                tokens=tokens,
                ready=ready,
                web=web,
                web_serves=serves,
            )
        )
    if ing.jsonl.paths:
        from connectors.jsonl import JsonlSource

        sources.append(
            JsonlSource(ing.jsonl.paths, follow=ing.jsonl.follow, max_payload_bytes=ing.max_payload_bytes)
        )
    if not sources:
        raise ValueError(
            "no source configured: enable ingest.http, or set ingest.kafka or ingest.jsonl.paths"
        )
    return sources
