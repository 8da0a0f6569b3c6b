import json

import pytest

from monitor.core.events import InferenceEvent, LabelEvent, json_schemas
from monitor.pipeline import RawMessage, Rejected, decode, scrub_payload
from tests.helpers import inference, label


def _decode(obj, kind=None):
    return decode(
        RawMessage("test", "p", json.dumps(obj).encode() if not isinstance(obj, bytes) else obj, kind),
        1 << 20,
    )


def test_valid_events_decode():
    ev = _decode(inference(1))
    assert isinstance(ev, InferenceEvent) and ev.inputs["image"].signals["brightness"] == 101.0
    lab = _decode(label(1))
    assert isinstance(lab, LabelEvent) and lab.label == "cat"


@pytest.mark.parametrize(
    "mutate,reason",
    [
        (lambda e: e["output"].update(confidence=1.5), "output.confidence"),
        (lambda e: e.update(ts="2026-01-05T00:00:00"), "timezone"),
        (lambda e: e.pop("event_id"), "event_id: Field required"),
        (lambda e: e.update(colour="red"), "colour: Extra inputs"),
        (lambda e: e["inputs"]["image"]["signals"].update(brightness=float("nan")), "finite"),
        (
            lambda e: e["inputs"]["image"].update(data_b64="aGVsbG8=", uri="file:///x.png"),
            "data_b64 or uri, not both",
        ),
        (
            lambda e: e["inputs"]["audio"].update(capture={"ts": "2026-01-05T00:00:00"}),
            "capture.ts .* no time zone",
        ),
        (lambda e: e["inputs"]["audio"].update(capture={"ts": "yesterday"}), "not an ISO-8601 time"),
    ],
)
def test_schema_violations_are_rejected_with_a_reason(mutate, reason):
    ev = inference(2)
    mutate(ev)
    with pytest.raises(Rejected, match=reason):
        _decode(ev)


def test_malformed_json_and_oversize():
    with pytest.raises(Rejected, match="malformed JSON"):
        _decode(b'{"event_id": ')
    with pytest.raises(Rejected, match="payload too large"):
        decode(RawMessage("t", "p", b"{" + b" " * 2000 + b"}"), 1000)


def test_dead_letter_payload_keeps_no_raw_media():
    ev = inference(3)
    ev["inputs"]["image"]["data_b64"] = "QUJD" * 1000
    kept = scrub_payload(json.dumps(ev).encode())
    assert b"QUJD" not in kept and b"4000 base64 characters" in kept
    assert scrub_payload(json.dumps(ev).encode()[:-3]) is None  # broken JSON with media: not kept at all
    assert scrub_payload(b'{"event_id": "x", ') == b'{"event_id": "x", '  # broken JSON without: kept


def test_schema_command_prints_both_schemas(capsys):
    from monitor.cli import main

    assert main(["schema"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"InferenceEvent", "LabelEvent"} == set(json_schemas())
    assert "confidence" in json.dumps(out["InferenceEvent"])
