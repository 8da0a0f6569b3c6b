"""Calibration per slice: top-label ECE next to the reference's, and its drift — the window's ECE
against the reference's at the same sample size, with a bootstrap interval and p-value (a day's
ECE against a week's is biased up by about sqrt(bins / n): the naive comparison flags every day)."""

from __future__ import annotations

from pydantic import Field

from detectors.calibration import calibration, calibration_drift
from monitor.checks.base import Check, CheckConfig, EvaluationInput, finite, register
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

    def run(self, summary, inputs: EvaluationInput) -> list[EvaluationRow]:
        c = self.config
        rows = []
        for sl in inputs.slices:
            wc, wok = inputs.window.answers(sl)
            rc, rok = inputs.reference.answers_of(sl)
            rows += calibration_rows(
                inputs, sl, ("ece", "ece_drift"), "", wc, wok, rc, rok, c.bins, c.min_n, c.bootstrap
            )
        return rows

    def family(self, row: EvaluationRow) -> str | None:
        return "ece_drift" if row.metric == "ece_drift" else None

    def decide(self, row: EvaluationRow, rejected: bool) -> int:
        return int(rejected and (row.ci_low or 0.0) > 0)  # worse than the reference, beyond chance


def calibration_rows(
    inputs: EvaluationInput,
    sl: str,
    metrics: tuple[str, str],
    signal: str,
    wc,
    wok,
    rc,
    rok,
    bins: int,
    min_n: int,
    bootstrap: int,
    normal_tail: bool = False,
) -> list[EvaluationRow]:
    """The ECE row and (with ``bootstrap``) the drift row of one set of answers against the
    reference's (shared with the per-modality check; ``metrics``: their names)."""
    we = calibration(wc, wok, bins=bins, min_n=min_n)
    re_ = calibration(rc, rok, bins=bins, min_n=min_n)
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
        d = calibration_drift(
            rc,
            rok,
            wc,
            wok,
            bins=bins,
            n_boot=bootstrap,
            seed=inputs.seed,
            min_n=min_n,
            normal_tail=normal_tail,
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
