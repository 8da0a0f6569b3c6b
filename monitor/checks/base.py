"""What a check is, what it is given, and the registry that finds it by name.

A check is one class in one file: its ``name`` (its config section, ``evaluation.checks.<name>``),
the ``metrics`` its rows carry (what a rule's ``metric:`` may name), its ``Config`` (a pydantic
model), how it summarises a reference (``summarise``, kept between windows), and
``run(summary, inputs) -> list[EvaluationRow]``. After every enabled check has run, the evaluator
adjusts p-values with Benjamini–Hochberg within each test ``family`` the checks declare, and
each check ``decide``s its rows from the adjusted result. Checks are pure: arrays and plain data
in, rows out; the evaluator reads everything they need before any of them runs.

Registering is one line (``@register``), from anywhere: the config, rules, evaluation, store and
report find checks here.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any, Callable, ClassVar, Literal, Sequence

import numpy as np
import pandas as pd

from monitor.core.records import ALL, EvaluationRow, Finding
from monitor.core.registry import Registry
from monitor.core.settings import Section
from detectors.calibration import bin_sums
from monitor.core.window import (
    ModalityAnswers,
    ReferenceReads,
    RunKey,
    Cells,
    SummedCells,
    bin_sums_of_cells,
    labelled_measure,
    TokenWindow,
    Window,
)


class CheckConfig(Section):
    enabled: bool = True


OTHER = "(other)"  # the slice of an attribute's values beyond its ``max_slice_values``


def ranked_values(slices: pd.DataFrame, limit: int) -> dict[str, list[str]]:
    """Per slice attribute, its ``limit`` most frequent values, most frequent first (ties by value)."""
    out = {}
    for col in slices.columns:
        counts = slices[col].dropna().value_counts()
        out[col] = [v for v, _ in sorted(counts.items(), key=lambda kv: (-kv[1], str(kv[0])))[:limit]]
    return out


def kept_values(
    slices: pd.DataFrame, limit: int, ranked_reference: dict[str, list[str]]
) -> dict[str, set[str]]:
    """Per slice attribute of ``slices`` with more than ``limit`` distinct values, the values that
    stay slices of their own: the reference's most frequent, then the window's, ``limit`` in all.
    The others are evaluated together, as one ``(other)`` slice."""
    out = {}
    for col in slices.columns:
        if slices[col].nunique() <= limit:
            continue
        kept = list(ranked_reference.get(col, []))[:limit]
        for v in ranked_values(slices[[col]], limit + len(kept))[col]:
            if len(kept) >= limit:
                break
            if v not in kept:
                kept.append(v)
        out[col] = set(kept)
    return out


class WindowView:
    """A window (the evaluated one, or a reference) and what several checks derive from it,
    computed once: the slice attributes' codes, each slice's rows, the labelled answers.

    ``keep``: per attribute, the values that are slices of their own; an event with another value
    of that attribute is in its ``(other)`` slice (a producer that puts an id in an attribute
    makes 51 slices of it, not 20,000). ``distinct`` counts each attribute's values before that."""

    def __init__(
        self, window: Window, keep: dict[str, set[str]] | None = None, summed: SummedCells | None = None
    ) -> None:
        self.window = window
        self.summed = summed
        self._folded: dict[str, Cells] = {}
        self._binned: tuple[Cells | None, dict[str, np.ndarray]] = (None, {})
        self.frame = window.frame
        self.signals = window.signals
        self.n = len(window)
        slices = window.slices
        self.distinct = {col: int(slices[col].nunique()) for col in slices.columns}
        self.keep = keep or {}
        if self.keep:
            slices = slices.copy()
            for col, values in self.keep.items():
                if col in slices.columns:
                    present = slices[col].notna()
                    slices.loc[present & ~slices[col].isin(list(values)), col] = OTHER
        self.slices_frame = slices

    @cached_property
    def groups(self) -> dict[str, tuple[np.ndarray, list]]:
        """Per slice attribute, each event's code (-1 where the event lacks the attribute) and the
        attribute's values in code order."""
        out = {}
        for col in sorted(self.slices_frame.columns):
            codes, values = pd.factorize(self.slices_frame[col], sort=True)
            out[col] = (codes.astype(np.int16 if len(values) < 2**15 - 1 else np.int64), list(values))
        return out

    @cached_property
    def masks(self) -> dict[str, np.ndarray]:
        """Each slice's rows: every event (``*``) and each value of each slice attribute."""
        out = {ALL: np.ones(self.n, dtype=bool)}
        for col, (codes, values) in self.groups.items():
            for i, val in enumerate(values):
                out[f"{col}={val}"] = codes == i
        return out

    def mask(self, slice_: str) -> np.ndarray:
        return self.masks.get(slice_, np.zeros(self.n, dtype=bool))

    @cached_property
    def labelled(self) -> np.ndarray:
        """Events with a label whose model did not abstain: the ones an error rate counts.
        (dtype=bool: an empty window's columns come back as object arrays.)"""
        return self.frame["label"].notna().to_numpy(dtype=bool) & ~self.frame["abstained"].to_numpy(
            dtype=bool
        )

    @cached_property
    def confidence(self) -> np.ndarray:
        return self.frame["confidence"].to_numpy(dtype=float)

    @cached_property
    def correct(self) -> np.ndarray:
        return np.asarray(self.frame["label"].to_numpy() == self.frame["pred_label"].to_numpy(), dtype=bool)

    def answers(self, slice_: str) -> tuple[np.ndarray, np.ndarray]:
        """A slice's labelled answers: their confidence and correctness."""
        m = self.mask(slice_) & self.labelled
        return self.confidence[m], self.correct[m]

    def cells(self, measure: str) -> Cells | None:
        """A measure's summed cells per slice of this view (raw attribute values beyond ``keep``
        folded into their attribute's ``(other)`` slice); None where the view has no summaries of
        it (its rows are read instead)."""
        if self.summed is None or measure not in self.summed.measures:
            return None
        if measure not in self._folded:
            out: Cells = {}
            for (key, cell), values in self.summed.measures[measure].items():
                col, _, value = key.partition("=")
                if key != ALL and col in self.keep and value not in self.keep[col]:
                    key = f"{col}={OTHER}"
                had = out.get((key, cell))
                out[(key, cell)] = values if had is None else tuple(a + b for a, b in zip(had, values))
            self._folded[measure] = out
        return self._folded[measure]

    def answer_sums(self, slice_: str, bins: int) -> np.ndarray:
        """A slice's labelled answers as ``bin_sums`` (bins, 2, 3): from the summaries where the
        view has them with these bins, else from its events."""
        cells = self.cells(labelled_measure(bins))
        if cells is None:
            return bin_sums(*self.answers(slice_), bins)
        if cells is not self._binned[0]:
            self._binned = (cells, bin_sums_of_cells(cells, bins))
        return self._binned[1].get(slice_, np.zeros((bins, 2, 3)))

    def labelled_counts(self, slice_: str) -> tuple[int, int]:
        """(labelled answers, wrong ones) of a slice: from the summaries where the view has them."""
        measure = next(
            (m for m in (self.summed.measures if self.summed else ()) if m.startswith("labelled/")), None
        )
        if measure is None:
            ok = self.answers(slice_)[1]
            return len(ok), int((~ok).sum())
        s = self.answer_sums(slice_, int(measure.partition("/")[2]))
        return int(round(s[..., 0].sum())), int(round(s[:, 0, 0].sum()))

    def sorted_by_slice(self, signal: str) -> dict[str, np.ndarray]:
        """Each slice's finite values of one signal, sorted, from one sort of the whole column (and
        per attribute a stable radix sort of the small integer codes, which keeps values in order).
        Not kept: a window of a million events holds one signal's sorted copies at a time."""
        values = self.signals[signal].to_numpy(dtype=float)
        order = np.argsort(values)  # NaN last; equal values need no stable order
        ordered = values[order]
        keep = np.isfinite(ordered)
        finite = ordered[keep]
        out = {ALL: finite}
        for col, (codes, names) in self.groups.items():
            by_value = codes[order][keep]
            grouped = finite[np.argsort(by_value, kind="stable")]
            counts = np.bincount(by_value.astype(np.int64) + 1, minlength=len(names) + 1)
            for name, part in zip(names, np.split(grouped, np.cumsum(counts)[:-1])[1:]):
                out[f"{col}={name}"] = part
        return out


@dataclass
class ReferenceSummary:
    """What later windows need of a reference, kept between vintages — summaries, not its events
    (a week of a million events a day would otherwise stay in memory): the slices and signals it
    had, each slice's labelled answers counted (labelled, wrong), and each check's own summary."""

    slices: list[str]
    signals: list[str]
    labelled: dict[str, tuple[int, int]]
    own: dict[str, Any] = field(default_factory=dict)
    ranked: dict[str, list[str]] = field(default_factory=dict)  # per attribute, its most frequent values
    distinct: dict[str, int] = field(default_factory=dict)  # per attribute, its number of values

    def labelled_of(self, slice_: str) -> tuple[int, int]:
        """(labelled answers, wrong ones) of a slice; (0, 0) where the reference had none."""
        return self.labelled.get(slice_, (0, 0))

    @classmethod
    def of(cls, view: WindowView, limit: int) -> "ReferenceSummary":
        return cls(
            sorted(view.masks),
            list(view.signals.columns),
            {sl: (len(ok), int((~ok).sum())) for sl in view.masks for ok in [view.answers(sl)[1]]},
            ranked=ranked_values(view.window.slices, limit),
            distinct=dict(view.distinct),
        )


@dataclass
class EvaluationInput:
    """Everything one vintage's checks read, read before any of them runs."""

    key: RunKey
    window_end: datetime
    evaluated_at: datetime
    window: WindowView
    reference: ReferenceSummary
    seed: int  # fixed by the window: a backfill's bootstrap gives the live run's numbers
    embeddings: dict[str, list[list[float]]] = field(default_factory=dict)  # the window's, by name
    answers: ModalityAnswers | None = None  # the window's per-modality answers
    tokens: TokenWindow | None = None  # the window's texts' hashed words
    history: list[EvaluationRow] = field(default_factory=list)  # earlier windows' rows (trend)
    findings: list[Finding] = field(default_factory=list)  # online detectors' findings in the window
    rows: list[EvaluationRow] = field(default_factory=list)  # rows of the checks that ran before

    @cached_property
    def slices(self) -> list[str]:
        """The window's slices and the reference's, sorted (``*`` first)."""
        return sorted(set(self.window.masks) | set(self.reference.slices))

    def row(self, **values) -> EvaluationRow:
        """An evaluation row of this window (its model version, interval, lag and times filled in)."""
        k = self.key
        return EvaluationRow(
            model_name=k.model_name,
            model_version=k.model_version,
            interval_s=k.interval_s,
            lag_s=k.lag_s,
            window_start=k.window_start,
            window_end=self.window_end,
            evaluated_at=self.evaluated_at,
            **values,
        )


Needs = Literal[
    "embeddings",
    "reference_embeddings",
    "answers",
    "reference_answers",
    "tokens",
    "reference_tokens",
    "history",
    "findings",
]


class Check:
    """A windowed check (see the module docstring). Subclasses set the class attributes and
    ``run``; the rest has defaults."""

    name: ClassVar[str]
    metrics: ClassVar[tuple[str, ...]]
    Config: ClassVar[type[CheckConfig]] = CheckConfig
    # what the evaluator must read for it besides the window and the reference summary
    needs: ClassVar[frozenset[Needs]] = frozenset()
    # the metrics whose series the periodic report shows per slice
    reported: ClassVar[tuple[str, ...]] = ()
    # checks with a higher order run later and see the earlier checks' rows (``inputs.rows``)
    order: ClassVar[int] = 0
    # True: the earlier checks' rows it sees are decided (Benjamini–Hochberg applied first)
    reads_decisions: ClassVar[bool] = False
    # "window": run per vintage; "ingest_clock": run on every evaluation job tick (data health)
    schedule: ClassVar[Literal["window", "ingest_clock"]] = "window"
    # the metrics that test a window's sample against the reference's: on the reference's own
    # windows they test a sample against one that contains it (``history`` leaves those out)
    against_reference: ClassVar[tuple[str, ...]] = ()

    def __init__(self, config: CheckConfig, fdr: float) -> None:
        self.config = config
        self.fdr = fdr

    def summarise(self, reference: WindowView, reads: ReferenceReads) -> Any:
        """What this check keeps of a reference (None: nothing beyond the shared summary);
        ``reads``: what its ``needs`` had read of the reference besides its window."""
        return None

    def reads(self, summary: Any) -> frozenset[Needs]:
        """What it needs read for a window, given its reference summary (by default ``needs``)."""
        return self.needs

    def run(self, summary: Any, inputs: EvaluationInput) -> list[EvaluationRow]:
        raise NotImplementedError

    def history_metrics(self) -> tuple[str, ...]:
        """The metrics of earlier windows this check reads (with ``needs`` "history")."""
        return ()

    def history_span(self) -> int:
        """How many earlier intervals of history it reads."""
        return 0

    def family(self, row: EvaluationRow) -> str | None:
        """The Benjamini–Hochberg family of a row with a p-value not yet adjusted (None: no
        adjustment). By default one family per metric across all slices × signals of a window,
        so a family of few tests (an MMD) is not drowned by hundreds of signal tests."""
        return row.metric

    def decide(self, row: EvaluationRow, rejected: bool) -> int:
        """The decision of a row once its family is adjusted (``rejected``: significant)."""
        return int(rejected)


_CHECKS: Registry[type[Check]] = Registry()


def register(cls: type[Check]) -> type[Check]:
    """Register a check (a class decorator). Its metrics must not be another check's."""
    taken = {m: c.name for c in _CHECKS.items().values() if c.name != cls.name for m in c.metrics}
    clash = sorted(set(cls.metrics) & set(taken))
    if clash:
        raise ValueError(
            f"check {cls.name!r}: metrics {clash} are emitted by {sorted({taken[m] for m in clash})}"
        )
    _CHECKS.add(cls.name, cls)
    return cls


def unregister(name: str) -> None:
    """Remove a check (a test's toy check, once the test is done)."""
    _CHECKS.remove(name)


def on_registry_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` whenever a check is registered or removed (the config rebuilds its
    ``evaluation.checks`` section)."""
    _CHECKS.on_change(listener)


def registered() -> dict[str, type[Check]]:
    """Every registered check by name, in registration order."""
    return _CHECKS.items()


def metrics() -> dict[str, type[Check]]:
    """Every metric a rule may name, with the check that emits it."""
    return {m: c for c in _CHECKS.items().values() for m in c.metrics}


def against_reference_metrics() -> frozenset[str]:
    """The metrics of every check that test a window against the reference sample."""
    return frozenset(m for c in _CHECKS.items().values() for m in c.against_reference)


def reported_metrics() -> tuple[str, ...]:
    return tuple(m for c in _CHECKS.items().values() for m in c.reported)


def enabled_checks(evaluation_config, schedule: str = "window") -> list[Check]:
    """Instances of the enabled checks of ``evaluation_config`` on ``schedule``, in run order."""
    out = []
    for name, cls in _CHECKS.items().items():
        cfg = getattr(evaluation_config.checks, name)
        if cls.schedule == schedule and cfg.enabled:
            out.append(cls(cfg, evaluation_config.fdr))
    return sorted(out, key=lambda c: c.order)


def in_threads(fn: Callable[[str], Any], items: Sequence[str]) -> list[Any]:
    """``[fn(x) for x in items]`` in a few threads: the work is NumPy's (sorts, searches), which
    releases the GIL, so the machine's cores share it."""
    workers = min(len(items), os.cpu_count() or 1, 8)
    if workers <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


def finite(x: float | None) -> float | None:
    """A statistic as stored: None for NaN, infinities and missing values."""
    return None if x is None or not math.isfinite(x) else float(x)
