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
    web: Callable[[], object] | None = None,
) -> list[Source]:
    """The sources a config names. ``status`` answers ``GET /v1/status`` (the daemon's counters),
    ``ready`` ``GET /readyz`` (why the daemon cannot take traffic, if it cannot), ``web`` gives
    the daemon's web face (monitor/web.py: the pages, the JSON API and ``/metrics``), once open."""
    ing = config.ingest
    sources: list[Source] = []
    if ing.kafka is not None:
        from connectors.kafka import KafkaSource

        sources.append(KafkaSource(ing.kafka, ing.max_payload_bytes, should_stop=should_stop))
    if ing.http.enabled:
        from connectors.http import HttpSource

        from connectors.http import HttpLimits
        from monitor.web import routes

        http = ing.http
        on = http.auth != "off"
        sources.append(
            HttpSource(
                http.host,
                http.port,
                ing.max_payload_bytes,
                status=status,
                tokens=[t.get_secret_value() for t in http.tokens] if on else [],
                read_tokens=[t.get_secret_value() for t in http.read_tokens] if on else [],
                protect_reads=http.reads == "protected",
                allowed_hosts=http.allowed_hosts,
                ready=ready,
                routes=routes(web) if web is not None else (),
                limits=HttpLimits(
                    max_connections=http.max_connections,
                    header_timeout_s=http.header_timeout.total_seconds(),
                    body_timeout_s=http.body_timeout.total_seconds(),
                ),
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
