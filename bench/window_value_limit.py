"""A window whose one group would not fit one database value (issue 25): PostgreSQL's limit on a
value is 1 GiB, and a 6-hour chunk of one (slice, layout, predicted label, abstained) group
aggregates its packed signals into one.

    python bench/window_value_limit.py [--events 7000000] [--signals 20] [--against REV]

Writes ``--events`` events of one group (one slice, one predicted label, ``--signals`` signals:
8 bytes each, so 7,000,000 × 20 × 8 = 1.12 GB in one value if read whole) into one 6-hour chunk
of a fresh PostgreSQL schema, then reads the window (``EventRepository.load_window``) in a child
process of this code — and, with ``--against REV``, of an earlier commit's (a temporary git
worktree), on the same rows. Prints each read's outcome, CPU seconds (the child's; PostgreSQL's
not counted) and peak RSS. PostgreSQL: MODALWATCH_BENCH_PG_URL, else the local server's ``test``
database. Ends with one GOAL line (every window readable, whatever one group holds) and exits 0
either way.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402

from connectors.postgres import PostgresStore  # noqa: E402
from monitor.core.records import EventRow  # noqa: E402
from tests.helpers import T0  # noqa: E402
from worktree import worktree  # noqa: E402

READ = """
import json, resource, sys, time
from datetime import datetime, timedelta
from connectors.postgres import PostgresStore
url, t0 = sys.argv[1], datetime.fromisoformat(sys.argv[2])
store = PostgresStore(url)
c0 = time.process_time()
try:
    w = store.events.load_window("m", "1", t0, t0 + timedelta(days=1), t0 + timedelta(days=1))
    out = {"events": len(w), "signals": int(w.signals.shape[1])}
except Exception as e:
    out = {"error": f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"}
out["cpu_s"] = time.process_time() - c0
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def read_in_child(tree: Path, url: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    out = subprocess.run(
        [sys.executable, "-c", READ, url, T0.isoformat()], cwd=tree, env=env, capture_output=True, text=True
    )
    try:
        return json.loads(out.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": (out.stderr.strip().splitlines() or ["no output"])[-1][:200]}


def fill(store: PostgresStore, n: int, n_signals: int) -> None:
    """One event through the store (its layout registered), then ``n - 1`` copies made by the
    server, spread over six hours."""
    signals = {f"s{k:02d}": float(k) for k in range(n_signals)}
    row = EventRow(
        "e0", T0, "m", "1", {"device": "d"}, signals, "image", "cat", 0.9, None, False, None, "p0", T0, None
    )
    store.events.insert([row])
    store.events.note_model_versions({("m", "1"): (T0, T0)})
    with store.tx():
        store.db.conn.execute(
            "INSERT INTO events (event_id, ts, model_name, model_version, slice, modalities, pred_label,"
            " confidence, abstained, position, ingested_at, signal_layout, signal_values)"
            " SELECT 'e' || g, e.ts + g * interval '1 microsecond' * (21600000000 / %s), e.model_name,"
            " e.model_version, e.slice, e.modalities, e.pred_label, e.confidence, e.abstained, 'p' || g,"
            " e.ingested_at, e.signal_layout, e.signal_values"
            " FROM events e, generate_series(1, %s) g WHERE e.event_id = 'e0'",
            (n, n - 1),
        )
        store.db.conn.execute("ANALYZE events")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=7_000_000)
    ap.add_argument("--signals", type=int, default=20)
    ap.add_argument("--against", help="an earlier commit to read the same rows with")
    args = ap.parse_args()
    base = os.environ.get("MODALWATCH_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(base, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    url = f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema},public"
    results = {}
    try:
        store = PostgresStore(url)
        store.migrate()
        t = time.perf_counter()
        fill(store, args.events, args.signals)
        store.close()
        whole = args.events * args.signals * 8
        print(
            f"{args.events:,} events of one group in one 6-hour chunk, {args.signals} signals: "
            f"{whole / 2**30:.2f} GiB of packed signals if read as one value (written in "
            f"{time.perf_counter() - t:.0f} s); {os.cpu_count()} cores",
            flush=True,
        )
        with contextlib.ExitStack() as stack:
            trees = [("this commit", ROOT)]
            if args.against:
                trees.append((args.against, stack.enter_context(worktree(args.against))))
            for name, tree in trees:
                r = results[name] = read_in_child(tree, url)
                what = f"read {r['events']:,} events" if "events" in r else f"failed: {r.get('error')}"
                print(
                    f"{name:>12}: {what}; CPU {r.get('cpu_s', float('nan')):.1f} s, peak RSS "
                    f"{r.get('peak_rss_mb', float('nan')):,.0f} MB",
                    flush=True,
                )
    finally:
        with psycopg.connect(base, autocommit=True) as c:
            c.execute(f"DROP SCHEMA {schema} CASCADE")
    mine = results["this commit"]
    ok = mine.get("events") == args.events
    peer = ""
    if args.against:
        r = results[args.against]
        peer = f"{r['events']:,} events read" if "events" in r else f"failed ({r.get('error', '')[:80]})"
    print(
        f"GOAL window_beyond_one_value_{args.events:,}_events: "
        f"{'all ' + format(args.events, ',') + ' read' if ok else 'not read: ' + str(mine.get('error'))}"
        f" vs {peer or 'every event read'} {'PASS' if ok else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
