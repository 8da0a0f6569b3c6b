"""Grouping alerts by cause (alerts/incidents.py): pure, alerts in, incidents out."""

from datetime import datetime, timedelta, timezone

from alerts.incidents import group_incidents
from monitor.core.records import AlertRecord

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)
VALUES = {"device": {"cam_a", "cam_b", "cam_c"}, "locale": {"de", "en"}, "site": {"only"}}


def _alert(rule, slice_, day=0, modality=None, signal=None, value=1.0):
    labels = {"alertname": rule, "model": "m", "slice": slice_, "detector": "psi" if modality else "wilson"}
    if modality:
        labels.update(modality=modality, signal=signal)
    key = "|".join(f"{k}={v}" for k, v in sorted(labels.items()))
    return AlertRecord(key, rule, labels, {}, "firing", T0 + day * DAY, None, value)


def test_a_change_of_one_slice_value_is_one_incident_there():
    alerts = [
        _alert("SignalDrift", s, 0, "audio", sig)
        for s in ("*", "device=cam_b", "locale=de", "locale=en")
        for sig in ("loudness", "true_peak")
    ]
    [inc] = group_incidents(alerts, VALUES)
    assert inc.place == "device=cam_b" and inc.families == ("audio",) and len(inc.alerts) == 8
    assert inc.headline.startswith(
        "device=cam_b: audio loudness, true_peak moved since 2026-03-01 (8 alerts)"
    )
    assert "device=cam_a, device=cam_c do not" in inc.because


def test_a_change_everywhere_is_global():
    alerts = [
        _alert("SignalDrift", s, 0, "image", "width")
        for s in ("*", "device=cam_a", "device=cam_b", "device=cam_c")
    ]
    [inc] = group_incidents(alerts, VALUES)
    assert inc.place == "*" and inc.headline.startswith("all traffic: image width moved")


def test_an_attribute_with_one_value_cannot_localise():
    [inc] = group_incidents(
        [
            _alert("SignalDrift", "site=only", 0, "text", "chars"),
            _alert("SignalDrift", "*", 0, "text", "chars"),
        ],
        VALUES,
    )
    assert inc.place == "*"


def test_families_at_one_place_and_time_are_one_cause_and_far_apart_are_two():
    cam = [
        _alert("SignalDrift", "device=cam_b", 0, "image", "brightness"),
        _alert("SliceErrorRateUp", "device=cam_b", 1, value=0.2),
    ]
    later = [_alert("SignalDrift", "device=cam_b", 20, "audio", "loudness")]
    echo = [_alert("SliceErrorRateUp", "*", 1, value=0.07)]  # all traffic contains cam_b's errors
    incidents = group_incidents(cam + later + echo, VALUES)
    assert [(i.place, i.families, len(i.alerts)) for i in incidents] == [
        ("device=cam_b", ("image", "error rate"), 3),
        ("device=cam_b", ("audio",), 1),
    ]
    assert "error rate up (lower bound up to +20 points" in incidents[0].headline
    assert "began within 2d of each other or while it still fired" in incidents[0].because


def test_resolved_alerts_are_not_incidents():
    a = _alert("SignalDrift", "*", 0, "image", "width")
    gone = AlertRecord(a.dedup_key, a.rule, a.labels, {}, "resolved", a.starts_at, a.starts_at + DAY, 1.0)
    assert group_incidents([gone], VALUES) == []


def test_the_attributes_values_come_from_the_evaluated_slices():
    from alerts.incidents import slice_attribute_values

    got = slice_attribute_values(["*", "device=cam_a", "device=cam_b", "locale=de", "device=cam_a&locale=de"])
    assert got == {"device": {"cam_a", "cam_b"}, "locale": {"de"}}


def test_an_incident_keeps_the_id_it_was_told_under_while_it_grows():
    """A notification names an incident by id; a late alert of the same cause joins that id (one
    notification group), even when the late alert changes where the incident is placed."""
    from alerts.incidents import label_incidents

    early = [_alert("SignalDrift", "*", 0, "audio", "loudness")]
    labelled, by_id = label_incidents(early, VALUES)
    [first_id] = {a.labels["incident"] for a in labelled}
    assert by_id[first_id].place == "*"
    known = {a.dedup_key: first_id for a in labelled}
    # a day later the slice alerts arrive: the cause is device=cam_b, still the same incident
    late = early + [_alert("SignalDrift", "device=cam_b", 1, "audio", s) for s in ("loudness", "true_peak")]
    labelled, by_id = label_incidents(late, VALUES, known)
    assert {a.labels["incident"] for a in labelled} == {first_id}
    assert by_id[first_id].place == "device=cam_b" and len(by_id[first_id].alerts) == 3
    # without what was told, the same alerts would be a new incident
    fresh, _ = label_incidents(late, VALUES)
    assert {a.labels["incident"] for a in fresh} != {first_id}
    # a different cause (far apart in time) gets its own id
    other = late + [_alert("SliceErrorRateUp", "locale=de", 30, value=0.2)]
    labelled, _ = label_incidents(other, VALUES, known)
    assert len({a.labels["incident"] for a in labelled}) == 2
    # states other than firing/resolved pass through unlabelled
    pending = AlertRecord("p", "X", {"model": "m", "slice": "*"}, {}, "pending", T0, None, None)
    labelled, _ = label_incidents([pending], VALUES)
    assert "incident" not in labelled[0].labels


def test_a_family_that_keeps_firing_is_one_incident_and_one_that_went_quiet_is_two():
    """Calibration drifts on day 0 and, still firing, is found aging on day 5: one cause. Had the
    day-0 alert resolved on day 1, the day-5 alert would be a new incident."""
    drift = _alert("CalibrationDrift", "*", 0)
    aging = AlertRecord(
        "aging", "Aging", {"alertname": "Aging", "model": "m", "slice": "*", "detector": "mann_kendall",
                           "follows": "ece"}, {}, "firing", T0 + 5 * DAY, None, 1.0,
    )  # fmt: skip
    drift = AlertRecord(drift.dedup_key, drift.rule, {**drift.labels, "detector": "bootstrap"}, {}, "firing",
                        T0, None, 1.0)  # fmt: skip
    [one] = group_incidents([drift, aging], VALUES, states=("firing", "resolved"))
    assert one.families == ("calibration",) and len(one.alerts) == 2
    assert "calibration getting worse" in one.headline
    quiet = AlertRecord(drift.dedup_key, drift.rule, drift.labels, {}, "resolved", T0, T0 + DAY, 1.0)
    assert len(group_incidents([quiet, aging], VALUES, states=("firing", "resolved"))) == 2


def test_a_lone_slice_whose_errors_do_not_stand_out_from_the_rest_is_not_the_place():
    """Everything got worse; a small slice's noise crossed the threshold first. Its error rate is
    not significantly above the rest's (the slice-gap rows), so the incident is all traffic's."""
    alerts = [_alert("SliceErrorRateUp", "device=cam_b", 0, value=0.06), _alert("Aging", "*", 2)]
    [inc] = group_incidents(alerts, VALUES, worse_than_rest=[])
    assert inc.place == "*" and "not above the rest's" in inc.because
    [inc] = group_incidents(alerts, VALUES, worse_than_rest=["device=cam_b"])
    assert inc.place == "device=cam_b"
    # the model's inputs are placed by their alerts alone
    drift = [_alert("SignalDrift", "device=cam_b", 0, "image", "brightness")]
    assert group_incidents(drift, VALUES, worse_than_rest=[])[0].place == "device=cam_b"


def test_alerts_told_apart_that_turn_out_one_cause_are_told_as_the_earlier_incident():
    from alerts.incidents import label_incidents

    image = _alert("SignalDrift", "device=cam_b", 0, "image", "brightness")
    errors = _alert("SliceErrorRateUp", "device=cam_b", 1, value=0.2)
    known = {image.dedup_key: "inc-image", errors.dedup_key: "inc-errors"}  # first placed apart
    labelled, by_id = label_incidents([image, errors], VALUES, known)
    assert {a.labels["incident"] for a in labelled} == {"inc-image"} and set(by_id) == {"inc-image"}
    # an incident that splits keeps its id on the part that began first; the other gets its own
    later = _alert("SignalDrift", "locale=de", 20, "audio", "loudness")
    labelled, by_id = label_incidents([image, later], VALUES, {image.dedup_key: "i", later.dedup_key: "i"})
    ids = {a.labels["slice"]: a.labels["incident"] for a in labelled}
    assert ids["device=cam_b"] == "i" and ids["locale=de"] != "i" and len(by_id) == 2
