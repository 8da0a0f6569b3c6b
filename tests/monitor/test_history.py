"""``modalwatch history``'s analysis of one metric's series: strict JSON, a first change that a
quiet series does not have, and drift metrics without the reference's own windows."""

import json
from datetime import timedelta

import numpy as np
import pandas as pd

from detectors.intervals import wilson_interval
from monitor.history import metric_history
from tests.helpers import T0

DAY = timedelta(days=1)


def _frame(values, metric="error_rate", n=2000, cis=None, decisions=None):
    rows = []
    for i, v in enumerate(values):
        lo, hi = cis[i] if cis is not None else (np.nan, np.nan)
        rows.append(
            dict(
                model_name="m",
                model_version="1",
                metric=metric,
                slice="*",
                signal="",
                interval_s=86400,
                lag_s=0,
                window_start=T0 + i * DAY,
                window_end=T0 + (i + 1) * DAY,
                value=v,
                status="ok",
                ci_low=lo,
                ci_high=hi,
                n=n,
                decision=np.nan if decisions is None else decisions[i],
            )
        )
    return pd.DataFrame(rows)


def _error_rates(rng, rates, n=2000):
    k = rng.binomial(n, rates)
    cis = [(w.low, w.high) for w in (wilson_interval(int(x), n) for x in k)]
    return list(k / n), cis


def test_a_quiet_error_rate_has_no_first_change():
    """200 quiet 30-day series (10 % of 2,000 events a day): seven values' own spread alone
    called a change in most of them."""
    rng = np.random.default_rng(1)
    changed = 0
    for _ in range(200):
        values, cis = _error_rates(rng, np.full(30, 0.10))
        h = metric_history(_frame(values, cis=cis), "error_rate", "*", "", DAY, timedelta(0))
        changed += h.first_change is not None
    assert changed / 200 <= 0.05


def test_a_three_point_rise_is_found_within_three_windows():
    rng = np.random.default_rng(2)
    late = []
    for _ in range(50):
        values, cis = _error_rates(rng, np.r_[np.full(15, 0.10), np.full(15, 0.13)])
        h = metric_history(_frame(values, cis=cis), "error_rate", "*", "", DAY, timedelta(0))
        assert h.first_change is not None
        late.append((pd.Timestamp(h.first_change) - (T0 + 15 * DAY)).days)
    assert sum(d < 0 for d in late) <= 1 and np.median(late) <= 3  # not before it, found soon


def test_drift_on_the_reference_days_is_left_out_of_the_series():
    """PSI of the reference's own seven days against itself is ~0; afterwards the same traffic
    gives ~0.01 (sampling noise): counted in, those days would make every series "change"."""
    rng = np.random.default_rng(3)
    values = list(np.r_[rng.normal(0.001, 0.0002, 7), rng.normal(0.01, 0.002, 23)])
    frame = _frame(values, metric="psi")
    ends = {"1": T0 + 7 * DAY}
    kept = metric_history(frame, "psi", "*", "", DAY, timedelta(0), reference_ends=ends)
    assert kept.first_change is not None  # what history said before
    h = metric_history(frame, "psi", "*", "", DAY, timedelta(0), reference_ends=ends, against_reference=True)
    assert h.first_change is None
    assert [p["in_reference"] for p in h.points] == [True] * 7 + [False] * 23
    assert h.points[0]["value"] == values[0]  # listed all the same
    assert h.trend.n == 23


def test_points_are_strict_json():
    values, cis = _error_rates(np.random.default_rng(4), np.full(10, 0.1))
    cis[3] = (np.nan, np.nan)
    h = metric_history(_frame(values, cis=cis), "error_rate", "*", "", DAY, timedelta(0))
    text = json.dumps(h.points, allow_nan=False)
    assert json.loads(text)[0]["decision"] is None and json.loads(text)[3]["ci_low"] is None
