"""Routing, grouping, silences and inhibition (alerts/routing.py): pure, with a hand-moved clock."""

from dataclasses import replace
from datetime import datetime, timedelta, timezone

from alerts.rules import dedup_key
from alerts.routing import build_routes, plan, routes_for
from monitor.config import parse_config
from monitor.core.records import AlertRecord, Silence

T = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
S = timedelta(seconds=1)


def _cfg(route_yaml: str = "", inhibit_yaml: str = ""):
    return parse_config(f"""
alerts:
  webhooks:
    - {{name: oncall, url: "http://127.0.0.1:9/a"}}
    - {{name: vision, url: "http://127.0.0.1:9/b"}}
{route_yaml}
{inhibit_yaml}
""").alerts


def _alert(state, changed_at=T, **labels):
    labels = {"alertname": "SignalDrift", "model": "m", "slice": "*", "severity": "warning", **labels}
    return AlertRecord(
        dedup_key(labels),
        "SignalDrift",
        labels,
        {"summary": "s", "value": "1"},
        state,
        T,
        None,
        None,
        changed_at,
    )


class Sim:
    """The store's side of a notification pass: alert states and group states kept between passes."""

    def __init__(self, acfg):
        self.acfg, self.root = acfg, build_routes(acfg.route, [w.name for w in acfg.webhooks])
        self.states, self.sent = {}, []

    def at(self, now, alerts, silences=()):
        p = plan(self.root, alerts, self.states, list(silences), self.acfg.inhibit, now)
        self.states.update(p.states)
        self.sent += p.notifications
        return p.notifications


ROUTE = """  route:
    receiver: oncall
    group_by: [alertname, model]
    group_wait: 30s
    group_interval: 5m
    repeat_interval: 4h
"""


def test_a_hundred_findings_of_one_problem_are_one_notification_one_resolved_repeats_on_schedule():
    sim = Sim(_cfg(ROUTE))
    alerts = []
    for i in range(100):  # findings arrive one by one within group_wait
        alerts.append(_alert("firing", T + i * 0.2 * S, slice=f"device=d{i}"))
        assert sim.at(T + i * 0.2 * S, alerts) == []
    (n,) = sim.at(T + 30 * S, alerts)
    assert n.receiver == "oncall" and n.status == "firing" and len(n.firing) == 100 and n.resolved == []
    assert n.group_labels == {"alertname": "SignalDrift", "model": "m"}
    for t in (31, 60, 3600, 4 * 3600 + 29):  # nothing new: quiet until repeat_interval
        assert sim.at(T + t * S, alerts) == []
    (again,) = sim.at(T + (4 * 3600 + 30) * S, alerts)
    assert again.repeat and len(again.firing) == 100
    resolved = [replace(a, state="resolved") for a in alerts]
    (done,) = sim.at(T + (4 * 3600 + 30 + 300) * S, resolved)
    assert done.status == "resolved" and done.firing == [] and len(done.resolved) == 100
    assert sim.at(T + 10 * 3600 * S, resolved) == []  # resolved once, then silence
    assert len(sim.sent) == 3


def test_changes_wait_for_group_interval_and_a_blip_inside_group_wait_is_never_sent():
    sim = Sim(_cfg(ROUTE))
    a, b = _alert("firing", slice="x"), _alert("firing", slice="y")
    assert sim.at(T, [a]) == []
    assert sim.at(T + 10 * S, [replace(a, state="resolved")]) == []
    assert (
        sim.at(T + 40 * S, [replace(a, state="resolved")]) == []
    )  # fired and resolved before anyone was told
    a = _alert("firing", T + 100 * S, slice="x")  # fires again
    assert sim.at(T + 100 * S, [a]) == []
    (first,) = sim.at(T + 130 * S, [a])
    assert [x.labels["slice"] for x in first.firing] == ["x"]
    b = _alert("firing", T + 200 * S, slice="y")
    assert sim.at(T + 200 * S, [a, b]) == []  # b joins: sent at the next group_interval
    (second,) = sim.at(T + 430 * S, [a, b])
    assert [x.labels["slice"] for x in second.firing] == ["x", "y"] and not second.repeat


def test_routing_tree_matchers_regex_continue_and_inheritance():
    acfg = _cfg("""  route:
    receiver: oncall
    group_wait: 0s
    routes:
      - matchers: {modality: image}
        receiver: vision
        continue: true
        group_by: [alertname, model, slice]
      - matchers: {slice: "~device=cam_.*"}
        group_interval: 1m
""")
    root = build_routes(acfg.route, ["oncall", "vision"])
    img = _alert("firing", modality="image", signal="brightness", slice="device=cam_b")
    got = routes_for(root, img.labels)
    assert [(r.receiver, r.group_by, r.group_wait) for r in got] == [
        ("vision", ("alertname", "model", "slice"), timedelta(0)),
        ("oncall", ("model", "incident"), timedelta(0)),
    ]  # continued into the regex route: inherits oncall (and the default grouping, per incident)
    assert got[1].group_interval == timedelta(minutes=1)
    assert [r.receiver for r in routes_for(root, _alert("firing", slice="locale=de").labels)] == ["oncall"]


def test_without_a_route_every_receiver_gets_every_group():
    root = build_routes(None, ["oncall", "vision"])
    assert sorted(r.receiver for r in routes_for(root, _alert("firing").labels)) == ["oncall", "vision"]


def test_a_silence_mutes_matching_alerts_until_it_expires():
    sim = Sim(_cfg(ROUTE.replace("30s", "0s")))
    a = _alert("firing", slice="device=cam_b")
    silence = Silence(1, {"slice": "device=cam_b"}, T, T + 3600 * S, "test", "", T)
    assert sim.at(T + S, [a], [silence]) == []
    assert sim.at(T + 1800 * S, [a], [silence]) == []
    (n,) = sim.at(T + 3600 * S, [a], [silence])  # expired: the alert is told
    assert n.firing[0].dedup_key == a.dedup_key


def test_a_stalled_stream_inhibits_drift_alerts_of_the_same_model():
    sim = Sim(
        _cfg(
            ROUTE.replace("30s", "0s"),
            """  inhibit:
    - {source: {alertname: NoTraffic}, target: {alertname: SignalDrift}, equal: [model]}
""",
        )
    )
    stall = _alert("firing", alertname="NoTraffic")
    drift = _alert("firing")
    other_model = _alert("firing", model="other")
    sent = sim.at(T, [stall, drift, other_model])
    told = sorted((x.labels["alertname"], x.labels["model"]) for n in sent for x in n.firing)
    assert told == [("NoTraffic", "m"), ("SignalDrift", "other")]


def test_for_makes_a_breach_pending_until_it_has_held_and_a_short_one_is_cleared():
    from alerts.rules import transition

    day = timedelta(days=1)
    assert transition(None, True, None, timedelta(0)) == "fire"  # no `for`: at once
    assert transition(None, True, None, 2 * day) == "pending"
    assert transition("pending", True, 1 * day, 2 * day) is None  # still holding, not long enough
    assert transition("pending", True, 2 * day, 2 * day) == "fire"
    assert transition("pending", False, None, 2 * day) == "clear"  # never told anyone
    assert transition("firing", False, None, 2 * day) == "resolve"
    assert transition("firing", None, None, 2 * day) is None  # no claim (insufficient data): no change
    assert transition("resolved", True, None, timedelta(0)) == "fire"
