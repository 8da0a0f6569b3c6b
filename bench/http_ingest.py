"""HTTP ingest under concurrent clients, with bearer tokens on: `modalwatch run` (SQLite, HTTP
only) and ``--clients`` clients (default 50) on kept-alive connections, each POSTing ``--per-client``
requests of ``--events`` events (default 400 × 1).

    python bench/http_ingest.py [--clients 50] [--per-client 400] [--events 1] [--store sqlite|postgres]
                                [--baseline REF]

Prints latency percentiles (p50, p90, p99, max), errors by kind (connection resets, refused,
timeouts, non-2xx answers), requests/s and events/s, and checks that the store holds every
event once. ``--baseline REF`` runs the same load against the daemon of an earlier commit first
(a temporary git worktree) and prints this code's ratios to it: the daemon's CPU seconds per
request and requests/s. Ends with one GOAL line per goal of issues 14 (no connection resets,
every event stored) and 24 (not worse than before) and exits 0 either way. PostgreSQL:
MODALWATCH_BENCH_PG_URL, else the local server's ``test`` database.
(Not bench/http.py, as issue 14 names it: a script of that name would hide the standard
library's http package from every script in bench/.)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import free_port
from tests.helpers import inference
from worktree import worktree

TOKEN = "bench-token-" + uuid.uuid4().hex


def client(port: int, k: int, per_client: int, events: int, latencies: list, errors: Counter) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    for j in range(per_client):
        first = (k * per_client + j) * events
        body = json.dumps([inference(first + i) for i in range(events)]).encode()
        t = time.perf_counter()
        try:
            conn.request("POST", "/v1/events", body, headers)
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                errors[f"HTTP {resp.status}"] += 1
            else:
                latencies.append(time.perf_counter() - t)
        except ConnectionResetError:
            errors["connection reset"] += 1
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        except ConnectionRefusedError:
            errors["connection refused"] += 1
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        except TimeoutError:
            errors["timeout"] += 1
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        except (http.client.HTTPException, OSError) as e:
            errors[type(e).__name__] += 1
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    conn.close()


def daemon_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(root: Path, args) -> dict:
    """One daemon (the code under ``root``), the clients against it; what was measured."""
    tmp = Path(tempfile.mkdtemp(prefix="mw-bench-http-"))
    port = free_port()
    store = f"store: {{path: {tmp / 'mw.db'}}}"
    schema = None
    if args.store == "postgres":
        import psycopg

        base = os.environ.get("MODALWATCH_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
        schema = f"mw_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base, autocommit=True) as c:
            c.execute(f"CREATE SCHEMA {schema}")
        store = f'store: {{kind: postgres, url: "{base}?options=-csearch_path%3D{schema}"}}'
    cfg = tmp / "c.yaml"
    cfg.write_text(f"""{store}
ingest:
  http: {{port: {port}, auth: required, tokens: ["{TOKEN}"]}}
log_level: WARNING
""")
    log = open(tmp / "daemon.log", "wb")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "monitor.cli", "run", "--config", str(cfg)],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},  # the code under root, not the installed one
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/livez")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        latencies: list[float] = []
        errors: Counter = Counter()
        threads = [
            threading.Thread(target=client, args=(port, k, args.per_client, args.events, latencies, errors))
            for k in range(args.clients)
        ]
        cpu0 = daemon_cpu_s(daemon.pid)
        t = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        elapsed = time.perf_counter() - t
        cpu = daemon_cpu_s(daemon.pid) - cpu0
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/v1/status", headers={"Authorization": f"Bearer {TOKEN}"})
        status = json.loads(c.getresponse().read())
    finally:
        daemon.terminate()
        daemon.wait(30)
        log.close()
        if schema:
            import psycopg

            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")
    return {"latencies": latencies, "errors": errors, "elapsed": elapsed, "status": status, "cpu_s": cpu}


def report(name: str, m: dict, args) -> None:
    lat = m["latencies"]
    q = statistics.quantiles(sorted(lat), n=100) if len(lat) > 1 else [0.0] * 99
    n = args.clients * args.per_client
    print(f"[{name}]")
    print(
        f"  latency: p50 {q[49] * 1000:.1f} ms, p90 {q[89] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, max"
        f" {max(lat, default=0) * 1000:.1f} ms"
    )
    print(f"  answered 200: {len(lat)} of {n}; errors: {dict(m['errors']) or 'none'}")
    print(
        f"  {len(lat) / m['elapsed']:,.0f} requests/s, {len(lat) * args.events / m['elapsed']:,.0f} events/s;"
        f" the daemon used {m['cpu_s']:.1f} CPU s ({1000 * m['cpu_s'] / max(1, len(lat)):.2f} ms a request)"
        f" and stored {m['status'].get('stored')} (duplicates {m['status'].get('duplicate')})"
    )


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--per-client", type=int, default=400)
    ap.add_argument("--events", type=int, default=1, help="events per request")
    ap.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument(
        "--baseline",
        metavar="REF",
        help="also run the daemon of this git commit (a temporary worktree), on the same load, and"
        " print the ratios (this code against it)",
    )
    args = ap.parse_args()
    root = Path(__file__).resolve().parent.parent
    print(
        f"{args.clients} clients × {args.per_client} requests of {args.events} event(s), bearer tokens on,"
        f" store {args.store}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}"
    )
    runs = {}
    if args.baseline:
        with worktree(args.baseline) as wt:
            runs[f"baseline {args.baseline}"] = run(wt, args)
    runs["this code"] = run(root, args)
    for name, m in runs.items():
        report(name, m, args)
    m = runs["this code"]
    n = args.clients * args.per_client
    resets = m["errors"]["connection reset"] + m["errors"]["connection refused"]
    print(f"GOAL http_no_connection_resets: {resets} vs 0 {'PASS' if resets == 0 else 'FAIL'}")
    print(
        f"GOAL http_every_event_stored: {m['status'].get('stored')} vs {n * args.events}"
        f" {'PASS' if m['status'].get('stored') == n * args.events else 'FAIL'}"
    )
    if args.baseline:
        b = runs[f"baseline {args.baseline}"]
        cpu_ratio = (m["cpu_s"] / max(1, len(m["latencies"]))) / (b["cpu_s"] / max(1, len(b["latencies"])))
        rate_ratio = (len(m["latencies"]) / m["elapsed"]) / (len(b["latencies"]) / b["elapsed"])
        # issue 24: not worse than before; 10 % is the noise of a shared 2-core machine
        print(
            f"GOAL http_cpu_per_request_not_worse: {cpu_ratio:.2f}x vs the baseline's ≤ 1.10x"
            f" {'PASS' if cpu_ratio <= 1.10 else 'FAIL'}"
        )
        print(
            f"GOAL http_requests_per_s_not_worse: {rate_ratio:.2f}x vs the baseline's ≥ 0.90x"
            f" {'PASS' if rate_ratio >= 0.90 else 'FAIL'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
