"""Summaries written at ingest (monitor/summaries.py) against the exact path over stored rows: each
vintage's labelled answers summed from them equal what the rows say, whatever the batch order,
replays, labels before their events, a time zone with daylight saving; a rebuild gives the rows
ingest wrote; and an evaluation from summaries gives the rows of one from the events."""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from detectors.calibration import bin_sums
from monitor.checks.base import WindowView
from monitor.config import parse_config
from monitor.evaluation import Evaluator
from monitor.pipeline import Pipeline
from monitor.core.messages import RawMessage
from monitor.core.window import ANSWERS, bin_sums_of_cells
from monitor.schedule import windows
from monitor.summaries import (
    SPEC_STATE,
    Summariser,
    SummarySpec,
    ensure_summaries,
    rebuild,
)
from tests.helpers import inference, label

# a Sunday in Berlin before the clocks go back (25-hour local day on 2026-10-25)
START = datetime(2026, 10, 23, 22, 0, tzinfo=timezone.utc)
CONFIG = """
media: {expected_modalities: [image, audio, text]}
evaluation:
  intervals: [1h, 1d]
  lags: [0s, 2h, 1d]
  timezone: Europe/Berlin
  reference: {days: 1}
  checks: {calibration: {bins: 10, min_n: 20}, error_rate: {min_n: 20}}
"""


def _traffic(n: int = 1500, seed: int = 3) -> list[RawMessage]:
    """Events over three days with labels that come before, with and long after them (or never),
    confidences on bin edges among them, some abstentions, three devices and two locales."""
    rng = random.Random(seed)
    msgs = []
    for i in range(n):
        ts = START + timedelta(seconds=rng.uniform(0, 3 * 86400))
        ev = inference(i, ts=ts)
        edge = rng.random() < 0.1
        ev["output"]["confidence"] = rng.choice([0.0, 0.1, 0.5, 0.9, 1.0]) if edge else rng.uniform(0.3, 1)
        ev["output"]["abstained"] = rng.random() < 0.05
        if rng.random() < 0.3:
            ev["slice"]["locale"] = "fr-FR"
        if rng.random() < 0.15:
            del ev["inputs"]["audio"]  # a missing modality (text always is)
        if rng.random() < 0.7:  # each modality's own answer: image scored, audio not, text at times
            own = {"image": {"label": rng.choice(["cat", "dog"]), "confidence": rng.uniform(0.3, 1)}}
            own["audio"] = {"label": rng.choice(["cat", "dog", "bird"])}
            if rng.random() < 0.5:
                own["text"] = {"label": ev["output"]["label"], "confidence": rng.choice([0.5, 1.0])}
            ev["output"]["per_modality"] = own
        msgs.append(RawMessage("t", f"e{i}", json.dumps(ev).encode(), "inference"))
        if rng.random() < 0.85:
            delay = rng.choice([-600, 0, 30, 3600, 7200, 7201, 20000, 86400, 90000, 200000, 400000])
            lt = ts + timedelta(seconds=delay + rng.uniform(-1, 1))
            value = ev["output"]["label"] if rng.random() < 0.8 else "bird"
            msgs.append(RawMessage("t", f"l{i}", json.dumps(label(i, ts=lt, value=value)).encode(), "label"))
    rng.shuffle(msgs)  # labels before their events, across batches
    return msgs


def _ingest(store, config, msgs, batch: int = 97) -> None:
    pipeline = Pipeline(config, store, lambda: START + timedelta(days=30))
    for i in range(0, len(msgs), batch):
        pipeline.process(msgs[i : i + batch])


def _vintages(config):
    ev = config.evaluation
    for iv in ev.intervals:
        for lag in ev.vintage_lags:
            for t0, t1 in windows(iv, START, START + timedelta(days=3, hours=2), ev.tz):
                yield iv, lag, t0, t1


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Kathmandu"])  # DST; local hours at UTC :15
def test_every_vintage_summed_from_summaries_is_what_its_rows_say(any_store, zone):
    config = parse_config(CONFIG.replace("Europe/Berlin", zone))
    assert SummarySpec.of(config).bucket_s == {"Europe/Berlin": 3600, "Asia/Kathmandu": 900}[zone]
    msgs = _traffic()
    _ingest(any_store, config, msgs)
    _ingest(any_store, config, list(reversed(msgs)), batch=211)  # a replay adds nothing
    bins = config.evaluation.checks.calibration.bins
    checked = labelled = 0
    for iv, lag, t0, t1 in _vintages(config):
        cutoff = t1 + lag
        view = WindowView(any_store.events.load_window("m", "1", t0, t1, cutoff))
        summed = bin_sums_of_cells(
            any_store.summaries.read("m", "1", f"labelled/{bins}", t0, t1, cutoff), bins
        )
        events = any_store.summaries.read("m", "1", ANSWERS, t0, t1, t1)
        for sl in view.masks:
            exact = bin_sums(*view.answers(sl), bins)
            got = summed.get(sl, np.zeros((bins, 2, 3)))
            np.testing.assert_allclose(got, exact, rtol=1e-12, atol=1e-12, err_msg=f"{iv} {lag} {t0} {sl}")
            mask = view.mask(sl)
            counted = [events.get((sl, c), (0,))[0] for c in ("events", "abstained")]
            assert counted == [mask.sum(), view.frame["abstained"].to_numpy(bool)[mask].sum()]
            checked += 1
            labelled += int(exact[..., 0].sum())
        assert set(summed) <= set(view.masks)
        assert {sl for sl, _ in events} == (set(view.masks) if len(view.window) else set())
    assert checked > 300 and labelled > 5000  # the comparison saw real windows, not empty ones


def test_a_rebuild_from_the_stored_events_gives_the_rows_ingest_wrote(any_store):
    config = parse_config(CONFIG)
    _ingest(any_store, config, _traffic(600, seed=5))
    written = any_store.summaries.all()
    assert written
    with any_store.tx():
        assert rebuild(any_store, Summariser(SummarySpec.of(config)), step=timedelta(minutes=7)) == 600
    again = any_store.summaries.all()
    assert [r[:7] for r in again] == [r[:7] for r in written]
    np.testing.assert_allclose([r[7:] for r in again], [r[7:] for r in written], rtol=1e-12, atol=1e-12)


def test_summaries_are_rebuilt_when_the_schedule_or_bins_change_and_only_then(any_store):
    config = parse_config(CONFIG)
    _ingest(any_store, config, _traffic(300, seed=7))
    spec = SummarySpec.of(config)
    assert any_store.ops.states([SPEC_STATE])[SPEC_STATE] == spec.as_state()
    assert not ensure_summaries(any_store, Summariser(spec))  # nothing changed
    other = parse_config(
        CONFIG.replace("lags: [0s, 2h, 1d]", "lags: [0s, 3h]").replace("bins: 10", "bins: 12")
    )
    assert ensure_summaries(any_store, Summariser(SummarySpec.of(other)))
    measures = {r.measure for r in any_store.summaries.all()}
    assert measures == {ANSWERS, "flags", "labelled/12", "modalities", "modality_labelled/15"}
    cutoff_lags = {r.known_before - r.bucket for r in any_store.summaries.all() if r.measure != ANSWERS}
    # a window ends at most a (25-hour, DST) day after its bucket starts, + the longest lag
    assert all(d <= timedelta(days=1, hours=1 + 3) or d > timedelta(days=9000) for d in cutoff_lags)


def test_an_evaluation_from_summaries_gives_the_rows_of_one_from_the_events(any_store):
    config = parse_config(CONFIG)
    exact = parse_config(CONFIG + "  from_summaries: false\n")
    _ingest(any_store, config, _traffic(2500, seed=11))
    clock = lambda: START + timedelta(days=30)  # noqa: E731
    fast, slow = Evaluator(config, any_store, clock), Evaluator(exact, any_store, clock)
    due = [  # every daily vintage and a third of the hourly ones
        (k, t1)
        for i, (k, t1) in enumerate(fast.due(any_store.events.watermark()))
        if k.interval_s > 3600 or i % 3 == 0
    ]
    assert len(due) > 20 and len({(k.interval_s, k.lag_s) for k, _ in due}) == 6
    compared = per_modality = missing = 0
    for key, t1 in due:
        a, b = fast.compute(key, t1), slow.compute(key, t1)
        assert [(r.slice, r.metric, r.signal, r.status) for r in a] == [
            (r.slice, r.metric, r.signal, r.status) for r in b
        ]
        for x, y in zip(a, b):
            for f in (
                "value",
                "reference_value",
                "ci_low",
                "ci_high",
                "n",
                "n_reference",
                "effect",
                "p_value",
            ):
                u, v = getattr(x, f), getattr(y, f)
                assert (u is None) == (v is None), (x, f)
                if u is not None:
                    assert u == pytest.approx(v, rel=1e-9, abs=1e-12), (x.metric, x.slice, f, u, v)
            compared += x.metric in ("error_rate", "ece", "ece_drift") and x.status == "ok"
            per_modality += (
                x.detector != "error" and x.metric.startswith(("modality_", "fusion_")) and x.status == "ok"
            )
            missing += x.metric == "missing_modality_share" and x.status == "ok"
    assert compared > 60 and per_modality > 100 and missing > 100


def test_events_missing_two_modalities_count_once_per_modality_and_no_count_stream(tmp_path):
    """``cross.missing_count`` (2 where two are missing) is no modality's flag: read as one it made
    a "count" stream and a share above 1 that failed the whole check."""
    from connectors.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "m.db")
    store.migrate()
    config = parse_config(CONFIG)
    msgs = _traffic(900, seed=13)  # 15 % without audio: two of three expected modalities missing
    _ingest(store, config, msgs)
    without_audio = sum(
        1 for m in msgs if m.kind == "inference" and "audio" not in json.loads(m.payload)["inputs"]
    )
    for exact in (False, True):
        cfg = parse_config(CONFIG + f"  from_summaries: {str(not exact).lower()}\n")
        ev = Evaluator(cfg, store, lambda: START + timedelta(days=30))
        rows = [
            r
            for key, t1 in ev.due(store.events.watermark())
            if key.interval_s == 86400 and key.lag_s == 0
            for r in ev.compute(key, t1)
            if r.metric == "missing_modality_share"
        ]
        assert rows and {r.status for r in rows} <= {"ok", "insufficient_data"}
        assert {r.signal for r in rows} == {"image", "audio", "text"}
        everything = [r for r in rows if r.slice == "*"]
        assert sum(r.n for r in everything if r.signal == "audio") == 900
        audio = sum(r.value * r.n for r in everything if r.signal == "audio")
        assert round(audio) == without_audio and all(r.value == 1.0 for r in everything if r.signal == "text")
