"""One interval's evaluation over many events (issue 5): PostgreSQL and SQLite, same data.

    python bench/evaluate.py [--events 1000000] [--signals 20] [--slices 10] [--sizes 100000,300000]
                             [--slice-counts 50]

A reference day and an evaluated day of ``events`` events each (``signals`` producer signals,
one slice attribute with ``slices`` values, 10 % labelled) are written straight into a fresh
store; then one window is evaluated the way the daemon does (``Evaluator.compute``: drift tests
per signal × slice, calibration, slice gaps, label-free accuracy), timed on a cold evaluator
(the reference summarised too) and again with the reference summaries cached. ``--sizes`` adds
smaller runs to show how the time grows with events, ``--slice-counts`` runs at the smallest size
with other numbers of slice values. After loading, PostgreSQL's tables are ANALYZEd, as
autovacuum does for a running daemon's. PostgreSQL: MODALWATCH_BENCH_PG_URL, else the local
server's ``test`` database (a schema made and dropped here). Ends with GOAL lines, exits 0.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def fill(store, n: int, n_signals: int, n_slices: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    now = T0 + timedelta(days=30)
    for day in (0, 1):
        for start in range(0, n, 20_000):
            k = min(20_000, n - start)
            sig = rng.normal(0, 1, (k, n_signals)) + (0.05 * day)
            dev = rng.integers(0, n_slices, k)
            conf = rng.uniform(0.5, 1, k)
            ts = [T0 + timedelta(days=day, seconds=float(s)) for s in np.sort(rng.uniform(0, 86400, k))]
            rows, labels = [], []
            for i in range(k):
                eid = f"d{day}-{start + i:08d}"
                rows.append({"event_id": eid, "ts": ts[i], "model_name": "m", "model_version": "1",
                             "slice": {"device": f"dev{dev[i]}"},
                             "signals": {f"image.s{j:02d}": float(sig[i, j]) for j in range(n_signals)},
                             "modalities": "image", "pred_label": "cat", "confidence": float(conf[i]),
                             "probabilities": None, "abstained": False, "embeddings": None, "position": eid,
                             "ingested_at": now})
                if i % 10 == 0:
                    labels.append({"event_id": eid, "label": "cat" if rng.uniform() < conf[i] else "dog",
                                   "source": "bench", "ts": ts[i], "position": f"l{eid}", "ingested_at": now})
            with store.tx():
                store.events.insert(rows)
                store.events.insert_labels(labels)
                store.events.note_model_versions({("m", "1"): (ts[0], ts[-1])})


def time_one_window(store, cfg) -> tuple[float, float, int]:
    from monitor.core.window import RunKey
    from monitor.evaluation import Evaluator
from monitor.runtime import preload

    preload()  # as the daemon does at start: library imports are not part of an evaluation

    key = RunKey("m", "1", 86400, 86400, T0 + timedelta(days=1))
    end = T0 + timedelta(days=2)
    ev = Evaluator(cfg, store, lambda: T0 + timedelta(days=30), owner="bench")
    t = time.perf_counter()
    rows = ev.compute(key, end)
    cold = time.perf_counter() - t
    t = time.perf_counter()
    ev.compute(key, end)
    warm = time.perf_counter() - t
    return cold, warm, len(rows)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--signals", type=int, default=20)
    ap.add_argument("--slices", type=int, default=10)
    ap.add_argument("--sizes", default="", help="extra, smaller event counts, comma-separated")
    ap.add_argument("--slice-counts", default="", help="numbers of slice values to try at the smallest size")
    args = ap.parse_args()
    import psycopg

    from connectors.postgres import PostgresStore
    from connectors.sqlite import SqliteStore
    from monitor.config import parse_config

    cfg = parse_config("evaluation:\n  reference: {from: 2026-01-05T00:00:00Z, to: 2026-01-06T00:00:00Z}\n"
                       "  checks: {embedding_drift: {enabled: false}}\n")
    base = os.environ.get("MODALWATCH_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    sizes = sorted({int(s) for s in args.sizes.split(",") if s} | {args.events})
    results = {}
    print(f"{args.signals} signals, 1 attribute with {args.slices} values, 10 % labelled; {os.cpu_count()} cores")
    runs = [(n, args.slices) for n in sizes] + [(sizes[0], int(k)) for k in args.slice_counts.split(",") if k]
    for n, n_slices in runs:
        for kind in ("postgres", "sqlite"):
            if kind == "postgres":
                schema = f"bench_{uuid.uuid4().hex[:8]}"
                with psycopg.connect(base, autocommit=True) as c:
                    c.execute(f"CREATE SCHEMA {schema}")
                sep = "&" if "?" in base else "?"
                store = PostgresStore(f"{base}{sep}options=-csearch_path%3D{schema}")
            else:
                tmp = tempfile.mkdtemp()
                store = SqliteStore(Path(tmp) / "bench.db")
            try:
                store.migrate()
                t = time.perf_counter()
                fill(store, n, args.signals, n_slices)
                if kind == "postgres":
                    with store.tx():
                        store.db.conn.execute("ANALYZE events")
                        store.db.conn.execute("ANALYZE labels")
                t_fill = time.perf_counter() - t
                cold, warm, n_rows = time_one_window(store, cfg)
                if n_slices == args.slices:
                    results[(kind, n)] = cold
                    results[(kind, n, "warm")] = warm
                print(f"{kind:8s} {n:>9,} events per window, {n_slices} slice values: evaluation {cold:7.1f} s cold,"
                      f" {warm:7.1f} s with the reference summarised ({n_rows} rows; loading took {t_fill:.0f} s)",
                      flush=True)
            finally:
                store.close()
                if kind == "postgres":
                    with psycopg.connect(base, autocommit=True) as c:
                        c.execute(f"DROP SCHEMA {schema} CASCADE")
    t_pg = results[("postgres", args.events)]
    what = "1M" if args.events == 1_000_000 else f"{args.events:,}_events_(the_goal_is_for_1M)"
    print(f"GOAL evaluate_{what}_postgres: {t_pg:.1f} s vs 10 s {'PASS' if t_pg <= 10 else 'FAIL'} "
          f"(cold: the reference summarised too; {results[('postgres', args.events, 'warm')]:.1f} s with it cached;"
          f" sqlite {results[('sqlite', args.events)]:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
