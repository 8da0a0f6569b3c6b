"""Order-free windows on PostgreSQL: a month's catch-up of hourly and daily windows by
``modalwatch evaluate``, SIGKILLed midway and run again, leaves every evaluation row and every
alert identical to an uninterrupted catch-up of the same events (promise 5: a window's numbers
depend on its data, its reference and the windows before it — never on what was evaluated
first, or on a restart)."""

import os
import signal
import subprocess
import time
import uuid
from datetime import timedelta

import psycopg
import pytest

from connectors.postgres import PostgresStore
from tests.alerts.traffic import CONFIG, T0, load_days
from tests.conftest import ROOT, modalwatch_cmd

pytestmark = pytest.mark.postgres

DAYS = 30
EVENTS_PER_DAY = 1_200


def _schema_url(server: str) -> tuple[str, str]:
    schema = f"mw_catchup_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in server else "?"
    return schema, f"{server}{sep}options=-csearch_path%3D{schema}"


def _config(tmp_path, name: str, url: str):
    path = tmp_path / f"{name}.yaml"
    # the month's windows, hourly and daily: far more vintages than a restart needs to land midway
    path.write_text(
        CONFIG.replace("evaluation:\n", "evaluation:\n  intervals: [1h, 1d]\n")
        + f"store: {{kind: postgres, url: '{url}'}}\nlog_level: WARNING\n"
    )
    return path


def _evaluate(cfg) -> list[str]:
    end = T0 + timedelta(days=DAYS)
    return modalwatch_cmd() + [
        "evaluate",
        "--config",
        str(cfg),
        "--from",
        T0.isoformat(),
        "--to",
        end.isoformat(),
    ]


def _finished(url: str) -> int:
    with psycopg.connect(url) as c:
        return c.execute("SELECT count(*) FROM eval_runs WHERE finished_at IS NOT NULL").fetchone()[0]


def _rows(store) -> list[tuple]:
    df = store.evaluations.frame().drop(columns=["evaluated_at"])
    df = df.sort_values(list(df.columns[:11])).reset_index(drop=True)
    return [tuple(r) for r in df.astype(object).where(df.notna(), None).itertuples(index=False)]


def _alerts(store) -> list[tuple]:
    return sorted((a.dedup_key, a.state, a.starts_at, a.ends_at) for a in store.alerts.episodes())


def test_a_catch_up_killed_midway_and_resumed_equals_an_uninterrupted_one(pg_server_url, tmp_path):
    urls, schemas = {}, []
    for name in ("killed", "straight"):
        schema, urls[name] = _schema_url(pg_server_url)
        schemas.append(schema)
    try:
        for url in urls.values():
            store = PostgresStore(url)
            store.migrate()
            load_days(store, range(DAYS), EVENTS_PER_DAY)
            store.close()
        env = dict(os.environ)
        straight = subprocess.run(
            _evaluate(_config(tmp_path, "straight", urls["straight"])),
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert straight.returncode == 0, straight.stderr[-2000:]
        total = _finished(urls["straight"])
        assert total > DAYS * 24  # hourly and daily windows

        cfg = _config(tmp_path, "killed", urls["killed"])
        proc = subprocess.Popen(
            _evaluate(cfg), cwd=ROOT, env=env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.time() + 600
        while _finished(urls["killed"]) < total // 3 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        at_kill = _finished(urls["killed"])
        assert 0 < at_kill < total, f"the kill landed at {at_kill} of {total}: the test needs it midway"
        resumed = subprocess.run(
            _evaluate(cfg), cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr[-2000:]
        assert _finished(urls["killed"]) == total

        a, b = PostgresStore(urls["killed"]), PostgresStore(urls["straight"])
        try:
            rows_a, rows_b = _rows(a), _rows(b)
            assert len(rows_a) == len(rows_b) > 10_000
            differ = [(x, y) for x, y in zip(rows_a, rows_b) if x != y]
            assert differ == [], differ[:3]
            assert _alerts(a) == _alerts(b)
        finally:
            a.close()
            b.close()
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as c:
            for schema in schemas:
                c.execute(f"DROP SCHEMA {schema} CASCADE")
