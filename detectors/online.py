"""Online change detectors behind one small interface.

Every detector has ``update(x) -> bool`` (did this value close a change?), ``drift_detected``,
``n_seen``, ``last_change_at`` (0-based index of the last change), ``state_dict()`` and
``from_state_dict()``; ``detector_from_state`` rebuilds any of them from its state, and a
restored detector continues exactly as the original would have.

* ``ADWINDetector``, ``PageHinkleyDetector``, ``KSWINDetector``: river's detectors (their state
  is river's object, pickled, base64 text);
* ``BernoulliCUSUM``: for 0/1 streams (a slice's errors): a one-sided CUSUM of the
  log-likelihood ratio of the error rate p1 against the in-control rate p0 (given, or estimated
  from the first ``warmup`` values); its state is plain numbers;
* ``MeanShiftCUSUM``: Page's two-sided CUSUM on values standardised by a reference, for short
  series such as one value per evaluation interval.

False alarms on stationary streams, measured by bench/online.py (1,000,000 N(0, 1) values, 1M
Bernoulli(0.1) values for the CUSUM; KSWIN on 200,000 values, it is slow), river's defaults
against ours:

=================  =======================  ===============================================
detector           river's defaults         modalwatch's defaults
=================  =======================  ===============================================
ADWIN              delta 0.002: 0           the same (a +1 SD step found in ~40)
Page-Hinkley       threshold 50: ~620       threshold 400: 0 (a +1 SD step found in ~400)
KSWIN              alpha 0.005: ~1,230      alpha 1e-4: ~60 (a +1 SD step found in ~30)
Bernoulli CUSUM    —                        h = ln(1e6): 0 (0.10 → 0.20 found in ~290)
=================  =======================  ===============================================

Page-Hinkley's threshold is in the units of the input: standardise a signal first (the numbers
above are for unit variance).

>>> import numpy as np
>>> rng = np.random.default_rng(3)
>>> errors = np.concatenate([rng.uniform(size=4000) < 0.1, rng.uniform(size=4000) < 0.3])
>>> det = BernoulliCUSUM(p0=0.1)
>>> hits = [i for i, e in enumerate(errors) if det.update(float(e))]
>>> 4000 <= hits[0] < 4400
True
"""

from __future__ import annotations

import base64
import math
import pickle
from typing import Any, ClassVar


class _RiverDetector:
    """A river drift detector with modalwatch's interface; subclasses name the river class."""

    kind: ClassVar[str]
    defaults: ClassVar[dict[str, Any]]

    def __init__(self, **params: Any):
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise TypeError(f"{self.kind}: unknown parameters {sorted(unknown)}")
        self.params = {**self.defaults, **params}
        self._det = self._make()
        self.n_seen = 0
        self.last_change_at: int | None = None

    def _make(self):
        raise NotImplementedError

    def update(self, x: float) -> bool:
        self._det.update(x)
        hit = bool(self._det.drift_detected)
        if hit:
            self.last_change_at = self.n_seen
        self.n_seen += 1
        return hit

    @property
    def drift_detected(self) -> bool:
        return bool(self._det.drift_detected)

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "params": dict(self.params),
            "n_seen": self.n_seen,
            "last_change_at": self.last_change_at,
            "river": base64.b64encode(pickle.dumps(self._det)).decode("ascii"),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]):
        det = cls.__new__(cls)  # not __init__: a river detector made only to be replaced costs ~1 ms
        det.params = {**cls.defaults, **state["params"]}
        det.load_state_dict(state)
        return det

    def load_state_dict(self, state: dict[str, Any]) -> None:
        # The state comes from modalwatch's own store, never from producers.
        self.n_seen = int(state["n_seen"])
        self.last_change_at = state["last_change_at"]
        self._det = pickle.loads(base64.b64decode(state["river" if "river" in state else "adwin"]))


class ADWINDetector(_RiverDetector):
    """river's ADWIN (adaptive windowing); ``estimate`` is the mean of its current window.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = ADWINDetector()
    >>> xs = np.concatenate([rng.normal(0, 1, 3000), rng.normal(1, 1, 3000)])
    >>> hits = [i for i, x in enumerate(xs) if det.update(float(x))]
    >>> 3000 <= hits[0] < 3200
    True
    """

    kind = "adwin"
    defaults = {"delta": 0.002, "clock": 32, "min_window_length": 5, "grace_period": 10}

    def _make(self):
        from river import drift  # river imports scikit-learn: seconds, paid only when used

        return drift.ADWIN(**self.params)

    @property
    def estimate(self) -> float:
        return float(self._det.estimation)

    @property
    def delta(self) -> float:
        return self.params["delta"]


class PageHinkleyDetector(_RiverDetector):
    """river's Page-Hinkley test (both directions), with a threshold that keeps unit-variance
    stationary streams quiet (see the module docstring).

    >>> import numpy as np
    >>> before = np.random.default_rng(1).normal(0, 1, 2000)
    >>> xs = np.concatenate([before, np.random.default_rng(2).normal(1, 1, 2000)])
    >>> det = PageHinkleyDetector()
    >>> hits = [i for i, x in enumerate(xs) if det.update(float(x))]
    >>> 2000 <= hits[0] < 2600
    True
    """

    kind = "page_hinkley"
    defaults = {"min_instances": 30, "delta": 0.005, "threshold": 400.0, "alpha": 1 - 0.0001, "mode": "both"}

    def _make(self):
        from river import drift

        return drift.PageHinkley(**self.params)


class KSWINDetector(_RiverDetector):
    """river's KSWIN (a KS test of the newest values against older ones in a sliding window),
    with a smaller alpha than river's, as each value runs one more test.

    >>> import numpy as np
    >>> before, after = np.random.default_rng(1).normal(0, 1, 500), np.random.default_rng(2).normal(2, 1, 200)
    >>> xs = np.concatenate([before, after])
    >>> det = KSWINDetector()
    >>> hits = [i for i, x in enumerate(xs) if det.update(float(x))]
    >>> 500 <= hits[0] < 560
    True
    """

    kind = "kswin"
    defaults = {"alpha": 1e-4, "window_size": 100, "stat_size": 30, "seed": 42}

    def _make(self):
        from river import drift

        return drift.KSWIN(**self.params)


class BernoulliCUSUM:
    """One-sided CUSUM for a rise of the rate of a 0/1 stream.

    S ← max(0, S + x·ln(p1/p0) + (1−x)·ln((1−p1)/(1−p0))); a change when S > h, then S = 0.
    p0 is given (e.g. the reference error rate) or estimated from the first ``warmup`` values
    (clamped to [0.001, 0.9]); p1 = min(0.99, p0 + ``shift``) with ``shift`` the smallest rise
    worth finding (absolute, default 0.1). With h = ln(``arl0``), Wald's bound keeps the mean run
    between false alarms above ``arl0`` values.

    >>> det = BernoulliCUSUM(p0=0.05, shift=0.2, arl0=1000)  # h = ln(1000): each error adds ln(0.25/0.05)
    >>> [i for i, e in enumerate([0] * 50 + [1, 1, 0, 1, 1, 1, 0, 1, 1, 1]) if det.update(e)]
    [55]
    """

    kind = "bernoulli_cusum"

    def __init__(self, p0: float | None = None, shift: float = 0.1, arl0: float = 1e6, warmup: int = 500):
        if p0 is not None and not 0 < p0 < 1:
            raise ValueError(f"p0 must be in (0, 1), got {p0}")
        if not 0 < shift < 1 or arl0 <= 1 or warmup < 1:
            raise ValueError("shift must be in (0, 1), arl0 > 1 and warmup ≥ 1")
        self.p0_given, self.shift, self.arl0, self.warmup = p0, shift, arl0, warmup
        self.p0 = p0
        self.s = 0.0
        self.n_seen = 0
        self.warm_sum = 0.0
        self.last_change_at: int | None = None
        self.drift_detected = False

    @property
    def h(self) -> float:
        return math.log(self.arl0)

    def update(self, x: float) -> bool:
        self.drift_detected = False
        if x not in (0, 1, 0.0, 1.0, True, False):
            raise ValueError(f"BernoulliCUSUM takes 0/1 values, got {x!r}")
        if self.p0 is None:
            self.warm_sum += x
            self.n_seen += 1
            if self.n_seen >= self.warmup:
                self.p0 = min(0.9, max(0.001, self.warm_sum / self.n_seen))
            return False
        p0 = self.p0
        p1 = min(0.99, p0 + self.shift)
        self.s = max(0.0, self.s + (math.log(p1 / p0) if x else math.log((1 - p1) / (1 - p0))))
        if self.s > self.h:
            self.drift_detected = True
            self.last_change_at = self.n_seen
            self.s = 0.0
        self.n_seen += 1
        return self.drift_detected

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "params": {"p0": self.p0_given, "shift": self.shift, "arl0": self.arl0, "warmup": self.warmup},
            "p0": self.p0,
            "s": self.s,
            "n_seen": self.n_seen,
            "warm_sum": self.warm_sum,
            "last_change_at": self.last_change_at,
            "drift_detected": self.drift_detected,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "BernoulliCUSUM":
        det = cls(**state["params"])
        for k in ("p0", "s", "n_seen", "warm_sum", "last_change_at", "drift_detected"):
            setattr(det, k, state[k])
        return det


class MeanShiftCUSUM:
    """Page's two-sided CUSUM for a shift of the mean, on values standardised by a reference
    (``mean``, ``std``): with z = (x − mean) / std, S⁺ ← max(0, S⁺ + z − k) and
    S⁻ ← max(0, S⁻ − z − k); a change when either exceeds h, then both restart. k = 0.5 targets a
    1 SD shift; h = 5 gives a mean run of ~930 in-control values between false alarms (each side
    ~1,860, Siegmund's approximation). Made for short series — one value per interval of a metric —
    where ADWIN's bounds need more data than there is.

    On the Nile's annual flow (reference: 1871–1890), it first fires in 1902, after the level
    shift that followed 1898, and never before (tests/detectors/test_statistics.py).

    >>> det = MeanShiftCUSUM(mean=10.0, std=2.0)
    >>> [i for i, x in enumerate([10, 11, 9, 10, 7, 6, 7, 6, 7, 6]) if det.update(x)]
    [8]
    """

    kind = "mean_shift_cusum"

    def __init__(self, mean: float, std: float, k: float = 0.5, h: float = 5.0):
        if not std > 0 or not math.isfinite(mean):
            raise ValueError(f"the reference needs a finite mean and a positive std, got {mean}, {std}")
        self.mean, self.std, self.k, self.h = float(mean), float(std), float(k), float(h)
        self.up = self.down = 0.0
        self.n_seen = 0
        self.last_change_at: int | None = None
        self.drift_detected = False

    def update(self, x: float) -> bool:
        z = (x - self.mean) / self.std
        self.up = max(0.0, self.up + z - self.k)
        self.down = max(0.0, self.down - z - self.k)
        self.drift_detected = self.up > self.h or self.down > self.h
        if self.drift_detected:
            self.last_change_at = self.n_seen
            self.up = self.down = 0.0
        self.n_seen += 1
        return self.drift_detected

    def state_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "params": {"mean": self.mean, "std": self.std, "k": self.k, "h": self.h},
            "up": self.up,
            "down": self.down,
            "n_seen": self.n_seen,
            "last_change_at": self.last_change_at,
            "drift_detected": self.drift_detected,
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "MeanShiftCUSUM":
        det = cls(**state["params"])
        for k in ("up", "down", "n_seen", "last_change_at", "drift_detected"):
            setattr(det, k, state[k])
        return det


DETECTORS = {
    c.kind: c for c in (ADWINDetector, PageHinkleyDetector, KSWINDetector, BernoulliCUSUM, MeanShiftCUSUM)
}


def detector_from_state(state: dict[str, Any]):
    """Any detector back from its ``state_dict()`` (states from before ``kind`` existed are ADWIN's)."""
    return DETECTORS[state.get("kind", "adwin")].from_state_dict(state)
