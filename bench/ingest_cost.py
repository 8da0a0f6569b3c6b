"""What ingest costs per event, all processes counted: the pipeline's CPU and its PostgreSQL
backend's, storing ``--events`` events and a label for ``--labelled`` of them (labels in the
same batches, some before their events) in batches of ``--batch``, against an earlier commit on
the same messages (``--baseline REF``, a temporary git worktree; default: the commit before
summaries were written at ingest). Runs alternate, baseline first, ``--rounds`` times each; the
ratio is of the medians.

    python bench/ingest_cost.py [--events 40000] [--labelled 0.5] [--batch 500] [--rounds 3]
                                [--baseline bdee969]

PostgreSQL: MODALWATCH_BENCH_PG_URL, else the local server's ``test`` database (a fresh schema per
run, dropped after it). Ends with the GOAL line of issue 25 (CPU per event with summaries ÷
without ≤ 1.15) and exits 0 either way.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from worktree import worktree  # noqa: E402

# Run by the tree measured (this one or the baseline's), so that it imports that tree's code.
CHILD = r"""
import json, os, random, sys, time
from datetime import datetime, timedelta, timezone
import psycopg
sys.path.insert(0, os.getcwd())
from connectors.postgres import PostgresStore
from monitor.config import parse_config
from monitor.core.messages import RawMessage
from monitor.pipeline import Pipeline
from tests.helpers import inference, label

url, n, share, batch = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
t0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
rng = random.Random(1)
msgs = []
for i in range(n):
    ts = t0 + timedelta(seconds=i * 2)
    msgs.append(RawMessage("b", f"e{i}", json.dumps(inference(i, ts=ts)).encode(), "inference"))
    if rng.random() < share:
        lt = ts + timedelta(seconds=rng.choice([-30, 60, 3600, 90000]))
        msgs.append(RawMessage("b", f"l{i}", json.dumps(label(i, ts=lt)).encode(), "label"))
# neighbouring messages swap places, so some labels come before their events
for i in range(0, len(msgs) - 1, 2):
    if rng.random() < 0.3:
        msgs[i], msgs[i + 1] = msgs[i + 1], msgs[i]
store = PostgresStore(url)
store.migrate()
cfg = parse_config('store: {kind: postgres, url: "%s", batch_size: %d}' % (url, batch))
pipe = Pipeline(cfg, store, lambda: t0 + timedelta(days=60))
pipe.process(msgs[:batch])  # warm: the first batch pays for imports and plans
backend = store.db.one("SELECT pg_backend_pid()")

def backend_cpu():
    with open(f"/proc/{backend}/stat") as fh:
        f = fh.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

c0, b0 = time.process_time(), backend_cpu()
for k in range(batch, len(msgs), batch):
    pipe.process(msgs[k : k + batch])
c1, b1 = time.process_time(), backend_cpu()
events = sum(1 for m in msgs[batch:] if m.kind == "inference")
print(json.dumps({"client_s": c1 - c0, "server_s": b1 - b0, "events": events, "messages": len(msgs) - batch}))
"""


def run(tree: Path, base_url: str, args) -> dict:
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    import psycopg

    with psycopg.connect(base_url, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in base_url else "?"
    url = f"{base_url}{sep}options=-csearch_path%3D{schema}"
    try:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, url, str(args.events), str(args.labelled), str(args.batch)],
            cwd=tree,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        with psycopg.connect(base_url, autocommit=True) as c:
            c.execute(f"DROP SCHEMA {schema} CASCADE")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=40_000)
    ap.add_argument("--labelled", type=float, default=0.5, help="share of events with a label")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--baseline", default="bdee969", help="the commit to compare with")
    args = ap.parse_args()
    url = os.environ.get("MODALWATCH_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    per_event: dict[str, list[float]] = {"baseline": [], "this": []}
    with worktree(args.baseline) as wt:
        for r in range(args.rounds):
            for name, tree in (("baseline", wt), ("this", ROOT)):
                m = run(tree, url, args)
                cpu = m["client_s"] + m["server_s"]
                per_event[name].append(cpu / m["events"])
                print(
                    f"round {r + 1} {name:8s}: client {m['client_s']:.2f} s"
                    f" + PostgreSQL {m['server_s']:.2f} s"
                    f" for {m['events']:,} events and {m['messages'] - m['events']:,} labels"
                    f" = {cpu / m['events'] * 1e6:.0f} µs/event",
                    flush=True,
                )
    base, this = (statistics.median(per_event[k]) for k in ("baseline", "this"))
    ratio = this / base
    print(
        f"GOAL ingest_cpu_per_event_with_summaries: {ratio:.2f}x ({this * 1e6:.0f} vs {base * 1e6:.0f} µs"
        f" per event, all processes) vs ≤ 1.15x {'PASS' if ratio <= 1.15 else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
