"""The HTTP face against a hostile web page and a hostile client (issue 24), on the default
config (loopback, no tokens): a page of another site can neither write (CSRF: text/plain, form
and multipart bodies, a foreign Origin, a cross-site fetch) nor read through a re-bound host name;
every answer carries its security headers and a page's scripts run only with the header's nonce;
HEAD and OPTIONS are answered; bad dates and durations are 400s; an empty body and a body that
never comes each get an answer (and the first its dead letter)."""

import http.client
import json
import re
import threading
import time

import pytest

from connectors.http import HttpLimits, HttpSource
from connectors.sqlite import SqliteStore
from monitor.config import Config
from monitor.daemon import Daemon
from monitor.web import routes
from tests.helpers import inference

SILENCE = json.dumps({"matchers": {"alertname": "~.*"}, "duration": "10000h", "comment": "x"}).encode()


@pytest.fixture
def served(tmp_path):
    """A daemon on the default config's HTTP rules (loopback, no tokens), its web face open."""
    store = SqliteStore(tmp_path / "mw.db")
    d: Daemon | None = None
    src = HttpSource(
        "127.0.0.1",
        0,
        1 << 20,
        routes=routes(lambda: d.web if d else None),
        limits=HttpLimits(body_timeout_s=1),
    )
    d = Daemon(Config(), [src], store, {})
    t = threading.Thread(target=d.run, daemon=True)
    t.start()
    deadline = time.time() + 30
    while d.web is None and time.time() < deadline:
        time.sleep(0.05)
    reader = SqliteStore(tmp_path / "mw.db")
    yield src.port, reader
    d.should_exit = True
    t.join(10)
    reader.close()
    store.close()


def _ask(port, method, path, body=None, headers=None, host=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = dict(headers or {})
    if host:
        h["Host"] = host
    conn.request(method, path, body, h)
    r = conn.getresponse()
    out = r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    conn.close()
    return out


@pytest.mark.parametrize(
    "headers",
    [
        {"Content-Type": "text/plain", "Origin": "http://evil.example"},  # what a page's form or fetch sends
        {"Content-Type": "application/x-www-form-urlencoded", "Origin": "http://evil.example"},
        {"Content-Type": "multipart/form-data; boundary=x", "Origin": "http://evil.example"},
        {"Origin": "http://evil.example"},  # no Content-Type at all (a Blob without a type)
        {"Content-Type": "text/plain"},  # no Origin either: still a request a page can send
    ],
)
def test_a_web_page_cannot_silence_or_ingest(served, headers):
    port, store = served
    for path, body in (("/v1/silences", SILENCE), ("/v1/events", json.dumps(inference(1)).encode())):
        status, _, answer = _ask(port, "POST", path, body, headers)
        assert status == 415 and b"Content-Type" in answer, (path, headers, answer)
    assert store.alerts.silences(active_at=None) == [] and store.ops.counts()["events"] == 0


def test_json_from_another_origin_or_site_is_refused_and_from_a_client_taken(served):
    port, store = served
    json_ = {"Content-Type": "application/json"}
    status, _, answer = _ask(
        port, "POST", "/v1/silences", SILENCE, {**json_, "Origin": "http://evil.example"}
    )
    assert status == 403 and b"Origin" in answer
    status, _, _ = _ask(port, "POST", "/v1/silences", SILENCE, {**json_, "Sec-Fetch-Site": "cross-site"})
    assert status == 403
    assert store.alerts.silences(active_at=None) == []
    # a client (curl, a producer) sends JSON and no Origin; the daemon's own origin is fine too
    ok = json.dumps({"matchers": {"alertname": "X"}, "duration": "1h", "comment": "deploy"}).encode()
    assert _ask(port, "POST", "/v1/silences", ok, json_)[0] == 200
    own = {**json_, "Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}
    assert _ask(port, "POST", "/v1/silences", ok, own)[0] == 200
    assert len(store.alerts.silences(active_at=None)) == 2


def test_a_re_bound_host_name_reads_nothing(served):
    port, _ = served
    status, _, answer = _ask(port, "GET", "/v1/alerts", host=f"evil.example:{port}")
    assert status == 421 and b"not served here" in answer
    assert _ask(port, "GET", "/v1/alerts", host=f"localhost:{port}")[0] == 200
    assert _ask(port, "GET", "/v1/alerts", host=f"[::1]:{port}")[0] == 200


def test_every_answer_carries_its_headers_and_scripts_run_only_with_the_nonce(served):
    port, _ = served
    for path in ("/livez", "/alerts", "/v1/alerts", "/nope", "/metrics", "/report"):
        status, h, body = _ask(port, "GET", path)
        assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY", path
        assert h["referrer-policy"] == "no-referrer" and h["cache-control"] == "no-store", path
        assert "frame-ancestors 'none'" in h["content-security-policy"], path
        if h["content-type"].startswith("text/html"):
            nonce = re.search(r"'nonce-([^']+)'", h["content-security-policy"]).group(1)
            assert "unsafe-inline" not in h["content-security-policy"].split("script-src")[1].split(";")[0]
            scripts = re.findall(rb"<script[^>]*>", body)
            assert all(f'nonce="{nonce}"'.encode() in s for s in scripts), (path, scripts[:3])
    # a new nonce for each answer
    a = _ask(port, "GET", "/alerts")[1]["content-security-policy"]
    assert a != _ask(port, "GET", "/alerts")[1]["content-security-policy"]


def test_head_and_options_are_answered(served):
    port, _ = served
    status, h, body = _ask(port, "HEAD", "/alerts")
    assert status == 200 and body == b"" and h["content-type"].startswith("text/html")
    assert _ask(port, "HEAD", "/livez")[0] == 200
    status, h, _ = _ask(port, "OPTIONS", "/v1/silences", headers={"Origin": "http://evil.example"})
    assert status == 204 and h["allow"] == "POST, OPTIONS"
    assert "access-control-allow-origin" not in h  # no cross-origin request is ever allowed
    assert _ask(port, "OPTIONS", "/nope")[0] == 404
    status, h, answer = _ask(port, "DELETE", "/v1/events")
    assert status == 405 and h["allow"] == "POST" and b"not allowed" in answer


@pytest.mark.parametrize(
    "path",
    [
        "/report?to=0001-01-01T00:00:00Z",
        "/report?from=0001-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        "/v1/evaluations?to=0001-01-01T00:00:00Z",
        "/v1/evaluations?from=9999-12-31T23:59:59Z",
        "/report.json?to=2026-01-01T00:00:00-23:59",
    ],
)
def test_dates_out_of_range_are_400s(served, path):
    port, _ = served
    status, _, answer = _ask(port, "GET", path)
    assert status in (200, 400) and status != 500, answer
    if "0001" in path or "9999" in path:
        assert status == 400 and b"outside 1970" in answer


@pytest.mark.parametrize("duration", ["100000000d", "99999999999999999999w", "400d", "0s", "-1h", "nan"])
def test_a_silence_duration_out_of_range_is_a_400(served, duration):
    port, store = served
    body = json.dumps({"matchers": {"alertname": "X"}, "duration": duration, "comment": "x"}).encode()
    status, _, answer = _ask(port, "POST", "/v1/silences", body, {"Content-Type": "application/json"})
    assert status == 400 and b"duration" in answer
    assert store.alerts.silences(active_at=None) == []


def test_an_empty_body_gets_its_dead_letter(served):
    port, store = served
    for body in (b"", b"   ", b"[]"):
        status, _, answer = _ask(port, "POST", "/v1/events", body, {"Content-Type": "application/json"})
        answer = json.loads(answer)
        assert status == 400 and answer["rejected"][0]["reason"] in ("empty body", "empty array")
    letters = store.ops.dead_letters()
    assert len(letters) == 3 and {d.reason for d in letters} == {"empty body", "empty array"}


def test_a_body_shorter_than_its_length_is_answered_408(served):
    port, store = served
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("POST", "/v1/events")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", "1000")
    conn.endheaders()
    conn.send(b'{"type": "inference"')  # and nothing more
    started = time.monotonic()
    r = conn.getresponse()
    assert r.status == 408 and b"did not arrive" in r.read() and time.monotonic() - started < 10
    conn.close()
    assert _ask(port, "GET", "/livez")[0] == 200
