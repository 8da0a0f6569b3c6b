"""The fixed schedule of evaluation windows, on event time.

apscheduler's triggers define the window boundaries (a daily window is a cron trigger at 00:00
UTC, an hourly one at minute 0); they are asked for fire times with an *event-time* ``now``, so a
replay of weeks of traffic walks the same schedule as production, in seconds.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Iterator

from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def window_trigger(interval: timedelta):
    """The trigger whose fire times are the window boundaries of ``interval``."""
    s = int(interval.total_seconds())
    if s == 86400:
        return CronTrigger(hour=0, minute=0, second=0, timezone=timezone.utc)
    if s == 3600:
        return CronTrigger(minute=0, second=0, timezone=timezone.utc)
    return IntervalTrigger(seconds=s, start_date=EPOCH, timezone=timezone.utc)


def floor_to(ts: datetime, interval: timedelta) -> datetime:
    """The start of the window of ``interval`` that holds ``ts``."""
    s = interval.total_seconds()
    return EPOCH + timedelta(seconds=((ts - EPOCH).total_seconds() // s) * s)


def windows(interval: timedelta, first_event_at: datetime, closed_before: datetime) -> Iterator[tuple[datetime, datetime]]:
    """[start, end) windows from the one holding ``first_event_at`` whose end is <= ``closed_before``."""
    trigger = window_trigger(interval)
    start = floor_to(first_event_at, interval)
    while True:
        end = trigger.get_next_fire_time(None, start + timedelta(microseconds=1))
        if end is None or end > closed_before:
            return
        yield start, end
        start = end
