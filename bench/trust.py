"""Modality trust (issue 17): how fast it moves and how often it moves for nothing.

    python bench/trust.py [--days 30] [--per-hour 400]

On the hourly synthetic traffic of tests/monitor/trust_traffic.py (two streams, image and audio,
two sites), through the real evaluator and store with the default trust settings:

- latency: an image stream darkened from 0 to 4 SDs over a day, then restored: hours from the
  onset to ``degraded`` and to ``failed`` (the state in effect, as GET /v1/trust serves it) and
  from the restoration back to ``ok`` — in windows; add the interval + lag + tick for wall time;
- false alarms: ``--days`` quiet days (every hour evaluated): flaps (ok → not ok) per 30 days,
  over 2 modalities × 3 slices.

Ends with one GOAL line per goal; exits 0 either way.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.monitor.trust_traffic import HOUR, REFERENCE_DAYS, T0, flaps, states, trust_run  # noqa: E402

MONITORED = T0 + REFERENCE_DAYS * 24 * HOUR


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--per-hour", type=int, default=400)
    args = ap.parse_args()
    logging.getLogger("modalwatch").setLevel(logging.ERROR)  # the alerts' own log lines
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        _, store = trust_run(
            Path(tmp), 48, args.per_hour, lambda h: 4.0 * h / 23 if h < 24 else 0.0, name="dark"
        )
        seq = [s for t, s, _ in states(store, "image") if t >= MONITORED]
        degraded, failed = seq.index("degraded"), seq.index("failed")
        back = seq[24:].index("ok")
        store.close()
        print(f"darkened image stream ({time.perf_counter() - t0:.0f} s): {''.join(s[0] for s in seq)}")
        print(
            f"  degraded after {degraded} h, failed after {failed} h,"
            f" ok {back + 1} h after the stream came back"
        )
        t0 = time.perf_counter()
        _, store = trust_run(Path(tmp), args.days * 24, args.per_hour, name="quiet")
        total = 0
        for modality in ("image", "audio"):
            for sl in ("*", "site=north", "site=south"):
                seq = [s for t, s, _ in states(store, modality, sl) if t >= MONITORED]
                n = flaps(seq)
                total += n
                print(
                    f"  quiet {modality:5s} {sl:10s}: {len(seq)} hours, {n} flap(s),"
                    f" states {sorted(set(seq))}"
                )
        episodes = store.alerts.episodes()
        by_rule: dict[str, int] = {}
        for a in episodes:
            by_rule[a.rule] = by_rule.get(a.rule, 0) + 1
        print(f"  alert episodes on the same quiet traffic (for comparison): {by_rule or 'none'}")
        store.close()
        per_30 = total * 30 / args.days
        print(f"quiet run: {args.days} days x 6 streams in {time.perf_counter() - t0:.0f} s")
    print(f"GOAL trust_degraded_latency: {degraded} h vs 6 h {'PASS' if degraded <= 6 else 'FAIL'}")
    print(f"GOAL trust_recovery_latency: {back + 1} h vs 3 h {'PASS' if back + 1 <= 3 else 'FAIL'}")
    print(f"GOAL trust_flaps_per_30_quiet_days: {per_30:.1f} vs 1 {'PASS' if per_30 <= 1 else 'FAIL'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
