"""Calibration per slice: top-label ECE next to the reference's, and its drift — the window's ECE
against the reference's at the same sample size, with a bootstrap interval and p-value (a day's
ECE against a week's is biased up by about sqrt(bins / n): the naive comparison flags every day)."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from detectors.calibration import calibration_drift_of_sums, calibration_of_sums
from monitor.checks.base import Check, CheckConfig, EvaluationInput, WindowView, finite, register
from monitor.core.records import EvaluationRow


class CalibrationConfig(CheckConfig):
    bins: int = Field(15, ge=2, le=100)
    min_n: int = Field(100, ge=1)
    bootstrap: int = Field(500, ge=0)  # resamples for the ECE-difference interval; 0: no drift rows


@register
class Calibration(Check):
    name = "calibration"
    metrics = ("ece", "ece_drift")
    against_reference = ("ece_drift",)
    Config = CalibrationConfig
    reported = ("ece",)
    config: CalibrationConfig

    def summarise(self, reference: WindowView, reads) -> dict[str, np.ndarray]:
        """Each slice's per-bin sums of the reference's labelled answers: all a window needs."""
        return {sl: reference.answer_sums(sl, self.config.bins) for sl in reference.masks}

    def run(self, summary: dict[str, np.ndarray], inputs: EvaluationInput) -> list[EvaluationRow]:
        c = self.config
        empty = np.zeros((c.bins, 2, 3))
        return [
            row
            for sl in inputs.slices
            for row in calibration_rows(
                inputs,
                sl,
                ("ece", "ece_drift"),
                "",
                inputs.window.answer_sums(sl, c.bins),
                summary.get(sl, empty),
                c.min_n,
                c.bootstrap,
            )
        ]

    def family(self, row: EvaluationRow) -> str | None:
        return "ece_drift" if row.metric == "ece_drift" else None

    def decide(self, row: EvaluationRow, rejected: bool) -> int:
        return int(rejected and (row.ci_low or 0.0) > 0)  # worse than the reference, beyond chance


def calibration_rows(
    inputs: EvaluationInput,
    sl: str,
    metrics: tuple[str, str],
    signal: str,
    window: np.ndarray,
    reference: np.ndarray,
    min_n: int,
    bootstrap: int,
    normal_tail: bool = False,
) -> list[EvaluationRow]:
    """The ECE row and (with ``bootstrap``) the drift row of one set of answers against the
    reference's, both from the two sets' ``bin_sums`` (shared with the per-modality check;
    ``metrics``: their names)."""
    we, re_ = calibration_of_sums(window, min_n), calibration_of_sums(reference, min_n)
    rows = [
        inputs.row(
            slice=sl,
            detector="ece",
            metric=metrics[0],
            signal=signal,
            variant=we.variant,
            status="ok" if we.status == re_.status == "ok" else "insufficient_data",
            value=finite(we.ece),
            reference_value=finite(re_.ece),
            n=we.n,
            n_reference=re_.n,
        )
    ]
    if bootstrap:
        d = calibration_drift_of_sums(
            reference, window, n_boot=bootstrap, seed=inputs.seed, min_n=min_n, normal_tail=normal_tail
        )
        rows.append(
            inputs.row(
                slice=sl,
                detector="bootstrap",
                metric=metrics[1],
                signal=signal,
                variant=d.variant,
                status=d.status,
                value=finite(d.difference),
                reference_value=finite(d.reference_ece),
                ci_low=finite(d.ci_low),
                ci_high=finite(d.ci_high),
                n=d.n,
                n_reference=d.n_reference,
                effect=finite(d.difference),
                p_value=d.p_value if d.status == "ok" else None,
            )
        )
    return rows
