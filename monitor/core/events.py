"""The event contract: what producers send and what modalwatch accepts.

Two kinds of event reach modalwatch, from Kafka, HTTP or JSONL:

* ``InferenceEvent``: one prediction of the deployed model, with per-modality inputs;
* ``LabelEvent``: the truth for an ``event_id``, usually arriving later.

A modality carries producer-computed ``signals``, raw media (inline ``data_b64`` or a ``uri``)
that modalwatch measures itself and then drops, or both (measured signals win on a name clash).
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

Modality = Literal["image", "audio", "text"]

NonEmpty = Annotated[str, Field(min_length=1, max_length=256)]


class _Strict(BaseModel):
    """Strict as the JSON Schema says: no coercion (``"0.9"`` is not a number, ``true`` not a
    confidence, ``"yes"`` not a boolean, a Unix number not a time), no unknown keys, no NaN."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True, strict=True)


class ModelRef(_Strict):
    name: NonEmpty
    version: NonEmpty


class ModalityInput(_Strict):
    """One modality of one event: producer-computed ``signals`` and/or raw media.

    ``signals`` maps a signal name (e.g. ``brightness``, ``loudness_lufs``) to a finite number.
    ``data_b64`` (inline media, base64) or ``uri`` (``file://`` media under an allowed root) is
    decoded and measured by modalwatch; the bytes are never stored. ``media_type`` is informative
    (formats are recognised from the bytes). ``capture`` is free metadata; two keys have a meaning:
    ``ts`` (capture time: ISO-8601 with a time zone, or Unix seconds) and, for a video frame sent
    as an image, ``frame_index``.
    """

    signals: dict[NonEmpty, float] = Field(default_factory=dict)
    data_b64: str | None = None
    uri: str | None = None
    media_type: str | None = None
    capture: dict[str, str | float | int | bool] = Field(default_factory=dict)

    @field_validator("capture")
    @classmethod
    def _capture_ts(cls, v: dict) -> dict:
        if "ts" in v:
            _parse_capture_ts(v["ts"])
        return v

    @model_validator(mode="after")
    def _one_medium(self) -> "ModalityInput":
        if self.data_b64 is not None and self.uri is not None:
            raise ValueError("give data_b64 or uri, not both")
        return self

    @property
    def has_raw_media(self) -> bool:
        return self.data_b64 is not None or self.uri is not None

    @property
    def capture_ts(self) -> datetime | None:
        return _parse_capture_ts(self.capture["ts"]) if "ts" in self.capture else None


def _parse_capture_ts(v) -> datetime:
    if isinstance(v, bool):
        raise ValueError("capture.ts must be an ISO-8601 time with a time zone or Unix seconds")
    if isinstance(v, (int, float)):
        if not math.isfinite(v):
            raise ValueError("capture.ts must be finite")
        return datetime.fromtimestamp(v, tz=timezone.utc)
    try:
        t = datetime.fromisoformat(v)
    except ValueError:
        raise ValueError(f"capture.ts {v!r} is not an ISO-8601 time") from None
    if t.tzinfo is None:
        raise ValueError(f"capture.ts {v!r} has no time zone")
    return t


class ModalityAnswer(_Strict):
    """What a modality's own head (or a unimodal model) answered, where the model has one."""

    label: NonEmpty
    confidence: float | None = Field(None, ge=0.0, le=1.0)


class Output(_Strict):
    label: NonEmpty
    confidence: float = Field(ge=0.0, le=1.0)
    probabilities: dict[NonEmpty, Annotated[float, Field(ge=0.0, le=1.0)]] | None = None
    abstained: bool = False
    # optional per-modality answers: when they disagree, the event is a review candidate
    per_modality: dict[Modality, ModalityAnswer] | None = None

    def per_modality_plain(self) -> dict[str, dict] | None:
        """``per_modality`` as plain data (what the store keeps), None without it."""
        return {m: a.model_dump() for m, a in self.per_modality.items()} if self.per_modality else None

    @property
    def modalities_disagree(self) -> bool:
        return self.per_modality is not None and len({a.label for a in self.per_modality.values()}) > 1


class InferenceEvent(_Strict):
    """One prediction in production."""

    type: Literal["inference"] = "inference"
    event_id: NonEmpty
    ts: AwareDatetime
    model: ModelRef
    slice: dict[NonEmpty, Annotated[str, Field(max_length=256)]] = Field(default_factory=dict)
    inputs: dict[Modality, ModalityInput] = Field(default_factory=dict)
    embeddings: dict[NonEmpty, Annotated[list[float], Field(min_length=1)]] | None = None
    output: Output

    @property
    def has_raw_media(self) -> bool:
        """Whether any modality carries media for modalwatch to measure."""
        return any(i.has_raw_media for i in self.inputs.values())

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


def json_schemas() -> dict[str, dict]:
    return {
        "InferenceEvent": InferenceEvent.model_json_schema(),
        "LabelEvent": LabelEvent.model_json_schema(),
    }


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
