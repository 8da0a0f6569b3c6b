"""The science of modalwatch: pure functions and small state machines.

Nothing in this package does I/O, reads a clock or keeps globals. Arrays and plain data go in,
frozen dataclasses come out; online detectors expose ``state_dict`` / ``load_state_dict``.
"""
from detectors.audio import AudioSignals, LoudnessResult, audio_signals, loudness, sample_peak_dbfs, true_peak_dbtp
from detectors.calibration import ECEResult, expected_calibration_error
from detectors.drift import PSIReference, PSIResult, population_stability_index
from detectors.image import ImageSignals, image_signals
from detectors.intervals import WilsonInterval, wilson_interval
from detectors.online import ADWINDetector
from detectors.text import TextSignals, text_signals

__all__ = [
    "ADWINDetector",
    "AudioSignals",
    "ECEResult",
    "ImageSignals",
    "LoudnessResult",
    "PSIReference",
    "PSIResult",
    "TextSignals",
    "WilsonInterval",
    "audio_signals",
    "expected_calibration_error",
    "image_signals",
    "loudness",
    "population_stability_index",
    "sample_peak_dbfs",
    "text_signals",
    "true_peak_dbtp",
    "wilson_interval",
]
