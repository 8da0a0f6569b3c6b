"""The fixed schedule of evaluation windows, on event time, aligned to calendar boundaries in a
configured time zone (UTC by default).

Window boundaries are local wall-clock times: a daily window runs from local midnight to local
midnight, a weekly (7d) one from Monday 00:00, other whole-day intervals from every N-th local
midnight counted from 1970-01-01, and an interval that divides a day from local midnight in
steps of it. Across a daylight-saving change a local day is 23 or 25 hours long, and its window
is; a boundary that does not exist that day (02:00 when clocks jump to 03:00) is left out.
Everything is asked with an *event-time* clock, so a replay of weeks of traffic walks the same
schedule as production, in seconds. (apscheduler drives the daemon's evaluation tick; its 3.x
cron triggers skip a day at some DST changes — agronholm/apscheduler#606, #529 — so the
boundaries are computed here with ``zoneinfo``.)
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from functools import lru_cache
from typing import Iterator

DAY = timedelta(days=1)
EPOCH_DATE = date(1970, 1, 1)


def _local_midnight(d: date, tz: tzinfo) -> datetime:
    return datetime.combine(d, time(0), tzinfo=tz).astimezone(timezone.utc)


def _day_starts(d: date, interval: timedelta) -> bool:
    """Whether local date ``d`` begins a window of a whole-day ``interval``."""
    days = interval // DAY
    if days == 7:
        return d.weekday() == 0
    return (d - EPOCH_DATE).days % days == 0


def _boundaries(interval: timedelta, tz: tzinfo, from_date: date) -> Iterator[datetime]:
    """Every window boundary (UTC) from local date ``from_date`` on, increasing."""
    last = None
    d = from_date
    while True:
        if interval >= DAY:
            points = [_local_midnight(d, tz)] if _day_starts(d, interval) else []
        else:
            steps = int(DAY / interval)
            points = []
            for j in range(steps):
                wall = datetime.combine(d, time(0)) + j * interval
                aware = wall.replace(tzinfo=tz)
                if aware.astimezone(timezone.utc).astimezone(tz).replace(tzinfo=None) != wall:
                    continue  # a wall-clock time that does not exist this day (DST gap)
                points.append(aware.astimezone(timezone.utc))
        for p in points:
            if last is None or p > last:
                last = p
                yield p
        d += DAY


def floor_to(ts: datetime, interval: timedelta, tz: tzinfo = timezone.utc) -> datetime:
    """The start of the window of ``interval`` that holds ``ts``."""
    back = max(interval, DAY) + DAY * 2
    start = None
    for b in _boundaries(interval, tz, (ts - back).astimezone(tz).date() - timedelta(days=7)):
        if b > ts:
            return start
        start = b
    raise AssertionError("unreachable: boundaries never end")


def windows(
    interval: timedelta, first_event_at: datetime, closed_before: datetime, tz: tzinfo = timezone.utc
) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) windows from the one holding ``first_event_at`` whose end is <= ``closed_before``."""
    start = floor_to(first_event_at, interval, tz)
    for end in _boundaries(interval, tz, start.astimezone(tz).date()):
        if end <= start:
            continue
        if end > closed_before:
            return
        yield start, end
        start = end


@lru_cache(maxsize=4096)
def _day_boundaries(interval: timedelta, tz: tzinfo, d: date) -> tuple[datetime, ...]:
    """The boundaries (UTC) of ``interval``'s windows that fall on local date ``d``."""
    out = []
    for b in _boundaries(interval, tz, d):
        if b.astimezone(tz).date() != d:
            break
        out.append(b)
    return tuple(out)


def window_end(ts: datetime, interval: timedelta, tz: tzinfo = timezone.utc) -> datetime:
    """The end of the window of ``interval`` that holds ``ts`` (the first boundary after it):
    bisected in the boundaries of its local day, which are computed once per day."""
    d = ts.astimezone(tz).date()
    while True:
        points = _day_boundaries(interval, tz, d)
        i = bisect_right(points, ts)
        if i < len(points):
            return points[i]
        d += DAY
