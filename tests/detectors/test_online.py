import json

import numpy as np

from detectors.online import ADWINDetector


def _stream(seed=11):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.uniform(0, 1, 3000) < 0.1, rng.uniform(0, 1, 3000) < 0.5]).astype(float)


def _detections(det, xs, offset=0):
    out = []
    for i, x in enumerate(xs):
        det.update(x)
        if det.drift_detected:
            out.append(i + offset)
    return out


def test_adwin_finds_a_step_in_an_error_rate_soon_after_it():
    hits = _detections(ADWINDetector(), _stream())
    assert hits, "the error rate went from 10 % to 50 % and ADWIN said nothing"
    assert 3000 <= hits[0] < 3300
    assert all(h >= 3000 for h in hits), f"false alarm before the change: {hits}"


def test_state_round_trip_gives_the_same_detections():
    xs = _stream()
    whole = _detections(ADWINDetector(), xs)
    first = ADWINDetector()
    a = _detections(first, xs[:3100])
    state = json.loads(json.dumps(first.state_dict()))  # what the store keeps is JSON
    second = ADWINDetector.from_state_dict(state)
    b = _detections(second, xs[3100:], offset=3100)
    assert a + b == whole
    assert second.n_seen == len(xs)
