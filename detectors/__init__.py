"""The science of modalwatch: pure functions and small state machines.

Nothing in this package does I/O, reads a clock or keeps globals. Arrays and plain data go in,
frozen dataclasses come out; online detectors expose ``state_dict`` / ``load_state_dict``.

Modules: drift (two-sample tests on stored reference summaries), embedding (MMD², torch),
calibration, slices (per-slice rates, gaps, Benjamini–Hochberg), performance (label-free
estimates), online (change detectors), trend (Mann–Kendall), intervals (Wilson), and the
modality signals: audio, image (+ image_torch), text, crossmodal. Every public detector's
docstring has a runnable example (``pytest --doctest-modules detectors``).

The modality-signal modules (audio, image, text) pull in SciPy; they are imported on first use,
so that the daemon and every CLI command do not pay for them at start-up.
"""

from importlib import import_module

from detectors.calibration import CalibrationResult, calibration
from detectors.drift import DriftResult, NumericReference, ks_test, psi_test, wasserstein_test
from detectors.intervals import WilsonInterval, wilson_interval
from detectors.online import ADWINDetector

_LAZY = {
    "AudioSignals": "audio",
    "LoudnessResult": "audio",
    "audio_signals": "audio",
    "loudness": "audio",
    "sample_peak_dbfs": "audio",
    "true_peak_dbtp": "audio",
    "ImageSignals": "image",
    "image_signals": "image",
    "TextSignals": "text",
    "text_signals": "text",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f"detectors.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'detectors' has no attribute {name!r}")


__all__ = [
    "ADWINDetector",
    "CalibrationResult",
    "DriftResult",
    "NumericReference",
    "WilsonInterval",
    "calibration",
    "ks_test",
    "psi_test",
    "wasserstein_test",
    "wilson_interval",
    *_LAZY,
]
