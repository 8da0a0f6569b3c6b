"""Retention of raw event rows (issue 5), on SQLite and a real PostgreSQL."""

import json
from datetime import timedelta

import pytest

from monitor.core.window import RunKey
from monitor.config import ConfigError, parse_config
from monitor.evaluation import Evaluator
from monitor.housekeeping import purge
from monitor.pipeline import Pipeline, RawMessage
from tests.helpers import NOW, T0, label
from tests.monitor.test_evaluation import CFG, _traffic

RETAINED = CFG + "store: {retention: 5d, label_wait: 1d}\n"


def _per_day(store) -> dict[int, int]:
    """Stored events per day since T0."""
    days: dict[int, int] = {}
    for (ts,) in store.db.all("SELECT ts FROM events"):
        d = (store.dialect.ts_out(ts) - T0).days
        days[d] = days.get(d, 0) + 1
    return days


def test_old_events_go_with_their_labels_but_the_reference_and_evaluations_stay(any_store):
    cfg = parse_config(RETAINED)
    Pipeline(cfg, any_store, lambda: NOW).process(_traffic(days=10))  # days 0..9; reference days 0..2
    Evaluator(cfg, any_store, lambda: NOW, owner="a").run_due(any_store.events.watermark())
    evaluations = any_store.ops.counts()["evaluations"]
    per_day = _per_day(any_store)
    assert sorted(per_day) == list(range(10)) and set(per_day.values()) == {300}

    now = T0 + timedelta(days=10)  # the ingest clock: day 10 begins; retention 5d keeps days 5..9
    done = purge(cfg, any_store, now)
    assert _per_day(any_store) == {d: 300 for d in (0, 1, 2, 5, 6, 7, 8, 9)}
    assert done.events == 2 * 300  # days 3 and 4
    orphans = any_store.db.all(
        "SELECT COUNT(*) FROM labels l WHERE NOT EXISTS"
        " (SELECT 1 FROM events e WHERE e.event_id = l.event_id)"
    )
    assert orphans == [(0,)]  # the deleted events' labels went with them
    assert any_store.ops.counts()["evaluations"] == evaluations  # the long-term record is kept
    assert purge(cfg, any_store, now).events == 0  # idempotent

    # a restarted daemon summarises its reference from the kept days: the same numbers as before
    fresh = Evaluator(cfg, any_store, lambda: NOW, owner="b")
    key = RunKey("m", "1", 86400, 86400, T0 + timedelta(days=8))
    rows = {
        (r.slice, r.metric, r.signal): r for r in fresh.compute(key, key.window_start + timedelta(days=1))
    }
    stored = any_store.evaluations.frame()
    stored = stored[stored.window_start == key.window_start]
    assert len(stored) > 10
    for _, s in stored.iterrows():
        r = rows[(s["slice"], s["metric"], s["signal"])]
        ref = float("nan") if r.reference_value is None else r.reference_value
        assert r.n_reference == s["n_reference"] and ref == pytest.approx(s["reference_value"], nan_ok=True)


def test_a_label_for_an_event_past_retention_becomes_a_dead_letter_naming_why(any_store):
    cfg = parse_config(RETAINED)
    Pipeline(cfg, any_store, lambda: NOW).process(_traffic(days=10))
    purge(cfg, any_store, T0 + timedelta(days=10))
    late = label(3 * 300 + 7, ts=T0 + timedelta(days=10))  # its event (day 3) was deleted
    Pipeline(cfg, any_store, lambda: T0 + timedelta(days=10)).process(
        [RawMessage("t", "t:late", json.dumps(late).encode())]
    )
    assert purge(cfg, any_store, T0 + timedelta(days=10, hours=12)).orphan_labels == 0  # still waiting
    assert purge(cfg, any_store, T0 + timedelta(days=11, hours=1)).orphan_labels == 1
    (dl,) = [d for d in any_store.ops.dead_letters() if d.source == "labels"]
    assert dl.position == "t:late" and "older than the retention (5 days" in dl.reason
    assert json.loads(dl.payload)["event_id"] == late["event_id"]
    assert any_store.db.all("SELECT COUNT(*) FROM labels WHERE event_id = ?", (late["event_id"],)) == [(0,)]


def test_a_retention_shorter_than_the_vintages_is_refused_naming_the_key():
    with pytest.raises(ConfigError, match="store.retention"):
        parse_config(CFG + "store: {retention: 1d}\n")  # 1d interval + 1d lag + 1d > 1d
