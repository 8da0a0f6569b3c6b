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

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from detectors.intervals import paired_difference
from detectors.calibration import bin_sums
from monitor.checks.calibration import calibration_rows
from monitor.checks.error_rate import error_rate_row, share_up_row
from monitor.checks.base import Check, CheckConfig, EvaluationInput, WindowView, finite, register
from monitor.core.records import EvaluationRow
from monitor.core.window import ModalityAnswers, ReferenceReads


class PerModalityConfig(CheckConfig):
    min_n: int = Field(50, ge=1)  # labelled answers needed on both sides for an error-rate claim
    bins: int = Field(15, ge=2, le=100)
    calibration_min_n: int = Field(100, ge=1)
    bootstrap: int = Field(500, ge=0)  # resamples for the ECE-difference interval; 0: no drift rows


@dataclass
class _Slice:
    """One slice's per-modality answers: the labelled ones (fused wrong; per modality answered,
    wrong, confidence) and the agreement counts (labels not needed)."""

    fused_wrong: np.ndarray
    wrong: dict[str, np.ndarray]  # per modality, over the labelled events (False where it gave none)
    answered: dict[str, np.ndarray]  # per modality, over the labelled events
    confidence: dict[str, np.ndarray]  # per modality, over the labelled events (NaN where none)
    agree: dict[str, tuple[int, int]]  # per modality: (events agreeing with the fused answer, answered)
    all_agree: tuple[int, int]  # (events whose modalities all agree, events with two or more answers)

    def answers_of(self, modality: str) -> tuple[np.ndarray, np.ndarray]:
        """A modality's labelled answers: confidence and correctness."""
        m = self.answered.get(modality, np.zeros(0, dtype=bool))
        if not m.size:
            return np.zeros(0), np.zeros(0, dtype=bool)
        return self.confidence[modality][m], ~self.wrong[modality][m]


def _by_slice(answers: ModalityAnswers, view: WindowView) -> dict[str, _Slice]:
    pred = view.frame["pred_label"].to_numpy(dtype=object)
    truth = view.frame["label"].to_numpy(dtype=object)
    labelled = view.labelled
    gave = {
        m: np.asarray([x is not None for x in labels], dtype=bool) for m, labels in answers.labels.items()
    }
    agrees = {m: gave[m] & (answers.labels[m] == pred) for m in answers.labels}
    wrong = {m: gave[m] & (answers.labels[m] != truth) for m in answers.labels}
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
            fused_wrong=~view.correct[lab],
            wrong={m: w[lab] for m, w in wrong.items()},
            answered={m: g[lab] for m, g in gave.items()},
            confidence={m: c[lab] for m, c in answers.confidence.items()},
            agree={m: (int((agrees[m] & mask).sum()), int((gave[m] & mask).sum())) for m in answers.labels},
            all_agree=(int((same & several).sum()), int(several.sum())),
        )
    return out


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
        return _by_slice(answers, WindowView(answers.window, reference.keep))

    def reads(self, summary: dict[str, _Slice]) -> frozenset:
        # a reference without per-modality answers: the window's are not read (a scan of its events)
        return self.needs if summary else frozenset()

    def run(self, summary: dict[str, _Slice], inputs: EvaluationInput) -> list[EvaluationRow]:
        answers = inputs.answers
        if not summary or answers is None:
            return []
        window = _by_slice(answers, WindowView(answers.window, inputs.window.keep))
        rows: list[EvaluationRow] = []
        for sl in sorted(set(summary) | set(window)):
            ref, win = summary.get(sl), window.get(sl)
            if ref is None or win is None:
                continue
            modalities = sorted(set(ref.answered) | set(win.answered))
            for m in modalities:
                rows += self._modality_rows(inputs, sl, m, win, ref)
            rows += self._fusion_rows(inputs, sl, modalities, win, ref)
        return rows

    def _modality_rows(self, inputs, sl: str, m: str, win: _Slice, ref: _Slice) -> list[EvaluationRow]:
        c = self.config
        signal = f"{m}.answer"
        wc, wok = win.answers_of(m)
        rc, rok = ref.answers_of(m)
        rows = [error_rate_row(inputs, sl, "modality_error_rate", signal, wok, rok, c.min_n)]
        rows.append(
            self._disagreement_row(inputs, sl, signal, win.agree.get(m, (0, 0)), ref.agree.get(m, (0, 0)))
        )
        # calibration only where the modality gives its confidence
        wf, rf = np.isfinite(wc), np.isfinite(rc)
        if not wf.any() and not rf.any():
            return rows
        return rows + calibration_rows(
            inputs,
            sl,
            ("modality_ece", "modality_ece_drift"),
            signal,
            bin_sums(wc[wf], wok[wf], c.bins),
            bin_sums(rc[rf], rok[rf], c.bins),
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
        ref_err = {
            m: float(ref.wrong[m][ref.answered[m]].mean())
            for m in modalities
            if m in ref.answered and int(ref.answered[m].sum()) >= c.min_n
        }
        if not ref_err:
            return rows
        best = min(sorted(ref_err), key=ref_err.__getitem__)
        both = win.answered.get(best, np.zeros(0, dtype=bool))
        d = paired_difference(win.fused_wrong[both], win.wrong[best][both]) if both.size else None
        n = d.n if d is not None else 0
        ref_both = ref.answered[best]
        ref_diff = float(ref.fused_wrong[ref_both].mean() - ref.wrong[best][ref_both].mean())
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
                value=finite(d.difference) if d is not None else None,
                reference_value=finite(ref_diff),
                ci_low=finite(d.low) if enough else None,
                ci_high=finite(d.high) if enough else None,
                n=n,
                n_reference=int(ref_both.sum()),
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
