"""Vocabulary drift of the raw texts, from their words' hashed buckets (never the words).

Per slice, against the reference's buckets:

- ``oov_rate``: the share of the window's words whose bucket the reference never had — next to
  the same share of the reference's last fifth against its first four (what new text brings
  anyway: names, numbers, typos); ``p_value`` one-sided two-proportion over words (words of one
  text are not independent: read it as a screen, the effect floor ``oov_floor`` decides too);
- ``vocabulary_shift``: the Jensen–Shannon distance between the shares of the reference's
  ``top_k`` most frequent buckets (the rest pooled) in the window and in the reference, with
  chi-square's p-value over the same counts.

A bucket is a word but for collisions (2²⁰ buckets: a 20,000-word vocabulary fills 2 % of them,
so about 2 % of truly new words look known — the rate is a lower bound by that much).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field

from detectors.drift import CategoricalReference, chi_square_test, jensen_shannon_test
from detectors.intervals import two_proportion_p
from monitor.checks.base import ALL, Check, CheckConfig, EvaluationInput, WindowView, finite, register
from monitor.core.records import EvaluationRow
from monitor.core.window import ReferenceReads, TokenWindow

SIGNAL = "text.vocabulary"


class VocabularyConfig(CheckConfig):
    min_n: int = Field(200, ge=1)  # words on each side for a claim
    top_k: int = Field(50, ge=2, le=10_000)
    oov_floor: float = Field(0.05, ge=0)  # the OOV rate's rise over the baseline that is a finding
    shift_threshold: float = Field(0.1, ge=0)  # the Jensen–Shannon distance that is a finding


@dataclass
class _Vocabulary:
    """A slice's reference words: its buckets (sorted, distinct), the top-k buckets' counts and
    the rest's, and the baseline OOV rate (last fifth against the first four)."""

    buckets: np.ndarray
    top: dict[int, int]
    rest: int
    baseline: tuple[int, int]  # (new words, words) of the last fifth
    n: int


def _words(tokens: TokenWindow, view: WindowView) -> dict[str, np.ndarray]:
    lengths = np.array([len(t) for t in tokens.tokens], dtype=np.int64)
    flat = np.concatenate(tokens.tokens) if tokens.tokens else np.zeros(0, dtype=np.uint32)
    owner = np.repeat(np.arange(len(tokens)), lengths)
    return {sl: flat[mask[owner]] for sl, mask in view.masks.items()}


def _vocabulary(tokens: TokenWindow, mask: np.ndarray, top_k: int) -> _Vocabulary:
    per_event = [t for t, m in zip(tokens.tokens, mask) if m]
    flat = np.concatenate(per_event) if per_event else np.zeros(0, dtype=np.uint32)
    split = len(per_event) * 4 // 5  # events in event-time order
    early = np.concatenate(per_event[:split]) if split else np.zeros(0, dtype=np.uint32)
    late = np.concatenate(per_event[split:]) if per_event[split:] else np.zeros(0, dtype=np.uint32)
    new_late = int((~np.isin(late, np.unique(early))).sum())
    keys, counts = np.unique(flat, return_counts=True)
    order = np.lexsort((keys, -counts))[:top_k]
    top = {int(keys[i]): int(counts[i]) for i in order}
    return _Vocabulary(
        keys, top, int(flat.size - sum(top.values())), (new_late, int(late.size)), int(flat.size)
    )


@register
class Vocabulary(Check):
    name = "vocabulary"
    metrics = ("oov_rate", "vocabulary_shift")
    against_reference = ("oov_rate", "vocabulary_shift")
    Config = VocabularyConfig
    needs = frozenset({"tokens", "reference_tokens"})
    config: VocabularyConfig

    def summarise(self, reference: WindowView, reads: ReferenceReads) -> dict[str, _Vocabulary]:
        tokens = reads.tokens
        if tokens is None or not len(tokens):
            return {}
        view = WindowView(tokens.window, reference.keep)
        return {sl: _vocabulary(tokens, mask, self.config.top_k) for sl, mask in view.masks.items()}

    def reads(self, summary: dict[str, _Vocabulary]) -> frozenset:
        return self.needs if summary else frozenset()

    def run(self, summary: dict[str, _Vocabulary], inputs: EvaluationInput) -> list[EvaluationRow]:
        if not summary or inputs.tokens is None:
            return []
        c = self.config
        words = _words(inputs.tokens, WindowView(inputs.tokens.window, inputs.window.keep))
        rows = []
        for sl in sorted(set(summary) | {ALL}):
            ref = summary.get(sl)
            if ref is None:
                continue
            win = words.get(sl, np.zeros(0, dtype=np.uint32))
            enough = win.size >= c.min_n and ref.n >= c.min_n
            new = int((~np.isin(win, ref.buckets)).sum())
            k_base, n_base = ref.baseline
            rate = new / win.size if win.size else None
            base = k_base / n_base if n_base else None
            rows.append(
                inputs.row(
                    slice=sl,
                    detector="hashed_vocabulary",
                    metric="oov_rate",
                    signal=SIGNAL,
                    variant=f"share_of_words_{len(ref.buckets)}_reference_buckets",
                    status="ok" if enough and base is not None else "insufficient_data",
                    value=finite(rate),
                    reference_value=finite(base),
                    n=int(win.size),
                    n_reference=ref.n,
                    effect=finite(rate - base) if enough and base is not None else None,
                    p_value=two_proportion_p(new, int(win.size), k_base, n_base, "greater")
                    if enough
                    else None,
                )
            )
            # the top-k buckets' shares (the rest pooled), as categories
            other = "other"
            ref_counts = {str(b): n for b, n in ref.top.items()}
            ref_counts[other] = ref.rest + 1  # one more: a window's words all outside the top still count
            keys = np.array(list(ref.top), dtype=np.int64)
            inside = np.isin(win, keys)
            labels = [str(int(b)) for b in win[inside]] + [other] * int((~inside).sum())
            reference = CategoricalReference(ref_counts)
            chi = chi_square_test(reference, labels, alpha=self.fdr, min_n=c.min_n)
            js = jensen_shannon_test(reference, labels, threshold=c.shift_threshold, min_n=c.min_n)
            rows.append(
                inputs.row(
                    slice=sl,
                    detector="jensenshannon+chisquare",
                    metric="vocabulary_shift",
                    signal=SIGNAL,
                    variant=f"top_{len(ref.top)}_buckets_and_the_rest",
                    status=js.status,
                    value=finite(js.statistic),
                    n=int(win.size),
                    n_reference=ref.n,
                    effect=finite(js.statistic),
                    p_value=chi.p_value if chi.status == "ok" else None,
                )
            )
        return rows

    def decide(self, row: EvaluationRow, rejected: bool) -> int:
        floor = self.config.oov_floor if row.metric == "oov_rate" else self.config.shift_threshold
        return int(rejected and (row.effect or 0.0) >= floor)
