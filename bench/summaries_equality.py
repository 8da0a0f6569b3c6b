"""The demo evaluated from summaries against the exact path over rows (issue 25's equality proof).

    python bench/summaries_equality.py [--seed 7] [--days 28]

Runs `modalwatch demo` twice on the same seed — with ``evaluation.from_summaries: true`` (the
default) and ``false`` — and compares, in one run: every evaluation row (its key, status and
decision; every number to 1e-9 relative), every notification the demo's receivers got (times
aside) and the alert episodes. Prints each run's CPU seconds and peak RSS. Ends with one GOAL line
per comparison and exits 0 either way.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEY = ("model_name", "model_version", "interval_s", "lag_s", "window_start", "slice", "metric", "signal")
SAME = ("variant", "status", "decision")
NUMBERS = ("value", "reference_value", "ci_low", "ci_high", "n", "n_reference", "effect", "p_value")
ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)")


def demo(out: Path, seed: int, days: int, config: Path | None) -> dict:
    cmd = [
        str(ROOT / ".venv/bin/modalwatch"),
        "demo",
        "--seed",
        str(seed),
        "--days",
        str(days),
        "--out",
        str(out),
    ]
    if config is not None:
        cmd += ["--config", str(config)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True, cwd=out.parent)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {
        "cpu_s": (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
        "wall_s": time.perf_counter() - t,
        "peak_rss_mb": after.ru_maxrss / 1024,  # the largest child so far
    }


def rows(db: Path) -> dict[tuple, tuple]:
    c = sqlite3.connect(db)
    cols = KEY + SAME + NUMBERS
    return {r[: len(KEY)]: r[len(KEY) :] for r in c.execute(f"SELECT {', '.join(cols)} FROM evaluations")}


def differ(a, b) -> bool:
    if (a is None) != (b is None):
        return True
    if a is None or a == b:
        return False
    if isinstance(a, float) or isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return False
        return abs(a - b) > 1e-9 * max(abs(a), abs(b), 1e-12)
    return True


def notifications(path: Path) -> list[str]:
    return [
        ISO.sub("T", json.dumps(json.loads(line), sort_keys=True)) for line in path.read_text().splitlines()
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--days", type=int, default=28)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mw-equality-") as tmp:
        tmp = Path(tmp)
        exact = tmp / "exact.yaml"
        exact.write_text("evaluation:\n  from_summaries: false\n")
        runs = {}
        for name, config in (("summaries", None), ("rows", exact)):
            runs[name] = demo(tmp / name, args.seed, args.days, config)
            print(
                f"{name:9s}: {runs[name]['cpu_s']:.1f} CPU s, peak RSS {runs[name]['peak_rss_mb']:.0f} MB"
                f" ({runs[name]['wall_s']:.0f} s wall)",
                flush=True,
            )
        a, b = rows(tmp / "summaries/modalwatch.db"), rows(tmp / "rows/modalwatch.db")
        keys_equal = set(a) == set(b)
        bad = [k for k in a if k in b and any(differ(x, y) for x, y in zip(a[k], b[k]))]
        decisions = sum(1 for k in a if k in b and a[k][:3] != b[k][:3])
        told_a, told_b = (
            notifications(tmp / "summaries/alerts.jsonl"),
            notifications(tmp / "rows/alerts.jsonl"),
        )
        episodes_equal = (tmp / "summaries/episodes.json").read_text() == (
            tmp / "rows/episodes.json"
        ).read_text()
    ok = keys_equal and not bad
    print(
        f"GOAL demo_rows_equal_from_summaries: {len(a) - len(bad):,} of {len(b):,} rows equal"
        f" ({decisions} decisions or statuses differ; same keys: {keys_equal})"
        f" vs all {'PASS' if ok else 'FAIL'}"
    )
    same_told = told_a == told_b and episodes_equal
    print(
        f"GOAL demo_alerts_equal_from_summaries: {len(told_a)} vs {len(told_b)} notifications,"
        f" identical: {told_a == told_b}; episodes identical: {episodes_equal} vs identical"
        f" {'PASS' if same_told else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
