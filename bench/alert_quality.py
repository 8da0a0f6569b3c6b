"""Alerts that mean it (issue 15), over several seeds of the synthetic traffic the tests use
(tests/alerts/traffic.py: 5 cameras, 4 locales, 3 devices, 8 signals, a quarter labelled), with
the default configuration, through the real evaluator and rules on SQLite:

    python bench/alert_quality.py [--seeds 3] [--events-per-day 40000]

For each seed: the false alerts of 30 quiet monitored days (alert episodes), and for each change
(from day 14 on, 8 days evaluated) the days from onset to its first alert, the incidents it made
and how many of its alerts fired again after resolving. Ends with GOAL lines; exits 0 either way.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--events-per-day", type=int, default=40_000)
    args = ap.parse_args()

    from alerts.incidents import group_incidents
    from monitor.notify import incident_context
    from tests.alerts.traffic import CHANGES, DAY, MONITORED_DAYS, ONSET, T0, changed_run, quiet_run

    false_alerts: list[int] = []
    days_to_detect: dict[str, list[float]] = {n: [] for n in CHANGES}
    incidents: dict[str, list[int]] = {n: [] for n in CHANGES}
    placed: dict[str, list[bool]] = {n: [] for n in CHANGES}
    refires = 0
    t0 = time.perf_counter()
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as tmp:
            where = Path(tmp)
            cfg, store = quiet_run(where, args.events_per_day, seed)
            quiet = store.alerts.episodes()
            false_alerts.append(len(quiet))
            store.close()
            print(f"seed {seed}: quiet {MONITORED_DAYS} days, {len(quiet)} alerts", flush=True)
            for name, change in CHANGES.items():
                store = changed_run(cfg, where, change, args.events_per_day, seed)
                eps = store.alerts.episodes()
                onset = T0 + ONSET * DAY
                first = min((a.starts_at for a in eps), default=None)
                days = (first - onset) / DAY + 1 if first is not None else float("inf")
                days_to_detect[name].append(days)
                incs = group_incidents(eps, states=("firing", "resolved"), **incident_context(store))
                incidents[name].append(len(incs))
                placed[name].append(
                    len(incs) == 1 and incs[0].place == change.place and change.family in incs[0].families
                )
                again = sum(n - 1 for n in Counter(a.dedup_key for a in eps).values())
                refires += again
                store.close()
                print(
                    f"  {name:<18} first alert in window {days:g} after onset, {len(incs)} incident(s)"
                    f" {[i.place for i in incs]}, {again} re-fired  ({change.description})",
                    flush=True,
                )
    print(f"{args.seeds} seeds × {args.events_per_day} events a day in {time.perf_counter() - t0:.0f} s")
    per_30 = sum(false_alerts) / len(false_alerts) * 30 / MONITORED_DAYS
    print(f"GOAL quiet_false_alerts_per_30_days: {per_30:.2f} vs <= 1 {'PASS' if per_30 <= 1 else 'FAIL'}")
    for name, change in CHANGES.items():
        worst = max(days_to_detect[name])
        ok = worst <= change.within_days
        print(f"GOAL days_to_detect_{name}: {worst:g} vs <= {change.within_days} {'PASS' if ok else 'FAIL'}")
        one = all(placed[name])
        print(
            f"GOAL one_incident_at_place_{name}: {incidents[name]} at {change.place} vs [1 …]"
            f" {'PASS' if one else 'FAIL'}"
        )
    print(f"GOAL no_fire_resolve_fire: {refires} vs 0 {'PASS' if refires == 0 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
