"""Whatever a message holds, it ends stored or as a dead letter with its reason — on SQLite and
PostgreSQL, from a topic (the kind known) or a JSONL line (the content says) — and the batch
around it is stored; nothing raw and no NUL reaches the store; a replay reads each dead letter as
it came and says what became of it."""

import json
import subprocess
from datetime import timedelta

import pytest

from monitor.config import parse_config
from monitor.core.messages import RawMessage
from monitor.pipeline import Pipeline
from monitor.replay import replay_dead_letters
from tests.conftest import ROOT, modalwatch_cmd
from tests.corpus import PNG_B64, bad_inference_messages, dump, ev_bytes, good, values
from tests.helpers import NOW, T0, inference, label, write_jsonl


@pytest.mark.parametrize("kind", ["inference", None])
def test_every_bad_message_is_a_dead_letter_and_its_batch_is_stored(any_store, kind):
    bad = bad_inference_messages()
    if kind is None:  # on a JSONL line the content says the kind: a label is a label there
        bad = [(name, p) for name, p in bad if name != "a label sent as an inference"]
    assert len(bad) >= 25
    msgs = []
    for k, (name, payload) in enumerate(bad):
        msgs += [
            RawMessage("t", f"t:{name}", payload, kind),
            *[RawMessage("t", f"t:ok{k}.{j}", p, kind) for j, (_, p) in enumerate(good(100 + 2 * k, 2))],
        ]
    outcomes = Pipeline(parse_config(""), any_store, lambda: NOW).process(msgs)
    by = {o.position: o for o in outcomes}
    for name, _ in bad:
        o = by[f"t:{name}"]
        assert o.status == "dead_letter" and o.reason, (name, o)
    assert sum(o.status == "stored" for o in outcomes) == 2 * len(bad)
    letters = {d.position: d for d in any_store.ops.dead_letters()}
    assert set(letters) == {f"t:{name}" for name, _ in bad}
    assert all(d.kind == kind and d.reason for d in letters.values())
    # the reasons a producer reads
    assert "malformed JSON" in by["t:deep object"].reason and "malformed JSON" in by["t:deep array"].reason
    assert "U+0000" in by["t:NUL escape in a label"].reason
    assert "output.confidence" in by["t:confidence as a string"].reason
    # no text holds a NUL (a dead letter's own bytes may: they are bytes), no media anywhere
    assert not [v for v in values(any_store) if isinstance(v, str) and "\x00" in v]
    assert PNG_B64[:40] not in dump(any_store)


def test_a_data_uri_is_refused_and_no_part_of_it_is_kept(any_store):
    ev = inference(1)
    ev["inputs"]["image"] = {"uri": f"data:image/png;base64,{PNG_B64}"}
    out = Pipeline(parse_config(""), any_store, lambda: NOW).process(
        [RawMessage("t", "t:1", json.dumps(ev).encode())]
    )
    assert out[0].status == "stored" and "scheme 'data' is not allowed" in out[0].reason
    (uris,) = any_store.db.all("SELECT media_uris FROM events")
    assert "data:sha256:" in str(uris[0]) and PNG_B64[:20] not in str(uris[0])
    (letter,) = any_store.ops.dead_letters()
    assert letter.position == "t:1#image" and PNG_B64[:20].encode() not in letter.payload
    assert PNG_B64[:20] not in dump(any_store)


def test_a_file_uri_with_an_encoded_nul_is_a_media_failure(sqlite_store, tmp_path):
    cfg = parse_config(f"media: {{allowed_roots: [{tmp_path}]}}\n")
    ev = inference(1)
    ev["inputs"]["image"] = {"uri": f"file://{tmp_path}/a%00.png"}
    out = Pipeline(cfg, sqlite_store, lambda: NOW).process([RawMessage("t", "t:1", json.dumps(ev).encode())])
    assert out[0].status == "stored" and "NUL" in out[0].reason


def test_ingest_of_poison_lines_stores_the_good_ones_and_exits_0(tmp_path):
    lines = [
        inference(1),
        '{"a":' * 3000 + "1" + "}" * 3000,
        inference(2),
        json.dumps(inference(3)).replace('"confidence": 0.53', '"confidence": ' + "9" * 5000),
        inference(4),
    ]
    data = write_jsonl(tmp_path / "poison.jsonl", lines)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"store: {{path: {tmp_path / 'mw.db'}}}\n")
    out = subprocess.run(
        modalwatch_cmd() + ["ingest", "--config", str(cfg), str(data)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "stored 3" in out.stdout and "dead letters 2" in out.stdout


def test_replay_reads_each_dead_letter_as_it_came_and_says_what_became_of_it(any_store, tmp_path):
    cfg = parse_config(f"media: {{allowed_roots: [{tmp_path}]}}\n")
    p = Pipeline(cfg, any_store, lambda: NOW)
    broken = inference(5)
    broken["inputs"]["image"] = {"uri": f"file://{tmp_path}/missing.png"}
    p.process(
        [
            RawMessage(
                "kafka", "k/0/1", ev_bytes(1).replace(b"0.51", b"1" * 5000), "inference"
            ),  # a poison number
            RawMessage("kafka", "k/0/2", json.dumps(label(2)).encode(), "inference"),  # the wrong topic
            RawMessage(
                "kafka", "k/0/3", ev_bytes(3).replace(b'"m"', b'"m\xff"'), "inference"
            ),  # invalid UTF-8
            RawMessage(
                "kafka", "k/0/4", ev_bytes(4, ts=(NOW + timedelta(days=2)).isoformat()), "inference"
            ),  # clock skew
            RawMessage(
                "kafka", "k/0/5", json.dumps(broken).encode(), "inference"
            ),  # stored without its image
        ]
    )
    assert len(any_store.ops.dead_letters()) == 5
    later = Pipeline(
        cfg, any_store, lambda: NOW + timedelta(days=3)
    )  # the producer's clock was right after all
    done = replay_dead_letters(later, None, NOW + timedelta(days=3))
    by = {
        d.position: status
        for d, (_, status, _) in zip(any_store.ops.dead_letters(include_replayed=True), done.outcomes)
    }
    assert by == {
        "k/0/1": "dead_letter",
        "k/0/2": "dead_letter",
        "k/0/3": "dead_letter",
        "k/0/4": "stored",
        "k/0/5#image": "dead_letter",
    }
    reasons = dict(done.still_rejected)
    assert any("where 'inference' events go" in r for r in reasons.values())  # still the wrong topic
    assert any("malformed JSON" in r for r in reasons.values())
    assert any_store.ops.counts()["events"] == 2  # the skewed one now, the partial one as before
    assert len(any_store.ops.dead_letters(include_replayed=True)) == 5  # nothing multiplied (…#image#image)
    assert not any_store.db.all("SELECT event_id FROM events WHERE model_name LIKE ?", ("%\ufffd%",))


def test_events_whose_embeddings_disagree_in_length_do_not_stop_the_window(any_store):
    """One producer sends 7-long vectors among the 8-long ones (and in the reference too): the
    window is evaluated; the MMD row says how many vectors it left out."""
    from monitor.evaluation import Evaluator
    from tests.monitor.test_evaluation import CFG, _traffic

    cfg = parse_config(CFG)
    msgs = []
    for m in _traffic(days=5):
        obj = json.loads(m.payload)
        if obj["type"] == "inference":
            i = int(obj["event_id"][1:])
            obj["embeddings"] = {"clip": [0.1 * (i % 5)] * (7 if i % 50 == 0 else 8)}
        msgs.append(RawMessage(m.source, m.position, json.dumps(obj).encode()))
    Pipeline(cfg, any_store, lambda: NOW).process(msgs)
    assert Evaluator(cfg, any_store, lambda: T0, owner="a").run_due(any_store.events.watermark()) == 4
    df = any_store.evaluations.frame()
    mmd = df[df["metric"] == "mmd"]
    assert len(mmd) == 4 and (mmd["status"] == "ok").all()
    assert mmd["variant"].str.contains("_without_6_of_another_dimension").all()
    assert not (df["status"] == "error").any()


def test_a_check_that_fails_gives_an_error_row_and_the_window_finishes(any_store, caplog):
    from monitor import checks
    from monitor.evaluation import Evaluator
    from tests.monitor.test_evaluation import CFG, _traffic

    class Broken(checks.Check):
        name = "broken"
        metrics = ("broken_metric",)

        def run(self, summary, inputs):
            raise ZeroDivisionError("a bug")

    checks.register(Broken)
    try:
        cfg = parse_config(CFG)
        Pipeline(cfg, any_store, lambda: NOW).process(_traffic(days=5))
        assert Evaluator(cfg, any_store, lambda: T0, owner="a").run_due(any_store.events.watermark()) == 4
    finally:
        checks.unregister("broken")
    df = any_store.evaluations.frame()
    errors = df[df["status"] == "error"]
    assert len(errors) == 4 and set(errors["variant"]) == {"failed_ZeroDivisionError"}
    assert (df["metric"] == "error_rate").sum() > 0  # the other checks stand
    assert "check broken failed" in caplog.text


def test_an_attribute_with_an_id_in_it_is_bounded_and_said_so(any_store):
    """A producer puts each event's own id in a slice attribute: per window at most
    evaluation.max_slice_values of its values are slices (the reference's most frequent, then the
    window's), the rest one "(other)" slice; the slice_cardinality row and its default rule say so."""
    from monitor.evaluation import Evaluator
    from tests.monitor.test_evaluation import CFG, _traffic

    flood_rule = (
        "    - {name: SliceValuesFlooded, metric: slice_values, field: decision, op: '>=', threshold: 1}\n"
    )
    cfg = parse_config(
        CFG.replace("  checks:\n", "  max_slice_values: 20\n  checks:\n").replace(
            "  rules:\n", "  rules:\n" + flood_rule
        )
    )
    msgs = []
    for m in _traffic(days=5):
        obj = json.loads(m.payload)
        if obj["type"] == "inference":
            obj["slice"]["user"] = f"u{obj['event_id']}"  # 300 new values a day
        msgs.append(RawMessage(m.source, m.position, json.dumps(obj).encode()))
    Pipeline(cfg, any_store, lambda: NOW).process(msgs)
    assert Evaluator(cfg, any_store, lambda: T0, owner="a").run_due(any_store.events.watermark()) == 4
    df = any_store.evaluations.frame()
    per_window = (
        df[df["metric"] == "error_rate"]
        .groupby("window_start")["slice"]
        .apply(lambda s: sum(x.startswith("user=") for x in s))
    )
    assert (per_window <= 21).all() and (per_window > 1).all()  # 20 values and (other) at most
    assert "user=(other)" in set(df["slice"])
    card = df[(df["metric"] == "slice_values") & (df["signal"] == "slice.user")]
    assert len(card) == 4 and (card["value"] == 300).all() and (card["decision"] == 1).all()
    assert set(card["variant"]) == {"bounded_to_20"}
    quiet = df[(df["metric"] == "slice_values") & (df["signal"] == "slice.device")]
    assert (quiet["decision"] == 0).all() and (quiet["value"] == 3).all()
    flooded = [a for a in any_store.alerts.list("firing") if a.rule == "SliceValuesFlooded"]
    assert [a.labels["signal"] for a in flooded] == ["user"] and flooded[0].labels["modality"] == "slice"


def test_a_replay_of_the_whole_corpus_adds_no_dead_letter_and_passes_what_can(any_store):
    """Issue 24: `dlq replay` of a mixed corpus replayed nothing and added 1,400 letters (media
    letters failed on the dropped media's note, bodies not kept on "payload too large: 0 bytes").
    Now: no letter is added; a stored event's dropped media is not required again; an event
    refused for its clock passes later without the media that was not kept; what still fails
    says why."""
    cfg = parse_config("ingest: {max_payload_bytes: 4096}\n")
    bad_png = {"data_b64": PNG_B64[:40] + "AAAA"}  # inline bytes that do not decode
    skewed = inference(2, ts=NOW + timedelta(days=2))
    skewed["inputs"]["image"] = {"data_b64": PNG_B64}
    msgs = [RawMessage("t", f"t:{name}", payload, "inference") for name, payload in bad_inference_messages()]
    msgs += [
        RawMessage(
            "t", "t:partial", json.dumps(inference(1, inputs={"image": bad_png})).encode(), "inference"
        ),
        RawMessage("t", "t:skewed", json.dumps(skewed).encode(), "inference"),
        RawMessage("t", "t:too-large", json.dumps(inference(3, pad="x" * 5000)).encode(), "inference"),
        RawMessage("t", "t:gone", None, "inference", error="payload too large: 9999999 bytes"),  # as HTTP 413
        RawMessage(
            "t",
            "t:both",
            json.dumps({**inference(4, inputs={"image": {"data_b64": PNG_B64}}), "colour": "x"}).encode(),
            "inference",
        ),
        *[RawMessage("t", f"t:ok{i}", p, "inference") for i, (_, p) in enumerate(good(100, 5))],
    ]
    Pipeline(cfg, any_store, lambda: NOW).process(msgs)
    before = len(any_store.ops.dead_letters(include_replayed=True))
    assert before == len(bad_inference_messages()) + 5  # the partial event's #image letter among them
    done = replay_dead_letters(Pipeline(cfg, any_store, lambda: NOW + timedelta(days=3)), None, NOW)
    assert len(any_store.ops.dead_letters(include_replayed=True)) == before  # none added
    by = {d.position: (status, reason) for d, (_, status, reason) in zip(
        any_store.ops.dead_letters(include_replayed=True), done.outcomes
    )}  # fmt: skip
    assert by["t:partial#image"][0] == "duplicate"  # the event is stored; its dropped image not asked for
    assert by["t:skewed"] == ("stored", "without image (its media was not kept)")
    assert by["t:too-large"][0] == "dead_letter" and "payload too large: 5" in by["t:too-large"][1]
    assert by["t:gone"] == ("dead_letter", "its bytes were not kept (too large or unreadable): send it again")
    assert by["t:both"][0] == "dead_letter" and "colour" in by["t:both"][1]
    assert by["t:unknown field"][0] == "dead_letter" and "colour" in by["t:unknown field"][1]
    assert {d.position for d in any_store.ops.dead_letters()} == {
        p for p, (status, _) in by.items() if status == "dead_letter"
    }  # the others are marked replayed
    assert PNG_B64[:40] not in dump(any_store)
    # a second replay adds nothing either
    replay_dead_letters(Pipeline(cfg, any_store, lambda: NOW + timedelta(days=3)), None, NOW)
    assert len(any_store.ops.dead_letters(include_replayed=True)) == before
