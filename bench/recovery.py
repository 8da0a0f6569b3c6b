"""Crash recovery under load (issue 14): `modalwatch run` with 2 pipeline workers reads
``--events`` (default 200,000) from Kafka into PostgreSQL, and again into TimescaleDB, and is
SIGKILLed ``--kills`` times (default 10) at random moments mid-ingest (uniform 0-0.6 s after each
run has stored its first batch), then runs to the end and stops with SIGTERM. Every event must be stored
exactly once, the per-minute ingest counters (data health) must count each message once, and
no scheduler row of a killed process may be left.

    python bench/recovery.py [--events 200000] [--kills 10] [--workers 2] [--seed 0] [--db postgres timescale]

Kafka: MODALWATCH_BENCH_KAFKA=host:port, else a Tansu broker started here. PostgreSQL:
MODALWATCH_BENCH_PG_URL, else postgresql://postgres@127.0.0.1:5432/test; TimescaleDB:
MODALWATCH_TEST_TIMESCALE_URL (README: how to start one), without which that half says so and
its GOAL lines FAIL. Each run gets a fresh schema, dropped at the end. Ends with one GOAL line
per goal and database and exits 0 either way.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from tests.conftest import bench_kafka, make_topics, produce_inferences  # noqa: E402
from tests.connectors.test_kafka_postgres import _alive, _committed  # noqa: E402


@contextlib.contextmanager
def fresh_schema(base: str, also_public: bool):
    """A URL whose search_path is a new schema (then public, where TimescaleDB's functions are)."""
    schema = f"mw_recovery_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    path = f"{schema}%2Cpublic" if also_public else schema
    try:
        yield f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{path}"
    finally:
        with psycopg.connect(base, autocommit=True) as c:
            c.execute(f"DROP SCHEMA {schema} CASCADE")


def one(pg_url: str, sql: str):
    with psycopg.connect(pg_url) as c:
        try:
            return c.execute(sql).fetchone()
        except psycopg.errors.UndefinedTable:
            return None


def run(db: str, pg_url: str, bootstrap: str, n: int, kills: int, workers: int, rng, tmp: Path) -> dict:
    parts = 2
    topic, group = f"rec-{uuid.uuid4().hex[:8]}", f"mw-{uuid.uuid4().hex[:8]}"
    make_topics(bootstrap, [topic, f"{topic}-labels"], partitions=parts)
    produce_inferences(bootstrap, topic, n, parts, linger_ms=50, batch_size=1 << 20)
    cfg = tmp / f"{db}.yaml"
    cfg.write_text(f"""
store: {{kind: postgres, url: "${{MW_BENCH_PG}}", batch_size: 500}}
ingest:
  workers: {workers}
  http: {{enabled: false}}
  kafka:
    bootstrap_servers: ["{bootstrap}"]
    group_id: {group}
    events_topic: {topic}
    labels_topic: {topic}-labels
    max_poll_records: 500
    session_timeout_ms: 6000
    max_poll_interval_ms: 5000
evaluation: {{tick_s: 3600}}
""")
    env = {**os.environ, "MW_BENCH_PG": pg_url}

    def start(k: int):
        log = open(tmp / f"{db}-run{k}.log", "wb")
        cmd = [sys.executable, "-m", "monitor.cli", "run", "--config", str(cfg)]
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log

    def stored() -> int:
        row = one(pg_url, "SELECT COUNT(*) FROM events")
        return row[0] if row else 0

    t0 = time.perf_counter()
    for k in range(kills):
        before = stored()
        proc, log = start(k)
        # mid-ingest: a random moment after this run has stored its first batch (start-up and the
        # group join take seconds, and a kill before them would prove nothing)
        deadline = time.time() + 60
        while stored() == before and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        log.close()
        pids = re.search(
            r"worker processes started \(pids ([\d, ]+)\)", (tmp / f"{db}-run{k}.log").read_text()
        )
        deadline = time.time() + 10  # the kernel ends the workers with the daemon
        while pids and time.time() < deadline and any(_alive(int(p)) for p in pids.group(1).split(", ")):
            time.sleep(0.05)
        print(
            f"  {db}: kill {k + 1} at {time.perf_counter() - t0:5.1f} s: {stored():,} events stored",
            flush=True,
        )
    proc, log = start(kills)
    deadline = time.time() + 600
    while _committed(bootstrap, group, topic, parts) < n and time.time() < deadline:
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    rc = proc.wait(60)
    log.close()
    total, distinct = one(pg_url, "SELECT COUNT(*), COUNT(DISTINCT event_id) FROM events")
    counted = one(pg_url, "SELECT COALESCE(SUM(messages), 0) FROM ingest_minutes")[0]
    leftover = one(pg_url, "SELECT COUNT(*) FROM scheduler_jobs")[0]
    print(
        f"  {db}: after {kills} kills and a run to the end ({time.perf_counter() - t0:.0f} s, last exit"
        f" {rc}): {total:,} rows, {distinct:,} event ids, ingest counters {counted:,}, scheduler rows"
        f" left {leftover}"
    )
    return {
        "lost": n - distinct,
        "duplicated": total - distinct,
        "counted_twice": counted - n,
        "rows": leftover,
    }


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--db", nargs="+", choices=["postgres", "timescale"], default=["postgres", "timescale"])
    args = ap.parse_args()
    rng = random.Random(args.seed)
    bases = {
        "postgres": os.environ.get("MODALWATCH_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test"),
        "timescale": os.environ.get("MODALWATCH_TEST_TIMESCALE_URL"),
    }
    results = {}
    with bench_kafka() as bootstrap, tempfile.TemporaryDirectory() as tmp:
        if bootstrap is None:
            return 0
        for db in args.db:
            if not bases[db]:
                print(f"  {db}: not run (MODALWATCH_TEST_TIMESCALE_URL is not set)")
                continue
            print(f"{db}: {args.events:,} events, {args.workers} workers, {args.kills} SIGKILLs", flush=True)
            with fresh_schema(bases[db], also_public=db == "timescale") as url:
                results[db] = run(db, url, bootstrap, args.events, args.kills, args.workers, rng, Path(tmp))
    print(f"machine: {os.cpu_count()} cores")
    for db in args.db:
        r = results.get(db)
        for goal, what in (
            ("lost", "lost"),
            ("duplicated", "duplicated"),
            ("counted_twice", "counted twice"),
        ):
            got = "not run" if r is None else f"{r[goal]:,} {what}"
            ok = r is not None and r[goal] == 0
            print(f"GOAL kill9_{db}_{goal}: {got} vs 0 {'PASS' if ok else 'FAIL'}")
        got = "not run" if r is None else f"{r['rows']} scheduler rows left"
        ok = r is not None and r["rows"] == 0
        print(f"GOAL kill9_{db}_no_leftover_jobs: {got} vs 0 {'PASS' if ok else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
