"""Online change detectors behind one small interface: ``update``, ``drift_detected``, state."""
from __future__ import annotations

import base64
import pickle
from typing import Any


class ADWINDetector:
    """river's ADWIN on a stream of numbers (e.g. a slice's 0/1 error stream).

    ``update(x)`` consumes one value; ``drift_detected`` says whether that value closed a change;
    ``n_seen`` counts values and ``last_change_at`` is the index (0-based) of the last change.
    State goes out through ``state_dict()`` and comes back through ``load_state_dict()``.
    """

    def __init__(self, delta: float = 0.002, clock: int = 32, min_window_length: int = 5, grace_period: int = 10):
        self.delta = delta
        self.clock = clock
        self.min_window_length = min_window_length
        self.grace_period = grace_period
        self._reset()

    def _reset(self) -> None:
        from river import drift  # river imports scikit-learn: seconds, paid only when used

        self._adwin = drift.ADWIN(
            delta=self.delta, clock=self.clock, min_window_length=self.min_window_length, grace_period=self.grace_period
        )
        self.n_seen = 0
        self.last_change_at: int | None = None

    def update(self, x: float) -> None:
        self._adwin.update(x)
        if self._adwin.drift_detected:
            self.last_change_at = self.n_seen
        self.n_seen += 1

    @property
    def drift_detected(self) -> bool:
        return self._adwin.drift_detected

    @property
    def estimate(self) -> float:
        return float(self._adwin.estimation)

    def state_dict(self) -> dict[str, Any]:
        # river's ADWIN keeps its buckets in Cython-free Python objects; a pickle of the
        # detector is exact. It is base64 text so the shell can keep it in any store.
        return {
            "params": {
                "delta": self.delta,
                "clock": self.clock,
                "min_window_length": self.min_window_length,
                "grace_period": self.grace_period,
            },
            "n_seen": self.n_seen,
            "last_change_at": self.last_change_at,
            "adwin": base64.b64encode(pickle.dumps(self._adwin)).decode("ascii"),
        }

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> "ADWINDetector":
        det = cls(**state["params"])
        det.load_state_dict(state)
        return det

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.n_seen = int(state["n_seen"])
        self.last_change_at = state["last_change_at"]
        self._adwin = pickle.loads(base64.b64decode(state["adwin"]))
