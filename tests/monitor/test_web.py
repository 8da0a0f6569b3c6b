"""The daemon's web face (issue 16), as on-call and operators meet it: every link a notification
carries opens its page on a running daemon; the report and an alert page render in headless
Chromium without a request leaving the page; the JSON API and its errors; silences behind the
ingest tokens; ``/metrics`` against ``modalwatch status``."""

import base64
import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections import defaultdict

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.browser import load
from tests.conftest import ROOT, free_port, modalwatch_cmd, run_daemon
from tests.helpers import T0, http_json, inference, label
from tests.monitor.test_demo import sent

DEMO_BASE = "http://127.0.0.1:8787"  # the demo's alerts.external_url: what its links carry


def _get(url: str, headers: dict | None = None, body: bytes | None = None) -> tuple[int, str, bytes]:
    req = urllib.request.Request(url, data=body, headers=headers or {}, method="POST" if body else "GET")
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def _start(tmp_path, name: str, config: str):
    cfg = tmp_path / f"{name}.yaml"
    cfg.write_text(config)
    log = open(tmp_path / f"{name}.log", "wb")
    proc = run_daemon(cfg, log)
    port = int(re.search(r"port: (\d+)", config).group(1))
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if http_json(url + "/readyz", timeout=2)[0] == 200:
                return proc, log, url
        except OSError:
            pass
        assert proc.poll() is None, (tmp_path / f"{name}.log").read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError("the daemon did not become ready: " + (tmp_path / f"{name}.log").read_text()[-3000:])


def _stop(proc, log) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def demo_daemon(demo_out, tmp_path_factory):
    """`modalwatch run` on the demo's store, its HTTP face on a free port."""
    tmp = tmp_path_factory.mktemp("web")
    proc, log, url = _start(
        tmp,
        "demo",
        f"store: {{kind: sqlite, path: {demo_out / 'modalwatch.db'}}}\n"
        f"ingest: {{http: {{port: {free_port()}}}}}\n",
    )
    yield url
    _stop(proc, log)


def test_every_link_in_every_notification_the_demo_sent_opens_its_page(demo_out, demo_daemon):
    by_kind = {}
    for kind in ("/hook", "/hook/slack", "/hook/alertmanager", "/hook/pagerduty"):
        payloads = [g["payload"] for g in sent(demo_out, kind)]
        assert payloads, f"the demo told its {kind} receiver nothing"
        by_kind[kind] = {u for p in payloads for u in re.findall(r'https?://[^"\s]+', json.dumps(p))}
    # what each kind carries: the alerts' pages, the incident's page and the report (Slack)
    assert all(any("/alerts/" in u for u in urls) for k, urls in by_kind.items() if k != "/hook/slack")
    assert any("/incidents/" in u for u in by_kind["/hook/slack"])
    assert any(u.endswith("/report") for u in by_kind["/hook/slack"])
    labels_of = defaultdict(dict)  # fingerprint → labels, from the Alertmanager payloads
    for g in sent(demo_out, "/hook/alertmanager"):
        for a in g["payload"]["alerts"]:
            labels_of[a["fingerprint"]] = a["labels"]
    urls = set().union(*by_kind.values())
    assert len(urls) > 50
    for u in sorted(urls):
        assert u.startswith(DEMO_BASE), u
        status, ctype, body = _get(demo_daemon + u[len(DEMO_BASE) :])
        assert status == 200, (u, body[:300])
        assert ctype.startswith("text/html"), (u, ctype)
        page = body.decode()
        m = re.search(r"/alerts/([0-9a-f]+)$", u)
        if m:  # the alert's own page: its rule, its slice, its evidence and how to silence it
            lab = labels_of[m.group(1)]
            assert f"{lab['alertname']} [{lab['slice']}" in page, u
            assert "Evidence" in page and "modalwatch silence add" in page
        if "/incidents/" in u:
            assert "<h1>Incident inc-" in page and "grouped because" in page


def _charts(html: str) -> int:
    return len(re.findall(r'<div id="chart-\d+"', html))


def test_the_report_and_an_alert_page_render_in_chromium_with_no_request(demo_out, demo_daemon, tmp_path):
    report = (demo_out / "report.html").read_text()
    n = _charts(report)
    assert n >= 12  # incidents' evidence: rates, calibration, reliability, heatmap, distributions …
    got = load((demo_out / "report.html").as_uri(), tmp_path / "report.png", height=6000)
    assert got.console == [] and got.requests == []
    rendered = re.findall(r'<div id="chart-\d+" class="plotly-graph-div js-plotly-plot"', got.dom)
    assert len(rendered) == n  # every chart drawn by Plotly …
    assert len(re.findall(r'<svg class="main-svg"', got.dom)) >= n  # … as SVG
    assert len(re.findall(r'class="(trace|hm)\b', got.dom)) >= n  # with data in each
    # an alert's page, from the daemon: the page itself is its only request
    status, _, body = _get(demo_daemon + "/v1/alerts")
    alerts = json.loads(body)["alerts"]
    fp = next(a["fingerprint"] for a in alerts if a["rule"] == "SignalDrift" and a["state"] == "firing")
    url = f"{demo_daemon}/alerts/{fp}"
    page = _get(url)[2].decode()
    got = load(url, tmp_path / "alert.png", allow=demo_daemon)
    assert got.requests == [url] and got.console == []
    assert len(re.findall(r'class="plotly-graph-div js-plotly-plot"', got.dom)) == _charts(page) >= 3
    assert (tmp_path / "report.png").stat().st_size > 50_000 and (
        tmp_path / "alert.png"
    ).stat().st_size > 20_000


def test_the_json_api_and_its_errors(demo_daemon):
    status, listing = http_json(demo_daemon + "/v1/alerts")
    assert status == 200 and len(listing["incidents"]) == 4  # the demo's four causes
    firing = [a for a in listing["alerts"] if a["state"] == "firing"]
    assert firing and all({"fingerprint", "labels", "annotations", "starts_at"} <= set(a) for a in firing)
    status, one = http_json(f"{demo_daemon}/v1/alerts/{firing[0]['fingerprint']}")
    assert status == 200 and one["alert"]["fingerprint"] == firing[0]["fingerprint"] and one["rows"]
    assert one["silence"]["cli"].startswith("modalwatch silence add -m alertname=")
    status, ev = http_json(demo_daemon + "/v1/evaluations?metric=error_rate&slice=*")
    assert status == 200 and ev["count"] == 20  # one row per window of the 21 days after the first
    assert {r["metric"] for r in ev["rows"]} == {"error_rate"} and all(
        r["ci_low"] <= r["value"] for r in ev["rows"]
    )
    # errors say why, in the form asked for
    assert http_json(demo_daemon + "/v1/evaluations?metrik=x") == (
        400,
        {"error": "unknown parameters: ['metrik'] (metric, slice, signal, model, from, to, limit)"},
    )
    assert http_json(demo_daemon + "/v1/alerts/nope")[0] == 404
    status, ctype, body = _get(demo_daemon + "/alerts/nope")
    assert status == 404 and ctype.startswith("text/html") and b"no alert with fingerprint" in body
    status, _, body = _get(demo_daemon + "/report?from=yesterday")
    assert status == 400 and b"from: not an ISO time" in body
    status, _, body = _get(demo_daemon + "/report?from=2026-03-09T00:00:00Z&to=2026-03-16T00:00:00Z")
    assert status == 200 and b"Event time 2026-03-09T00:00:00+00:00 to 2026-03-16" in body
    status, _, body = _get(demo_daemon + "/reports/")  # no periodic report configured
    assert status == 200 and b"report.every" in body
    assert _get(demo_daemon + "/")[0] == 200 and _get(demo_daemon + "/metrics")[0] == 200


def test_silences_are_written_only_with_a_token_and_pages_read_with_one(tmp_path):
    """``auth: required``: a silence needs a write token; the pages, the JSON API and /metrics a
    write or a read token (Bearer, or Basic's password, which a browser asks for); health stays
    open (issue 24: every read answered 200 without a token)."""
    port = free_port()
    cfg = (
        f"store: {{kind: sqlite, path: {tmp_path / 'mw.db'}}}\n"
        f"ingest: {{http: {{port: {port}, auth: required, tokens: [s3cret-token-for-the-test],"
        " read_tokens: [read-only-token-for-the-test]}}\n"
    )
    proc, log, url = _start(tmp_path, "auth", cfg)
    try:
        body = json.dumps({"matchers": {"alertname": "SignalDrift"}, "duration": "2h", "comment": "mic swap"})
        status, _, answer = _get(url + "/v1/silences", {"Content-Type": "application/json"}, body.encode())
        assert status == 401 and b"bearer token" in answer
        auth = {"Authorization": "Bearer s3cret-token-for-the-test", "Content-Type": "application/json"}
        status, _, answer = _get(url + "/v1/silences", auth, b'{"matchers": {}}')
        assert status == 400 and b"matchers" in answer
        status, _, answer = _get(url + "/v1/silences", auth, body.encode())
        assert status == 200 and json.loads(answer)["matchers"] == {"alertname": "SignalDrift"}
        reader = {"Authorization": "Bearer read-only-token-for-the-test", "Content-Type": "application/json"}
        assert _get(url + "/v1/silences", reader, body.encode())[0] == 401  # a read token writes nothing
        basic = "Basic " + base64.b64encode(b"oncall:read-only-token-for-the-test").decode()
        for path in (
            "/alerts",
            "/report",
            "/reports/",
            "/v1/alerts",
            "/v1/evaluations",
            "/v1/trust",
            "/metrics",
        ):
            status, _, answer = _get(url + path)
            assert status == 401 and b"token is required" in answer, path
            assert _get(url + path, {"Authorization": "Bearer nope-nope-nope-nope"})[0] == 401
            assert _get(url + path, {"Authorization": reader["Authorization"]})[0] == 200, path
            assert _get(url + path, {"Authorization": auth["Authorization"]})[0] == 200, path
            assert _get(url + path, {"Authorization": basic})[0] == 200, path
        for path in ("/livez", "/healthz", "/readyz", "/v1/status"):
            assert _get(url + path)[0] == 200, path
        # a browser is asked for the token (Basic), an API client told it takes a bearer token
        req = urllib.request.Request(url + "/alerts")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=30)
        assert "Basic realm=" in err.value.headers["WWW-Authenticate"]
        assert "Bearer realm=" in err.value.headers["WWW-Authenticate"]
    finally:
        _stop(proc, log)
    (tmp_path / "cli.yaml").write_text(f"store: {{kind: sqlite, path: {tmp_path / 'mw.db'}}}\n")
    listed = subprocess.run(
        modalwatch_cmd() + ["silence", "list", "--json", "--config", str(tmp_path / "cli.yaml")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    rows = [json.loads(x) for x in listed.stdout.splitlines()]
    assert [(r["matchers"], r["comment"]) for r in rows] == [({"alertname": "SignalDrift"}, "mic swap")]


def _scrape(url: str) -> dict[tuple, float]:
    status, ctype, body = _get(url + "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    out = {}
    for fam in text_string_to_metric_families(body.decode()):
        assert fam.name.startswith("modalwatch_"), fam.name
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _total(samples: dict, name: str, **labels) -> float:
    return sum(
        v
        for (n, lab), v in samples.items()
        if n == name and all(dict(lab).get(k) == x for k, x in labels.items())
    )


def _post_traffic(url: str) -> None:
    events = [inference(i, ts=T0) for i in range(40)]
    bad = [b'{"type": "inference"', b'{"type": "inference", "event_id": "x"}', b"1"]
    assert http_json(url + "/v1/events", json.dumps(events).encode())[0] == 200
    for b in bad:
        assert http_json(url + "/v1/events", b)[0] == 400
    assert http_json(url + "/v1/labels", json.dumps([label(i, ts=T0) for i in range(10)]).encode())[0] == 200


def _status(cfg_path) -> dict:
    proc = subprocess.run(
        modalwatch_cmd() + ["status", "--json", "--config", str(cfg_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("workers", [0, 2])
def test_metrics_parse_and_count_what_status_counts(tmp_path, workers, pg_url):
    """Counters of ingest against the store's own counts; with ``ingest.workers`` the worker
    processes store the batches, and their counts reach the daemon's ``/metrics`` all the same."""
    port = free_port()
    store = (
        f"{{kind: postgres, url: '{pg_url}'}}" if workers else f"{{kind: sqlite, path: {tmp_path / 'mw.db'}}}"
    )
    cfg = f"store: {store}\ningest: {{workers: {workers}, http: {{port: {port}}}}}\n"
    proc, log, url = _start(tmp_path, "metrics", cfg)
    try:
        _post_traffic(url)
        samples = _scrape(url)
    finally:
        _stop(proc, log)
    st = _status(tmp_path / "metrics.yaml")
    assert st["events"] == 40 and st["dead_letters"] == 3
    ingested = _total(samples, "modalwatch_messages_total", source="http")
    stored = _total(samples, "modalwatch_messages_total", outcome="stored")
    assert ingested == 40 + 3 + 10 and stored == st["events"] + st["labels"]
    assert _total(samples, "modalwatch_dead_letters_total") == st["dead_letters"]
    assert _total(samples, "modalwatch_dead_letters_total", reason="malformed_json") == 1
    assert _total(samples, "modalwatch_dead_letters_total", reason="schema") == 2
    assert _total(samples, "modalwatch_batch_duration_seconds_count", source="http") >= 5
    assert samples[("modalwatch_ready", ())] == 1.0
    # bounded labels: no event id or slice value is a label
    assert all(k not in ("event_id", "slice") for _, lab in samples for k, _v in lab)
