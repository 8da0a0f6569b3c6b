"""Label-free accuracy per slice: the window's answered events' confidences, calibrated on the
reference's labelled events (detectors/performance.py), with a sampling-error band, next to the
reference's realised accuracy. Right while P(correct | confidence) holds; labels find the rest."""

from __future__ import annotations

from pydantic import Field

from detectors.performance import ConfidenceCalibrator, PerformanceSummary
from monitor.checks.base import ALL, Check, CheckConfig, EvaluationInput, WindowView, finite, register
from monitor.core.records import EvaluationRow


class EstimatedAccuracyConfig(CheckConfig):
    min_n: int = Field(50, ge=1)  # answered events a window needs for an estimate


@register
class EstimatedAccuracy(Check):
    name = "estimated_accuracy"
    metrics = ("estimated_accuracy",)
    Config = EstimatedAccuracyConfig
    config: EstimatedAccuracyConfig

    def summarise(self, reference: WindowView, reads) -> ConfidenceCalibrator:
        return ConfidenceCalibrator.fit(*reference.answers(ALL))

    def run(self, calibrator: ConfidenceCalibrator, inputs: EvaluationInput) -> list[EvaluationRow]:
        win = inputs.window
        answered = ~win.frame["abstained"].to_numpy(dtype=bool)
        rows = []
        for sl in inputs.slices:
            n_ref, wrong_ref = inputs.reference.labelled_of(sl)
            est = PerformanceSummary.of(calibrator, win.confidence[win.mask(sl) & answered]).estimate(
                min_n=self.config.min_n
            )
            ref_acc = (n_ref - wrong_ref) / n_ref if n_ref else None
            rows.append(
                inputs.row(
                    slice=sl,
                    detector="cbpe",
                    metric="estimated_accuracy",
                    signal="",
                    variant=f"confidence_{calibrator.kind}",
                    status=est.status,
                    value=finite(est.accuracy),
                    reference_value=finite(ref_acc) if ref_acc is not None else None,
                    ci_low=finite(est.ci_low),
                    ci_high=finite(est.ci_high),
                    n=est.n,
                    n_reference=n_ref,
                    effect=finite(est.accuracy - ref_acc) if ref_acc is not None else None,
                )
            )
        return rows
