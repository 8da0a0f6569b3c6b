"""From alert states to notifications, Alertmanager's way. Pure: plain data and a ``now`` in,
notifications and new group states out; the caller persists both in one transaction.

- **Routing tree**: an alert walks down from the root; it takes the first child whose matchers
  all hold (every matching child where a child has ``continue``); where no child matches, the node
  it stands on takes it. Each node that takes it names a receiver and how to group.
- **Groups**: alerts of one route with the same values of its ``group_by`` labels form a group
  (``group_by: ["..."]`` groups by every label, i.e. one group per alert). A new group waits
  ``group_wait`` before its first notification, so a burst of findings for one problem is one
  notification. After that, changes (an alert joins, one resolves) are sent at most every
  ``group_interval``; an unchanged firing group is sent again every ``repeat_interval``.
- **Silences** (matchers + a time range) and **inhibition** (a firing source alert mutes target
  alerts with the same ``equal`` labels) keep alerts out of notifications; they stay in the alert
  history. An alert that was notified firing and then resolves is sent once as resolved; one that
  was never notified (silenced, or resolved within group_wait) is not.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Iterable, Mapping

from monitor.core.matchers import matches
from monitor.core.records import AlertRecord, GroupState, Silence

# one notification per incident (alerts/incidents.py labels each alert with its incident)
DEFAULT_GROUP_BY = ["model", "incident"]
DEFAULT_GROUP_WAIT = timedelta(seconds=30)
DEFAULT_GROUP_INTERVAL = timedelta(minutes=5)
DEFAULT_REPEAT_INTERVAL = timedelta(hours=4)


@dataclass(frozen=True)
class Route:
    """A node resolved against its parents: every field set."""

    path: str
    receiver: str | None
    matchers: Mapping[str, str]
    group_by: tuple[str, ...]
    group_wait: timedelta
    group_interval: timedelta
    repeat_interval: timedelta
    continue_: bool
    routes: tuple["Route", ...] = ()


def build_routes(cfg, receivers: list[str]) -> Route:
    """The tree of ``alerts.route`` with inherited fields filled in. Without a route, the root
    sends every group to every receiver (one child per receiver, each with ``continue``)."""
    if cfg is None:
        kids = tuple(
            Route(
                f"/{r}",
                r,
                {},
                tuple(DEFAULT_GROUP_BY),
                DEFAULT_GROUP_WAIT,
                DEFAULT_GROUP_INTERVAL,
                DEFAULT_REPEAT_INTERVAL,
                True,
            )
            for r in receivers
        )
        return Route(
            "",
            None,
            {},
            tuple(DEFAULT_GROUP_BY),
            DEFAULT_GROUP_WAIT,
            DEFAULT_GROUP_INTERVAL,
            DEFAULT_REPEAT_INTERVAL,
            False,
            kids,
        )

    def resolve(node, parent: Route | None, path: str) -> Route:
        def pick(name, default):
            v = getattr(node, name)
            return v if v is not None else (getattr(parent, name) if parent else default)

        me = Route(
            path,
            pick("receiver", None),
            dict(node.matchers),
            tuple(pick("group_by", DEFAULT_GROUP_BY)),
            pick("group_wait", DEFAULT_GROUP_WAIT),
            pick("group_interval", DEFAULT_GROUP_INTERVAL),
            pick("repeat_interval", DEFAULT_REPEAT_INTERVAL),
            node.continue_,
        )
        kids = tuple(resolve(c, me, f"{path}/{i}") for i, c in enumerate(node.routes))
        return Route(
            me.path,
            me.receiver,
            me.matchers,
            me.group_by,
            me.group_wait,
            me.group_interval,
            me.repeat_interval,
            me.continue_,
            kids,
        )

    return resolve(cfg, None, "")


def routes_for(root: Route, labels: Mapping[str, str]) -> list[Route]:
    """The nodes that take an alert (each with a receiver)."""

    def walk(node: Route) -> list[Route]:
        taken: list[Route] = []
        for child in node.routes:
            if matches(child.matchers, labels):
                taken += walk(child)
                if not child.continue_:
                    break
        if not taken:
            taken = [node]
        return taken

    return [r for r in walk(root) if r.receiver is not None]


def group_labels(route: Route, labels: Mapping[str, str]) -> dict[str, str]:
    if route.group_by == ("...",):
        return dict(labels)
    return {k: labels.get(k, "") for k in route.group_by}


def group_key(route: Route, glabels: Mapping[str, str]) -> str:
    raw = json.dumps([route.path, route.receiver, sorted(glabels.items())])
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


@dataclass
class Notification:
    group_key: str
    receiver: str
    status: str  # firing | resolved
    group_labels: dict[str, str]
    firing: list[AlertRecord]  # alerts firing now
    resolved: list[AlertRecord]  # alerts notified firing before, resolved now
    repeat: bool = False
    # id → alerts/incidents.Incident, of the alerts it carries (set by the notification pass)
    incidents: dict = field(default_factory=dict)


def silenced(labels: Mapping[str, str], silences: Iterable[Silence], now: datetime) -> bool:
    return any(s.active(now) and matches(s.matchers, labels) for s in silences)


def inhibited(labels: Mapping[str, str], firing: list[Mapping[str, str]], rules) -> bool:
    for rule in rules:
        if not matches(rule.target, labels):
            continue
        for src in firing:
            if (
                src is not labels
                and matches(rule.source, src)
                and all(src.get(k) == labels.get(k) for k in rule.equal)
            ):
                return True
    return False


@dataclass
class Plan:
    notifications: list[Notification] = field(default_factory=list)
    states: dict[str, GroupState] = field(default_factory=dict)  # new or changed group states


def plan(
    root: Route,
    alerts: list[AlertRecord],
    states: Mapping[str, GroupState],
    silences: list[Silence],
    inhibit_rules,
    now: datetime,
) -> Plan:
    """What to send now. ``alerts``: firing / resolved / pending / cleared alerts (``changed_at``:
    when the state last changed); ``states``: every group's state."""
    firing_labels = [a.labels for a in alerts if a.state == "firing"]
    groups: dict[str, tuple[Route, dict[str, str], list[AlertRecord]]] = {}
    for a in alerts:
        if a.state not in ("firing", "resolved"):
            continue
        muted = a.state == "firing" and (
            silenced(a.labels, silences, now) or inhibited(a.labels, firing_labels, inhibit_rules)
        )
        for route in routes_for(root, a.labels):
            gl = group_labels(route, a.labels)
            key = group_key(route, gl)
            groups.setdefault(key, (route, gl, []))
            if not muted:
                groups[key][2].append(a)
    out = Plan()
    for key, (route, gl, members) in groups.items():
        st = states.get(key)
        firing = sorted((a for a in members if a.state == "firing"), key=lambda a: a.dedup_key)
        fps = [a.dedup_key for a in firing]
        if st is None:
            if not firing:
                continue  # resolved before anyone was told: nothing to say
            st = GroupState(key, route.path, route.receiver, gl, [], now)
            out.states[key] = st
        resolved = sorted(
            (a for a in members if a.state == "resolved" and a.dedup_key in st.notified),
            key=lambda a: a.dedup_key,
        )
        changed = set(fps) != set(st.notified)
        if st.last_flush_at is None:
            # group_wait counts from the earliest change of an alert firing now: one that fired,
            # resolved unseen and fires again waits afresh
            due = min(a.changed_at or st.created_at for a in firing) + route.group_wait if firing else None
        elif changed:
            due = st.last_flush_at + route.group_interval
        elif firing:
            due = st.last_flush_at + route.repeat_interval
        else:
            due = None
        if due is None or due > now:
            continue
        out.notifications.append(
            Notification(
                key,
                route.receiver,
                "firing" if firing else "resolved",
                gl,
                firing,
                resolved,
                repeat=not changed,
            )
        )
        st.notified, st.last_flush_at = fps, now
        out.states[key] = st
    return out
