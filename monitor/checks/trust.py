"""Modality trust: per slice and modality, whether a serving system should rely on that stream now.

A state per window — ``ok``, ``degraded``, ``failed`` or ``unknown`` (fewer than ``min_n``
events carried the modality) — from the window's rows once Benjamini–Hochberg has decided them:

- a signal of the modality drifted (a PSI/KS/chi-square row, or the text's vocabulary, decided
  1): ``degraded``; ``failed`` when the drift is gross (PSI ≥ ``failed_psi`` or KS D ≥
  ``failed_ks``);
- its missing share rose (the lower 95 % bound ``missing_floor`` above the reference's):
  ``degraded``; ``failed`` when most events lack it (share ≥ ``failed_missing_share``);
- its own answers (``output.per_modality``) err more often, are worse calibrated, or disagree more
  with the fused answer than on the reference, beyond chance (adjusted p ≤ ``max_p``) and by at
  least the rules' floors: ``degraded``;
- two or more of these kinds at once: ``failed``.

A state takes effect once ``enter_after`` windows in a row showed it (or worse), and gives way to
a better one once ``recover_after`` windows in a row showed that (hysteresis: one noisy window
moves nothing, and a stream at the edge of a threshold does not flap). ``value`` is the state in
effect (0 ok, 1 degraded, 2 failed; none: unknown), ``effect`` the window's own,
``reference_value`` the previous window's state in effect, ``n`` the events that carried the
modality, ``n_reference`` the number of reasons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable

from pydantic import Field

from monitor.checks.base import Check, CheckConfig, EvaluationInput, register
from monitor.core.records import EvaluationRow

STATES = ("ok", "degraded", "failed")
UNKNOWN = "unknown"
NOT_MODALITIES = frozenset({"cross", "fusion", "embedding"})


class TrustConfig(CheckConfig):
    min_n: int = Field(100, ge=1)  # events carrying the modality below which its state is unknown
    enter_after: int = Field(2, ge=1)  # windows in a row showing a worse state before it holds
    recover_after: int = Field(2, ge=1)  # windows in a row showing a better state before it holds
    failed_psi: float = Field(1.0, gt=0)
    failed_ks: float = Field(0.5, gt=0, le=1)
    missing_floor: float = Field(0.02, ge=0)  # the missing share's lower bound above the reference's
    failed_missing_share: float = Field(0.5, gt=0, le=1)
    max_p: float = Field(0.01, gt=0, le=1)  # for the per-modality answers' rows (adjusted)
    error_rate_floor: float = Field(0.05, ge=0)
    calibration_floor: float = Field(0.02, ge=0)
    disagreement_floor: float = Field(0.05, ge=0)


@dataclass(frozen=True)
class Reason:
    """Why a stream is not ``ok``: what (``kind``), which row (``metric``, ``signal``), how much
    (``value`` against ``reference``), and whether on its own it makes the stream ``failed``."""

    kind: str  # signal_drift, missing, error_rate, calibration, disagreement
    metric: str
    signal: str
    value: float | None
    reference: float | None
    gross: bool


def modality_of(row: EvaluationRow) -> str | None:
    """The modality a row is about (``image.brightness``, ``image.answer``; a missing-share row's
    signal is the modality), or None."""
    if row.metric == "missing_modality_share":
        return row.signal or None
    head, dot, _ = row.signal.partition(".")
    return head if dot and head not in NOT_MODALITIES else None


def reasons_of(rows: Iterable[EvaluationRow], cfg: TrustConfig) -> dict[tuple[str, str], list[Reason]]:
    """Per (slice, modality), the reasons in one window's decided rows."""
    out: dict[tuple[str, str], list[Reason]] = {}

    def add(r: EvaluationRow, modality: str, kind: str, gross: bool) -> None:
        out.setdefault((r.slice, modality), []).append(
            Reason(kind, r.metric, r.signal, r.value, r.reference_value, gross)
        )

    for r in rows:
        m = modality_of(r)
        if m is None or r.status != "ok" or r.value is None:
            continue
        if r.metric in ("psi", "ks", "chisquare", "oov_rate", "vocabulary_shift") and r.decision == 1:
            limit = {"psi": cfg.failed_psi, "ks": cfg.failed_ks}.get(r.metric, math.inf)
            add(r, m, "signal_drift", r.value >= limit)
        elif r.metric == "missing_modality_share":
            ref = r.reference_value if r.reference_value is not None else 0.0
            if r.ci_low is not None and r.ci_low - ref > cfg.missing_floor:
                add(r, m, "missing", r.value >= cfg.failed_missing_share)
        elif r.p_adjusted is not None and r.p_adjusted <= cfg.max_p and r.effect is not None:
            kind, floor = {
                "modality_error_rate": ("error_rate", cfg.error_rate_floor),
                "modality_ece_drift": ("calibration", cfg.calibration_floor),
                "modality_disagreement": ("disagreement", cfg.disagreement_floor),
            }.get(r.metric, (None, 0.0))
            if kind is not None and r.effect > floor:
                add(r, m, kind, False)
    return out


def state_of(reasons: list[Reason]) -> str:
    if not reasons:
        return "ok"
    if any(r.gross for r in reasons) or len({r.kind for r in reasons}) >= 2:
        return "failed"
    return "degraded"


def held(raw: str, previous: str | None, recent_raw: list[str], enter_after: int, recover_after: int) -> str:
    """The state in effect after a window whose own state is ``raw`` (``recent_raw``: the own
    states of the windows before, oldest first; ``previous``: the state in effect before it). A
    worse state takes effect once ``enter_after`` windows in a row showed at least it, a better
    one once ``recover_after`` windows in a row showed at most it; ``unknown`` at once."""
    if raw == UNKNOWN:
        return raw
    prev = previous if previous in STATES else "ok"
    rank = STATES.index

    def last(k: int) -> list[str] | None:
        seen = recent_raw[len(recent_raw) - (k - 1) :] if k > 1 else []
        seen = seen + [raw]
        return seen if len(seen) == k and UNKNOWN not in seen else None

    if rank(raw) > rank(prev):
        shown = last(enter_after)
        worse = min(shown, key=rank) if shown else prev
        return worse if rank(worse) > rank(prev) else prev
    if rank(raw) < rank(prev):
        shown = last(recover_after)
        better = max(shown, key=rank) if shown else prev
        return better if rank(better) < rank(prev) else prev
    return prev


@register
class ModalityTrust(Check):
    name = "trust"
    metrics = ("modality_trust",)
    Config = TrustConfig
    needs = frozenset({"history"})
    order = 20  # after every check whose rows it reads
    reads_decisions = True
    config: TrustConfig

    def history_metrics(self) -> tuple[str, ...]:
        return ("modality_trust",)

    def history_span(self) -> int:
        return max(self.config.enter_after, self.config.recover_after)

    def run(self, summary, inputs: EvaluationInput) -> list[EvaluationRow]:
        c = self.config
        reasons = reasons_of(inputs.rows, c)
        carried: dict[tuple[str, str], int] = {}
        for r in inputs.rows:
            m = modality_of(r)
            if m is not None and r.metric in (
                "psi",
                "ks",
                "chisquare",
                "missing_modality_share",
                "modality_error_rate",
            ):
                # events that carried the modality: a signal's finite values; a missing share's
                # events less those missing it
                n = r.n if r.metric != "missing_modality_share" else round(r.n * (1 - (r.value or 0.0)))
                carried[r.slice, m] = max(carried.get((r.slice, m), 0), int(n))
        past: dict[tuple[str, str], list[EvaluationRow]] = {}
        for r in inputs.history:
            past.setdefault((r.slice, r.signal.partition(".")[0]), []).append(r)
        rows = []
        for (sl, m), n in sorted(carried.items()):
            raw = state_of(reasons.get((sl, m), [])) if n >= c.min_n else UNKNOWN
            before = past.get((sl, m), [])
            previous = state_name(before[-1].value) if before else None
            state = held(
                raw, previous, [state_name(r.effect) for r in before], c.enter_after, c.recover_after
            )
            rows.append(
                inputs.row(
                    slice=sl,
                    detector="trust",
                    metric="modality_trust",
                    signal=f"{m}.trust",
                    variant=state,
                    status="insufficient_data" if state == UNKNOWN else "ok",
                    value=_code(state),
                    reference_value=_code(previous),
                    effect=_code(raw),
                    n=n,
                    n_reference=len(reasons.get((sl, m), [])),
                )
            )
        return rows


def _code(state: str | None) -> float | None:
    return float(STATES.index(state)) if state in STATES else None


def state_name(code: float | None) -> str:
    """The state a stored code stands for (a trust row's value, effect or reference value)."""
    if code is None or (isinstance(code, float) and math.isnan(code)):
        return UNKNOWN
    return STATES[int(code)]
