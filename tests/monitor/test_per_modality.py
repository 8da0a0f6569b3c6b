"""Per-modality evaluation on synthetic traffic with known answers, through the real evaluator,
rules and store with the default rules: three modalities each answer with calibrated confidence
(image best, text worst), the fused answer is their confidence-weighted vote (better than any of
them). A modality that gets worse, one that gets over-confident and a fusion that stops helping
are each named by their own rule; quiet traffic raises none of those rules."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from connectors.sqlite import SqliteStore
from monitor.config import parse_config
from monitor.core.records import EventRow, LabelRow
from monitor.evaluation import Evaluator
from monitor.summaries import Summariser, SummarySpec, store_rows

T0 = datetime(2026, 3, 2, tzinfo=timezone.utc)
DAY = timedelta(days=1)
REFERENCE_DAYS = 5
CLASSES = np.array(["cat", "dog", "bird"], dtype=object)
ACCURACY = {"image": 0.85, "audio": 0.78, "text": 0.72}
RULES = ("ModalityErrorRateUp", "ModalityCalibrationDrift", "FusionNotHelping")
CONFIG = f"""
evaluation:
  reference: {{days: {REFERENCE_DAYS}}}
  checks:
    calibration: {{bootstrap: 0}}
    per_modality: {{bootstrap: 200}}
"""


def day_rows(day: int, n: int, slices: int, change: str | None = None, seed: int = 0):
    rng = np.random.default_rng([seed, day])
    truth = rng.integers(0, 3, n)
    site = rng.integers(0, slices, n)
    answers = {}
    for m, acc in ACCURACY.items():
        conf = np.clip(rng.beta(acc * 12, (1 - acc) * 12, n), 0.34, 0.995)
        p_right = conf.copy()
        if change == "audio_worse" and m == "audio":
            p_right = p_right - 0.10  # right 10 points less often, saying the same
        if change == "image_overconfident" and m == "image":
            conf = np.clip(conf + 0.10, 0.34, 0.995)  # as often right, 10 points surer
        right = rng.uniform(size=n) < p_right
        answers[m] = (np.where(right, truth, (truth + rng.integers(1, 3, n)) % 3), conf)
    score = np.zeros((n, 3))
    for label, conf in answers.values():
        score[np.arange(n), label] += np.log(conf / (1 - conf))
    fused = score.argmax(1)
    prob = np.exp(score - score.max(1, keepdims=True))
    fused_conf = prob.max(1) / prob.sum(1)
    if change == "fusion_broken":  # half the events take the text head's answer
        take = rng.uniform(size=n) < 0.5
        fused = np.where(take, answers["text"][0], fused)
    labelled = rng.uniform(size=n) < 0.6
    start = T0 + day * DAY
    ts = np.sort(rng.uniform(0, 80_000, n))
    events, labels = [], []
    for i in range(n):
        eid = f"d{day:02d}-{i:06d}"
        at = start + timedelta(seconds=float(ts[i]))
        per = {m: {"label": CLASSES[lab[i]], "confidence": float(c[i])} for m, (lab, c) in answers.items()}
        events.append(
            EventRow(
                eid, at, "m", "1", {"site": f"s{site[i]:02d}"}, {"image.brightness": 100.0},
                "audio,image,text", CLASSES[fused[i]], float(fused_conf[i]), None, False, None, eid,
                start + 2 * DAY, None, per,
            )
        )  # fmt: skip
        if labelled[i]:
            labels.append(
                LabelRow(eid, CLASSES[truth[i]], "synthetic", at + timedelta(hours=1), f"l{eid}", at)
            )
    return events, labels


def run(tmp_path, days: int, n: int, slices: int, change: str | None = None, onset: int = REFERENCE_DAYS):
    cfg = parse_config(CONFIG)
    store = SqliteStore(tmp_path / f"{change or 'quiet'}.db")
    store.migrate()
    for day in range(days):
        events, labels = day_rows(day, n, slices, change if day >= onset else None)
        store_rows(store, Summariser(SummarySpec.of(cfg)), events, labels)
    watermark = T0 + days * DAY + cfg.evaluation.lag
    Evaluator(cfg, store, lambda: watermark, owner="test").run_due(watermark)
    return store


def fired(store, rule: str) -> list:
    return [a for a in store.alerts.episodes() if a.rule == rule]


def test_a_modality_whose_error_rate_rose_ten_points_is_named(tmp_path):
    store = run(tmp_path, REFERENCE_DAYS + 3, 4000, 4, "audio_worse")
    named = {a.labels["modality"] for a in fired(store, "ModalityErrorRateUp")}
    assert named == {"audio"}
    assert {a.labels["slice"] for a in fired(store, "ModalityErrorRateUp")} >= {"*"}
    # the fused rows name no modality, and the fused answer, out-voting the worse stream, moves
    # less than its own rule's 5 points over all traffic
    fused = fired(store, "SliceErrorRateUp")
    assert not any("modality" in a.labels for a in fused)
    assert "*" not in {a.labels["slice"] for a in fused}
    df = store.evaluations.frame()
    rows = df[(df["metric"] == "modality_error_rate") & (df["slice"] == "*")]
    last = rows[rows["window_start"] == rows["window_start"].max()].set_index("signal")
    assert last.loc["audio.answer", "effect"] == pytest.approx(0.10, abs=0.03)
    assert abs(last.loc["image.answer", "effect"]) < 0.03
    # and, without labels, the worse stream disagrees with the fused answer more often
    dis = df[(df["metric"] == "modality_disagreement") & (df["slice"] == "*")]
    dis = dis[dis["window_start"] == dis["window_start"].max()].set_index("signal")
    assert dis.loc["audio.answer", "decision"] == 1 and dis.loc["audio.answer", "effect"] > 0.05
    assert dis.loc["image.answer", "decision"] == 0
    store.close()


def test_an_over_confident_modality_is_found_by_its_calibration_drift(tmp_path):
    store = run(tmp_path, REFERENCE_DAYS + 3, 4000, 4, "image_overconfident")
    assert {a.labels["modality"] for a in fired(store, "ModalityCalibrationDrift")} == {"image"}
    assert not fired(store, "ModalityErrorRateUp")
    store.close()


def test_fusion_worse_than_the_image_modality_alone_is_found(tmp_path):
    store = run(tmp_path, REFERENCE_DAYS + 3, 4000, 4, "fusion_broken")
    alerts = fired(store, "FusionNotHelping")
    assert alerts and {a.labels["slice"] for a in alerts} >= {"*"}
    df = store.evaluations.frame()
    rows = df[(df["metric"] == "fusion_vs_best") & (df["slice"] == "*")].sort_values("window_start")
    assert set(rows["variant"]) == {"fused_minus_image_agresti_min_95"}  # the best on the reference
    before, after = rows.iloc[0], rows.iloc[-1]
    assert before["value"] < 0 < after["ci_low"]  # fusion helped on the first day, hurts after
    store.close()


def test_thirty_quiet_days_of_three_modalities_in_twenty_slices_raise_no_modality_alert(tmp_path):
    store = run(tmp_path, REFERENCE_DAYS + 30, 3000, 20)
    df = store.evaluations.frame()
    mine = df[df["metric"].isin(["modality_error_rate", "modality_ece_drift", "fusion_vs_best"])]
    ok = mine[mine["status"] == "ok"]
    # 30 windows × 21 slices (all traffic too) × 3 modalities, each tested
    assert ok[ok["metric"] == "modality_error_rate"].groupby("window_start").size().min() == 21 * 3
    # under no change, Benjamini–Hochberg at 5 % decides something in a family on at most 5 % of
    # windows: over 3 families × 30 windows, at most 4.5 windows' decisions; the rules, which
    # also ask p ≤ 0.01 and an effect floor, fire none
    decided = mine[mine["decision"] == 1].groupby(["window_start", "metric"]).ngroups
    assert decided <= 0.05 * 3 * 30, mine[mine["decision"] == 1]
    assert not [a for rule in RULES for a in fired(store, rule)]
    store.close()


def test_the_report_shows_each_stream_and_its_trust(tmp_path):
    from monitor.pages import report_html
    from monitor.report import build_report

    store = run(tmp_path, REFERENCE_DAYS + 3, 4000, 4, "audio_worse")
    cfg = parse_config(CONFIG)
    end = T0 + (REFERENCE_DAYS + 3) * DAY
    report = build_report(store, cfg, T0, end, end)
    own = {s["signal"] for s in report["streams"]["per_modality"] if s["metric"] == "modality_error_rate"}
    assert own == {"audio.answer", "image.answer", "text.answer"}
    audio = next(t for t in report["streams"]["trust"] if t["modality"] == "audio" and t["slice"] == "*")
    assert audio["state"] in ("degraded", "failed")
    assert {r["kind"] for r in audio["reasons"]} >= {"error_rate", "disagreement"}
    image = next(t for t in report["streams"]["trust"] if t["modality"] == "image" and t["slice"] == "*")
    assert image["state"] == "ok"
    html = report_html(report)
    assert "Each modality&#x27;s own error rate" in html or "Each modality's own error rate" in html
    assert "error_rate audio.answer" in html
    store.close()
