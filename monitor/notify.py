"""The notification pass: alert states → routed, grouped, silenced notifications → the outbox.

One transaction, under a lock that replicas share: read the alerts, the groups and the silences
in force, label each alert with its incident (alerts/incidents.py: the default route groups by
it, so one cause is one notification), ask alerts/routing.py what is due now, write each
receiver's outbox entries for each notification (alerts/receivers/) and the groups' new state.
It runs inside each vintage's transaction (so a transition and what it causes are committed
together) and on every evaluation job run (for group_wait, group_interval and repeat_interval
that come due between vintages). Delivery is the outbox's job (alerts/outbox.py): retried, never
lost, never sent twice.
"""

from __future__ import annotations

from datetime import datetime

from alerts.incidents import INCIDENT_LABEL, label_incidents, slice_attribute_values
from alerts.receivers import receiver_for
from alerts.routing import build_routes, plan


def incident_context(store) -> dict:
    """What grouping alerts into incidents reads from the latest evaluations (alerts/incidents.py
    ``group_incidents`` / ``label_incidents`` keyword arguments)."""
    ev = store.evaluations
    return {"slice_values": slice_attribute_values(ev.slices()), "worse_than_rest": ev.worse_than_rest()}


def run_notifications(config, store, now: datetime) -> int:
    """Returns the number of notifications written to the outbox."""
    acfg = config.alerts
    receivers = {w.name: receiver_for(w) for w in acfg.webhooks if w.enabled}
    if not receivers:
        return 0
    root = build_routes(acfg.route, [w.name for w in acfg.webhooks])
    alerts = store.alerts
    with store.tx():
        alerts.lock()
        states = {g.group_key: g for g in alerts.groups()}
        told = {fp for st in states.values() for fp in st.notified}
        known = {
            fp: st.group_labels[INCIDENT_LABEL]
            for st in states.values()
            if st.group_labels.get(INCIDENT_LABEL)
            for fp in st.notified
        }
        pending = alerts.to_notify(told)
        incidents = {}
        if pending:  # the evaluations are read for grouping only when there is something to group
            pending, incidents = label_incidents(pending, known=known, **incident_context(store))
        p = plan(root, pending, states, alerts.silences(active_at=now), acfg.inhibit, now)
        for n in p.notifications:
            for a in n.firing + n.resolved:
                i = a.labels.get(INCIDENT_LABEL)
                if i in incidents:
                    n.incidents.setdefault(i, incidents[i])
            receiver = receivers.get(n.receiver)
            if receiver is None:  # disabled in this deployment
                continue
            if n.status == "resolved" and not receiver.config.send_resolved:
                continue
            for dedup_key, payload in receiver.outbox_entries(n, acfg.external_url):
                alerts.add_outbox(dedup_key, receiver.config.name, payload, now)
        for st in p.states.values():
            alerts.put_group(st)
    return len(p.notifications)
