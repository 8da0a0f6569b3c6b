"""One interval's evaluation over many events (issue 5): PostgreSQL and SQLite, same data.

    python bench/evaluate.py [--events 1000000] [--signals 20] [--slices 10] [--sizes 100000,300000]
                             [--slice-counts 50] [--against REV]

A reference day and an evaluated day of ``events`` events each (``signals`` producer signals,
one slice attribute with ``slices`` values, 10 % labelled) are written straight into a fresh
store; then one window is evaluated the way the daemon does (``Evaluator.compute``: drift tests
per signal × slice, calibration, slice gaps, label-free accuracy), timed on a cold evaluator
(the reference summarised too) and again with the reference summaries cached. ``--sizes`` adds
smaller runs to show how the time grows with events, ``--slice-counts`` runs at the smallest size
with other numbers of slice values; ``--multimodal`` gives every event three modalities' own
answers and a text's hashed words (the per_modality and vocabulary checks read them per
event). After loading, PostgreSQL's tables are ANALYZEd, as autovacuum does for a running
daemon's. PostgreSQL: MODALWATCH_BENCH_PG_URL, else the local
server's ``test`` database (a schema made and dropped here). ``--against REV`` runs the same
measurements with this script of an earlier commit (from a git worktree, on the same data: the
events are drawn from the same seed) after this one's, and compares. Ends with GOAL lines, exits 0.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from worktree import worktree  # noqa: E402

T0 = datetime(2026, 1, 5, tzinfo=timezone.utc)


def fill(store, cfg, n: int, n_signals: int, n_slices: int, seed: int = 0, multimodal: bool = False) -> None:
    """``multimodal``: each event also carries three modalities' own answers and a ten-word text's
    hashed words (what the per_modality and vocabulary checks read, event by event)."""
    from detectors.text import token_buckets
    from monitor.core.records import EventRow, LabelRow
    from monitor.summaries import Summariser, SummarySpec, store_rows

    summariser = Summariser(SummarySpec.of(cfg))

    words = [f"w{i}" for i in range(2000)]

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
                signals = {f"image.s{j:02d}": float(sig[i, j]) for j in range(n_signals)}
                per_modality = tokens = None
                if multimodal:
                    per_modality = {
                        m: {"label": "cat" if rng.uniform() < 0.8 else "dog", "confidence": float(conf[i])}
                        for m in ("image", "audio", "text")
                    }
                    text = " ".join(words[j] for j in rng.integers(0, len(words), 10))
                    tokens = token_buckets(text, b"bench").astype("<u4").tobytes()
                rows.append(
                    EventRow(
                        eid,
                        ts[i],
                        "m",
                        "1",
                        {"device": f"dev{dev[i]}"},
                        signals,
                        "image",
                        "cat",
                        float(conf[i]),
                        None,
                        False,
                        None,
                        eid,
                        now,
                        None,
                        per_modality,
                        tokens,
                    )
                )
                if i % 10 == 0:
                    truth = "cat" if rng.uniform() < conf[i] else "dog"
                    labels.append(LabelRow(eid, truth, "bench", ts[i], f"l{eid}", now))
            store_rows(store, summariser, rows, labels)


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
    ap.add_argument(
        "--against", help="a git revision whose bench/evaluate.py runs the same sizes after this one"
    )
    ap.add_argument(
        "--multimodal",
        action="store_true",
        help="events also carry per-modality answers and hashed words (issue 17's per-event reads)",
    )
    args = ap.parse_args()
    import psycopg

    from connectors.postgres import PostgresStore
    from connectors.sqlite import SqliteStore
    from monitor.config import parse_config

    cfg = parse_config(
        "evaluation:\n  reference: {from: 2026-01-05T00:00:00Z, to: 2026-01-06T00:00:00Z}\n"
        "  checks: {embedding_drift: {enabled: false}}\n"
    )
    base = os.environ.get("MODALWATCH_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
    sizes = sorted({int(s) for s in args.sizes.split(",") if s} | {args.events})
    results = {}
    print(
        f"{args.signals} signals, 1 attribute with {args.slices} values, 10 % labelled; {os.cpu_count()}"
        " cores"
    )
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
                fill(store, cfg, n, args.signals, n_slices, multimodal=args.multimodal)
                if kind == "postgres":
                    with store.tx():
                        store.db.conn.execute("ANALYZE events")
                        store.db.conn.execute("ANALYZE labels")
                t_fill = time.perf_counter() - t
                cold, warm, n_rows = time_one_window(store, cfg)
                if n_slices == args.slices:
                    results[(kind, n)] = cold
                    results[(kind, n, "warm")] = warm
                print(
                    f"{kind:8s} {n:>9,} events per window, {n_slices} slice values: "
                    f"evaluation {cold:7.1f} s cold, {warm:7.1f} s with the reference summarised "
                    f"({n_rows} rows; loading took {t_fill:.0f} s)",
                    flush=True,
                )
            finally:
                store.close()
                if kind == "postgres":
                    with psycopg.connect(base, autocommit=True) as c:
                        c.execute(f"DROP SCHEMA {schema} CASCADE")
    if args.against:
        _against(args, results)
    t_pg = results[("postgres", args.events)]
    what = "1M" if args.events == 1_000_000 else f"{args.events:,}_events_(the_goal_is_for_1M)"
    what += "_multimodal" if args.multimodal else ""
    print(
        f"GOAL evaluate_{what}_postgres: {t_pg:.1f} s vs 10 s {'PASS' if t_pg <= 10 else 'FAIL'} "
        f"(cold: the reference summarised too; {results[('postgres', args.events, 'warm')]:.1f} s "
        f"with it cached; sqlite {results[('sqlite', args.events)]:.1f} s)"
    )
    return 0


_LINE = re.compile(
    r"^(postgres|sqlite)\s+([\d,]+) events per window, (\d+) slice values: evaluation\s+([\d.]+) s cold,"
    r"\s+([\d.]+) s with"
)


def _against(args, results: dict) -> None:
    """This script of ``args.against`` on the same sizes (in a temporary git worktree), and the ratio
    of this commit's times to its."""
    with worktree(args.against) as tree:
        cmd = [
            sys.executable,
            str(tree / "bench" / "evaluate.py"),
            "--events",
            str(args.events),
            "--signals",
            str(args.signals),
            "--slices",
            str(args.slices),
        ]
        out = subprocess.run(cmd, cwd=tree, capture_output=True, text=True)
    previous = {}
    for line in out.stdout.splitlines():
        m = _LINE.match(line.strip())
        if m and int(m.group(3)) == args.slices:
            previous[(m.group(1), int(m.group(2).replace(",", "")))] = (float(m.group(4)), float(m.group(5)))
    if not previous:
        print(f"{args.against}: no figures ({out.stderr.strip().splitlines()[-1:] or 'no output'})")
        return
    for kind in ("postgres", "sqlite"):
        cold, warm = previous[(kind, args.events)]
        now_cold, now_warm = results[(kind, args.events)], results[(kind, args.events, "warm")]
        print(
            f"{kind:8s} {args.events:>9,} events, {args.against}: {cold:7.1f} s cold, {warm:7.1f} s cached;"
            f" this commit / it: {now_cold / cold:.2f} cold, {now_warm / warm:.2f} cached"
        )
    ratio = results[("postgres", args.events, "warm")] / previous[("postgres", args.events)][1]
    print(
        f"GOAL evaluate_postgres_vs_{args.against}: {ratio:.2f} of its time (cached reference) vs 1.10"
        f" {'PASS' if ratio <= 1.10 else 'FAIL'}"
    )


if __name__ == "__main__":
    sys.exit(main())
