"""Per modality: each stream's own answers (``output.per_modality``), evaluated like the fused one.

For each slice and each modality that answered: its error rate with the 95 % Wilson interval
against the reference's (one-sided two-proportion test), its top-label ECE and calibration drift
(the size-matched bootstrap of the fused output's check), and how often it disagrees with the
fused answer (label-free; a modality that disagrees more is one that went wrong, or one the
fusion now ignores). Per slice: whether the fused answer is still better than the best single modality
(``fusion_vs_best``: the fused error rate minus that modality's, on the same events, with the
Agresti–Min interval and the exact McNemar p-value), the best being the one with the lowest error
rate on the reference (chosen there, not on the window: the smallest of several noisy window
estimates would make fusion look worse than it is), and the share of events whose modalities do
not all agree.

Rows name the modality in ``signal`` (``image.answer``: an alert is labelled modality=image, and
an incident folds it with the image signals' drift), the fused comparisons ``fusion.vs_best``
and ``fusion.disagreement``. Each metric is one Benjamini–Hochberg family over the window's slices
and modalities.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from detectors.intervals import paired_difference_of_counts
from detectors.calibration import bin_sums
from monitor.checks.calibration import calibration_rows
from monitor.checks.error_rate import share_up_row
from monitor.checks.base import Check, CheckConfig, EvaluationInput, WindowView, finite, register
from monitor.core.records import ALL, EvaluationRow
from monitor.core.window import MODALITIES, Cells, ModalityAnswers, ReferenceReads, modality_measure


class PerModalityConfig(CheckConfig):
    min_n: int = Field(50, ge=1)  # labelled answers needed on both sides for an error-rate claim
    bins: int = Field(15, ge=2, le=100)
    calibration_min_n: int = Field(100, ge=1)
    bootstrap: int = Field(500, ge=0)  # resamples for the ECE-difference interval; 0: no drift rows


@dataclass
class _Slice:
    """One slice's per-modality answers, counted (from the events or from the summaries alike):
    per modality its labelled answers' ``bin_sums`` where it gave a confidence and (right, wrong)
    where it gave none, and (events, only the fused answer wrong, only the modality wrong) over the
    labelled events it answered; the agreement counts (labels not needed)."""

    sums: dict[str, np.ndarray]  # per modality: bin_sums of its answers with a confidence
    unscored: dict[str, tuple[int, int]]  # per modality: (right, wrong) of its answers without one
    paired: dict[str, tuple[int, int, int]]  # per modality: (n, only fused wrong, only it wrong)
    agree: dict[str, tuple[int, int]]  # per modality: (events agreeing with the fused answer, answered)
    all_agree: tuple[int, int]  # (events whose modalities all agree, events with two or more answers)

    @property
    def modalities(self) -> set[str]:
        return set(self.sums) | set(self.unscored)

    def counts(self, modality: str) -> tuple[int, int]:
        """(labelled answers, wrong ones) of a modality."""
        s = self.sums.get(modality)
        right, wrong = self.unscored.get(modality, (0, 0))
        if s is not None:
            right, wrong = right + int(round(s[:, 1, 0].sum())), wrong + int(round(s[:, 0, 0].sum()))
        return right + wrong, wrong

    def fused_minus(self, modality: str) -> float:
        """The fused error rate minus the modality's, on the labelled events it answered."""
        n, only_fused, only_it = self.paired.get(modality, (0, 0, 0))
        return (only_fused - only_it) / n if n else math.nan


def _by_slice(answers: ModalityAnswers, view: WindowView, bins: int) -> dict[str, _Slice]:
    """From the events' per-modality answers (the exact path: the reference, and a window without
    summaries)."""
    pred = view.frame["pred_label"].to_numpy(dtype=object)
    truth = view.frame["label"].to_numpy(dtype=object)
    labelled = view.labelled
    fused_wrong = ~view.correct
    gave = {
        m: np.asarray([x is not None for x in labels], dtype=bool) for m, labels in answers.labels.items()
    }
    agrees = {m: gave[m] & (answers.labels[m] == pred) for m in answers.labels}
    wrong = {m: gave[m] & (answers.labels[m] != truth) for m in answers.labels}
    scored = {m: gave[m] & np.isfinite(answers.confidence[m]) for m in answers.labels}
    count = sum((g.astype(np.int64) for g in gave.values()), np.zeros(len(answers), dtype=np.int64))
    first = None  # every answering modality's label equal to the first one's
    for m in sorted(answers.labels):
        first = np.where(gave[m] & (first == None), answers.labels[m], first)  # noqa: E711
    same = np.ones(len(answers), dtype=bool)
    for m in answers.labels:
        same &= ~gave[m] | (answers.labels[m] == first)
    out = {}
    for sl, mask in view.masks.items():
        lab = mask & labelled
        several = mask & (count >= 2)
        out[sl] = _Slice(
            sums={
                m: bin_sums(answers.confidence[m][lab & scored[m]], ~wrong[m][lab & scored[m]], bins)
                for m in answers.labels
                if (lab & gave[m]).any()
            },
            unscored={
                m: (int((u & ~wrong[m]).sum()), int((u & wrong[m]).sum()))
                for m in answers.labels
                for u in [lab & gave[m] & ~scored[m]]
                if (lab & gave[m]).any()
            },
            paired={
                m: (
                    int(both.sum()),
                    int((both & fused_wrong & ~wrong[m]).sum()),
                    int((both & ~fused_wrong & wrong[m]).sum()),
                )
                for m in answers.labels
                for both in [lab & gave[m]]
                if both.any()
            },
            agree={m: (int((agrees[m] & mask).sum()), int((gave[m] & mask).sum())) for m in answers.labels},
            all_agree=(int((same & several).sum()), int(several.sum())),
        )
    return out


def _of_cells(events: Cells, labelled: Cells, bins: int) -> dict[str, _Slice]:
    """From a window's summed cells (monitor/summaries.py: ``modalities`` and
    ``modality_labelled/<bins>``)."""
    per: dict[str, dict] = {}

    def of(sl: str) -> dict:  # (every event's slice, ``*``, is there even with no answers)
        return per.setdefault(sl, {"sums": {}, "unscored": {}, "paired": {}, "agree": {}, "all": [0, 0]})

    of(ALL)
    for (sl, cell), (n, _, _) in events.items():
        kind, _, m = cell.partition(":")
        d, n = of(sl), int(round(n))
        if kind in ("answered", "agree"):
            agree, answered = d["agree"].get(m, (0, 0))
            d["agree"][m] = (agree + n, answered) if kind == "agree" else (agree, answered + n)
        elif kind == "several":
            d["all"][1] += n
        elif kind == "all_agree":
            d["all"][0] += n
    for (sl, cell), values in labelled.items():
        m, _, rest = cell.partition(":")
        where, _, ok = rest.partition(":")
        d, n = of(sl), int(round(values[0]))
        if where == "pair":
            fused_wrong, it_wrong = (int(x) for x in ok.split(":"))
            total, only_fused, only_it = d["paired"].get(m, (0, 0, 0))
            d["paired"][m] = (
                total + n,
                only_fused + n * (fused_wrong and not it_wrong),
                only_it + n * (it_wrong and not fused_wrong),
            )
        elif where == "-":
            right, wrong = d["unscored"].get(m, (0, 0))
            d["unscored"][m] = (right + n * int(ok), wrong + n * (1 - int(ok)))
        else:
            d["sums"].setdefault(m, np.zeros((bins, 2, 3)))[int(where), int(ok)] = values
    return {
        sl: _Slice(d["sums"], d["unscored"], d["paired"], d["agree"], (d["all"][0], d["all"][1]))
        for sl, d in per.items()
    }


@register
class PerModality(Check):
    name = "per_modality"
    metrics = (
        "modality_error_rate",
        "modality_ece",
        "modality_ece_drift",
        "modality_disagreement",
        "fusion_vs_best",
    )
    against_reference = ("modality_ece_drift",)
    Config = PerModalityConfig
    needs = frozenset({"answers", "reference_answers"})
    reported = ("modality_error_rate",)
    config: PerModalityConfig

    def summarise(self, reference: WindowView, reads: ReferenceReads) -> dict[str, _Slice]:
        answers = reads.answers
        if answers is None or not len(answers):
            return {}
        return _by_slice(answers, WindowView(answers.window, reference.keep), self.config.bins)

    def reads(self, summary: dict[str, _Slice]) -> frozenset:
        # a reference without per-modality answers: the window's are not read (a scan of its events)
        return self.needs if summary else frozenset()

    def run(self, summary: dict[str, _Slice], inputs: EvaluationInput) -> list[EvaluationRow]:
        if not summary:
            return []
        view = inputs.window
        events, labelled = view.cells(MODALITIES), view.cells(modality_measure(self.config.bins))
        if events is not None and labelled is not None:
            window = _of_cells(events, labelled, self.config.bins)
        elif inputs.answers is not None:
            window = _by_slice(inputs.answers, WindowView(inputs.answers.window, view.keep), self.config.bins)
        else:
            return []
        # every modality that answered anywhere in the window or the reference, in every slice
        modalities = sorted(
            {m for s in (*summary.values(), *window.values()) for m in s.modalities | set(s.agree)}
        )
        rows: list[EvaluationRow] = []
        for sl in sorted(set(summary) | set(window)):
            ref, win = summary.get(sl), window.get(sl)
            if ref is None or win is None:
                continue
            for m in modalities:
                rows += self._modality_rows(inputs, sl, m, win, ref)
            rows += self._fusion_rows(inputs, sl, modalities, win, ref)
        return rows

    def _modality_rows(self, inputs, sl: str, m: str, win: _Slice, ref: _Slice) -> list[EvaluationRow]:
        c = self.config
        signal = f"{m}.answer"
        (n, wrong), (n_ref, wrong_ref) = win.counts(m), ref.counts(m)
        rows = [share_up_row(inputs, sl, "modality_error_rate", signal, wrong, n, wrong_ref, n_ref, c.min_n)]
        rows.append(
            self._disagreement_row(inputs, sl, signal, win.agree.get(m, (0, 0)), ref.agree.get(m, (0, 0)))
        )
        # calibration only where the modality gives its confidence
        empty = np.zeros((c.bins, 2, 3))
        ws, rs = win.sums.get(m, empty), ref.sums.get(m, empty)
        if not ws[..., 0].sum() and not rs[..., 0].sum():
            return rows
        return rows + calibration_rows(
            inputs,
            sl,
            ("modality_ece", "modality_ece_drift"),
            signal,
            ws,
            rs,
            c.calibration_min_n,
            c.bootstrap,
            # a family of slices × modalities: the resampled share alone could never reach max_p
            normal_tail=True,
        )

    def _disagreement_row(self, inputs, sl, signal, counts, counts_ref) -> EvaluationRow:
        """How often the answers disagree (``counts``: agreeing, answered), against the reference."""
        (agree, n), (agree_ref, n_ref) = counts, counts_ref
        return share_up_row(
            inputs,
            sl,
            "modality_disagreement",
            signal,
            n - agree,
            n,
            n_ref - agree_ref,
            n_ref,
            self.config.min_n,
        )

    def _fusion_rows(self, inputs, sl: str, modalities, win: _Slice, ref: _Slice) -> list[EvaluationRow]:
        c = self.config
        rows = [self._disagreement_row(inputs, sl, "fusion.disagreement", win.all_agree, ref.all_agree)]
        # the best single modality on the reference, among those with enough answers there
        ref_err = {m: wrong / n for m in modalities for n, wrong in [ref.counts(m)] if n and n >= c.min_n}
        if not ref_err:
            return rows
        best = min(sorted(ref_err), key=ref_err.__getitem__)
        d = paired_difference_of_counts(*win.paired.get(best, (0, 0, 0)))
        n = d.n
        ref_diff = ref.fused_minus(best)
        enough = n >= c.min_n
        rows.append(
            inputs.row(
                slice=sl,
                detector="mcnemar",
                metric="fusion_vs_best",
                signal="fusion.vs_best",
                # which modality is the best changes only with the reference
                variant=f"fused_minus_{best}_agresti_min_95",
                status="ok" if enough else "insufficient_data",
                value=finite(d.difference),
                reference_value=finite(ref_diff),
                ci_low=finite(d.low) if enough else None,
                ci_high=finite(d.high) if enough else None,
                n=n,
                n_reference=ref.paired.get(best, (0, 0, 0))[0],
                effect=finite(d.difference) if enough else None,
                p_value=d.p_greater if enough else None,
            )
        )
        return rows

    def decide(self, row: EvaluationRow, rejected: bool) -> int:
        if row.metric == "modality_ece_drift":
            return int(rejected and (row.ci_low or 0.0) > 0)  # worse than the reference, beyond chance
        if row.metric == "modality_ece":
            return 0
        return int(rejected and (row.effect or 0.0) > 0 if row.metric == "fusion_vs_best" else rejected)
