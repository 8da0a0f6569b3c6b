"""The pipeline's online detector: ADWIN per slice on the error stream, state kept in the store."""

import json
from datetime import timedelta

import numpy as np

from connectors.sqlite import SqliteStore
from monitor.config import Config
from monitor.pipeline import Pipeline, RawMessage
from tests.helpers import NOW, T0, inference, label


def _stream(n=6000, change_at=3000, seed=5):
    """Events with labels right after; device d1's error rate goes from 5 % to 60 % at ``change_at``."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        ts = T0 + timedelta(seconds=10 * i)
        ev = inference(i, ts=ts)
        p_err = 0.6 if (i >= change_at and ev["slice"]["device"] == "d1") else 0.05
        truth = "bird" if rng.uniform() < p_err else ev["output"]["label"]
        out.append(RawMessage("t", f"t:e{i}", json.dumps(ev).encode()))
        out.append(
            RawMessage(
                "t", f"t:l{i}", json.dumps(label(i, ts=ts + timedelta(seconds=5), value=truth)).encode()
            )
        )
    return out


def _findings(store):
    return store.db.all("SELECT slice, detector, ts FROM findings ORDER BY id")


def test_adwin_flags_the_slice_whose_errors_rose_and_only_after_the_change(tmp_path):
    store = SqliteStore(tmp_path / "a.db")
    store.migrate()
    p = Pipeline(Config(), store, lambda: NOW)
    msgs = _stream()
    for i in range(0, len(msgs), 500):
        p.process(msgs[i : i + 500])
    found = _findings(store)
    change_ts = (T0 + timedelta(seconds=10 * 3000)).isoformat()
    d1 = [f for f in found if f[0] == "device=d1"]
    assert d1 and all(f[1] == "adwin" for f in found)
    assert min(f[2] for f in d1) >= change_ts
    assert not [f for f in found if f[0] in ("device=d0", "device=d2")]
    assert all(f[2] >= change_ts for f in found), "a change was reported in the stationary half"


def test_detector_state_survives_a_restart_exactly(tmp_path):
    msgs = _stream(n=4000, change_at=2000)
    whole = SqliteStore(tmp_path / "whole.db")
    whole.migrate()
    p = Pipeline(Config(), whole, lambda: NOW)
    for i in range(0, len(msgs), 400):
        p.process(msgs[i : i + 400])
    split = SqliteStore(tmp_path / "split.db")
    split.migrate()
    for i in range(0, len(msgs), 400):
        Pipeline(Config(), split, lambda: NOW).process(msgs[i : i + 400])  # a new process each batch
    assert _findings(split) == _findings(whole) and _findings(whole)


def test_events_and_labels_from_a_clock_ahead_of_ours_are_dead_letters(tmp_path):
    from datetime import timedelta

    from connectors.sqlite import SqliteStore
    from monitor.config import parse_config

    store = SqliteStore(tmp_path / "mw.db")
    store.migrate()
    now = T0 + timedelta(days=1)
    ahead = [
        inference(1, ts=now + timedelta(hours=3)),
        label(1, ts=now + timedelta(days=2)),
        inference(2, ts=now + timedelta(minutes=30)),
    ]  # within the default hour: fine
    msgs = [RawMessage("t", f"t:{i}", json.dumps(o).encode()) for i, o in enumerate(ahead)]
    out = Pipeline(parse_config(""), store, lambda: now).process(msgs)
    assert [o.status for o in out] == ["dead_letter", "dead_letter", "stored"]
    assert (
        "event time" in out[0].reason
        and "3.0 h ahead of the clock (ingest.max_future_skew=1.0 h)" in out[0].reason
    )
    assert out[1].reason.startswith("label time") and "2.0 d ahead" in out[1].reason
    lenient = Pipeline(parse_config("ingest:\n  max_future_skew: null\n"), store, lambda: now)
    assert [o.status for o in lenient.process(msgs[:1])] == ["stored"]
    store.close()


def _ingest(path, batches, cfg=""):
    from monitor.config import parse_config

    store = SqliteStore(path)
    store.migrate()
    p = Pipeline(parse_config(cfg), store, lambda: NOW)
    for b in batches:
        p.process(b)
    return store


def _what_was_found(store):
    return store.db.all("SELECT ts, slice, detector, value, detail FROM findings ORDER BY ts, slice")


def test_findings_do_not_depend_on_the_order_batches_are_stored_in(tmp_path):
    """Two workers store neighbouring batches in either order: the detectors see the pairs in
    event-time order all the same, so the findings are the same, row for row."""
    msgs = _stream()
    batches = [msgs[i : i + 20] for i in range(0, len(msgs), 20)]  # 10 events, 100 s of event time
    rng = np.random.default_rng(3)
    swapped = list(batches)
    for i in range(0, len(swapped) - 1, 2):
        if rng.uniform() < 0.5:  # the later batch is stored first: up to 200 s out of order
            swapped[i], swapped[i + 1] = swapped[i + 1], swapped[i]
    cfg = "evaluation:\n  checks:\n    online: {hold: 5m}\n"
    in_order = _what_was_found(_ingest(tmp_path / "a.db", batches, cfg))
    assert in_order and {r[1] for r in in_order} >= {"device=d1"}
    assert _what_was_found(_ingest(tmp_path / "b.db", swapped, cfg)) == in_order
    # with no hold the swapped batches' pairs come behind the frontier, fed as they come: the
    # order, and so what ADWIN finds, is the batches' (this is what the hold is for)
    assert (
        _what_was_found(
            _ingest(tmp_path / "c.db", swapped, "evaluation:\n  checks:\n    online: {hold: 0s}\n")
        )
        != in_order
    )


def test_a_window_counts_what_its_cut_off_saw_whenever_it_is_evaluated(tmp_path):
    """Pairs the hold keeps back at the end of ingest are fed when a window that needs them is
    evaluated: its findings are those of an ingest that fed everything at once."""
    from monitor.config import parse_config
    from monitor.core.window import RunKey
    from monitor.evaluation import Evaluator

    msgs = _stream(n=3000, change_at=2700)  # the change in the stream's last hour
    batches = [msgs[i : i + 200] for i in range(0, len(msgs), 200)]
    held = _ingest(tmp_path / "held.db", batches, "evaluation:\n  checks:\n    online: {hold: 2h}\n")
    at_once = _ingest(tmp_path / "now.db", batches, "evaluation:\n  checks:\n    online: {hold: 0s}\n")
    assert _what_was_found(at_once) and not _what_was_found(held)  # nothing fed in the last 2 h
    cfg = parse_config("evaluation:\n  checks:\n    online: {hold: 2h}\n  lag: 0s\n")
    start, end = T0, T0 + timedelta(days=1)
    key = RunKey("m", "1", 86400, 0, start)
    inputs, _ = Evaluator(cfg, held, lambda: NOW).read(key, end, NOW)
    expect, _ = Evaluator(cfg, at_once, lambda: NOW).read(key, end, NOW)
    assert inputs.findings and [(f.ts, f.slice, f.detail) for f in inputs.findings] == [
        (f.ts, f.slice, f.detail) for f in expect.findings
    ]


def test_an_evaluator_given_its_own_connection_never_uses_the_one_it_was_made_with(tmp_path):
    """The daemon makes its evaluator on the ingest connection, then gives it one of its own for
    the evaluation thread: nothing of the evaluation (the online lane's frontier among it) may go
    on using the first, which the ingest thread is using meanwhile."""
    from monitor.config import parse_config
    from monitor.evaluation import Evaluator

    cfg = parse_config("evaluation: {intervals: [1h], lag: 0s, reference: {days: 0.02}}")
    ingest = SqliteStore(tmp_path / "s.db")
    ingest.migrate()
    Pipeline(cfg, ingest, lambda: NOW).process(_stream(n=2000, change_at=1000)[:3000])
    ev = Evaluator(cfg, ingest, lambda: NOW)
    ev.store = ingest.sibling()
    watermark = ingest.events.watermark()
    ingest.close()  # used from here on, it would raise
    assert ev.run_due(watermark) > 0
    assert ev.store.ops.states(["online:frontier"])  # the lane moved its frontier on the new one
