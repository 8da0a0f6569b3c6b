"""One metric's series across windows, with what it says over time: a Mann–Kendall trend test,
Sen's slope, and the first change from the first seven intervals' level (mean-shift CUSUM) — slow
decay that never crosses a threshold in one window is visible here. What ``modalwatch history``
prints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np
import pandas as pd

from detectors.online import MeanShiftCUSUM
from detectors.trend import TrendResult, mann_kendall
from monitor.core.settings import duration_text

BASELINE_INTERVALS = 7  # the level a first change is measured from


@dataclass(frozen=True)
class MetricHistory:
    metric: str
    slice: str
    signal: str
    model: str
    interval: str
    lag: str
    points: list[
        dict
    ]  # window_start, model_version, value (None: no claim), ci_low, ci_high, n, status, decision
    trend: TrendResult
    first_change: str | None  # the window start of the first change, ISO-8601


def metric_history(
    frame: pd.DataFrame,
    metric: str,
    slice_: str,
    signal: str,
    interval: timedelta,
    lag: timedelta,
    model: str | None = None,
) -> MetricHistory:
    """The series of ``metric`` in ``frame`` (stored evaluation rows) for one slice, signal,
    interval and lag; ``model`` may be left out when only one model was evaluated. Raises
    ValueError saying what is missing."""
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
    values = [v if s == "ok" and v is not None else float("nan") for v, s in zip(sel["value"], sel["status"])]
    ok = [v for v in values if v == v]
    change_at = None
    if len(ok) >= BASELINE_INTERVALS + 1 and np.std(ok[:BASELINE_INTERVALS], ddof=1) > 0:
        det = MeanShiftCUSUM(
            mean=float(np.mean(ok[:BASELINE_INTERVALS])), std=float(np.std(ok[:BASELINE_INTERVALS], ddof=1))
        )
        hit = next((i for i, v in enumerate(values) if v == v and det.update(v)), None)
        change_at = sel["window_start"].iloc[hit].isoformat() if hit is not None else None
    points = [
        {
            "window_start": w.isoformat(),
            "model_version": mv,
            "value": None if v != v else v,
            "ci_low": lo,
            "ci_high": hi,
            "n": int(n),
            "status": st,
            "decision": d,
        }
        for w, mv, v, lo, hi, n, st, d in zip(
            sel["window_start"],
            sel["model_version"],
            values,
            sel["ci_low"],
            sel["ci_high"],
            sel["n"],
            sel["status"],
            sel["decision"],
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
        mann_kendall(values),
        change_at,
    )
