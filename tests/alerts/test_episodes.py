"""An alert that fires again keeps its earlier episodes (each fire → resolve), on every store,
and ``modalwatch alerts list --episodes`` lists them."""

import json
import subprocess
from datetime import timedelta

from monitor.core.records import AlertRecord
from tests.conftest import ROOT, modalwatch_cmd
from tests.helpers import T0

DAY = timedelta(days=1)


def _alert(state, starts, ends=None, value=0.3):
    return AlertRecord(
        "fp1",
        "SignalDrift",
        {"alertname": "SignalDrift", "slice": "*"},
        {"summary": "moved"},
        state,
        starts,
        ends,
        value,
    )


def _three_episodes(store):
    """pending → firing → resolved, then firing and resolved twice more (days 2–3, 5–7, 9–)."""
    moves = [
        _alert("pending", T0 + DAY),
        _alert("firing", T0 + DAY),
        _alert("resolved", T0 + DAY, T0 + 3 * DAY),
        _alert("firing", T0 + 5 * DAY, value=0.5),
        _alert("resolved", T0 + 5 * DAY, T0 + 7 * DAY),
        _alert("pending", T0 + 8 * DAY),
        _alert("cleared", T0 + 8 * DAY, T0 + 9 * DAY),  # a breach that ended before its `for`
        _alert("pending", T0 + 9 * DAY),
        _alert("firing", T0 + 9 * DAY, value=0.7),
    ]
    for i, a in enumerate(moves):
        with store.db.tx():
            store.alerts.put(a, T0 + i * DAY)


def test_each_fire_to_resolve_is_an_episode_of_its_own(any_store):
    _three_episodes(any_store)
    [latest] = any_store.alerts.list()
    assert (latest.state, latest.starts_at) == ("firing", T0 + 9 * DAY)
    eps = any_store.alerts.episodes("fp1")
    assert [(e.state, e.starts_at, e.ends_at) for e in eps] == [
        ("resolved", T0 + DAY, T0 + 3 * DAY),
        ("resolved", T0 + 5 * DAY, T0 + 7 * DAY),
        ("firing", T0 + 9 * DAY, None),
    ]
    assert [e.value for e in eps] == [0.3, 0.3, 0.7]  # each episode's own last value
    assert any_store.ops.counts()["alert_episodes"] == 3


def test_alerts_list_episodes_on_the_command_line(sqlite_store, tmp_path):
    _three_episodes(sqlite_store)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"store: {{path: {tmp_path / 'mw.db'}}}\n")

    def cli(*args):
        out = subprocess.run(
            modalwatch_cmd() + ["alerts", "list", *args, "--config", str(cfg)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert out.returncode == 0, out.stderr
        return [json.loads(line) for line in out.stdout.splitlines()]

    assert len(cli("--json")) == 1
    eps = cli("--episodes", "--json")
    assert [e["starts_at"][:10] for e in eps] == ["2026-01-06", "2026-01-10", "2026-01-14"]
    assert [e["state"] for e in cli("--episodes", "--state", "resolved", "--json")] == ["resolved"] * 2


def test_a_quiet_firing_alert_keeps_when_it_went_quiet(any_store):
    from dataclasses import replace

    quiet = replace(_alert("firing", T0 + DAY), quiet_since=T0 + 4 * DAY)
    with any_store.db.tx():
        any_store.alerts.put(quiet, T0 + 5 * DAY)
    assert any_store.alerts.get(["fp1"])["fp1"].quiet_since == T0 + 4 * DAY
    assert any_store.alerts.list("firing")[0].quiet_since == T0 + 4 * DAY
