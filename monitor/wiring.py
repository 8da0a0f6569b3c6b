"""Build the parts a config names: store, sources, senders."""
from __future__ import annotations

from alerts.webhook import WebhookSender
from connectors.stores import open_store


def build_senders(config) -> dict[str, WebhookSender]:
    return {w.name: WebhookSender(w.name, w.url, w.secret.get_secret_value() if w.secret else None, w.timeout_s)
            for w in config.alerts.webhooks}


def build_sources(config, store, should_stop=lambda: False) -> list:
    ing = config.ingest
    sources: list = []
    if ing.kafka is not None:
        from connectors.kafka import KafkaSource

        sources.append(KafkaSource(ing.kafka, ing.max_payload_bytes, should_stop=should_stop))
    if ing.http.enabled:
        from connectors.http import HttpSource

        sources.append(HttpSource(ing.http.host, ing.http.port, ing.max_payload_bytes, status=None))
    if ing.jsonl.paths:
        from connectors.jsonl import JsonlSource

        sources.append(JsonlSource(ing.jsonl.paths, follow=ing.jsonl.follow, max_payload_bytes=ing.max_payload_bytes))
    if not sources:
        raise ValueError("no source configured: enable ingest.http, or set ingest.kafka or ingest.jsonl.paths")
    return sources


__all__ = ["build_senders", "build_sources", "open_store"]
