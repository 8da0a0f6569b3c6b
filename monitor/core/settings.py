"""What every config section is made of: a strict pydantic model and durations."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(v: Any) -> Any:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"1d"``, ``"2w"`` or seconds as a number → timedelta."""
    if isinstance(v, str):
        m = _DURATION.match(v)
        if not m:
            raise ValueError(f"not a duration: {v!r} (use e.g. 30s, 15m, 1h, 1d, 7d)")
        return timedelta(seconds=float(m.group(1)) * _UNIT_S[m.group(2)])
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return timedelta(seconds=v)
    return v


def duration_text(seconds: int) -> str:
    """3600 → "1h", 604800 → "7d", 0 → "0s": the config's own duration spelling."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


class Section(BaseModel):
    """A config section: a misspelt key is an error naming it."""

    model_config = ConfigDict(extra="forbid")


def iso_time(dt) -> str | None:
    """A time as the pages and the JSON API write it (ISO 8601 with its offset); None for a
    missing one (None, NaN). Pandas' timestamps, and anything they parse, too."""
    if dt is None or (isinstance(dt, float) and math.isnan(dt)):
        return None
    if not isinstance(dt, datetime):
        import pandas as pd

        dt = pd.Timestamp(dt)
    return dt.isoformat()
