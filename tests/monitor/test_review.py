"""Review routing (issue 6): candidates within a per-stratum daily budget, most uncertain first,
never twice, expiring; Label Studio export (URIs, predictions, no bytes) and import back."""

import json
from datetime import timedelta

import skimage

from monitor.config import parse_config
from monitor.housekeeping import purge
from monitor.pipeline import Pipeline, RawMessage
from monitor.review import export_review, import_labels
from tests.helpers import T0, image_bytes, inference

CFG = """
review: {confidence_below: 0.5, daily_budget_per_stratum: 50, stratify_by: [device], item_ttl: 7d}
"""


def _msgs(objs, tag="t"):
    return [RawMessage("test", f"{tag}:{i}", json.dumps(o).encode()) for i, o in enumerate(objs)]


def _uncertain(i, device, conf, **over):
    return inference(i, slice={"device": device}, output={"label": "cat", "confidence": conf}, **over)


def test_a_loud_slice_cannot_use_up_the_budget_most_uncertain_first_never_twice(any_store):
    cfg = parse_config(CFG)
    day0 = T0 + timedelta(hours=12)
    loud = [_uncertain(i, "cam_a", 0.10 + (i % 300) / 1000) for i in range(1000)]
    quiet = [_uncertain(5000 + i, "cam_b", 0.3) for i in range(20)]
    Pipeline(cfg, any_store, lambda: day0).process(_msgs(loud + quiet))
    queued = any_store.review.queue("queued")
    by = {}
    for it in queued:
        by.setdefault(it.stratum, []).append(it)
    assert {k: len(v) for k, v in by.items()} == {"device=cam_a": 50, "device=cam_b": 20}
    assert (
        max(it.confidence for it in by["device=cam_a"]) <= 0.112 + 1e-9
    )  # the 50 least confident (each value 4x)
    Pipeline(cfg, any_store, lambda: day0).process(_msgs(loud, "again"))  # replayed: nothing new
    more = [_uncertain(9000 + i, "cam_a", 0.01) for i in range(10)]
    Pipeline(cfg, any_store, lambda: day0 + timedelta(hours=1)).process(_msgs(more))
    assert len(any_store.review.queue("queued")) == 70  # cam_a's budget for today is spent
    Pipeline(cfg, any_store, lambda: day0 + timedelta(days=1)).process(_msgs(more, "tomorrow"))
    assert len(any_store.review.queue("queued")) == 70  # the same events are never queued twice
    fresh = [_uncertain(9100 + i, "cam_a", 0.2) for i in range(60)]
    Pipeline(cfg, any_store, lambda: day0 + timedelta(days=1)).process(_msgs(fresh))
    assert len(any_store.review.queue("queued")) == 120  # a new day, a new budget of 50

    abst = inference(
        9999, slice={"device": "cam_c"}, output={"label": "cat", "confidence": 0.9, "abstained": True}
    )
    Pipeline(cfg, any_store, lambda: day0).process(_msgs([abst], "abst"))
    assert [it.reason for it in any_store.review.queue("queued") if it.event_id == "e0009999"] == [
        "abstained"
    ]

    assert purge(cfg, any_store, day0 + timedelta(days=7, hours=1)).review_expired == 71  # day 0's items
    assert len(any_store.review.queue("expired")) == 71 and len(any_store.review.queue("queued")) == 50


def test_label_studio_export_points_at_media_and_import_closes_items(any_store, tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (media / "a.png").write_bytes(image_bytes(skimage.data.camera()))
    uri = (media / "a.png").as_uri()
    cfg = parse_config(CFG + f"media: {{allowed_roots: [{media}]}}\n")
    events = [_uncertain(i, "cam_a", 0.2 + i / 100, inputs={"image": {"uri": uri}}) for i in range(3)]
    p = Pipeline(cfg, any_store, lambda: T0 + timedelta(hours=1))
    assert [o.status for o in p.process(_msgs(events))] == ["stored"] * 3

    out = tmp_path / "tasks.json"
    assert export_review(any_store, out, T0 + timedelta(hours=2), fmt="labelstudio") == 3
    tasks = json.loads(out.read_text())
    assert [t["data"]["event_id"] for t in tasks] == ["e0000000", "e0000001", "e0000002"]
    for t in tasks:
        assert t["data"]["image"] == uri and t["data"]["slice_device"] == "cam_a"
        (pred,) = t["predictions"]
        assert pred["result"][0] == {
            "from_name": "label",
            "to_name": "image",
            "type": "choices",
            "value": {"choices": ["cat"]},
        }
        assert 0 < pred["score"] < 1
    assert "data_b64" not in out.read_text() and "iVBOR" not in out.read_text()  # no bytes, only the URI
    assert len(any_store.review.queue("exported")) == 3

    # what Label Studio exports after review: the tasks with annotations (one cancelled, one task skipped)
    tasks[0]["annotations"] = [
        {
            "result": [{"type": "choices", "value": {"choices": ["dog"]}}],
            "updated_at": "2026-01-05T10:00:00Z",
            "was_cancelled": False,
        }
    ]
    tasks[1]["annotations"] = [
        {
            "result": [{"type": "choices", "value": {"choices": ["dog"]}}],
            "updated_at": "2026-01-05T10:00:00Z",
        },
        {
            "result": [{"type": "choices", "value": {"choices": ["cat"]}}],
            "updated_at": "2026-01-05T11:00:00Z",
        },
        {
            "result": [{"type": "choices", "value": {"choices": ["bird"]}}],
            "updated_at": "2026-01-05T12:00:00Z",
            "was_cancelled": True,
        },
    ]
    back = tmp_path / "export.json"
    back.write_text(json.dumps(tasks))
    later = T0 + timedelta(days=1)
    outcomes = import_labels(Pipeline(cfg, any_store, lambda: later), back, later)
    assert [o.status for o in outcomes] == ["stored", "stored"]
    labels = dict(any_store.db.all("SELECT event_id, label FROM labels ORDER BY event_id"))
    assert labels == {"e0000000": "dog", "e0000001": "cat"}  # the newest annotation that was not cancelled
    stats = any_store.review.stats()
    assert stats["by_state"] == {"labelled": 2, "exported": 1} and stats["labelled"] == 2
    assert stats["agreement"] == 0.5  # the model said cat to both
    assert stats["labelled_per_day"] == {later.date().isoformat(): 2}  # throughput
    from monitor.config import load_config
    from monitor.pages import report_html
    from monitor.report import build_report

    report = build_report(any_store, load_config(), T0, T0 + timedelta(days=1), later)
    assert {k: v for k, v in report["review"].items() if k != "created_per_day"} == stats
    assert "Reviewers agreed with the model on 50.0% of 2 labelled items" in report_html(report)


def test_a_label_from_the_ordinary_labels_stream_closes_its_review_item(any_store):
    from tests.helpers import label

    cfg = parse_config(CFG)
    p = Pipeline(cfg, any_store, lambda: T0 + timedelta(days=1))
    p.process(_msgs([_uncertain(i, "cam_a", 0.2) for i in range(3)]))
    p.process(_msgs([label(1, ts=T0 + timedelta(hours=2))], "labels"))  # as from Kafka or POST /v1/labels
    assert any_store.review.stats()["by_state"] == {"queued": 2, "labelled": 1}


def test_modalities_that_disagree_make_a_confident_event_a_candidate(any_store):
    cfg = parse_config(CFG)
    agree = inference(
        1,
        output={
            "label": "cat",
            "confidence": 0.95,
            "per_modality": {"image": {"label": "cat"}, "audio": {"label": "cat", "confidence": 0.9}},
        },
    )
    differ = inference(
        2,
        output={
            "label": "cat",
            "confidence": 0.95,
            "per_modality": {"image": {"label": "cat"}, "audio": {"label": "dog"}},
        },
    )
    Pipeline(cfg, any_store, lambda: T0 + timedelta(days=1)).process(_msgs([agree, differ]))
    assert [(it.event_id, it.reason) for it in any_store.review.queue()] == [
        ("e0000002", "modalities_disagree")
    ]
    off = parse_config(CFG.replace("item_ttl: 7d}", "item_ttl: 7d, modalities_disagree: false}"))
    differ["event_id"] = "e0000003"
    Pipeline(off, any_store, lambda: T0 + timedelta(days=1)).process(_msgs([differ], "off"))
    assert len(any_store.review.queue()) == 1


def _review_cli(tmp_path, extra_yaml, *args):
    import subprocess

    from tests.conftest import ROOT, modalwatch_cmd

    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"store: {{path: {tmp_path / 'mw.db'}}}\n" + extra_yaml)
    return subprocess.run(
        modalwatch_cmd() + ["review", "export", *args, "--config", str(cfg)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _queue_three(tmp_path):
    from connectors.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "mw.db")
    store.migrate()
    Pipeline(parse_config(CFG), store, lambda: T0 + timedelta(days=1)).process(
        _msgs([_uncertain(i, "cam_a", 0.2) for i in range(3)])
    )
    return store


def test_review_export_to_a_webhook_and_nothing_lost_when_it_refuses(tmp_path):
    from alerts.receiver import WebhookReceiver

    store = _queue_three(tmp_path)
    with WebhookReceiver(secret="k", refuse_first=1) as recv:
        yaml = f"review: {{export_url: '{recv.url}', export_secret: k}}\n"
        refused = _review_cli(tmp_path, yaml, "--to", "webhook", "--format", "labelstudio")
        assert refused.returncode == 1 and "HTTP 503" in refused.stderr and recv.url not in refused.stderr
        assert len(store.review.queue("queued")) == 3  # still queued: nothing lost
        ok = _review_cli(tmp_path, yaml, "--to", "webhook", "--format", "labelstudio")
        assert ok.returncode == 0, ok.stderr
    (got,) = recv.received
    assert got["signature_valid"] and got["payload"]["format"] == "labelstudio"
    assert [t["data"]["event_id"] for t in got["payload"]["items"]] == ["e0000000", "e0000001", "e0000002"]
    assert len(store.review.queue("exported")) == 3
    store.close()


def test_review_export_to_a_kafka_topic(tmp_path, kafka_bootstrap):
    import uuid

    from kafka import KafkaConsumer

    from tests.conftest import make_topics

    topic = f"review-{uuid.uuid4().hex[:8]}"
    make_topics(kafka_bootstrap, [topic])
    store = _queue_three(tmp_path)
    yaml = (
        f"ingest: {{kafka: {{bootstrap_servers: ['{kafka_bootstrap}']}}}}\n"
        f"review: {{export_topic: {topic}}}\n"
    )
    out = _review_cli(tmp_path, yaml, "--to", "kafka")
    assert out.returncode == 0, out.stderr
    assert "exported 3 review item(s) to Kafka topic" in out.stdout
    consumer = KafkaConsumer(
        topic, bootstrap_servers=kafka_bootstrap, auto_offset_reset="earliest", consumer_timeout_ms=10_000
    )
    got = [json.loads(m.value) for m in consumer]
    consumer.close()
    assert sorted(g["event_id"] for g in got) == ["e0000000", "e0000001", "e0000002"]
    assert all(g["label"] is None and g["reason"] == "low_confidence" for g in got)
    assert len(store.review.queue("exported")) == 3
    store.close()


def test_slices_with_low_mean_confidence_send_their_unlabelled_events(any_store):
    from monitor.evaluation import Evaluator
    from tests.helpers import NOW
    from tests.monitor.test_evaluation import CFG as EVAL_CFG, _traffic

    for threshold, expect in ((0.5, 0), (0.8, 1)):  # every slice's mean confidence here is about 0.745
        cfg = parse_config(
            EVAL_CFG.replace(
                "  events_per_alert: 10", f"  events_per_alert: 10\n  mean_confidence_below: {threshold}"
            )
        )
        any_store.db.execute("DELETE FROM eval_runs")
        if threshold == 0.5:
            Pipeline(cfg, any_store, lambda: NOW).process(_traffic(days=6, label_every=1000))
        Evaluator(cfg, any_store, lambda: NOW, owner="a").run_due(any_store.events.watermark())
        reasons = {it.reason for it in any_store.review.queue()}
        assert bool({r for r in reasons if r.startswith("low_mean_confidence:device=")}) == bool(expect), (
            reasons
        )
