"""``GET /metrics``: the daemon in Prometheus' text format (prometheus_client).

Names follow Prometheus' conventions: the ``modalwatch_`` prefix, base units (seconds), counters
ending in ``_total``. Labels are bounded: a source's name (http, kafka, a JSONL path as the
config names it), a reason class (monitor.core.messages.reason_class), a receiver, a rule's
alertname and severity, a review state — never a slice value or an event id.

Counters of ingest are the daemon process's own tallies of its batches' outcomes: batches
stored by ``ingest.workers`` processes come back to the daemon as outcomes, so their counts are
here too. Gauges of the store (alerts firing, outbox, review queue) are read at scrape time on
the web face's connection. A registry per daemon (not prometheus_client's global one), so two
daemons in one process (tests) do not share counts.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from monitor.core.messages import reason_class
from monitor.trust import state_counts

disable_created_metrics()  # no `_created` series: they double what is scraped and say nothing here

BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
EVALUATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


class DaemonMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.messages = Counter(
            "modalwatch_messages",
            "Messages polled and committed, by source and kind of outcome",
            ["source", "outcome"],
            registry=r,
        )
        self.dead_letters = Counter(
            "modalwatch_dead_letters",
            "Messages set aside as dead letters, by source and reason class",
            ["source", "reason"],
            registry=r,
        )
        self.batch_seconds = Histogram(
            "modalwatch_batch_duration_seconds",
            "From handing a polled batch over to its commit",
            ["source"],
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.evaluation_seconds = Histogram(
            "modalwatch_evaluation_run_duration_seconds",
            "One run of the evaluation job: the due vintages, data health, notifications, delivery",
            buckets=EVALUATION_BUCKETS,
            registry=r,
        )
        self.vintages = Counter(
            "modalwatch_vintages_evaluated", "Vintages (window × lag) evaluated", registry=r
        )
        self.delivered = Counter(
            "modalwatch_notifications_delivered", "Outbox entries accepted by their receivers", registry=r
        )
        self.notifications_dead = Counter(
            "modalwatch_notifications_dead", "Outbox entries refused for good by their receivers", registry=r
        )
        self.errors = Counter(
            "modalwatch_evaluation_errors",
            "Evaluation runs that failed (the store unreachable, or a bug)",
            ["kind"],
            registry=r,
        )
        for kind in ("store", "bug"):  # at 0 from the start: a rule's increase() sees the first
            self.errors.labels(kind)

    def committed(self, source: str, outcomes, seconds: float) -> None:
        counts: dict[str, int] = {}
        dead: dict[str, int] = {}
        for o in outcomes:
            kind = "partial" if o.status == "stored" and o.reason else o.status
            counts[kind] = counts.get(kind, 0) + 1
            if o.status == "dead_letter":
                cls = reason_class(o.reason)
                dead[cls] = dead.get(cls, 0) + 1
        for kind, n in counts.items():
            self.messages.labels(source, kind).inc(n)
        for cls, n in dead.items():
            self.dead_letters.labels(source, cls).inc(n)
        self.batch_seconds.labels(source).observe(seconds)

    def collect_store(self, store, daemon_gauges: dict[str, float]):
        """The families read from the store at scrape time, and the daemon's gauges."""
        out = []
        g = GaugeMetricFamily(
            "modalwatch_alerts_firing", "Alerts firing now", labels=["alertname", "severity"]
        )
        firing: dict[tuple[str, str], int] = {}
        for a in store.alerts.list("firing"):
            key = (a.labels.get("alertname", a.rule), a.labels.get("severity", ""))
            firing[key] = firing.get(key, 0) + 1
        for (name, sev), n in sorted(firing.items()):
            g.add_metric([name, sev], n)
        out.append(g)
        ob = GaugeMetricFamily(
            "modalwatch_outbox_entries",
            "Outbox entries by receiver and status",
            labels=["receiver", "status"],
        )
        fails = GaugeMetricFamily(
            "modalwatch_outbox_failed_attempts",
            "Failed delivery attempts of the outbox's entries, by receiver",
            labels=["receiver"],
        )
        failed: dict[str, int] = {}
        for (receiver, status), (n, f) in sorted(store.alerts.outbox_by_receiver().items()):
            ob.add_metric([receiver, status], n)
            failed[receiver] = failed.get(receiver, 0) + f
        for receiver, f in sorted(failed.items()):
            fails.add_metric([receiver], f)
        out += [ob, fails]
        rv = GaugeMetricFamily("modalwatch_review_items", "Review items by state", labels=["state"])
        for state, n in sorted(store.review.stats()["by_state"].items()):
            rv.add_metric([state], n)
        out.append(rv)
        tr = GaugeMetricFamily(
            "modalwatch_modality_trust",
            "Streams (model version and slice) in each trust state, by modality (GET /v1/trust)",
            labels=["modality", "state"],
        )
        for (modality, state), n in sorted(state_counts(store).items()):
            tr.add_metric([modality, state], n)
        out.append(tr)
        wm = store.events.watermark()
        for name, help_, value in (
            (
                "modalwatch_event_time_watermark_seconds",
                "The latest event time stored (Unix time)",
                wm.timestamp() if wm else float("nan"),
            ),
            *((f"modalwatch_{k}", h, v) for k, (h, v) in daemon_gauges.items()),
        ):
            out.append(GaugeMetricFamily(name, help_, value=value))
        return out

    def render(self, store, daemon_gauges: dict[str, tuple[str, float]]) -> tuple[str, bytes]:
        metrics = self

        class _Store:
            def collect(self):
                return metrics.collect_store(store, daemon_gauges)

        reg = CollectorRegistry(auto_describe=False)
        reg.register(_Store())
        return CONTENT_TYPE_LATEST, generate_latest(self.registry) + generate_latest(reg)
