"""Modality trust through the real evaluator and store: an image stream darkened over a day goes
ok → degraded → failed with its drifted signals as the reasons while audio stays ok, and comes
back to ok once the stream does (after the hysteresis' windows, without flapping); quiet hours
move nothing."""

from __future__ import annotations

from monitor.checks.trust import UNKNOWN, held
from tests.monitor.trust_traffic import HOUR, REFERENCE_DAYS, T0, flaps, states, trust_run

MONITORED = T0 + REFERENCE_DAYS * 24 * HOUR


def darkened_then_back(h: int) -> float:
    return 4.0 * h / 23 if h < 24 else 0.0  # 0 → 4 SDs darker over the first day, then as before


def test_a_darkened_image_stream_degrades_then_fails_and_comes_back(tmp_path):
    _, store = trust_run(tmp_path, 36, 400, darkened_then_back)
    image = [(t, s) for t, s, _ in states(store, "image") if t >= MONITORED]
    audio = {s for t, s, _ in states(store, "audio") if t >= MONITORED}
    seq = [s for _, s in image]
    assert len(seq) == 36 and audio == {"ok"}
    first_degraded, first_failed = seq.index("degraded"), seq.index("failed")
    assert seq[0] == "ok" and first_degraded < first_failed < 24
    # once failed it holds while the stream is that dark, then recovers once it is back
    assert set(seq[first_failed:24]) == {"failed"}
    back = seq[24:]
    assert back[0] == "failed" and back[-1] == "ok"  # the first clean hour does not yet count
    assert back.index("ok") == 1  # recover_after: ok in the second clean window
    assert flaps(seq) == 1
    # the reasons, as the serving system reads them: the drifted image signals
    from monitor.trust import trust_now

    now = trust_now(store, store_config(), at=T0 + (REFERENCE_DAYS * 24 + 20) * HOUR)
    failed = next(t for t in now["trust"] if t["modality"] == "image" and t["slice"] == "*")
    assert failed["state"] == "failed"
    assert {r["signal"] for r in failed["reasons"]} >= {"image.brightness"}
    assert all(r["kind"] == "signal_drift" for r in failed["reasons"])
    store.close()


def store_config():
    from monitor.config import parse_config
    from tests.monitor.trust_traffic import CONFIG

    return parse_config(CONFIG)


def test_quiet_hours_move_no_stream(tmp_path):
    _, store = trust_run(tmp_path, 48, 400, name="quiet")
    for modality in ("image", "audio"):
        for sl in ("*", "site=north", "site=south"):
            seq = [s for t, s, _ in states(store, modality, sl) if t >= MONITORED]
            assert len(seq) == 48 and set(seq) == {"ok"}, (modality, sl, seq)
    store.close()


def test_hysteresis():
    # a state holds once 2 windows in a row showed it (or worse), gives way once 2 showed better
    assert held("failed", "ok", [], 2, 2) == "ok"
    assert held("failed", "ok", ["ok"], 2, 2) == "ok"
    assert held("failed", "ok", ["degraded"], 2, 2) == "degraded"
    assert held("failed", "degraded", ["failed"], 2, 2) == "failed"
    assert held("ok", "failed", ["failed"], 2, 2) == "failed"
    assert held("ok", "failed", ["ok"], 2, 2) == "ok"
    assert held("ok", "failed", ["degraded"], 2, 2) == "degraded"
    assert held("ok", "degraded", ["ok", "ok"], 2, 3) == "ok"
    assert held("degraded", "ok", [], 1, 1) == "degraded"
    # too little data is said at once, and a stream known again starts from ok
    assert held(UNKNOWN, "failed", ["failed"], 2, 2) == UNKNOWN
    assert held("degraded", UNKNOWN, [UNKNOWN], 2, 2) == "ok"


def test_each_change_is_one_message_on_the_trust_topic(tmp_path, kafka_bootstrap):
    import json
    import uuid
    from datetime import datetime, timezone

    from kafka import KafkaConsumer

    from alerts.outbox import deliver_due
    from monitor.wiring import build_senders
    from tests.conftest import make_topics

    topic = f"trust-{uuid.uuid4().hex[:6]}"
    make_topics(kafka_bootstrap, [topic])
    extra = f"""
ingest: {{kafka: {{bootstrap_servers: ["{kafka_bootstrap}"]}}}}
trust: {{topic: {topic}}}
"""
    cfg, store = trust_run(tmp_path, 30, 400, darkened_then_back, extra=extra)
    senders, delivered = build_senders(cfg), 0
    while True:  # a pass sends each stream's oldest change: its next one waits for it (order)
        done = deliver_due(store.alerts, senders, datetime.now(timezone.utc), 0.1, 1.0)
        if not done.delivered:
            break
        delivered += done.delivered
    consumer = KafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=5000
    )
    got = [(m.key.decode(), json.loads(m.value)) for m in consumer]
    consumer.close()
    assert len(got) == delivered
    image = [p for k, p in got if k == "m|*|image"]
    # the stream's changes in order: first known ok, then degraded, failed, and back to ok
    assert [(p["previous"], p["state"]) for p in image] == [
        ("unknown", "ok"),
        ("ok", "degraded"),
        ("degraded", "failed"),
        ("failed", "ok"),
    ]
    assert image[2]["reasons"] and image[2]["reasons"][0]["signal"].startswith("image.")
    # audio became known once, as ok, and never changed
    assert [(p["previous"], p["state"]) for k, p in got if k == "m|*|audio"] == [("unknown", "ok")]
    store.close()


def test_trust_endpoint_and_gauge(tmp_path):
    import json

    from prometheus_client.parser import text_string_to_metric_families

    from monitor.core.web import WebRequest
    from monitor.metrics import DaemonMetrics
    from monitor.web import WebFace

    cfg, store = trust_run(tmp_path, 12, 400, darkened_then_back)  # image failed by hour 11
    face = WebFace(cfg, store, metrics=lambda st: DaemonMetrics().render(st, {}))

    def get(name: str, path: str, **query):
        return face.answer(name, WebRequest("GET", path, {}, query))

    code, kind, body = get("trust", "/v1/trust", modality="image", slice="*")
    got = json.loads(body)["trust"]
    assert code == 200 and kind == "application/json" and len(got) == 1
    t = got[0]
    assert (t["model"], t["modality"], t["slice"], t["state"], t["interval"]) == (
        "m",
        "image",
        "*",
        "failed",
        "1h",
    )
    assert t["since"] < t["window_start"] and t["reasons"] and t["events"] == 400
    everything = json.loads(get("trust", "/v1/trust")[2])["trust"]
    assert {(x["modality"], x["slice"]) for x in everything} == {
        (m, s) for m in ("image", "audio") for s in ("*", "site=north", "site=south")
    }
    code, _, body = get("trust", "/v1/trust", modalty="image")
    assert code == 400 and "modalty" in json.loads(body)["error"]
    _, _, text = get("metrics", "/metrics")
    gauge = {
        (s.labels["modality"], s.labels["state"]): s.value
        for f in text_string_to_metric_families(text.decode())
        if f.name == "modalwatch_modality_trust"
        for s in f.samples
    }
    by_state = {}
    for x in everything:
        by_state[x["modality"], x["state"]] = by_state.get((x["modality"], x["state"]), 0) + 1
    assert gauge == by_state and gauge[("audio", "ok")] == 3
    store.close()


def test_every_kind_of_reason_and_when_it_is_a_failure():
    from datetime import datetime, timezone

    from monitor.checks.trust import TrustConfig, reasons_of, state_of
    from monitor.core.records import EvaluationRow

    t = datetime(2026, 4, 6, tzinfo=timezone.utc)

    def row(metric, signal, value, **kw):
        base = dict(model_name="m", model_version="1", interval_s=3600, lag_s=0, window_start=t, window_end=t,
                    evaluated_at=t, slice="*", detector=metric, variant="", status="ok")  # fmt: skip
        return EvaluationRow(metric=metric, signal=signal, value=value, **{**base, **kw})

    rows = [
        row("psi", "image.brightness", 0.4, decision=1),  # drifted: degraded
        row("psi", "image.sharpness", 0.1, decision=0),  # not decided: no reason
        row("missing_modality_share", "audio", 0.6, reference_value=0.01, ci_low=0.55),  # most missing
        row("modality_error_rate", "text.answer", 0.3, effect=0.1, p_adjusted=0.001),
        row("modality_ece_drift", "text.answer", 0.05, effect=0.05, p_adjusted=0.001),
        row("modality_disagreement", "image.answer", 0.2, effect=0.02, p_adjusted=0.001),  # below the floor
        row("chisquare", "text.language", 900.0, effect=0.6, decision=1, slice="locale=en-US"),
    ]
    got = reasons_of(rows, TrustConfig())
    assert [r.signal for r in got["*", "image"]] == ["image.brightness"]
    assert state_of(got["*", "image"]) == "degraded"
    assert [(r.kind, r.gross) for r in got["*", "audio"]] == [("missing", True)]
    assert state_of(got["*", "audio"]) == "failed"
    assert sorted(r.kind for r in got["*", "text"]) == ["calibration", "error_rate"]
    assert state_of(got["*", "text"]) == "failed"  # two kinds of reason at once
    assert [r.kind for r in got["locale=en-US", "text"]] == ["signal_drift"]
    assert state_of([]) == "ok"


def test_the_trust_command_prints_what_the_endpoint_serves(tmp_path, capsys):
    import json

    from monitor.cli import main
    from monitor.trust import trust_now

    cfg, store = trust_run(tmp_path, 12, 400, darkened_then_back)
    served = trust_now(store, cfg)["trust"]
    store.close()
    conf = tmp_path / "c.yaml"
    conf.write_text(f"store: {{path: {tmp_path / 'trust.db'}}}\nevaluation: {{intervals: [1h]}}\n")
    assert main(["trust", "--config", str(conf), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trust"] == served
    assert main(["trust", "--config", str(conf), "--modality", "image", "--slice", "*"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("m 1") and " image  failed " in line and "signal_drift image.brightness" in line
    assert line.count("image.brightness") == 1  # its PSI and KS are one reason to a reader


def test_only_the_served_series_changes_are_told():
    """With hourly and daily windows, the topic tells the hourly series' changes (what
    GET /v1/trust serves): a daily window's state under the same key would contradict it."""
    from datetime import datetime, timezone

    from monitor.config import parse_config
    from monitor.core.records import EvaluationRow
    from monitor.trust import changes

    cfg = parse_config("evaluation: {intervals: [1h, 1d], lag: 0s}\n")
    t = datetime(2026, 4, 6, tzinfo=timezone.utc)

    def row(interval_s):
        return EvaluationRow("m", "1", interval_s, 0, t, t, t, "*", "trust", "modality_trust", "image.trust",
                             "failed", "ok", 2.0, reference_value=0.0, effect=2.0, n=500)  # fmt: skip

    told = changes([row(3600), row(86400)], cfg, t)
    assert [(m["key"], m["interval"], m["previous"], m["state"]) for m in told] == [
        ("m|*|image", "1h", "ok", "failed")
    ]
