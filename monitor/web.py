"""The daemon's web face: the pages on-call opens from a notification, the report, a JSON API and
``/metrics``, on the HTTP port the daemon already serves (connectors/http.py routes to it).

It reads the store on a connection of its own (never the ingest or the evaluation one), from
one request at a time, in a worker thread: a slow page never holds up ingest. The one writing
endpoint, ``POST /v1/silences``, sits behind the ingest tokens (the HTTP source checks them).

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
import re
import threading
from datetime import datetime, timedelta
from typing import Callable
from urllib.parse import parse_qs, unquote

from monitor import pages
from monitor.core.settings import iso_time
from monitor.runtime import utcnow

log = logging.getLogger("modalwatch.web")

Answer = tuple[int, str, bytes]  # status, content type, body
HTML = "text/html; charset=utf-8"
JSON = "application/json"

# the paths this face answers (the HTTP source sends these here and nothing else)
PREFIXES = (
    "/index.html",
    "/report",
    "/reports",
    "/alerts",
    "/incidents",
    "/v1/alerts",
    "/v1/evaluations",
    "/v1/trust",
    "/v1/silences",
    "/metrics",
)


def serves(path: str) -> bool:
    return path == "/" or any(
        path == p or path.startswith(p + "/") or path.startswith(p + "?") for p in PREFIXES
    )


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

    def handle(self, method: str, path: str, query: str, body: bytes = b"") -> Answer:
        """Answer one request (from a worker thread of the HTTP server)."""
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        try:
            with self._lock:
                try:
                    if path == "/metrics" and method == "GET":
                        if self.metrics is None:
                            raise Rejected(404, "metrics are not collected by this process")
                        return 200, *self.metrics(self.store)
                    return self._route(method, path, params, body)
                except self.store.transient_errors as e:
                    self.store.reconnect()
                    raise Rejected(503, f"the store is unreachable ({type(e).__name__}); retry") from None
        except Rejected as r:
            if path.startswith("/v1/"):
                return r.status, JSON, pages.dumps({"error": str(r)})
            return r.status, HTML, pages.error_html(r.status, str(r)).encode()
        except Exception:  # noqa: BLE001 - a page that fails must not take the daemon's face down
            log.exception("%s %s failed", method, path)
            return 500, JSON, pages.dumps({"error": "internal error; the daemon's log says why"})

    # -- routing -------------------------------------------------------------------------------
    def _route(self, method: str, path: str, params: dict, body: bytes) -> Answer:
        from monitor import report as rp

        if method == "POST":
            if path == "/v1/silences":
                return 200, JSON, pages.dumps(self._silence(body))
            raise Rejected(405, f"POST {path}: only POST /v1/silences writes here")
        if method != "GET":
            raise Rejected(405, f"{method} {path}: use GET")
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if path in ("/report", "/report/"):
            return 200, HTML, pages.report_html(self._report(params)).encode()
        if path == "/report.json":
            return 200, JSON, pages.dumps(self._report(params))
        if parts[0] == "reports":
            return self._reports(parts[1:])
        if path in ("/", "/index.html", "/alerts", "/alerts/"):
            alerts, incidents = self._alerts()
            return 200, HTML, pages.alerts_html(alerts, incidents).encode()
        if parts[0] == "alerts" and len(parts) == 2:
            data = rp.alert_page(self.store, self.config, parts[1])
            if data is None:
                raise Rejected(404, f"no alert with fingerprint {parts[1]!r}")
            return 200, HTML, pages.alert_html(data).encode()
        if parts[0] == "incidents" and len(parts) == 2:
            data = rp.incident_page(self.store, self.config, parts[1])
            if data is None:
                raise Rejected(
                    404, f"no incident {parts[1]!r} (an incident's id is its notifications' `incident` label)"
                )
            return 200, HTML, pages.incident_html(data).encode()
        if parts[:2] == ["v1", "alerts"]:
            if len(parts) == 2:
                alerts, incidents = self._alerts()
                return 200, JSON, pages.dumps({"alerts": alerts, "incidents": incidents})
            if len(parts) == 3:
                data = rp.alert_page(self.store, self.config, parts[2])
                if data is None:
                    raise Rejected(404, f"no alert with fingerprint {parts[2]!r}")
                return 200, JSON, pages.dumps(data)
        if path == "/v1/evaluations":
            return 200, JSON, pages.dumps(self._evaluations(params))
        if path == "/v1/trust":
            return 200, JSON, pages.dumps(self._trust(params))
        raise Rejected(404, f"no such page: {path}")

    def _trust(self, params: dict) -> dict:
        from monitor.trust import trust_now

        unknown = set(params) - {"model", "slice", "modality"}
        if unknown:
            raise Rejected(400, f"unknown parameters: {sorted(unknown)} (model, slice, modality)")
        return trust_now(
            self.store,
            self.config,
            model=params.get("model"),
            slice_=params.get("slice"),
            modality=params.get("modality"),
        )

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
            try:
                t = datetime.fromisoformat(params[key].replace("Z", "+00:00").replace(" ", "+"))
            except ValueError:
                raise Rejected(400, f"{key}: not an ISO time: {params[key]!r}") from None
            if t.tzinfo is None:
                raise Rejected(400, f"{key}: give a time zone (e.g. {params[key]}Z)")
            return t

        end = when("to") or self.store.events.watermark() or self.clock()
        start = when("from") or end - (self.config.report.every or timedelta(days=7))
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

    def _reports(self, rest: list[str]) -> Answer:
        from monitor.periodic import index_entries, stored_report

        if not rest or rest == [""]:
            return 200, HTML, pages.index_html(index_entries(self.store)).encode()
        if len(rest) > 2 or (len(rest) == 2 and rest[1] not in ("report.html", "report.json", "")):
            raise Rejected(404, "no such report page (/reports/<period>/report.html or report.json)")
        report = stored_report(self.store, rest[0])
        if report is None:
            raise Rejected(404, f"no report {rest[0]!r} (GET /reports/ lists them)")
        if len(rest) == 2 and rest[1] == "report.json":
            return 200, JSON, pages.dumps(report)
        return 200, HTML, pages.report_html(report).encode()

    def _evaluations(self, params: dict) -> dict:
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

    def _silence(self, body: bytes) -> dict:
        from monitor.core.settings import parse_duration

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
        for k, v in matchers.items():
            if v.startswith("~"):
                try:
                    re.compile(v[1:])
                except re.error as e:
                    raise Rejected(400, f"matchers.{k}: bad regex: {e}") from None
        comment = doc.get("comment")
        if not isinstance(comment, str) or not comment.strip():
            raise Rejected(400, "comment: say why (it is shown with the silence)")
        try:
            duration = parse_duration(str(doc.get("duration", "")))
        except ValueError as e:
            raise Rejected(400, f"duration: {e}") from None
        if duration <= timedelta(0):
            raise Rejected(400, "duration: must be positive, e.g. 4h")
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
