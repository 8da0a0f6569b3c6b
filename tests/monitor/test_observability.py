"""docker/: the Prometheus alert rules on the daemon, the scrape config and the Grafana dashboard
(issue 16) name metrics a running daemon exposes and columns the database has: every PromQL
expression parses and names only exposed series; every SQL query runs on a real TimescaleDB
store with evaluation rows in it and returns them."""

import json
import re
import urllib.request
from datetime import timedelta

import promql_parser
import psycopg
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from monitor.core.records import EvaluationRow
from tests.conftest import ROOT, free_port
from tests.helpers import T0
from tests.monitor.test_web import _post_traffic, _scrape, _start, _stop

DOCKER = ROOT / "docker"
BUILTIN = {"up"}  # what Prometheus itself records per target


@pytest.fixture(scope="module")
def exposed(tmp_path_factory) -> set[str]:
    """The metric names a daemon's /metrics serves after some traffic: its families (a gauge of
    alerts firing is there with no alert firing) and their samples' names (``_total``,
    ``_bucket`` …)."""
    tmp = tmp_path_factory.mktemp("scrape")
    proc, log, url = _start(
        tmp,
        "scrape",
        f"store: {{kind: sqlite, path: {tmp / 'mw.db'}}}\ningest: {{http: {{port: {free_port()}}}}}\n",
    )
    try:
        _post_traffic(url)
        samples = {name for name, _ in _scrape(url)}
        with urllib.request.urlopen(url + "/metrics", timeout=60) as r:
            families = {f.name for f in text_string_to_metric_families(r.read().decode())}
        return samples | families
    finally:
        _stop(proc, log)


def _metric_names(expr: str) -> set[str]:
    promql_parser.parse(expr)  # raises on a syntax error
    return set(re.findall(r"\b(modalwatch_[a-z_]+|up)\b(?!\s*\()", expr))


def test_the_alert_rules_parse_and_name_exposed_metrics(exposed):
    rules = yaml.safe_load((DOCKER / "prometheus" / "alerts.yml").read_text())["groups"][0]["rules"]
    names = {r["alert"] for r in rules}
    # the daemon itself: down, not ingesting, outbox stuck, vintages behind
    assert {
        "ModalwatchDown",
        "ModalwatchNotIngesting",
        "ModalwatchOutboxStuck",
        "ModalwatchVintagesBehind",
    } <= names
    for r in rules:
        used = _metric_names(r["expr"])
        assert used and used <= exposed | BUILTIN, (r["alert"], used - exposed)
        assert r["labels"]["severity"] in ("critical", "warning") and r["annotations"]["summary"]
        assert re.fullmatch(r"\d+[smh]", r["for"])


def test_prometheus_scrapes_the_daemon_compose_runs():
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    prom = yaml.safe_load((DOCKER / "prometheus" / "prometheus.yml").read_text())
    job = next(j for j in prom["scrape_configs"] if j["job_name"] == "modalwatch")
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == ["modalwatch:8787"]
    assert "8787:8787" in compose["services"]["modalwatch"]["ports"]
    # /metrics reads behind the daemon's token: Prometheus sends the one the daemon takes
    secret = job["authorization"]["credentials_file"].rsplit("/", 1)[1]
    assert job["authorization"]["credentials_file"] == f"/run/secrets/{secret}"
    assert secret in compose["services"]["prometheus"]["secrets"]
    token_env = compose["secrets"][secret]["environment"]
    assert token_env in compose["services"]["modalwatch"]["environment"]
    assert f"${{{token_env}}}" in (ROOT / "config" / "production.yaml").read_text()
    mounts = {m.split(":")[1]: m.split(":")[0] for m in compose["services"]["prometheus"]["volumes"]}
    assert set(prom["rule_files"]) <= set(mounts) and all((DOCKER / p).exists() for p in mounts.values())
    for m in compose["services"]["grafana"]["volumes"]:
        assert (DOCKER / m.split(":")[0]).exists(), m


def _dashboard():
    return json.loads((DOCKER / "grafana" / "dashboards" / "modalwatch.json").read_text())


def test_the_dashboards_prometheus_panels_name_exposed_metrics(exposed):
    sources = yaml.safe_load(
        (DOCKER / "grafana" / "provisioning" / "datasources" / "datasources.yaml").read_text()
    )
    uids = {d["uid"]: d["type"] for d in sources["datasources"]}
    targets = [(p, t) for p in _dashboard()["panels"] for t in p.get("targets", [])]
    assert targets
    for panel, t in targets:
        assert uids[t["datasource"]["uid"]] == t["datasource"]["type"], panel["title"]
        if "expr" in t:
            used = _metric_names(t["expr"])
            assert used and used <= exposed | BUILTIN, (panel["title"], used - exposed)


def _sql(q: str) -> str:
    """A panel's SQL as Grafana sends it: its macros and variables filled in."""
    q = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 BETWEEN '2000-01-01' AND '2100-01-01'", q)
    return q.replace("$model", "m").replace("$slice", "*").replace("$interval_s", "86400")


def test_the_dashboards_sql_runs_on_timescaledb_and_returns_the_evaluations(timescale_url):
    from connectors.postgres import PostgresStore

    store = PostgresStore(timescale_url)
    store.migrate()
    rows = [
        EvaluationRow(
            "m", "1", 86400, 86400, T0 + timedelta(days=d), T0 + timedelta(days=d + 1), T0, "*", det, metric,
            signal, "v", "ok", 0.2, reference_value=0.18, ci_low=0.15, ci_high=0.25, n=500, n_reference=3000,
        )
        for d in range(3)
        for det, metric, signal in (
            ("wilson", "error_rate", ""), ("ece", "ece", ""), ("bootstrap", "ece_drift", ""),
            ("psi", "psi", "image.brightness"),
        )
    ]  # fmt: skip
    with store.tx():
        store.evaluations.insert(rows)
    dash = _dashboard()
    queries = [
        (p["title"], t["rawSql"]) for p in dash["panels"] for t in p.get("targets", []) if "rawSql" in t
    ]
    queries += [(v["name"], v["query"]) for v in dash["templating"]["list"]]
    assert len(queries) >= 6
    store.close()
    with psycopg.connect(timescale_url) as conn:  # as Grafana runs them: plain SQL, no parameters
        for title, q in queries:
            got = conn.execute(_sql(q)).fetchall()
            assert got, f"{title}: no row from {q}"
