"""Missing modalities: per expected modality (media.expected_modalities adds the
``cross.missing_<modality>`` signals) and per slice, the share of the window's events that came
without it, with a Wilson interval, next to the reference's share in that slice (a device that
lost its microphone shows in its own slice, not only diluted in all traffic)."""

from __future__ import annotations

import math

import numpy as np
from pydantic import Field

from detectors.intervals import wilson_interval
from monitor.checks.base import Check, CheckConfig, EvaluationInput, WindowView, finite, register
from monitor.core.records import EvaluationRow
from monitor.core.window import FLAGS, MISSING_PREFIX, is_missing_flag


class MissingModalityConfig(CheckConfig):
    min_n: int = Field(50, ge=1)


@register
class MissingModality(Check):
    name = "missing_modality"
    metrics = ("missing_modality_share",)
    Config = MissingModalityConfig
    config: MissingModalityConfig

    def summarise(self, reference: WindowView, reads) -> dict[tuple[str, str], tuple[int, float]]:
        """Per slice and ``cross.missing_<modality>`` signal: the reference's events with the flag,
        and the share missing."""
        out = {}
        for c in reference.signals.columns:
            if is_missing_flag(c):
                for sl, mask in reference.masks.items():
                    flags = _flags(reference, c, mask)
                    out[sl, c] = (len(flags), float(flags.mean()) if len(flags) else math.nan)
        return out

    def run(
        self, summary: dict[tuple[str, str], tuple[int, float]], inputs: EvaluationInput
    ) -> list[EvaluationRow]:
        rows = []
        win = inputs.window
        cells = win.cells(FLAGS)
        if cells is not None:  # from the summaries: per (slice, flag) the events with it and Σ flag
            columns = {c for _, c in cells}
        else:
            columns = {c for c in win.signals.columns if is_missing_flag(c)}
        for col in sorted(columns):
            for sl in inputs.slices:
                if cells is not None:
                    n, missing, _ = cells.get((sl, col), (0.0, 0.0, 0.0))
                    n, missing = int(round(n)), int(round(missing))
                else:
                    flags = _flags(win, col, win.mask(sl))
                    n, missing = len(flags), int(flags.sum())
                n_ref, ref_share = summary.get((sl, col), (0, math.nan))
                w = wilson_interval(missing, n)  # nan bounds when n == 0
                rows.append(
                    inputs.row(
                        slice=sl,
                        detector="wilson",
                        metric="missing_modality_share",
                        signal=col[len(MISSING_PREFIX) :],
                        variant="share_of_events",
                        status="ok" if n >= self.config.min_n else "insufficient_data",
                        value=finite(w.estimate),
                        reference_value=finite(ref_share) if n_ref else None,
                        ci_low=finite(w.low),
                        ci_high=finite(w.high),
                        n=n,
                        n_reference=n_ref,
                    )
                )
        return rows


def _flags(view: WindowView, col: str, mask: np.ndarray) -> np.ndarray:
    flags = view.signals[col].to_numpy(dtype=float)[mask]
    return flags[np.isfinite(flags)]
