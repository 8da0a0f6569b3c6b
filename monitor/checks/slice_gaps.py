"""Slice gaps: each slice against the rest of the window — error rate and abstention rate
(two-proportion z-test) and mean confidence (Welch's z) — over slice attributes, signal bands and
crossed pairs, with Benjamini–Hochberg over every slice × metric of the window together."""

from __future__ import annotations

import numpy as np
from pydantic import Field

from detectors.slices import band_labels, slice_metrics
from monitor.checks.base import Check, CheckConfig, EvaluationInput, finite, register
from monitor.core.records import EvaluationRow


class SliceGapsConfig(CheckConfig):
    min_n: int = Field(50, ge=1)
    # slice attributes crossed in pairs, e.g. [[device, locale]]
    cross: list[tuple[str, str]] = Field(default_factory=list)
    # signal bands as slices, e.g. {"image.brightness": [40, 80, 160, 200]} gives
    # image.brightness=<40, =[40,80) … =>=200 (a band name may be crossed too)
    bands: dict[str, list[float]] = Field(default_factory=dict)


@register
class SliceGaps(Check):
    name = "slice_gaps"
    metrics = ("error_rate_gap", "abstention_rate_gap", "mean_confidence_gap")
    Config = SliceGapsConfig
    config: SliceGapsConfig

    def run(self, summary, inputs: EvaluationInput) -> list[EvaluationRow]:
        win = inputs.window
        f = win.frame
        if not win.n or win.slices_frame.empty:
            return []
        errors = np.where(
            win.labelled, (f["label"].to_numpy() != f["pred_label"].to_numpy()).astype(float), np.nan
        )
        attrs = {
            c: win.slices_frame[c].fillna("").astype(str).to_numpy(dtype=object)
            for c in win.slices_frame.columns
        }
        for sig, edges in self.config.bands.items():
            if sig in win.signals:
                attrs[sig] = band_labels(sig, win.signals[sig].to_numpy(dtype=float), edges)
        cross = [(a, b) for a, b in self.config.cross if a in attrs and b in attrs]
        stats = slice_metrics(
            attrs,
            errors,
            f["abstained"].to_numpy(),
            f["confidence"].to_numpy(),
            cross=cross,
            min_n=self.config.min_n,
            fdr=self.fdr,
        )
        # slice_metrics controlled false discoveries over every slice × metric already
        return [
            inputs.row(
                slice=r.slice,
                detector="two_proportion_z" if r.metric != "mean_confidence" else "welch_z",
                metric=f"{r.metric}_gap",
                signal="",
                variant="vs_rest_of_window",
                status=r.status,
                value=finite(r.value),
                reference_value=finite(r.rest_value),
                ci_low=finite(r.ci_low),
                ci_high=finite(r.ci_high),
                n=r.n,
                n_reference=0,
                p_value=r.p_value,
                effect=finite(r.gap),
                p_adjusted=r.p_adjusted,
                decision=int(r.significant) if r.status == "ok" else None,
            )
            for r in stats
        ]

    def family(self, row: EvaluationRow) -> str | None:
        return None  # adjusted already, all metrics together
