"""The daemon's web face: the pages on-call opens from a notification, the report, a JSON API and
``/metrics``, on the HTTP port the daemon already serves — its rows of the daemon's one route
table (connectors/http.py applies the tokens, origin checks and headers to every row).

It reads the store on a connection of its own (never the ingest or the evaluation one), from
one request at a time, in a worker thread: a slow page never holds up ingest. Every row reads
(``read``: behind the tokens where tokens are configured) but ``POST /v1/silences``, which
writes (``write``: the ingest tokens).

Routes (every link a receiver's payload carries is one of them):

- ``GET /report`` the latest periodic report (``report.every``), or one built now for the last
  ``report.every`` (7 days when unset) up to the watermark; ``?from=&to=`` (ISO times) builds
  that period's; ``GET /reports/`` the index of periodic reports, ``/reports/<period>/…`` one;
- ``GET /alerts`` the firing incidents and every alert; ``GET /alerts/<fingerprint>`` one alert's
  page; ``GET /incidents/<id>`` one incident (the id its notifications are grouped by);
- ``GET /v1/alerts``, ``/v1/alerts/<fingerprint>``, ``/v1/evaluations?metric=&slice=&signal=
  &model=&from=&to=&limit=`` the same as JSON;
- ``GET /v1/trust?model=&slice=&modality=`` each stream's trust state (monitor/trust.py), for a
  serving system to poll;
- ``POST /v1/silences`` ``{"matchers": {...}, "duration": "4h", "comment": "...", "created_by": ...}``;
- ``GET /metrics`` Prometheus' text format (monitor/metrics.py).
"""

from __future__ import annotations

import json
import logging
import math
import threading
from datetime import datetime, timedelta
from typing import Callable

from monitor import pages
from monitor.core.matchers import check_silence
from monitor.core.settings import EARLIEST, iso_time, parse_duration, parse_time
from monitor.core.web import HTML, JSON, Access, Answer, WebRequest, WebRoute
from monitor.runtime import utcnow

log = logging.getLogger("modalwatch.web")


def routes(face: Callable[[], "WebFace | None"]) -> list[WebRoute]:
    """The web face's rows of the route table, answered by ``face()`` (None while the daemon
    starts, or where its store gives the face no connection of its own)."""

    def row(path: str, name: str, access: Access = "read", methods: tuple[str, ...] = ("GET",)) -> WebRoute:
        def handler(req: WebRequest) -> Answer:
            f = face()
            if f is None:
                return (
                    503,
                    JSON,
                    pages.dumps({"error": "the web face is not open (starting, or no store connection)"}),
                )
            return f.answer(name, req)

        return WebRoute(path, methods, access, handler, name)

    return [
        *(row(p, "alerts_page") for p in ("/", "/index.html", "/alerts", "/alerts/")),
        row("/alerts/{fingerprint}", "alert_page"),
        row("/incidents/{incident}", "incident_page"),
        row("/report", "report_page"),
        row("/report/", "report_page"),
        row("/report.json", "report_json"),
        row("/reports", "reports_index"),
        row("/reports/", "reports_index"),
        *(
            row(p, "stored_report")
            for p in ("/reports/{period}", "/reports/{period}/", "/reports/{period}/report.html")
        ),
        row("/reports/{period}/report.json", "stored_report_json"),
        row("/v1/alerts", "alerts_json"),
        row("/v1/alerts/{fingerprint}", "alert_json"),
        row("/v1/evaluations", "evaluations"),
        row("/v1/trust", "trust"),
        row("/v1/silences", "silence", "write", ("POST",)),
        row("/metrics", "metrics"),
    ]


class Rejected(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class WebFace:
    def __init__(
        self,
        config,
        store,
        metrics: Callable[[object], tuple[str, bytes]] | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.config = config
        self.store = store
        self.metrics = metrics
        self.clock = clock
        self._lock = threading.Lock()  # one request at a time on the face's connection

    def close(self) -> None:
        self.store.close()

    def answer(self, name: str, req: WebRequest) -> Answer:
        """Answer one request with the handler ``name`` (from a worker thread of the server)."""
        try:
            with self._lock:
                try:
                    return getattr(self, "_" + name)(req)
                except self.store.transient_errors as e:
                    self.store.reconnect()
                    raise Rejected(503, f"the store is unreachable ({type(e).__name__}); retry") from None
        except Rejected as r:
            if req.path.startswith("/v1/") or req.path == "/metrics":
                return r.status, JSON, pages.dumps({"error": str(r)})
            return r.status, HTML, pages.error_html(r.status, str(r), nonce=req.nonce).encode()
        except Exception:  # noqa: BLE001 - a page that fails must not take the daemon's face down
            log.exception("%s %s failed", req.method, req.path)
            return 500, JSON, pages.dumps({"error": "internal error; the daemon's log says why"})

    # -- the rows' handlers ----------------------------------------------------------------------
    def _metrics(self, req: WebRequest) -> Answer:
        if self.metrics is None:
            raise Rejected(404, "metrics are not collected by this process")
        return 200, *self.metrics(self.store)

    def _report_page(self, req: WebRequest) -> Answer:
        return 200, HTML, pages.report_html(self._report(req.query), nonce=req.nonce).encode()

    def _report_json(self, req: WebRequest) -> Answer:
        return 200, JSON, pages.dumps(self._report(req.query))

    def _alerts_page(self, req: WebRequest) -> Answer:
        alerts, incidents = self._alerts()
        return 200, HTML, pages.alerts_html(alerts, incidents, nonce=req.nonce).encode()

    def _alerts_json(self, req: WebRequest) -> Answer:
        alerts, incidents = self._alerts()
        return 200, JSON, pages.dumps({"alerts": alerts, "incidents": incidents})

    def _alert_data(self, fingerprint: str) -> dict:
        from monitor import report as rp

        data = rp.alert_page(self.store, self.config, fingerprint)
        if data is None:
            raise Rejected(404, f"no alert with fingerprint {fingerprint!r}")
        return data

    def _alert_page(self, req: WebRequest) -> Answer:
        data = self._alert_data(req.params["fingerprint"])
        return 200, HTML, pages.alert_html(data, nonce=req.nonce).encode()

    def _alert_json(self, req: WebRequest) -> Answer:
        return 200, JSON, pages.dumps(self._alert_data(req.params["fingerprint"]))

    def _incident_page(self, req: WebRequest) -> Answer:
        from monitor import report as rp

        data = rp.incident_page(self.store, self.config, req.params["incident"])
        if data is None:
            raise Rejected(
                404,
                f"no incident {req.params['incident']!r}"
                " (an incident's id is its notifications' `incident` label)",
            )
        return 200, HTML, pages.incident_html(data, nonce=req.nonce).encode()

    def _reports_index(self, req: WebRequest) -> Answer:
        from monitor.periodic import index_entries

        return 200, HTML, pages.index_html(index_entries(self.store), nonce=req.nonce).encode()

    def _stored(self, period: str) -> dict:
        from monitor.periodic import stored_report

        report = stored_report(self.store, period)
        if report is None:
            raise Rejected(404, f"no report {period!r} (GET /reports/ lists them)")
        return report

    def _stored_report(self, req: WebRequest) -> Answer:
        return 200, HTML, pages.report_html(self._stored(req.params["period"]), nonce=req.nonce).encode()

    def _stored_report_json(self, req: WebRequest) -> Answer:
        return 200, JSON, pages.dumps(self._stored(req.params["period"]))

    def _evaluations(self, req: WebRequest) -> Answer:
        return 200, JSON, pages.dumps(self._evaluation_rows(req.query))

    def _silence(self, req: WebRequest) -> Answer:
        return 200, JSON, pages.dumps(self._add_silence(req.body))

    def _trust(self, req: WebRequest) -> Answer:
        from monitor.trust import trust_now

        params = req.query
        unknown = set(params) - {"model", "slice", "modality"}
        if unknown:
            raise Rejected(400, f"unknown parameters: {sorted(unknown)} (model, slice, modality)")
        trust = trust_now(
            self.store,
            self.config,
            model=params.get("model"),
            slice_=params.get("slice"),
            modality=params.get("modality"),
        )
        return 200, JSON, pages.dumps(trust)

    def _alerts(self) -> tuple[list[dict], list[dict]]:
        from monitor import report as rp

        ev = rp.Evidence(self.store, self.config, None, None)
        incidents = rp.incidents_of(ev, states=("firing",))
        ids = rp.ids_by_key(self.store, incidents)
        alerts = [rp.alert_summary(a) for a in self.store.alerts.list()]
        # the incidents fold the firing episodes: their keys are fingerprint@start
        by_ep = {a.dedup_key + "@" + (iso_time(a.starts_at) or ""): rp.alert_summary(a) for a in ev.episodes}
        listed = {a["fingerprint"] + "@" + (a["starts_at"] or ""): a for a in alerts}
        alerts += [a for k, a in by_ep.items() if k not in listed and a["state"] == "firing"]
        order = {"firing": 0, "pending": 1, "resolved": 2, "cleared": 3}
        alerts.sort(key=lambda a: (order.get(a["state"], 9), a["starts_at"] or "", a["fingerprint"]))
        return alerts, [rp.incident_summary(ev, i, ids) for i in incidents]

    def _period(self, params: dict) -> tuple[datetime, datetime]:
        def when(key: str) -> datetime | None:
            if not params.get(key):
                return None
            try:  # a '+' of an offset arrives as a space where the query was not encoded
                return parse_time(params[key].replace(" ", "+"))
            except ValueError as e:
                raise Rejected(400, f"{key}: {e}") from None

        end = when("to") or self.store.events.watermark() or self.clock()
        start = when("from") or max(end - (self.config.report.every or timedelta(days=7)), EARLIEST)
        if start >= end:
            raise Rejected(400, "from must be before to")
        return start, end

    def _report(self, params: dict) -> dict:
        from monitor.periodic import latest_report
        from monitor.report import build_report

        if not params:
            latest = latest_report(self.store)
            if latest is not None:
                return latest
        start, end = self._period(params)
        return build_report(self.store, self.config, start, end, self.clock())

    def _evaluation_rows(self, params: dict) -> dict:
        unknown = set(params) - {"metric", "slice", "signal", "model", "from", "to", "limit"}
        if unknown:
            raise Rejected(
                400, f"unknown parameters: {sorted(unknown)} (metric, slice, signal, model, from, to, limit)"
            )
        try:
            limit = int(params.get("limit") or 1000)
        except ValueError:
            raise Rejected(400, "limit: not a number") from None
        if not 1 <= limit <= 100_000:
            raise Rejected(400, "limit: between 1 and 100000")
        start, end = (None, None)
        if params.get("from") or params.get("to"):
            start, end = self._period(params)
        f = self.store.evaluations.frame(start, end)
        for col, key in (
            ("metric", "metric"),
            ("slice", "slice"),
            ("signal", "signal"),
            ("model_name", "model"),
        ):
            if key in params:
                f = f[f[col] == params[key]]
        f = f.tail(limit)
        rows = []
        for r in f.to_dict("records"):
            rows.append(
                {
                    k: (
                        v.isoformat()
                        if isinstance(v, datetime)
                        else None
                        if isinstance(v, float) and not math.isfinite(v)
                        else v
                    )
                    for k, v in r.items()
                }
            )
        return {"rows": rows, "count": len(rows), "truncated": len(rows) == limit}

    def _add_silence(self, body: bytes) -> dict:
        try:
            doc = json.loads(body or b"{}")
        except ValueError as e:
            raise Rejected(400, f"malformed JSON: {e}") from None
        if not isinstance(doc, dict):
            raise Rejected(400, "the body must be a JSON object")
        matchers = doc.get("matchers")
        if (
            not isinstance(matchers, dict)
            or not matchers
            or not all(isinstance(v, str) for v in matchers.values())
        ):
            raise Rejected(
                400, 'matchers: an object of label: value (or "~regex"), e.g. {"alertname": "SignalDrift"}'
            )
        comment = doc.get("comment")
        if not isinstance(comment, str) or not comment.strip():
            raise Rejected(400, "comment: say why (it is shown with the silence)")
        try:
            duration = parse_duration(str(doc.get("duration", "")))
        except ValueError as e:
            raise Rejected(400, f"duration: {e}") from None
        try:
            check_silence(matchers, duration)
        except ValueError as e:
            raise Rejected(400, str(e)) from None
        now = self.clock()
        with self.store.tx():
            sid = self.store.alerts.add_silence(
                matchers, now, now + duration, str(doc.get("created_by") or "api"), comment, now
            )
        return {
            "id": sid,
            "starts_at": now.isoformat(),
            "ends_at": (now + duration).isoformat(),
            "matchers": matchers,
        }
