"""A window of events as a store reads it, and the key of one scheduled evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Sequence

import numpy as np
import pandas as pd


@dataclass
class Window:
    """A window's events in columns, in the store's order: ``frame`` (pred_label, confidence,
    abstained, label: None where no label was known), ``slices`` (a column per slice attribute,
    None where an event lacks it) and ``signals`` (a float column per signal, NaN where absent).
    Every computation on a window is order-free, or puts its input in a canonical order first."""

    frame: pd.DataFrame
    slices: pd.DataFrame
    signals: pd.DataFrame

    @classmethod
    def of(
        cls,
        slices: Sequence[dict],
        signals: Sequence[dict],
        pred_label: Sequence[str],
        confidence: Sequence[float],
        abstained: Sequence[bool],
        label: Sequence[str | None],
    ) -> "Window":
        """From per-event values (a reference file's events)."""
        n = len(pred_label)
        index = pd.RangeIndex(n)
        return cls(
            outputs_frame(pred_label, confidence, abstained, label),
            pd.DataFrame.from_records(list(slices), index=index) if n else pd.DataFrame(index=index),
            pd.DataFrame.from_records(list(signals), index=index).astype(float)
            if n
            else pd.DataFrame(index=index),
        )

    def __len__(self) -> int:
        return len(self.frame)


Cells = dict[tuple[str, str], tuple[float, float, float]]  # (slice, cell) → (count, Σx, Σx²)

# The measures summaries keep (monitor/summaries.py writes them; the checks read them)
ANSWERS = "answers"  # cells: events, abstained
MODALITIES = "modalities"  # cells: answered:<m>, agree:<m>, several, all_agree
FLAGS = "flags"  # cells: each cross.missing_<m> signal (events with it, Σ of the 0/1 flag)
MISSING_PREFIX = "cross.missing_"  # cross.missing_<modality>: 1 where an expected one is missing


def is_missing_flag(signal: str) -> bool:
    """Whether ``signal`` flags one modality missing (``cross.missing_count``, also there, counts
    them: it is no modality's flag)."""
    return signal.startswith(MISSING_PREFIX) and signal != MISSING_PREFIX + "count"


def labelled_measure(bins: int) -> str:
    """Labelled answers per confidence bin and correctness: cells ``<bin>:<0|1>``."""
    return f"labelled/{bins}"


def modality_measure(bins: int) -> str:
    """Each modality's labelled answers: cells ``<m>:<bin or ->:<0|1>`` and
    ``<m>:pair:<fused wrong>:<it wrong>``."""
    return f"modality_labelled/{bins}"


@dataclass
class SummedCells:
    """A window's summaries as read (monitor/summaries.py): per measure, per (raw slice — ``*``
    and each attribute=value as stored —, cell) the summed count, Σx and Σx²."""

    measures: dict[str, Cells]


def bin_sums_of_cells(cells: Cells, bins: int, prefix: str = "") -> dict[str, np.ndarray]:
    """Per slice, the ``bin_sums`` (bins, 2, 3) kept in cells ``<prefix><bin>:<0|1>``."""
    out: dict[str, np.ndarray] = {}
    for (sl, cell), values in cells.items():
        if not cell.startswith(prefix):
            continue
        b, _, ok = cell[len(prefix) :].partition(":")
        if not b.isdigit():
            continue
        arr = out.get(sl)
        if arr is None:
            arr = out[sl] = np.zeros((bins, 2, 3))
        arr[int(b), int(ok)] = values
    return out


@dataclass
class ModalityAnswers:
    """The events of a window that carry each modality's own answer (``output.per_modality``):
    their fused answers as a ``Window`` (no signals), and per modality each event's own label
    (None where that modality gave none) and confidence (NaN where it gave none)."""

    window: Window
    labels: dict[str, np.ndarray]
    confidence: dict[str, np.ndarray]

    @classmethod
    def of(cls, window: Window, per_modality: Sequence[dict]) -> "ModalityAnswers":
        """From the events' fused answers (``window``) and, in the same order, their
        ``output.per_modality`` as plain data."""
        n = len(window)
        modalities = sorted({m for answers in per_modality for m in answers})
        labels = {m: np.full(n, None, dtype=object) for m in modalities}
        conf = {m: np.full(n, np.nan) for m in modalities}
        for i, answers in enumerate(per_modality):  # one pass: a window may hold a million
            for m, a in answers.items():
                labels[m][i] = a.get("label")
                c = a.get("confidence")
                if c is not None:
                    conf[m][i] = c
        return cls(window, labels, conf)

    def __len__(self) -> int:
        return len(self.window)


@dataclass
class TokenWindow:
    """The events of a window whose raw text was measured: their slices (as a ``Window`` with no
    signals or answers) and each one's words as hashed vocabulary buckets."""

    window: Window
    tokens: list[np.ndarray]

    @classmethod
    def of(cls, window: Window, packed: Sequence[bytes]) -> "TokenWindow":
        """From the events' slices (``window``) and, in the same order, their packed words."""
        return cls(window, [np.frombuffer(p, dtype="<u4") for p in packed])

    def __len__(self) -> int:
        return len(self.tokens)


@dataclass
class ReferenceReads:
    """What is read of a reference besides its window, for the checks that need it: its
    embeddings by name, its events' per-modality answers."""

    embeddings: dict[str, list[list[float]]] = field(default_factory=dict)
    answers: ModalityAnswers | None = None
    tokens: TokenWindow | None = None


def outputs_frame(pred_label, confidence, abstained, label) -> pd.DataFrame:
    """The model's answers and the known labels as a window's ``frame``."""
    return pd.DataFrame(
        {
            "pred_label": np.asarray(pred_label, dtype=object),
            "confidence": np.asarray(confidence, dtype=float),
            "abstained": np.asarray(abstained, dtype=bool),
            "label": np.asarray(label, dtype=object),
        }
    )


@dataclass(frozen=True)
class RunKey:
    """One scheduled evaluation (a vintage): a window of one model version at one interval and lag."""

    model_name: str
    model_version: str
    interval_s: int
    lag_s: int
    window_start: datetime
