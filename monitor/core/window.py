"""A window of events as a store reads it, and the key of one scheduled evaluation."""

from __future__ import annotations

from dataclasses import dataclass
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
