"""The notification pass: alert states → routed, grouped, silenced notifications → the outbox.

One transaction, under a lock that replicas share: read the alerts, the groups and the silences
in force, ask alerts/routing.py what is due now, write one outbox entry per notification (one per
alert for PagerDuty) and the groups' new state. It runs inside each vintage's transaction (so a
transition and what it causes are committed together) and on every evaluation job run (for
group_wait, group_interval and repeat_interval that come due between vintages). Delivery is the
outbox's job (alerts/webhook.py): retried, never lost, never sent twice.
"""
from __future__ import annotations

from datetime import datetime

from alerts.payload import alertmanager_payload, pagerduty_events, slack_payload
from alerts.routing import GroupState, build_routes, plan


def run_notifications(config, store, now: datetime) -> int:
    """Returns the number of notifications written to the outbox."""
    acfg = config.alerts
    receivers = {w.name: w for w in acfg.webhooks}
    if not receivers:
        return 0
    root = build_routes(acfg.route, list(receivers))
    with store.tx():
        store.lock_notifications()
        states = {g["group_key"]: GroupState(**g) for g in store.alert_groups()}
        told = {fp for st in states.values() for fp in st.notified}
        p = plan(root, store.alerts_to_notify(told), states, store.silences(active_at=now), acfg.inhibit, now)
        for n in p.notifications:
            rc = receivers[n.receiver]
            if n.status == "resolved" and not rc.send_resolved:
                continue
            if rc.kind == "pagerduty":
                for ev in pagerduty_events(n, acfg.external_url, rc.send_resolved):
                    store.add_outbox(ev["dedup_key"], rc.name, ev, now)
            elif rc.kind == "slack":
                store.add_outbox(n.group_key, rc.name, slack_payload(n, acfg.external_url, rc.send_resolved), now)
            else:
                store.add_outbox(n.group_key, rc.name,
                                 alertmanager_payload(n, rc.name, acfg.external_url, rc.send_resolved), now)
        for st in p.states.values():
            store.put_alert_group(vars(st))
    return len(p.notifications)
