import json

import numpy as np
import pytest

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


def test_every_detector_restored_from_its_state_continues_exactly():
    from detectors.online import BernoulliCUSUM, KSWINDetector, PageHinkleyDetector, detector_from_state

    rng = np.random.default_rng(5)
    numbers = np.concatenate([rng.normal(0, 1, 1500), rng.normal(2, 1, 1500)])
    for make, xs in (
        (PageHinkleyDetector, numbers),
        (lambda: KSWINDetector(alpha=0.001), numbers[:1200]),
        (lambda: BernoulliCUSUM(warmup=300), _stream()),
    ):
        whole = _detections(make(), xs)
        cut = len(xs) // 2 + 7
        first = make()
        a = _detections(first, xs[:cut])
        restored = detector_from_state(json.loads(json.dumps(first.state_dict())))
        b = _detections(restored, xs[cut:], offset=cut)
        assert a + b == whole and whole, type(first).__name__
        assert restored.n_seen == len(xs)


def test_bernoulli_cusum_is_quiet_on_a_stationary_error_stream_and_finds_a_rise():
    from detectors.online import BernoulliCUSUM

    rng = np.random.default_rng(8)
    quiet = BernoulliCUSUM(p0=0.1)
    assert _detections(quiet, (rng.uniform(0, 1, 300_000) < 0.1).astype(float)) == []
    delays = []
    for seed in range(10):
        r = np.random.default_rng(seed)
        xs = np.concatenate([r.uniform(0, 1, 2000) < 0.1, r.uniform(0, 1, 3000) < 0.2]).astype(float)
        hits = _detections(BernoulliCUSUM(warmup=1000), xs)  # p0 estimated from the first 1,000
        assert hits and hits[0] >= 2000
        delays.append(hits[0] - 2000)
    assert np.median(delays) < 600
    with pytest.raises(ValueError, match="0/1"):
        BernoulliCUSUM(p0=0.1).update(0.5)
    with pytest.raises(ValueError, match="p0"):
        BernoulliCUSUM(p0=1.5)


def test_page_hinkley_defaults_keep_a_stationary_stream_quiet_where_rivers_do_not():
    from river import drift

    from detectors.online import PageHinkleyDetector

    xs = np.random.default_rng(2).normal(0, 1, 200_000)
    river_default = drift.PageHinkley()
    river_alarms = 0
    for x in xs:
        river_default.update(x)
        river_alarms += river_default.drift_detected
    assert river_alarms > 50  # river's threshold of 50 fires all the time on unit-variance noise
    assert _detections(PageHinkleyDetector(), xs) == []
