"""Aging: a one-sided Mann–Kendall test over the last ``window`` intervals (of this interval and
lag) of each slice's error rate, ECE and estimated accuracy, this window included, once there
are ``min_n`` of them, its variance corrected for the serial correlation of consecutive windows
(Hamed–Rao, detectors/trend.py). ``value`` is Sen's slope per interval, ``signal`` the metric it
follows, ``effect`` Kendall's tau. A slow decay that never crosses a threshold in any one window
is found this way.

A finding (decision 1) is a trend in the worse direction, significant after Benjamini–Hochberg
over the window's trend rows, whose slope is at least ``min_slope_per_day`` (in the metric's
units, e.g. 0.001 = 0.1 points a day): on thousands of events a flat series' tiny slope can be
significant, and a stationary one is not aging."""

from __future__ import annotations

import math
from pydantic import Field

from detectors.trend import mann_kendall
from monitor.checks.base import Check, CheckConfig, EvaluationInput, finite, register
from monitor.core.records import EvaluationRow

# the metrics followed, and the direction in which each gets worse
WORSE = {"error_rate": "increasing", "ece": "increasing", "estimated_accuracy": "decreasing"}


class TrendConfig(CheckConfig):
    window: int = Field(10, ge=2)  # intervals
    min_n: int = Field(8, ge=4)
    # the effect-size floor: slower than this (per day, whatever the interval) is not aging
    min_slope_per_day: float = Field(0.001, ge=0)


@register
class Trend(Check):
    name = "trend"
    metrics = ("trend",)
    Config = TrendConfig
    needs = frozenset({"history"})
    order = 10  # after the checks whose rows it follows
    config: TrendConfig

    def history_metrics(self) -> tuple[str, ...]:
        return tuple(WORSE)

    def history_span(self) -> int:
        return self.config.window

    def family(self, row: EvaluationRow) -> str | None:
        # each slice's trends (error rate, ECE, label-free accuracy) are one family: all traffic's
        # aging, which the default rule reads, is not diluted by every slice's series
        return f"trend {row.slice}"

    def decide(self, row: EvaluationRow, rejected: bool) -> int:
        per_day = abs(row.value or 0.0) * 86400 / row.interval_s
        return int(rejected and per_day >= self.config.min_slope_per_day)

    def run(self, summary, inputs: EvaluationInput) -> list[EvaluationRow]:
        c = self.config
        past: dict[tuple[str, str], list[float]] = {}
        for r in inputs.history:
            past.setdefault((r.slice, r.metric), []).append(_value(r))
        out = []
        for r in inputs.rows:
            worse = WORSE.get(r.metric)
            if worse is None:
                continue
            values = past.get((r.slice, r.metric), []) + [_value(r)]
            t = mann_kendall(values[-c.window :], min_n=c.min_n)
            out.append(
                inputs.row(
                    slice=r.slice,
                    detector="mann_kendall",
                    metric="trend",
                    signal=r.metric,
                    variant=f"last_{c.window}_intervals_worse_{worse}",
                    status=t.status,
                    value=finite(t.slope),
                    n=t.n,
                    n_reference=0,
                    effect=finite(t.tau),
                    # one-sided: only a trend in the worse direction counts
                    p_value=(t.p_value / 2 if (t.s > 0) == (worse == "increasing") else 1.0)
                    if t.status == "ok"
                    else None,
                )
            )
        return out


def _value(r: EvaluationRow) -> float:
    return r.value if r.status == "ok" and r.value is not None else math.nan
