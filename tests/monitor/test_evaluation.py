"""Scheduled evaluation on event time, backfill, rules → alerts → review queue, report, status."""

import json
from datetime import timedelta

import numpy as np
import pytest

from monitor.config import parse_config
from monitor.evaluation import Evaluator
from monitor.pipeline import Pipeline, RawMessage
from monitor.review import export_review, import_labels
from tests.helpers import NOW, T0, inference, label

CFG = """
evaluation:
  intervals: [1d]
  lag: 1d
  reference: {days: 3}
  checks:
    calibration: {min_n: 50}
alerts:
  rules:
    - {name: ErrUp, metric: error_rate, field: ci_low, vs_reference: true, threshold: 0.05}
review:
  confidence_below: 0.52
  events_per_alert: 10
"""


def _traffic(days=7, per_day=300, bad_day=5, seed=0, error_rate=None, label_every=2):
    """Device d1 fails on ``bad_day`` (or ``error_rate(day, event)`` gives each event's chance of
    being wrong); every ``label_every``-th event gets a label 2 h later."""
    rng = np.random.default_rng(seed)
    if error_rate is None:

        def error_rate(day, ev):
            return 0.6 if day == bad_day and ev["slice"]["device"] == "d1" else 0.1

    msgs = []
    for i in range(days * per_day):
        day = i // per_day
        ts = T0 + timedelta(days=day, seconds=(i % per_day) * (86400 / per_day))
        ev = inference(i, ts=ts)
        truth = "bird" if rng.uniform() < error_rate(day, ev) else ev["output"]["label"]
        msgs.append(RawMessage("t", f"t:e{i}", json.dumps(ev).encode()))
        if i % label_every == 0:
            msgs.append(
                RawMessage(
                    "t", f"t:l{i}", json.dumps(label(i, ts=ts + timedelta(hours=2), value=truth)).encode()
                )
            )
    msgs.sort(key=lambda m: json.loads(m.payload)["ts"])
    return msgs


def _numbers(df):
    cols = [
        "window_start",
        "slice",
        "metric",
        "signal",
        "status",
        "value",
        "reference_value",
        "ci_low",
        "ci_high",
        "n",
    ]
    return sorted(map(tuple, df[cols].astype(str).values.tolist()))


def test_windows_run_when_the_watermark_passes_end_plus_lag(any_store):
    cfg = parse_config(CFG)
    p = Pipeline(cfg, any_store, lambda: NOW)
    msgs = _traffic()
    ev = Evaluator(cfg, any_store, lambda: T0, owner="a")
    cut = (T0 + timedelta(days=3, hours=23)).isoformat()
    half = sum(json.loads(m.payload)["ts"] < cut for m in msgs)
    p.process(msgs[:half])
    # reference = days 0-2, complete at day 3 + lag 1d; the watermark is late on day 3: nothing due
    assert ev.run_due(any_store.events.watermark()) == 0
    p.process(msgs[half:])
    n = ev.run_due(any_store.events.watermark())
    assert n == 6  # days 0..5 are closed: day 6 ends at day 7, + 1d lag is beyond the data
    assert ev.run_due(any_store.events.watermark()) == 0  # each window once
    df = any_store.evaluations.frame()
    day5 = df[(df.window_start == T0 + timedelta(days=5)) & (df.metric == "error_rate")]
    d1 = day5[day5.slice == "device=d1"].iloc[0]
    assert d1.status == "ok" and d1.ci_low > d1.reference_value + 0.05
    assert d1.ci_low <= d1.value <= d1.ci_high
    err = df[df.metric == "error_rate"]
    enough = (err.n >= 50) & (err.n_reference >= 50)
    assert ((err.status == "ok") == enough).all() and (~enough).any()  # small samples make no claim
    firing = {a.labels["slice"] for a in any_store.alerts.list("firing")}
    assert "device=d1" in firing and not firing & {"device=d0", "device=d2"}  # the mix moves "*" too
    # the alerting slice's unlabelled events of that window were queued for review
    queue = [q for q in any_store.review.queue() if q.reason == "alert_slice:device=d1"]
    assert 0 < len(queue) <= 10 and {q.slice["device"] for q in queue} == {"d1"}
    assert {q.ts.date() for q in queue} == {(T0 + timedelta(days=5)).date()}


def test_backfill_gives_the_same_numbers_as_the_scheduled_run(any_store):
    cfg = parse_config(CFG)
    Pipeline(cfg, any_store, lambda: NOW).process(_traffic())
    Evaluator(cfg, any_store, lambda: T0, owner="a").run_due(any_store.events.watermark())
    live = _numbers(any_store.evaluations.frame())
    any_store.db.execute("DELETE FROM evaluations")
    ev = Evaluator(cfg, any_store, lambda: T0 + timedelta(days=30), owner="b")
    runs = ev.due(any_store.events.watermark(), start=T0, end=T0 + timedelta(days=7), include_finished=True)
    assert len(runs) == 6
    for key, t1 in runs:
        ev.run(key, t1, force=True)
    assert _numbers(any_store.evaluations.frame()) == live


def test_review_export_then_import_joins_labels(any_store, tmp_path):
    cfg = parse_config(CFG)
    p = Pipeline(cfg, any_store, lambda: NOW)
    p.process([RawMessage("t", f"t:{i}", json.dumps(inference(i)).encode()) for i in range(0, 100)])
    n = export_review(any_store, tmp_path / "review.jsonl", T0)
    items = [json.loads(x) for x in (tmp_path / "review.jsonl").read_text().splitlines()]
    assert n == len(items) > 0 and all(it["output"]["confidence"] < 0.52 for it in items)
    assert items == sorted(items, key=lambda it: -it["priority"])
    assert export_review(any_store, tmp_path / "again.jsonl", T0) == 0  # exported once
    for it in items:
        it["label"] = "dog"
    (tmp_path / "labelled.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    outcomes = import_labels(p, tmp_path / "labelled.jsonl", T0 + timedelta(hours=1))
    assert all(o.status == "stored" for o in outcomes)
    assert any_store.ops.counts()["labels_joined"] == n and any_store.ops.counts()["review"] == {
        "labelled": n
    }


def test_cli_ingest_evaluate_report(tmp_path):
    import subprocess

    from tests.conftest import ROOT, modalwatch_cmd

    data = tmp_path / "traffic.jsonl"
    data.write_text("".join(m.payload.decode() + "\n" for m in _traffic()))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"store:\n  path: {tmp_path / 'mw.db'}\n" + CFG)

    def run(*a):
        out = subprocess.run(
            modalwatch_cmd() + list(a) + ["--config", str(cfg)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    run("ingest", str(data))
    assert "evaluated 6 window(s)" in run("evaluate", "--from", "2026-01-01", "--to", "2026-02-01")
    assert "evaluated 0 window(s)" in run("evaluate", "--from", "2026-01-01", "--to", "2026-02-01")
    run("report", "--from", "2026-01-05", "--to", "2026-01-12", "--out", str(tmp_path / "rep"))
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert [iv["window_start"][:10] for iv in rep["intervals"]] == [f"2026-01-{d:02d}" for d in range(5, 11)]
    assert {a["labels"]["slice"] for a in rep["alerts"]} >= {"device=d1"}
    st = json.loads(run("status", "--json"))
    assert st["evaluation_runs"] == 6 and st["alerts"].get("firing", 0) >= 1 and st["events"] == 2100


def _evaluated(store, seed, change, extra=""):
    """``_traffic(seed)`` with ``change(event, day, rng)`` applied to every inference event,
    stored and evaluated up to day 9 (``extra``: more evaluation config)."""
    cfg = parse_config(CFG.replace("  checks:\n", "  checks:\n" + extra))
    rng = np.random.default_rng(seed)
    msgs = []
    for m in _traffic(seed=seed):
        obj = json.loads(m.payload)
        if obj.get("type") == "inference":
            day = int(
                (np.datetime64(obj["ts"][:19]) - np.datetime64(T0.isoformat()[:19])) // np.timedelta64(1, "D")
            )
            change(obj, day, rng)
            m = RawMessage(m.source, m.position, json.dumps(obj).encode())
        msgs.append(m)
    Pipeline(cfg, store, lambda: NOW).process(msgs)
    Evaluator(cfg, store, lambda: T0, owner="a").run_due(T0 + timedelta(days=9))
    return store.evaluations.frame()


def test_a_window_stores_tests_with_p_values_bh_and_decisions(any_store):
    """Day 5: device d1's errors jump (a slice gap); brightness shifts on d2 only (KS on that slice);
    nothing else moves, and BH keeps every other decision at 0."""

    def change(obj, day, rng):
        shift = 25.0 if day == 5 and obj["slice"]["device"] == "d2" else 0.0
        obj["inputs"]["image"]["signals"]["brightness"] = float(rng.normal(100 + shift, 10))

    df = _evaluated(any_store, 4, change)
    day5 = df[df["window_start"] == T0 + timedelta(days=5)]
    ks = day5[(day5["metric"] == "ks") & (day5["status"] == "ok")]
    flagged = set(ks[ks["decision"] == 1][["slice", "signal"]].itertuples(index=False, name=None))
    # d2's shift shows in d2 and in the slices that contain d2's events (all traffic, each locale);
    # never in d0 or d1, never in the loudness signal
    assert ("device=d2", "image.brightness") in flagged
    assert {sl for sl, _ in flagged} <= {"device=d2", "*", "locale=en-US", "locale=de-DE"}
    assert {sig for _, sig in flagged} == {"image.brightness"}
    assert ks["p_adjusted"].notna().all() and (ks["p_adjusted"] >= ks["p_value"]).all()
    gaps = day5[(day5["metric"] == "error_rate_gap") & (day5["decision"] == 1)]
    worse = gaps[gaps["effect"] > 0]  # (d0 and d2 are then significantly better than the rest)
    assert set(worse["slice"]) == {"device=d1"} and (worse["effect"] > 0.2).all()
    quiet = df[df["window_start"] < T0 + timedelta(days=5)]
    assert (
        quiet[quiet["metric"].isin(["ks", "error_rate_gap", "ece_drift", "psi"])]["decision"].fillna(0).sum()
        == 0
    )
    assert set(df["metric"]) >= {
        "psi",
        "ks",
        "error_rate",
        "ece",
        "ece_drift",
        "error_rate_gap",
        "abstention_rate_gap",
        "mean_confidence_gap",
    }


def test_embedding_drift_and_label_free_accuracy_rows(any_store):
    """Day 5's embeddings move (MMD finds it, no other day); every slice gets an accuracy estimate
    from confidences alone, close to the realised accuracy of its labelled events."""

    def change(obj, day, rng):
        obj["embeddings"] = {"clip": rng.normal(0.8 if day == 5 else 0.0, 1, 8).round(4).tolist()}

    df = _evaluated(any_store, 6, change)
    mmd = df[(df["metric"] == "mmd") & (df["status"] == "ok")]
    assert set(mmd["signal"]) == {"embedding.clip"} and set(mmd["slice"]) == {"*"}
    drifted = mmd[mmd["decision"] == 1]["window_start"].tolist()
    assert drifted == [T0 + timedelta(days=5)], drifted
    est = df[(df["metric"] == "estimated_accuracy") & (df["status"] == "ok")]
    assert len(est) and est["value"].between(0, 1).all() and (est["ci_low"] <= est["value"]).all()
    realised = df[(df["metric"] == "error_rate") & (df["status"] == "ok") & (df["slice"] == "*")]
    joined = est[est["slice"] == "*"].merge(realised, on="window_start", suffixes=("_est", "_err"))
    quiet = joined[joined["window_start"] != T0 + timedelta(days=5)]  # day 5 of d1 is the failure
    assert (abs(quiet["value_est"] - (1 - quiet["value_err"])) < 0.1).all()


def test_signal_bands_are_slices_of_the_gap_tests(any_store):
    """Dark images (brightness < 100) are wrong far more often: the band's error gap is found."""

    def change(obj, day, rng):
        b = float(rng.uniform(20, 200))
        obj["inputs"]["image"]["signals"]["brightness"] = b
        if b < 100 and rng.uniform() < 0.5:
            obj["output"]["label"] = "zebra"  # never the truth

    df = _evaluated(any_store, 8, change, extra="    slice_gaps: {bands: {image.brightness: [100, 150]}}\n")
    gaps = df[(df["metric"] == "error_rate_gap") & (df["decision"] == 1) & (df["effect"] > 0)]
    assert "image.brightness=<100" in set(gaps["slice"])
    assert not {"image.brightness=[100,150)", "image.brightness=>=150"} & set(gaps["slice"])


def test_vintages_each_lag_is_stored_and_later_labels_do_not_rewrite_earlier_ones(any_store):
    """Labels arrive 2 h after their event: the +0 vintage of a day knows fewer of them than the
    +2d vintage; both are kept, and each has its own alert state."""
    cfg = parse_config(CFG.replace("  lag: 1d\n", "  lags: [0s, 2d]\n"))
    assert [lag.total_seconds() for lag in cfg.evaluation.vintage_lags] == [0, 172800]
    Pipeline(cfg, any_store, lambda: NOW).process(_traffic())
    ev = Evaluator(cfg, any_store, lambda: T0, owner="a")
    due = ev.due(T0 + timedelta(days=9))
    assert {k.lag_s for k, _ in due} == {0, 172800}
    ends = [t1 + timedelta(seconds=k.lag_s) for k, t1 in due]
    assert ends == sorted(ends)  # in the order vintages become due
    ev.run_due(T0 + timedelta(days=9))
    df = any_store.evaluations.frame()
    err = df[(df["metric"] == "error_rate") & (df["slice"] == "*")].set_index(["window_start", "lag_s"])["n"]
    day4 = T0 + timedelta(days=4)
    assert err[(day4, 0)] < err[(day4, 172800)]  # the last 2 h of labels were not known at +0
    assert len(ev.due(T0 + timedelta(days=9))) == 0
    vintages = {
        a["labels"].get("vintage")
        for a in any_store.db.all("SELECT labels FROM alerts")
        for a in [{"labels": json.loads(a[0]) if isinstance(a[0], str) else a[0]}]
    }
    assert vintages <= {"+0s", "+2d"} and vintages


def test_history_prints_a_series_with_its_trend(tmp_path):
    import subprocess

    from tests.conftest import ROOT, modalwatch_cmd

    data = tmp_path / "traffic.jsonl"
    data.write_text("".join(m.payload.decode() + "\n" for m in _traffic(days=12, per_day=200, bad_day=99)))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"store:\n  path: {tmp_path / 'mw.db'}\n" + CFG)

    def run(*a, ok=True):
        out = subprocess.run(
            modalwatch_cmd() + list(a) + ["--config", str(cfg)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (out.returncode == 0) == ok, out.stderr
        return out

    run("ingest", str(data))
    run("evaluate", "--from", "2026-01-01", "--to", "2026-02-01", "--interval", "1d", "--lag", "1d")
    h = json.loads(run("history", "error_rate", "--json").stdout)  # all traffic
    assert h["interval"] == "1d" and h["lag"] == "1d" and len(h["points"]) == 11
    assert h["trend"]["status"] == "ok" and h["trend"]["direction"] == "none"  # a flat 10 % error rate
    text = run("history", "error_rate").stdout
    assert "trend: none" in text and "2026-01-05T00:00" in text
    bad = run("history", "error_rate", "--slice", "device=nope", ok=False)
    assert "no error_rate rows for slice 'device=nope'" in bad.stderr


def test_a_reference_file_is_the_reference_of_every_version(any_store, tmp_path):
    """The validation set as a JSONL file: the traffic's brightness sits 30 above it, so every
    window drifts from day 0, and its error rate is compared with the file's."""
    rng = np.random.default_rng(11)
    lines = []
    for i in range(600):
        ev = inference(100_000 + i, ts=T0 - timedelta(days=30))
        ev["inputs"]["image"]["signals"]["brightness"] = float(rng.normal(70, 10))
        lines.append(json.dumps(ev))
        lines.append(json.dumps(label(100_000 + i, ts=T0 - timedelta(days=30), value=ev["output"]["label"])))
    lines.append("{not json")
    (tmp_path / "ref.jsonl").write_text("\n".join(lines) + "\n")
    cfg = parse_config(
        CFG.replace("  reference: {days: 3}\n", f"  reference: {{file: {tmp_path / 'ref.jsonl'}}}\n")
    )
    Pipeline(cfg, any_store, lambda: NOW).process(_traffic(days=3))
    ev = Evaluator(cfg, any_store, lambda: T0, owner="a")
    assert [k.window_start for k, _ in ev.due(T0 + timedelta(days=3))] == [T0, T0 + timedelta(days=1)]
    ev.run_due(T0 + timedelta(days=3))
    df = any_store.evaluations.frame()
    ks = df[(df["metric"] == "ks") & (df["slice"] == "*") & (df["signal"] == "image.brightness")]
    assert len(ks) == 2 and (ks["decision"] == 1).all() and (ks["n_reference"] == 600).all()
    err = df[(df["metric"] == "error_rate") & (df["slice"] == "*")]
    assert (err["reference_value"] == 0.0).all()  # every reference prediction was right
    missing = parse_config(
        CFG.replace("  reference: {days: 3}\n", "  reference: {file: /nonexistent.jsonl}\n")
    )
    with pytest.raises(ValueError, match="evaluation.reference.file: /nonexistent.jsonl does not exist"):
        Evaluator(missing, any_store, lambda: T0, owner="b").compute(
            ev.due(T0 + timedelta(days=9), include_finished=True)[0][0], T0 + timedelta(days=1)
        )


def test_a_signal_can_have_its_own_thresholds(any_store):
    """The same d2 brightness shift, but brightness's KS needs D ≥ 0.9 here: no KS decision for it."""

    def change(obj, day, rng):
        shift = 25.0 if day == 5 and obj["slice"]["device"] == "d2" else 0.0
        obj["inputs"]["image"]["signals"]["brightness"] = float(rng.normal(100 + shift, 10))

    df = _evaluated(
        any_store, 4, change, extra="    signal_drift: {signal_thresholds: {image.brightness: {ks: 0.9}}}\n"
    )
    ks = df[(df["metric"] == "ks") & (df["signal"] == "image.brightness") & (df["slice"] == "device=d2")]
    day5 = ks[ks["window_start"] == T0 + timedelta(days=5)]
    assert day5["effect"].iloc[0] > 0.5 and day5["decision"].iloc[0] == 0  # big, but under its own bar


@pytest.mark.parametrize("slope,aging", [(0.006, True), (0.0, False)])
def test_slow_decay_is_found_as_a_trend_before_any_single_window_alerts(any_store, slope, aging):
    cfg = parse_config(CFG)
    # every event labelled; the error rate creeps by ``slope`` a day from 10 %
    msgs = _traffic(18, 400, seed=21, error_rate=lambda day, ev: 0.10 + slope * day, label_every=1)
    Pipeline(cfg, any_store, lambda: NOW).process(msgs)
    Evaluator(cfg, any_store, lambda: T0, owner="a").run_due(T0 + timedelta(days=20))
    df = any_store.evaluations.frame()
    trend = df[(df["metric"] == "trend") & (df["signal"] == "error_rate") & (df["slice"] == "*")]
    assert (trend[trend["status"] == "ok"]["n"] >= cfg.evaluation.checks.trend.min_n).all()
    found = trend[trend["decision"] == 1]["window_start"]
    if aging:
        assert len(found) and found.min() <= T0 + timedelta(days=14)
        # the threshold rule on single windows (ErrUp) fires later, if at all
        err_up = [
            any_store.dialect.ts_out(start)
            for labels, start in any_store.db.all("SELECT labels, starts_at FROM alerts")
            if (json.loads(labels) if isinstance(labels, str) else labels)["slice"] == "*"
        ]
        assert all(start > found.min() for start in err_up)
    else:
        assert found.empty


def test_a_replica_whose_claim_was_taken_over_keeps_none_of_its_work(any_store, caplog):
    """Replica a is so slow that its claim expires; b takes the vintage and finishes it first.
    a's result is discarded: the vintage is evaluated, and alerted on, once."""
    cfg = parse_config(CFG)
    cfg.evaluation.claim_expiry = timedelta(minutes=1)
    Pipeline(cfg, any_store, lambda: NOW).process(_traffic(days=5))
    a = Evaluator(cfg, any_store, lambda: NOW, owner="a")
    b = Evaluator(cfg, any_store, lambda: NOW + timedelta(minutes=2), owner="b")
    key, end = a.due(any_store.events.watermark())[0]
    real, b_rows = a.compute, []

    def slow(k, e):
        rows = real(k, e)
        b_rows.extend(b.run(k, e) or [])  # meanwhile a's claim expired and b took the vintage
        return rows

    a.compute = slow
    assert a.run(key, end) is None
    assert b_rows
    assert "was taken over by another replica" in caplog.text
    stored = any_store.evaluations.frame()
    assert len(stored[stored.window_start == key.window_start]) == len(b_rows)
    assert any_store.db.all(
        "SELECT claimed_by FROM eval_runs WHERE window_start = ? AND finished_at IS NOT NULL",
        (any_store.dialect.ts(key.window_start),),
    ) == [("b",)]


def test_a_vintage_cut_off_by_a_lost_database_is_retried_whole(pg_url, pg_server_url):
    """The server drops the evaluation's session as it writes: nothing of the vintage is kept, and
    the same replica evaluates it again at once (its own unfinished claim), completely."""
    import psycopg

    from connectors.postgres import PostgresStore

    cfg = parse_config(CFG)
    store = PostgresStore(pg_url)
    store.migrate()
    Pipeline(cfg, store, lambda: NOW).process(_traffic(days=5))
    ev = Evaluator(cfg, store, lambda: NOW, owner="a")
    key, end = ev.due(store.events.watermark())[0]
    real = ev.compute

    def cut_off(k, e):
        rows = real(k, e)
        with psycopg.connect(pg_server_url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (store.db.conn.info.backend_pid,))
        return rows

    ev.compute = cut_off
    with pytest.raises(store.transient_errors):
        ev.run(key, end)
    store.reconnect()
    assert (
        store.ops.counts()["evaluations"] == 0
        and store.evaluations.finished("m", "1", key.interval_s, key.lag_s) == set()
    )
    assert not Evaluator(cfg, store, lambda: NOW, owner="b").run(key, end)  # a's claim still holds for others
    ev.compute = real
    rows = ev.run(key, end)
    assert rows and store.ops.counts()["evaluations"] == len(rows)
    assert store.evaluations.finished("m", "1", key.interval_s, key.lag_s) == {key.window_start}
    store.close()


def test_a_rule_against_the_previous_window_fires_on_a_jump_not_on_a_level(any_store):
    cfg = parse_config(
        CFG.replace(
            "    - {name: ErrUp, metric: error_rate, field: ci_low, vs_reference: true, threshold: 0.05}",
            "    - {name: ErrJump, metric: error_rate, vs_previous: true, threshold: 0.25}",
        )
    )
    # device d1 fails from day 4 on and stays failed: one jump, then a high but steady level
    Pipeline(cfg, any_store, lambda: NOW).process(
        _traffic(
            days=8, error_rate=lambda day, ev: 0.6 if day >= 4 and ev["slice"]["device"] == "d1" else 0.1
        )
    )
    Evaluator(cfg, any_store, lambda: NOW, owner="a").run_due(any_store.events.watermark())
    (a,) = [a for a in any_store.alerts.list() if a.labels["slice"] == "device=d1"]
    assert a.starts_at == T0 + timedelta(days=4) and a.ends_at == T0 + timedelta(days=6)
    assert a.state == "resolved"  # day 5 is as bad as day 4: no jump, the alert resolves
    with pytest.raises(Exception, match="exclude each other"):
        parse_config(
            "alerts: {rules: [{name: X, metric: ece, threshold: 1, vs_previous: true, vs_reference: true}]}"
        )


def test_a_rule_against_the_earlier_vintage_fires_when_late_labels_change_a_window(any_store):
    cfg = parse_config(
        CFG.replace("  lag: 1d\n", "  lags: [0s, 2d]\n").replace(
            "    - {name: ErrUp, metric: error_rate, field: ci_low, vs_reference: true, threshold: 0.05}",
            "    - {name: ErrRevised, metric: error_rate, slice: '*', vs_earlier_lag: true, threshold: 0.04}",
        )
    )

    def late_errors(day, ev):  # day 4's last two hours go wrong; their labels come after midnight
        return 0.95 if day == 4 and ev["ts"][11:13] in ("22", "23") else 0.05

    Pipeline(cfg, any_store, lambda: NOW).process(_traffic(days=8, error_rate=late_errors))
    Evaluator(cfg, any_store, lambda: NOW, owner="a").run_due(any_store.events.watermark())
    fired = [(a.labels["vintage"], a.starts_at) for a in any_store.alerts.list()]
    assert (("+2d", T0 + timedelta(days=4)) in fired) and not [v for v, _ in fired if v == "+0s"]


def test_sqlite_and_postgresql_give_the_same_numbers(sqlite_store, pg_url):
    """Each store returns a window's events in its own order (PostgreSQL aggregates them by slice
    and label): every number is order-free, the seeded calibration bootstrap and the label-free
    accuracy's calibrator included."""
    from connectors.postgres import PostgresStore

    cfg = parse_config(CFG)
    pg = PostgresStore(pg_url)
    pg.migrate()
    results = []
    try:
        for store in (sqlite_store, pg):
            Pipeline(cfg, store, lambda: NOW).process(_traffic(label_every=3))
            assert Evaluator(cfg, store, lambda: T0, owner="a").run_due(store.events.watermark()) == 6
            df = store.evaluations.frame()
            results.append(
                {(str(r.window_start), r.slice, r.metric, r.signal, r.variant): r for r in df.itertuples()}
            )
    finally:
        pg.close()
    lite, post = results
    assert set(lite) == set(post) and len(lite) > 300
    assert {k[2] for k in lite} >= {"psi", "ks", "error_rate", "ece", "ece_drift", "estimated_accuracy"}
    for k, a in lite.items():
        b = post[k]
        assert (a.status, a.n, a.n_reference) == (b.status, b.n, b.n_reference), k
        for col in ("value", "reference_value", "ci_low", "ci_high", "p_value", "p_adjusted"):
            x, y = getattr(a, col), getattr(b, col)
            assert (x is None or np.isnan(x)) == (y is None or np.isnan(y)), (k, col)
            if not (x is None or np.isnan(x)):
                assert x == pytest.approx(y, rel=1e-9, abs=1e-12), (k, col, x, y)
        assert (a.decision is None or np.isnan(a.decision)) == (b.decision is None or np.isnan(b.decision)), k


def test_a_stretch_without_events_is_recorded_not_evaluated(any_store):
    """Four days of traffic, then one event forty days on: the windows between are recorded as
    finished without rows (the last one before the event, which might yet get late events, will be
    evaluated as usual once due); one of them claimed by a process of this host that died is
    taken over."""
    import os
    import socket

    from monitor.core.window import RunKey

    cfg = parse_config(CFG)
    p = Pipeline(cfg, any_store, lambda: NOW)
    p.process(_traffic(days=4, per_day=300))
    p.process([RawMessage("t", "late", json.dumps(inference(99999, ts=T0 + timedelta(days=44))).encode())])
    # a claim on day 20 left unfinished by a process of this host that is gone
    dead = f"{socket.gethostname()}:{2**22 + os.getpid() % 1000}"
    key = RunKey("m", "1", 86400, 86400, T0 + timedelta(days=20))
    assert any_store.evaluations.claim(
        key, key.window_start + timedelta(days=1), dead, NOW, timedelta(hours=1)
    )
    ev = Evaluator(cfg, any_store, lambda: NOW, owner="a")
    evaluated = ev.run_due(any_store.events.watermark())
    runs = any_store.db.all("SELECT window_start, claimed_by, finished_at FROM eval_runs")
    assert len(runs) == 43 and all(f is not None for _, _, f in runs)  # days 0..42, every one finished
    with_rows = {str(w)[:10] for (w,) in any_store.db.all("SELECT DISTINCT window_start FROM evaluations")}
    assert evaluated == len(with_rows) == 4  # the days with events
    assert min(with_rows) == "2026-01-05" and max(with_rows) == "2026-01-08"
    assert ev.due(any_store.events.watermark()) == []
