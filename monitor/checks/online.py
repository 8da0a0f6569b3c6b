"""Online change detection on each slice's error stream: every (event, label) pair that becomes
complete at ingest is one 0/1 error observation for ADWIN (river) per slice of its model, the
detectors' states kept in the store. A detection is a finding; per window, each slice's row
counts the detections whose observation falls in the window (event time) with a label known by
the vintage's cut-off — ``decision`` 1 when there was one — so a rule reads them like any other
check's rows.

The ingest side is ``observe`` (pure: states and pairs in, states and findings out); the pipeline
does the reading and writing around it, under the store's shared-state lock.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime
from typing import Iterable

from pydantic import Field

from detectors.online import ADWINDetector
from monitor.checks.base import Check, CheckConfig, EvaluationInput, register
from monitor.core.records import EvaluationRow, Finding


class OnlineConfig(CheckConfig):
    adwin_delta: float = Field(0.002, gt=0, lt=1)


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
    def state_keys(events: Iterable[dict]) -> set[str]:
        """The detector states the pairs of these events (``events_for`` dicts) update."""
        return {f"adwin:{k}" for info in events for k in slice_keys(info["model_name"], info["slice"])}

    def observe(
        self, pairs: list[tuple[str, dict, str]], states: dict[str, dict], now: datetime
    ) -> tuple[dict[str, dict], list[Finding]]:
        """Feed each (event id, event, label) pair — in event-time order — to its slices' detectors;
        returns the detectors' new states and the findings they raised."""
        dets: dict[str, ADWINDetector] = {}
        findings = []
        for eid, info, label in pairs:
            err = float(info["pred_label"] != label)
            for k in slice_keys(info["model_name"], info["slice"]):
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
                    model_name, sl = k.split("|", 1)
                    findings.append(
                        Finding(
                            info["ts"],
                            model_name,
                            info["model_version"],
                            sl,
                            "adwin",
                            "error_rate",
                            det.estimate if math.isfinite(det.estimate) else None,
                            {"n_seen": det.n_seen, "event_id": eid},
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
            n = len(inputs.window.answers(sl)[1])
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
