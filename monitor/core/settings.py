"""What every config section is made of: a strict pydantic model and durations."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")
_UNIT_S = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
# Whatever a duration or a time says, adding one to the other stays a date Python can hold: a
# duration is at most a century, a time between these bounds.
MAX_DURATION = timedelta(days=36500)
EARLIEST = datetime(1970, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2200, 1, 1, tzinfo=timezone.utc)


def parse_duration(v: Any) -> Any:
    """``"90s"``, ``"15m"``, ``"1h"``, ``"1d"``, ``"2w"`` or seconds as a number → timedelta
    (at most ``MAX_DURATION``; longer is a ValueError, not an overflow later)."""
    if isinstance(v, str):
        m = _DURATION.match(v)
        if not m:
            raise ValueError(f"not a duration: {v!r} (use e.g. 30s, 15m, 1h, 1d, 7d)")
        seconds = float(m.group(1)) * _UNIT_S[m.group(2)]
    elif isinstance(v, (int, float)) and not isinstance(v, bool):
        seconds = float(v)
    else:
        return v
    if not math.isfinite(seconds) or abs(seconds) > MAX_DURATION.total_seconds():
        raise ValueError(f"duration {v!r} is longer than {MAX_DURATION.days} days")
    return timedelta(seconds=seconds)


def parse_time(text: str, naive_is_utc: bool = False) -> datetime:
    """An ISO-8601 time (``Z`` or an offset; without one: UTC where ``naive_is_utc``, else an
    error) between ``EARLIEST`` and ``LATEST``, in UTC. ValueError says what is wrong."""
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"not an ISO time: {text!r} (e.g. 2026-12-01 or 2026-12-01T06:00:00Z)") from None
    if t.tzinfo is None:
        if not naive_is_utc:
            raise ValueError(f"give a time zone, e.g. {text.strip()}Z")
        t = t.replace(tzinfo=timezone.utc)
    try:
        t = t.astimezone(timezone.utc)
    except OverflowError:
        t = EARLIEST - timedelta(days=1) if t.year < 2000 else LATEST
    if not EARLIEST <= t < LATEST:
        raise ValueError(f"{text!r} is outside {EARLIEST.year}–{LATEST.year}")
    return t


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
