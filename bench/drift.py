"""Column drift on 100k × 20 numeric columns: modalwatch's detectors.drift against Evidently 0.7's
DataDriftPreset, in one run on the same data (issue 4).

    python bench/drift.py [--rows 100000] [--columns 20]

Reference and current frames of ``rows`` rows; a quarter of the columns drift (mean or scale).
Evidently picks its default test per column (normalised Wasserstein above 1,000 reference rows);
modalwatch runs the same default (``default_numeric_test``), timed twice: including the one-off
reference summary (``NumericReference.fit``), and per window with the summary already stored
(how the daemon runs it). Decisions per column are compared. Ends with GOAL lines, exits 0.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402


def frames(rows: int, columns: int) -> tuple[pd.DataFrame, pd.DataFrame, set[str]]:
    rng = np.random.default_rng(0)
    names = [f"signal_{i:02d}" for i in range(columns)]
    ref = pd.DataFrame(rng.normal(0, 1, (rows, columns)) * np.arange(1, columns + 1), columns=names)
    cur = pd.DataFrame(rng.normal(0, 1, (rows, columns)) * np.arange(1, columns + 1), columns=names)
    drifted = set()
    for i, name in enumerate(names):
        if i % 4 == 1:
            cur[name] += 0.3 * (i + 1)
            drifted.add(name)
        elif i % 4 == 3:
            cur[name] *= 1.5
            drifted.add(name)
    return ref, cur, drifted


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--columns", type=int, default=20)
    args = ap.parse_args()
    from evidently import Report
    from evidently.presets import DataDriftPreset

    from detectors.drift import NumericReference, default_numeric_test

    ref, cur, drifted = frames(args.rows, args.columns)
    print(
        f"{args.rows:,} rows x {args.columns} numeric columns, {len(drifted)} drifted; {os.cpu_count()} cores"
    )

    t = time.perf_counter()
    snapshot = Report([DataDriftPreset()]).run(cur, ref).dict()
    t_ev = time.perf_counter() - t
    theirs = {}
    for m in snapshot["metrics"]:
        if m["config"]["type"].endswith("ValueDrift"):
            thr = m["config"]["threshold"]
            theirs[m["config"]["column"]] = (
                m["value"] <= thr if "p_value" in m["config"]["method"] else m["value"] >= thr
            )

    t = time.perf_counter()
    summaries = {c: NumericReference.fit(ref[c].to_numpy()) for c in ref.columns}
    t_fit = time.perf_counter() - t
    t = time.perf_counter()
    ours = {c: default_numeric_test(s)(s, cur[c].to_numpy()).drift for c, s in summaries.items()}
    t_win = time.perf_counter() - t

    agree = sum(ours[c] == theirs[c] for c in ref.columns)
    print(f"Evidently DataDriftPreset          : {t_ev:7.3f} s")
    print(f"modalwatch, reference fit + test   : {t_fit + t_win:7.3f} s ({t_ev / (t_fit + t_win):.1f}x)")
    print(f"modalwatch, window with stored ref : {t_win:7.3f} s ({t_ev / t_win:.1f}x)")
    print(
        f"decisions agreeing: {agree}/{len(ref.columns)}; flagged by both: "
        f"{sorted(c for c in ref.columns if ours[c] and theirs[c]) == sorted(drifted)}"
    )
    speed = t_ev / (t_fit + t_win)
    print(
        f"GOAL drift_speed_vs_evidently: {speed:.1f}x vs 10x {'PASS' if speed >= 10 else 'FAIL'} "
        f"(reference summary included; {t_ev / t_win:.0f}x per window with it stored)"
    )
    print(
        f"GOAL drift_decisions_match_evidently: {agree}/{len(ref.columns)} vs all "
        f"{'PASS' if agree == len(ref.columns) else 'FAIL'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
