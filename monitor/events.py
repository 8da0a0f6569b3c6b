"""The event contract: what producers send and what modalwatch accepts.

Two kinds of event reach modalwatch, from Kafka, HTTP or JSONL:

* ``InferenceEvent``: one prediction of the deployed model, with per-modality inputs;
* ``LabelEvent``: the truth for an ``event_id``, usually arriving later.

Raw media (``data_b64`` / ``uri``) is accepted by the schema but rejected by the pipeline with a
"not supported yet" dead letter until modalwatch computes signals itself; producer-computed
``signals`` are accepted now.
"""
from __future__ import annotations

import math
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

Modality = Literal["image", "audio", "text"]

NonEmpty = Annotated[str, Field(min_length=1, max_length=256)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)


class ModelRef(_Strict):
    name: NonEmpty
    version: NonEmpty


class ModalityInput(_Strict):
    """One modality of one event: producer-computed ``signals`` and/or raw media.

    ``signals`` maps a signal name (e.g. ``brightness``, ``loudness_lufs``) to a finite number.
    ``data_b64`` (inline media) and ``uri`` (``file://`` media) are reserved for modalwatch's own
    signal computation, which is not supported yet.
    """

    signals: dict[NonEmpty, float] = Field(default_factory=dict)
    data_b64: str | None = None
    uri: str | None = None
    media_type: str | None = None
    capture: dict[str, str | float | int | bool] = Field(default_factory=dict)

    @property
    def has_raw_media(self) -> bool:
        return self.data_b64 is not None or self.uri is not None


class Output(_Strict):
    label: NonEmpty
    confidence: float = Field(ge=0.0, le=1.0)
    probabilities: dict[NonEmpty, Annotated[float, Field(ge=0.0, le=1.0)]] | None = None
    abstained: bool = False


class InferenceEvent(_Strict):
    """One prediction in production."""

    type: Literal["inference"] = "inference"
    event_id: NonEmpty
    ts: AwareDatetime
    model: ModelRef
    slice: dict[NonEmpty, Annotated[str, Field(max_length=256)]] = Field(default_factory=dict)
    inputs: dict[Modality, ModalityInput] = Field(default_factory=dict)
    embeddings: dict[NonEmpty, list[float]] | None = None
    output: Output

    @field_validator("embeddings")
    @classmethod
    def _finite_embeddings(cls, v: dict[str, list[float]] | None) -> dict[str, list[float]] | None:
        if v is not None:
            for name, vec in v.items():
                if not all(math.isfinite(x) for x in vec):
                    raise ValueError(f"embedding {name!r} holds a value that is not finite")
        return v


class LabelEvent(_Strict):
    """The truth for ``event_id``; ``ts`` is when the label became known (event time)."""

    type: Literal["label"] = "label"
    event_id: NonEmpty
    label: NonEmpty
    source: Annotated[str, Field(max_length=256)] = "unknown"
    ts: AwareDatetime


def signal_columns(event: InferenceEvent) -> dict[str, float]:
    """The event's signals flattened to ``modality.signal`` names."""
    return {f"{m}.{k}": v for m, inp in event.inputs.items() for k, v in inp.signals.items()}


def json_schemas() -> dict[str, dict]:
    return {"InferenceEvent": InferenceEvent.model_json_schema(), "LabelEvent": LabelEvent.model_json_schema()}


def kind_of(obj: dict) -> Literal["inference", "label"]:
    """Which event ``obj`` is: its ``type`` field, else its shape (``output`` → inference)."""
    t = obj.get("type")
    if t in ("inference", "label"):
        return t
    if t is not None:
        raise ValueError(f"unknown event type {t!r} (expected 'inference' or 'label')")
    if "output" in obj:
        return "inference"
    if "label" in obj:
        return "label"
    raise ValueError("cannot tell the event kind: no 'type', no 'output', no 'label'")
