"""Error rate per slice with a 95 % Wilson interval, next to the reference's, and whether it is
higher than the reference's beyond chance: ``p_value`` of a one-sided two-proportion z-test
(Benjamini–Hochberg over the window's slices decides), ``effect`` the difference."""

from __future__ import annotations

from pydantic import Field

from detectors.intervals import two_proportion_p, wilson_interval
from monitor.checks.base import Check, CheckConfig, EvaluationInput, finite, register
from monitor.core.records import EvaluationRow


class ErrorRateConfig(CheckConfig):
    min_n: int = Field(50, ge=1)  # labelled answers needed on both sides for a claim


@register
class ErrorRate(Check):
    name = "error_rate"
    metrics = ("error_rate",)
    Config = ErrorRateConfig
    reported = ("error_rate",)
    config: ErrorRateConfig

    def run(self, summary, inputs: EvaluationInput) -> list[EvaluationRow]:
        rows = []
        for sl in inputs.slices:
            _, wok = inputs.window.answers(sl)
            _, rok = inputs.reference.answers_of(sl)
            k, k_ref = int((~wok).sum()), int((~rok).sum())
            werr, rerr = wilson_interval(k, len(wok)), wilson_interval(k_ref, len(rok))
            enough = len(wok) >= self.config.min_n and len(rok) >= self.config.min_n
            rows.append(
                inputs.row(
                    slice=sl,
                    detector="wilson",
                    metric="error_rate",
                    signal="",
                    variant="wilson_95",
                    status="ok" if enough else "insufficient_data",
                    value=finite(werr.estimate),
                    reference_value=finite(rerr.estimate),
                    ci_low=finite(werr.low),
                    ci_high=finite(werr.high),
                    n=werr.n,
                    n_reference=rerr.n,
                    effect=finite(werr.estimate - rerr.estimate) if enough else None,
                    p_value=two_proportion_p(k, len(wok), k_ref, len(rok), "greater") if enough else None,
                )
            )
        return rows
