"""Alerts that mean it, on synthetic traffic with known answers (tests/alerts/traffic.py), through
the real evaluator, rules and store with the default configuration: 30 quiet monitored days
raise at most one alert over more than 200 monitored series; each kind of change alerts within a
daily window of its onset (aging within 7) as one incident at its own place, and keeps firing
while it lasts (no fire → resolve → fire). bench/alert_quality.py measures the same over several
seeds."""

from datetime import timedelta

import pytest

from alerts.incidents import family, group_incidents
from monitor.notify import incident_context
from tests.alerts.traffic import (
    CHANGES,
    DAY,
    MONITORED_DAYS,
    ONSET,
    REFERENCE_DAYS,
    T0,
    changed_run,
    quiet_run,
)

EVENTS_PER_DAY = 40_000


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The quiet run, and where the store as it stood before a change's onset is kept."""
    tmp = tmp_path_factory.mktemp("alert_quality")
    cfg, store = quiet_run(tmp, EVENTS_PER_DAY)
    yield cfg, store, tmp
    store.close()


def test_thirty_quiet_days_over_hundreds_of_series_raise_at_most_one_alert(runs):
    _, store, _ = runs
    df = store.evaluations.frame()
    monitored = df[(df["window_start"] >= T0 + REFERENCE_DAYS * DAY) & (df["status"] == "ok")]
    assert monitored["window_start"].nunique() == MONITORED_DAYS
    series = monitored[["slice", "metric", "signal"]].drop_duplicates()
    assert len(series) >= 200
    assert len(store.alerts.episodes()) <= 1


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_each_change_is_one_incident_at_its_place_soon_after_onset(runs, name):
    cfg, _, tmp = runs
    change = CHANGES[name]
    store = changed_run(cfg, tmp, change, EVENTS_PER_DAY)
    try:
        episodes = store.alerts.episodes()
        onset = T0 + ONSET * DAY
        assert episodes, f"{change.description}: no alert"
        first = min(a.starts_at for a in episodes)  # (the quiet prefix raised none: ≥ onset)
        assert onset <= first < onset + change.within_days * DAY, (change.description, first)
        # while it persists nothing fires, resolves and fires again: one episode per fingerprint,
        # and what names the change at its place still fires (a trend found on a step may end)
        assert len({a.dedup_key for a in episodes}) == len(episodes)
        at_place = [
            a
            for a in episodes
            if a.labels["slice"] == change.place
            and family(a) == change.family
            and (change.name == "aging" or "follows" not in a.labels)
        ]
        assert at_place and {a.state for a in at_place} == {"firing"}
        incidents = group_incidents(episodes, states=("firing", "resolved"), **incident_context(store))
        assert [(i.place, change.family in i.families) for i in incidents] == [(change.place, True)], [
            i.headline for i in incidents
        ]
        assert incidents[0].since < onset + timedelta(days=change.within_days)
    finally:
        store.close()
