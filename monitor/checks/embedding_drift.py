"""Embedding drift: per embedding name, MMD² of the window's embeddings against the reference's
(all traffic), with a permutation p-value (detectors/embedding.py, torch; CUDA when asked)."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np
from pydantic import Field

from monitor.checks.base import ALL, Check, CheckConfig, EvaluationInput, WindowView, finite, register
from monitor.core.records import EvaluationRow

log = logging.getLogger("modalwatch.evaluation")


class EmbeddingDriftConfig(CheckConfig):
    permutations: int = Field(100, ge=10, le=10_000)
    max_n: int = Field(2000, ge=50)  # per side; larger windows are subsampled (seeded)
    # where the kernel is computed: auto = the first CUDA device when torch sees one, else cpu
    device: str = Field("auto", pattern=r"^(auto|cpu|cuda(:\d+)?)$")


@register
class EmbeddingDrift(Check):
    name = "embedding_drift"
    metrics = ("mmd",)
    against_reference = ("mmd",)
    Config = EmbeddingDriftConfig
    needs = frozenset({"embeddings", "reference_embeddings"})
    config: EmbeddingDriftConfig

    def summarise(self, reference: WindowView, reads) -> dict[str, np.ndarray]:
        """Per name, the reference's vectors of its most common dimension (an event whose vector
        has another length is left out: one producer's mistake does not stop the check)."""
        out = {}
        for name, vecs in reads.embeddings.items():
            dims = Counter(len(v) for v in vecs)
            dim = max(sorted(dims), key=dims.__getitem__)
            out[name] = np.asarray([v for v in vecs if len(v) == dim], dtype=float)
        return out

    def reads(self, summary: dict[str, np.ndarray]) -> frozenset:
        # a reference without embeddings: the window's are not read (a scan of its events)
        return self.needs if summary else frozenset()

    def run(self, summary: dict[str, np.ndarray], inputs: EvaluationInput) -> list[EvaluationRow]:
        from detectors.embedding import mmd_test

        c = self.config
        rows = []
        for name, ref_emb in sorted(summary.items()):
            dim = ref_emb.shape[1]
            vecs = inputs.embeddings.get(name, [])
            same = [v for v in vecs if len(v) == dim]
            win_emb = np.asarray(same, dtype=float) if same else np.zeros((0, dim))
            left_out = len(vecs) - len(same)
            if left_out and not same:
                log.warning(
                    "embedding %r: no vector of the reference's dimension %d in the window", name, dim
                )
            r = mmd_test(
                ref_emb,
                win_emb,
                permutations=c.permutations,
                max_n=c.max_n,
                seed=inputs.seed,
                device=c.device,
            )
            rows.append(
                inputs.row(
                    slice=ALL,
                    detector="mmd",
                    metric="mmd",
                    signal=f"embedding.{name}",
                    # vectors of another length than the reference's are left out, and said so
                    variant=r.variant + (f"_without_{left_out}_of_another_dimension" if left_out else ""),
                    status=r.status,
                    value=finite(r.mmd2),
                    n=r.n,
                    n_reference=r.n_reference,
                    p_value=r.p_value if r.status == "ok" else None,
                    effect=finite(r.mmd2),
                )
            )
        return rows
