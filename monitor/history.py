"""One metric's series across windows, with what it says over time: a Mann–Kendall trend test,
Sen's slope, and the first change from the first seven intervals' level (mean-shift CUSUM) — slow
decay that never crosses a threshold in one window is visible here. What ``modalwatch history``
prints.

The level's spread is not the seven values' standard deviation alone (seven values give one
that is often half the truth, and a quiet series then "changes"): it is at least the metric's own
sampling error, from the rows' 95 % intervals, and it is widened for the error of the level's own
mean. A metric that tests a window against the reference sample (signal and embedding drift,
calibration drift) is left out on the reference's own windows, which it tests against a sample
that contains them: those points are listed, flagged ``in_reference``, and not in the series."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import NormalDist

import numpy as np
import pandas as pd

from detectors.online import MeanShiftCUSUM
from detectors.trend import TrendResult, mann_kendall
from monitor.core.settings import duration_text

BASELINE_INTERVALS = 7  # the level a first change is measured from
Z95 = NormalDist().inv_cdf(0.975)  # the rows' intervals are 95 %: half-width / Z95 is one standard error
# CUSUM's decision interval: 8 rather than the textbook 5, because the level is itself estimated
# from seven values (its error shifts every later z alike); on quiet 30-day error-rate series
# h = 5 called a change in 12 % of them, h = 8 in 3.5 %, and a 3-point rise on 2,000 events a day
# is found two windows after its onset (tests/monitor/test_history.py)
FIRST_CHANGE_H = 8.0


@dataclass(frozen=True)
class MetricHistory:
    metric: str
    slice: str
    signal: str
    model: str
    interval: str
    lag: str
    # window_start, model_version, value (None: no claim), ci_low, ci_high, n, status, decision
    # (None: no claim), in_reference
    points: list[dict]
    trend: TrendResult
    first_change: str | None  # the window start of the first change, ISO-8601


def _num(x) -> float | None:
    """A stored number as JSON has it: None for a missing or non-finite one."""
    return None if x is None or not np.isfinite(x) else float(x)


def metric_history(
    frame: pd.DataFrame,
    metric: str,
    slice_: str,
    signal: str,
    interval: timedelta,
    lag: timedelta,
    model: str | None = None,
    reference_ends: dict[str, datetime] | None = None,
    against_reference: bool = False,
) -> MetricHistory:
    """The series of ``metric`` in ``frame`` (stored evaluation rows) for one slice, signal,
    interval and lag; ``model`` may be left out when only one model was evaluated. Raises
    ValueError saying what is missing. ``reference_ends``: where each model version's reference
    ends; ``against_reference``: the metric compares a window with the reference sample (its
    windows inside the reference are then left out of the series)."""
    models = sorted(set(frame["model_name"])) if len(frame) else []
    model = model or (models[0] if len(models) == 1 else None)
    if model is None:
        raise ValueError(
            f"several models were evaluated ({', '.join(models)}): say which with --model"
            if models
            else "nothing has been evaluated yet"
        )
    iv_s, lag_s = int(interval.total_seconds()), int(lag.total_seconds())
    sel = frame[
        (frame["model_name"] == model)
        & (frame["metric"] == metric)
        & (frame["slice"] == slice_)
        & (frame["signal"] == signal)
        & (frame["interval_s"] == iv_s)
        & (frame["lag_s"] == lag_s)
    ].sort_values("window_start")
    if sel.empty:
        raise ValueError(
            f"no {metric} rows for slice {slice_!r}{f', signal {signal!r}' if signal else ''}, interval "
            f"{duration_text(iv_s)}, lag {duration_text(lag_s)}"
        )
    ends = reference_ends or {}
    in_ref = [mv in ends and we <= ends[mv] for mv, we in zip(sel["model_version"], sel["window_end"])]
    shown = [_num(v) if s == "ok" else None for v, s in zip(sel["value"], sel["status"])]
    values = [None if against_reference and r else v for v, r in zip(shown, in_ref)]  # the series
    series = [math.nan if v is None else v for v in values]
    ok = [i for i, v in enumerate(values) if v is not None]
    change_at = None
    if len(ok) >= BASELINE_INTERVALS + 1:
        base = ok[:BASELINE_INTERVALS]
        level = np.array([values[i] for i in base])
        # the sampling error of each baseline value, from its 95 % interval where it has one
        lows, highs = sel["ci_low"].to_numpy(dtype=float)[base], sel["ci_high"].to_numpy(dtype=float)[base]
        halfwidths = ((highs - lows) / 2)[np.isfinite(lows) & np.isfinite(highs)]
        sampling = float(np.sqrt(np.mean(halfwidths**2))) / Z95 if halfwidths.size else 0.0
        spread = max(float(np.std(level, ddof=1)), sampling) * math.sqrt(1 + 1 / BASELINE_INTERVALS)
        if spread > 0:
            det = MeanShiftCUSUM(mean=float(level.mean()), std=spread, h=FIRST_CHANGE_H)
            hit = next((i for i in ok[BASELINE_INTERVALS:] if det.update(values[i])), None)
            change_at = sel["window_start"].iloc[hit].isoformat() if hit is not None else None
    points = [
        {
            "window_start": w.isoformat(),
            "model_version": mv,
            "value": v,
            "ci_low": _num(lo),
            "ci_high": _num(hi),
            "n": int(n),
            "status": st,
            "decision": None if d is None or not np.isfinite(d) else int(d),
            "in_reference": bool(r),
        }
        for w, mv, v, lo, hi, n, st, d, r in zip(
            sel["window_start"],
            sel["model_version"],
            shown,
            sel["ci_low"],
            sel["ci_high"],
            sel["n"],
            sel["status"],
            sel["decision"],
            in_ref,
        )
    ]
    return MetricHistory(
        metric,
        slice_,
        signal,
        model,
        duration_text(iv_s),
        duration_text(lag_s),
        points,
        mann_kendall(series),
        change_at,
    )
