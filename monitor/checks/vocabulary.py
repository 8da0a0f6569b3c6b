"""Vocabulary drift of the raw texts, from their words' hashed buckets (never the words).

Per slice, against the reference's buckets:

- ``oov_rate``: the share of the window's words whose bucket the reference never had — next to
  the same share of the reference's last fifth against its first four (what new text brings
  anyway: names, numbers, typos); ``p_value`` one-sided two-proportion;
- ``vocabulary_shift``: the Jensen–Shannon distance between the shares of the reference's
  ``top_k`` most frequent buckets (the rest pooled) in the window and in the reference, with
  chi-square's p-value over the same counts.

The words of one text come together (a phrase), so they are not independent draws: both tests
count texts, not words — every count divided by the mean words per text (the design effect of
whole-text clusters at its largest); on words the p-values were far too small (found in the
demo: its captions' phrases shifted the top words' shares "significantly" on quiet days).

A bucket is a word but for collisions (2²⁰ buckets: a 20,000-word vocabulary fills 2 % of them,
so about 2 % of truly new words look known — the rate is a lower bound by that much).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import Field
from scipy.spatial.distance import jensenshannon

from detectors.drift import chi_square_two_sample
from detectors.intervals import two_proportion_p
from monitor.checks.base import Check, CheckConfig, EvaluationInput, WindowView, finite, register
from monitor.core.records import EvaluationRow
from monitor.core.window import ReferenceReads, TokenWindow

SIGNAL = "text.vocabulary"


class VocabularyConfig(CheckConfig):
    min_n: int = Field(500, ge=1)  # words on each side for a claim
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
    texts: int


def _flat(tokens: TokenWindow) -> tuple[np.ndarray, np.ndarray]:
    """Every text's words in one array, and which text (its index, event-time order) each is of."""
    lengths = np.array([len(t) for t in tokens.tokens], dtype=np.int64)
    flat = np.concatenate(tokens.tokens) if tokens.tokens else np.zeros(0, dtype=np.uint32)
    return flat, np.repeat(np.arange(len(tokens)), lengths)


def _words(tokens: TokenWindow, view: WindowView) -> dict[str, tuple[np.ndarray, int]]:
    """Per slice, its texts' words and how many texts."""
    flat, owner = _flat(tokens)
    return {sl: (flat[mask[owner]], int(mask.sum())) for sl, mask in view.masks.items()}


def _vocabulary(flat: np.ndarray, owner: np.ndarray, mask: np.ndarray, top_k: int) -> _Vocabulary:
    inside = mask[owner]
    words, of = flat[inside], owner[inside]
    texts = np.flatnonzero(mask)  # event-time order
    split = len(texts) * 4 // 5
    cut = texts[split] if split < len(texts) else len(mask)
    early, late = words[of < cut], words[of >= cut]
    new_late = int((~np.isin(late, np.unique(early))).sum())
    keys, counts = np.unique(words, return_counts=True)
    order = np.lexsort((keys, -counts))[:top_k]
    top = {int(keys[i]): int(counts[i]) for i in order}
    rest = int(words.size - sum(top.values()))
    return _Vocabulary(keys, top, rest, (new_late, int(late.size)), int(words.size), len(texts))


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
        flat, owner = _flat(tokens)
        return {sl: _vocabulary(flat, owner, mask, self.config.top_k) for sl, mask in view.masks.items()}

    def reads(self, summary: dict[str, _Vocabulary]) -> frozenset:
        return self.needs if summary else frozenset()

    def run(self, summary: dict[str, _Vocabulary], inputs: EvaluationInput) -> list[EvaluationRow]:
        if not summary or inputs.tokens is None:
            return []
        c = self.config
        words = _words(inputs.tokens, WindowView(inputs.tokens.window, inputs.window.keep))
        rows = []
        for sl, ref in sorted(summary.items()):
            win, texts = words.get(sl, (np.zeros(0, dtype=np.uint32), 0))
            enough = win.size >= c.min_n and ref.n >= c.min_n
            # texts, not words, are the independent draws (see the module's docstring)
            per_text = max(1.0, (win.size + ref.n) / max(1, texts + ref.texts))
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
                    p_value=two_proportion_p(
                        new / per_text, win.size / per_text, k_base / per_text, n_base / per_text, "greater"
                    )
                    if enough and n_base
                    else None,
                )
            )
            # the top-k buckets' shares, the rest pooled
            keys = np.array(list(ref.top), dtype=np.int64)
            ref_counts = np.array([*ref.top.values(), ref.rest], dtype=float)
            found, counts = np.unique(win, return_counts=True)
            by_bucket = dict(zip(found.tolist(), counts.tolist()))
            win_counts = np.array([by_bucket.get(int(b), 0) for b in keys] + [0], dtype=float)
            win_counts[-1] = win.size - win_counts[:-1].sum()
            js = (
                float(jensenshannon(ref_counts / ref_counts.sum(), win_counts / win_counts.sum()))
                if enough
                else None
            )
            rows.append(
                inputs.row(
                    slice=sl,
                    detector="jensenshannon+chisquare",
                    metric="vocabulary_shift",
                    signal=SIGNAL,
                    variant=f"top_{len(ref.top)}_buckets_and_the_rest_per_text",
                    status="ok" if enough else "insufficient_data",
                    value=finite(js),
                    n=int(win.size),
                    n_reference=ref.n,
                    effect=finite(js),
                    p_value=chi_square_two_sample(
                        ref_counts / per_text, win_counts / per_text, min_n=0
                    ).p_value
                    if enough
                    else None,
                )
            )
        return rows

    def decide(self, row: EvaluationRow, rejected: bool) -> int:
        floor = self.config.oov_floor if row.metric == "oov_rate" else self.config.shift_threshold
        return int(rejected and (row.effect or 0.0) >= floor)
