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
            n, wrong = inputs.window.labelled_counts(sl)
            n_ref, wrong_ref = inputs.reference.labelled_of(sl)
            rows.append(
                share_up_row(inputs, sl, "error_rate", "", wrong, n, wrong_ref, n_ref, self.config.min_n)
            )
        return rows


def error_rate_row(
    inputs: EvaluationInput, sl: str, metric: str, signal: str, wok, rok, min_n: int
) -> EvaluationRow:
    """The row of one error rate (``wok``, ``rok``: the window's and the reference's answers'
    correctness) against the reference's."""
    return share_up_row(
        inputs, sl, metric, signal, int((~wok).sum()), len(wok), int((~rok).sum()), len(rok), min_n
    )


def share_up_row(
    inputs: EvaluationInput,
    sl: str,
    metric: str,
    signal: str,
    k: int,
    n: int,
    k_ref: int,
    n_ref: int,
    min_n: int,
) -> EvaluationRow:
    """The row of a share that is worse higher (``k`` of ``n`` against the reference's ``k_ref`` of
    ``n_ref``): Wilson intervals, the difference, the one-sided two-proportion p-value (shared
    with the per-modality check)."""
    werr, rerr = wilson_interval(k, n), wilson_interval(k_ref, n_ref)
    enough = n >= min_n and n_ref >= min_n
    return inputs.row(
        slice=sl,
        detector="wilson",
        metric=metric,
        signal=signal,
        variant="wilson_95",
        status="ok" if enough else "insufficient_data",
        value=finite(werr.estimate),
        reference_value=finite(rerr.estimate),
        ci_low=finite(werr.low),
        ci_high=finite(werr.high),
        n=werr.n,
        n_reference=rerr.n,
        effect=finite(werr.estimate - rerr.estimate) if enough else None,
        p_value=two_proportion_p(k, n, k_ref, n_ref, "greater") if enough else None,
    )
