"""KafkaSource: a consumer-group member reading the inference and label topics, at least once.

Offsets are committed only by ``commit()``, which the daemon calls after the store committed the
batch, and only up to the end of that batch: the daemon polls the next batch while the last one
is being written, so the consumer's position is ahead of what is safe to commit. A broker that is
down is retried with exponential backoff; the daemon does not crash.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable

from kafka import ConsumerRebalanceListener, KafkaConsumer, KafkaProducer
from kafka.errors import CommitFailedError, KafkaError
from kafka.structs import OffsetAndMetadata

from monitor.core.errors import DeliveryError
from monitor.core.messages import DEAD_LETTER_PAYLOAD_MAX, Outcome, RawMessage

log = logging.getLogger("modalwatch.kafka")


def consumer_settings(cfg, max_payload_bytes: int) -> dict:
    """kafka-python consumer settings of a KafkaConfig (shared with bench/ingest.py's bare loop)."""
    return dict(
        bootstrap_servers=cfg.bootstrap_servers,
        group_id=cfg.group_id,
        enable_auto_commit=False,
        auto_offset_reset=cfg.auto_offset_reset,
        max_poll_records=cfg.max_poll_records,
        session_timeout_ms=cfg.session_timeout_ms,
        max_poll_interval_ms=cfg.max_poll_interval_ms,
        heartbeat_interval_ms=max(1000, cfg.session_timeout_ms // 3),
        # Large fetches let kafka-python's network thread fetch ahead while a batch is stored;
        # with the 1 MiB default the consumer sat waiting for fetches most of the time.
        fetch_max_bytes=max(cfg.fetch_max_bytes, max_payload_bytes * 4),
        max_partition_fetch_bytes=max(cfg.max_partition_fetch_bytes, max_payload_bytes + 1024),
        client_id="modalwatch",
        # while the broker is down kafka-python reconnects by itself, with this backoff
        reconnect_backoff_ms=int(cfg.retry_initial_s * 1000),
        reconnect_backoff_max_ms=int(cfg.retry_max_s * 1000),
        **cfg.security_settings(),
    )


class KafkaSource:
    name = "kafka"
    exhausted = False

    def __init__(
        self,
        cfg,
        max_payload_bytes: int,
        should_stop: Callable[[], bool] = lambda: False,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.cfg = cfg
        self.max_payload_bytes = max_payload_bytes
        self._kinds = {cfg.events_topic: "inference", cfg.labels_topic: "label"}
        self._should_stop = should_stop
        self._sleep = sleep
        self._consumer: KafkaConsumer | None = None
        # per poll not yet committed, oldest first: {partition: the offset after its last record}
        self._uncommitted: deque[dict] = deque()
        self._to_close: dict = {}  # the latest committed end of each partition, committed again at close
        self._unsent: dict = {}  # ends to commit with the next request
        self._commit_in_flight = False
        self._connector: threading.Thread | None = None  # makes the consumer, off the daemon's thread
        self._ready: KafkaConsumer | None = None  # made, not yet taken by poll()
        self._down: str | None = None  # why there is no consumer yet
        self._closed = False
        self._wake = threading.Event()  # set at close: the connector's backoff ends
        self._lost_since: float | None = None  # connected once, no broker connection since then
        self._checked_at = 0.0
        # the partitions the group gave this member at its last join; None while joining or
        # rebalancing (set by the rebalance listener, on the thread that polls)
        self._assigned: frozenset | None = None

    def _connect(self) -> None:
        """Make the consumer in a thread of its own, retrying with backoff while the brokers are
        away: the daemon's loop goes on meanwhile (HTTP ingest answers, a stop is prompt), and
        ``health()`` says why Kafka gives nothing yet."""
        delay = self.cfg.retry_initial_s
        while not self._should_stop() and not self._closed:
            try:
                consumer = KafkaConsumer(**consumer_settings(self.cfg, self.max_payload_bytes))
                consumer.subscribe(topics=sorted(self._kinds), listener=_Assignments(self))
            except Exception as e:  # noqa: BLE001 - KafkaError, OSError (unreachable), a TLS or SASL mistake …
                self._down = (
                    f"not reachable at {','.join(self.cfg.bootstrap_servers)} ({e.__class__.__name__})"
                )
                log.warning(
                    "Kafka %s; retrying in %.1fs",
                    self._down,
                    delay,
                    exc_info=not isinstance(e, (KafkaError, OSError)),
                )
                self._wake.wait(delay)
                delay = min(self.cfg.retry_max_s, delay * 2)
                continue
            log.info(
                "Kafka consumer joined group %s on %s, topics %s",
                self.cfg.group_id,
                ",".join(self.cfg.bootstrap_servers),
                sorted(self._kinds),
            )
            if self._closed:
                consumer.close(autocommit=False)
                return
            self._ready = consumer  # handed over: poll() takes it on the daemon's thread
            return

    # how often poll() looks at the consumer's connection count, and how long none may last
    # before /readyz says so (a broker's restart or a leader moving is shorter)
    CHECK_EVERY_S = 1.0
    LOST_AFTER_S = 3.0
    # what a stop may spend on the final commit and on leaving the group: kafka-python retries a
    # synchronous commit forever without a timeout, so a broker gone at shutdown would hold the
    # stop until the process is killed
    CLOSE_TIMEOUT_MS = 5000
    # the least a poll waits while the consumer holds no partitions (see poll())
    JOIN_POLL_MS = 200

    def health(self) -> str | None:
        if self._consumer is None:
            return self._down or "connecting"
        lost = self._lost_since
        if lost is not None and time.monotonic() - lost >= self.LOST_AFTER_S:
            return (
                f"no connection to a broker at {','.join(self.cfg.bootstrap_servers)} for"
                f" {time.monotonic() - lost:.0f} s (reconnecting)"
            )
        if self._assigned is None:
            return f"joining consumer group {self.cfg.group_id} (no partitions assigned yet)"
        return None

    def assigned_partitions(self) -> list[str]:
        """``topic/partition`` of each partition this member holds now (empty while joining)."""
        return sorted(f"{tp.topic}/{tp.partition}" for tp in self._assigned or ())

    def _watch_connections(self) -> None:
        """Note when the consumer has no broker connection: kafka-python reconnects by itself
        and polls return nothing meanwhile, so without this a lost broker would look like a
        quiet topic. Read from its public metrics, on the thread that polls."""
        now = time.monotonic()
        if now - self._checked_at < self.CHECK_EVERY_S:
            return
        self._checked_at = now
        count = self._consumer.metrics().get("consumer-metrics", {}).get("connection-count")
        if count == 0 and self._lost_since is None:
            self._lost_since = now
            log.warning("Kafka: no connection to any broker; kafka-python keeps reconnecting")
        elif count and self._lost_since is not None:
            log.info("Kafka: connected again after %.0f s", now - self._lost_since)
            self._lost_since = None

    def poll(self, max_records: int, timeout_s: float = 0.0) -> list[RawMessage]:
        if self._consumer is None:
            if self._ready is None:
                if self._connector is None:
                    self._connector = threading.Thread(
                        target=self._connect, name="modalwatch-kafka-connect", daemon=True
                    )
                    self._connector.start()
                if timeout_s:
                    self._wake.wait(timeout_s)  # the loop's idle wait, not a spin
                return []
            self._consumer, self._ready = self._ready, None
            self._down = None
        timeout_ms = min(int(timeout_s * 1000), self.cfg.poll_timeout_ms)
        if not self._consumer.assignment():
            # joining or rebalancing: kafka-python finishes a join only inside a poll that waits,
            # and polls of 0 ms can make it rejoin again and again (a group that never forms)
            timeout_ms = max(timeout_ms, self.JOIN_POLL_MS)
        try:
            # 0 takes what the fetcher holds and returns at once: the daemon has batches in flight
            # (an HTTP request waits on them), so a poll must not sit out poll_timeout_ms
            batches = self._consumer.poll(timeout_ms=timeout_ms, max_records=max_records)
        except KafkaError as e:
            log.warning("Kafka poll failed (%s); will retry", e)
            self._sleep(self.cfg.retry_initial_s)
            return []
        self._watch_connections()
        out: list[RawMessage] = []
        ends = {}
        for tp, records in batches.items():
            kind = self._kinds.get(tp.topic)
            if records:
                ends[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
            for r in records:
                pos = f"{tp.topic}/{tp.partition}/{r.offset}"
                value = r.value
                error = None
                if value is None:
                    error = "empty message (tombstone)"
                elif len(value) > max(self.max_payload_bytes, DEAD_LETTER_PAYLOAD_MAX):
                    # decode() rejects anything over the limit; this only spares keeping a huge value
                    error = (
                        f"payload too large: {len(value)} bytes > "
                        f"ingest.max_payload_bytes={self.max_payload_bytes}"
                    )
                    value = None
                out.append(RawMessage(self.name, pos, value, kind, error))
        if out:
            self._uncommitted.append(ends)
        if self._unsent and not self._commit_in_flight:  # ends left over while a commit was answered
            self._send_commit()
        return out

    def commit(self, outcomes: list[Outcome]) -> None:
        """Commit the end of the oldest uncommitted poll (the daemon commits polls in order); the
        store has already committed what it holds. Asynchronous, one request at a time: the daemon
        goes on polling while the broker answers, and the ends of the polls committed meanwhile
        go in the next request (a lost commit only means re-reading, harmless as writes are
        idempotent by event_id); ``close()`` commits the last ends synchronously."""
        if self._consumer is None or not self._uncommitted:
            return
        ends = self._uncommitted.popleft()
        self._to_close.update(ends)
        self._unsent.update(ends)
        if not self._commit_in_flight:
            self._send_commit()

    def _send_commit(self) -> None:
        # partitions a rebalance gave to another member are theirs to commit now (ours could only
        # move their offset back)
        mine = self._consumer.assignment()
        offsets = {tp: end for tp, end in self._unsent.items() if tp in mine}
        self._unsent = {}
        if not offsets:
            return
        self._commit_in_flight = True
        try:
            self._consumer.commit_async(offsets, callback=self._commit_done)
        except KafkaError as e:
            self._commit_done(offsets, e)

    def _commit_done(self, offsets: dict, response) -> None:
        """The broker's answer (kafka-python calls this from a later poll or commit, on the
        daemon's thread)."""
        self._commit_in_flight = False
        if isinstance(response, Exception):
            for tp, end in offsets.items():  # sent again with the next commit, unless a later end is due
                self._unsent.setdefault(tp, end)
            if isinstance(response, CommitFailedError):
                # A rebalance took the partitions away: the new owner re-reads from the last commit,
                # which is harmless because writes are idempotent by event_id.
                log.warning("offset commit failed after a rebalance (%s); messages will be re-read", response)
            else:
                log.info("offset commit not done (%s); it goes with the next one", response)

    def close(self) -> None:
        self._closed = True
        self._wake.set()
        if self._connector is not None:
            # a connect attempt in flight ends on its own (and closes what it made): not waited for long
            self._connector.join(2)
        if self._ready is not None:
            self._ready.close(autocommit=False)
            self._ready = None
        if self._consumer is not None:
            mine = self._consumer.assignment()
            last = {tp: end for tp, end in self._to_close.items() if tp in mine}
            if last:
                try:  # what was committed asynchronously, made sure of
                    self._consumer.commit(last, timeout_ms=self.CLOSE_TIMEOUT_MS)
                except KafkaError as e:
                    log.warning(
                        "final offset commit failed (%s); the uncommitted messages will be re-read", e
                    )
            self._consumer.close(autocommit=False, timeout_ms=self.CLOSE_TIMEOUT_MS)
            self._consumer = None
            self._uncommitted.clear()
            self._to_close.clear()
            self._unsent.clear()
            self._commit_in_flight = False


def produce_json(
    cfg,
    topic: str,
    items: list[dict],
    key_field: str | None = None,
    timeout_s: float = 30.0,
) -> None:
    """Send each item as one JSON message (keyed by ``key_field``) to ``topic`` on the brokers of
    ``cfg`` (a KafkaConfig: its TLS/SASL settings too) and wait until the broker has acknowledged
    every one; raises KafkaError if it does not (the caller then keeps the items)."""
    import json

    producer = KafkaProducer(
        bootstrap_servers=cfg.bootstrap_servers, acks="all", linger_ms=20, **cfg.security_settings()
    )
    try:
        futures = [
            producer.send(
                topic,
                json.dumps(it, sort_keys=True).encode(),
                key=str(it[key_field]).encode() if key_field else None,
            )
            for it in items
        ]
        producer.flush(timeout=timeout_s)
        for f in futures:
            f.get(timeout=timeout_s)
    finally:
        producer.close(timeout=timeout_s)


class TopicSender:
    """Sends outbox payloads as JSON messages to a topic (keyed by the payload's ``key``), waiting
    for the brokers' acknowledgement: an outbox entry is done only once Kafka has it."""

    def __init__(self, name: str, cfg, topic: str, timeout_s: float = 10.0) -> None:
        self.name = name
        self.cfg = cfg
        self.topic = topic
        self.timeout_s = timeout_s

    def send(self, payload: dict, delivery_id: str) -> None:
        try:
            produce_json(self.cfg, self.topic, [payload], key_field="key", timeout_s=self.timeout_s)
        except (KafkaError, OSError) as e:
            raise DeliveryError(f"{self.name}: Kafka did not take the message ({type(e).__name__})") from None


class _Assignments(ConsumerRebalanceListener):
    """Keeps what the group assigned to the source: ready means a join completed (a member of a
    group with more members than partitions holds none and is still ready: it takes over when
    another leaves)."""

    def __init__(self, source: KafkaSource):
        self.source = source

    def on_partitions_revoked(self, revoked) -> None:
        self.source._assigned = None

    def on_partitions_assigned(self, assigned) -> None:
        self.source._assigned = frozenset(assigned)
        if assigned:
            log.info("Kafka: assigned %s", ", ".join(self.source.assigned_partitions()))
        else:
            log.warning(
                "Kafka: joined group %s with no partition assigned (do the topics %s exist? are there"
                " more members than partitions?)",
                self.source.cfg.group_id,
                ", ".join(sorted(self.source._kinds)),
            )
