"""Online change detection on each slice's error stream: every (event, label) pair that becomes
complete at ingest is one 0/1 error observation for ADWIN (river) per slice of its model, the
detectors' states kept in the store. A detection is a finding; per window, each slice's row
counts the detections whose observation falls in the window (event time) with a label known by
the vintage's cut-off — ``decision`` 1 when there was one — so a rule reads them like any other
check's rows.

The ingest side is ``observe`` (pure: states and pairs in, states and findings out); the online
lane (monitor/online.py) does the reading and writing around it, under the store's shared-state
lock, and feeds the pairs in event-time order behind a frontier, whatever order batches are
stored in.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta
from typing import Iterable

from pydantic import Field

from detectors.online import ADWINDetector
from monitor.checks.base import Check, CheckConfig, EvaluationInput, register
from monitor.core.records import EvaluationRow, Finding, LabelledEvent
from monitor.core.settings import Duration


class OnlineConfig(CheckConfig):
    adwin_delta: float = Field(0.002, gt=0, lt=1)
    # pairs wait this long behind the event-time watermark, then are fed in event-time order
    # (monitor/online.py): what a pair may lag the others by and still be fed in its place
    hold: Duration = timedelta(minutes=1)


def slice_keys(model_name: str, sl: dict[str, str]) -> list[str]:
    """The slices an event belongs to: all traffic of its model, and each attribute=value."""
    return [f"{model_name}|*"] + [f"{model_name}|{k}={v}" for k, v in sorted(sl.items())]


@register
class OnlineErrorRate(Check):
    name = "online"
    metrics = ("error_rate_change",)
    Config = OnlineConfig
    needs = frozenset({"findings"})
    config: OnlineConfig

    # -- ingest --------------------------------------------------------------------------------
    @staticmethod
    def state_keys(pairs: Iterable[LabelledEvent]) -> set[str]:
        """The detector states these pairs update."""
        return {f"adwin:{k}" for p in pairs for k in slice_keys(p.model_name, p.slice)}

    def observe(
        self, pairs: list[LabelledEvent], states: dict[str, dict], now: datetime
    ) -> tuple[dict[str, dict], list[Finding]]:
        """Feed each (event, label) pair, in the order given, to its slices' detectors; returns the
        detectors' new states and the findings they raised."""
        dets: dict[str, ADWINDetector] = {}
        findings = []
        for p in pairs:
            err = float(p.pred_label != p.label)
            for k in slice_keys(p.model_name, p.slice):
                det = dets.get(k)
                if det is None:
                    state = states.get(f"adwin:{k}")
                    det = dets[k] = (
                        ADWINDetector.from_state_dict(state)
                        if state is not None
                        else ADWINDetector(delta=self.config.adwin_delta)
                    )
                det.update(err)
                if det.drift_detected:
                    findings.append(
                        Finding(
                            p.ts,
                            p.model_name,
                            p.model_version,
                            k.split("|", 1)[1],
                            "adwin",
                            "error_rate",
                            det.estimate if math.isfinite(det.estimate) else None,
                            {"n_seen": det.n_seen, "event_id": p.event_id},
                            now,
                        )
                    )
        return {f"adwin:{k}": d.state_dict() for k, d in dets.items()}, findings

    # -- per window ----------------------------------------------------------------------------
    def run(self, summary, inputs: EvaluationInput) -> list[EvaluationRow]:
        hits = Counter(f.slice for f in inputs.findings)
        last = {f.slice: f.value for f in inputs.findings}  # in event-time order: the latest wins
        rows = []
        for sl in inputs.slices:
            n, _ = inputs.window.labelled_counts(sl)
            rows.append(
                inputs.row(
                    slice=sl,
                    detector="adwin",
                    metric="error_rate_change",
                    signal="",
                    variant=f"detections_delta_{self.config.adwin_delta:g}",
                    status="ok" if n or hits[sl] else "insufficient_data",
                    value=float(hits[sl]),
                    effect=last.get(sl),
                    n=n,
                    decision=int(hits[sl] > 0) if n or hits[sl] else None,
                )
            )
        return rows

    def family(self, row: EvaluationRow) -> str | None:
        return None  # a detection, not a p-value
