"""Window boundaries on local calendar time, daylight-saving changes included."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from monitor.config import ConfigError, parse_config
from monitor.schedule import floor_to, windows

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def _windows(interval, start, end, tz):
    return list(windows(interval, start, end, tz))


def test_utc_windows_are_whole_days_and_hours():
    t = datetime(2026, 1, 5, 3, 17, tzinfo=UTC)
    days = _windows(timedelta(days=1), t, t + timedelta(days=5), UTC)
    assert days[0][0] == datetime(2026, 1, 5, tzinfo=UTC) and all(b - a == timedelta(days=1) for a, b in days)
    hours = _windows(timedelta(hours=1), t, t + timedelta(hours=5), UTC)
    assert hours[0][0] == datetime(2026, 1, 5, 3, tzinfo=UTC) and len(hours) == 5  # 03:00 … 08:00
    week = floor_to(datetime(2026, 1, 8, tzinfo=UTC), timedelta(days=7), UTC)
    assert week == datetime(2026, 1, 5, tzinfo=UTC) and week.weekday() == 0  # a Monday


@pytest.mark.parametrize(
    "tz,spring,autumn",
    [
        (BERLIN, datetime(2026, 3, 29), datetime(2026, 10, 25)),
        (NEW_YORK, datetime(2026, 3, 8), datetime(2026, 11, 1)),
    ],
)
def test_local_days_are_23_and_25_hours_at_the_changes(tz, spring, autumn):
    for day, hours in ((spring, 23), (autumn, 25)):
        start = day.replace(tzinfo=tz).astimezone(UTC) - timedelta(days=2)
        got = _windows(timedelta(days=1), start, start + timedelta(days=5), tz)
        lengths = {a.astimezone(tz).date(): (b - a) for a, b in got}
        assert lengths[day.date()] == timedelta(hours=hours)
        assert all(a.astimezone(tz).hour == 0 for a, _ in got)  # every window starts at local midnight
        assert all(b1 == a2 for (_, b1), (a2, _) in zip(got, got[1:]))  # contiguous


def test_hourly_windows_across_the_spring_gap_have_no_empty_window():
    start = datetime(2026, 3, 28, 22, tzinfo=UTC)
    got = _windows(timedelta(hours=1), start, start + timedelta(hours=8), BERLIN)
    assert all(b - a == timedelta(hours=1) for a, b in got) and len(got) == 8
    local_hours = [a.astimezone(BERLIN).hour for a, _ in got]
    assert 2 not in local_hours and local_hours[:5] == [23, 0, 1, 3, 4]


def test_the_evaluation_uses_the_configured_zone_and_names_a_bad_one():
    from monitor.reference import reference_range

    cfg = parse_config("evaluation:\n  timezone: Europe/Berlin\n  reference: {days: 7}\n")
    r0, r1 = reference_range(cfg, datetime(2026, 3, 25, 12, tzinfo=UTC))
    assert r0 == datetime(2026, 3, 24, 23, tzinfo=UTC)  # local midnight, winter time
    assert r1 == datetime(2026, 3, 31, 22, tzinfo=UTC)  # 7 local days later, summer time: 167 h
    with pytest.raises(
        ConfigError, match=r"evaluation.timezone \(line 2\): .*unknown time zone 'Mars/Olympus'"
    ):
        parse_config("evaluation:\n  timezone: Mars/Olympus\n")
