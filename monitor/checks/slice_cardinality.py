"""Slice cardinality: per slice attribute, how many distinct values the window holds. Beyond
``evaluation.max_slice_values`` the rest of the values are evaluated together as ``(other)``,
and this row's ``decision`` is 1: a producer may be putting an id in a slice attribute."""

from __future__ import annotations

from monitor.checks.base import ALL, Check, EvaluationInput, register
from monitor.core.records import EvaluationRow


@register
class SliceCardinality(Check):
    name = "slice_cardinality"
    metrics = ("slice_values",)

    def run(self, summary, inputs: EvaluationInput) -> list[EvaluationRow]:
        win = inputs.window
        rows = []
        for attr in sorted(win.distinct):
            bounded = attr in win.keep
            rows.append(
                inputs.row(
                    slice=ALL,
                    detector="distinct_values",
                    metric="slice_values",
                    signal=f"slice.{attr}",
                    variant=f"bounded_to_{len(win.keep[attr])}" if bounded else "all_values",
                    status="ok",
                    value=float(win.distinct[attr]),
                    reference_value=float(inputs.reference.distinct.get(attr, 0)),
                    n=int(win.slices_frame[attr].notna().sum()),
                    n_reference=0,
                    decision=int(bounded),
                )
            )
        return rows

    def family(self, row: EvaluationRow) -> str | None:
        return None
