"""EBU Tech 3341 / 3342 compliance cases (../shared/reference/ebu3341-public.md), synthesised here."""

import math

import numpy as np
import pytest

from detectors.audio import (
    derive_k_weighting,
    k_weighting,
    loudness,
    momentary_series,
    sample_peak_dbfs,
    true_peak_dbtp,
)

FS = 48000


def tone(
    dbfs: float, seconds: float, freq: float = 1000.0, phase_deg: float = 0.0, fs: int = FS
) -> np.ndarray:
    """A stereo sine whose per-channel PEAK is ``dbfs``."""
    t = np.arange(round(seconds * fs)) / fs
    x = 10 ** (dbfs / 20) * np.sin(2 * np.pi * freq * t + math.radians(phase_deg))
    return np.stack([x, x], axis=1)


def seq(*parts):
    return np.concatenate([tone(d, s) for d, s in parts])


def test_derived_coefficients_match_the_standard_at_48k():
    # The bilinear re-derivation used at other rates reproduces the standard's own table at 48 kHz.
    np.testing.assert_allclose(derive_k_weighting(48000), k_weighting(48000), atol=1e-8)
    assert k_weighting(48000)[0, 3] == 1.0 and k_weighting(44100)[1, :3].tolist() == [1.0, -2.0, 1.0]


@pytest.mark.parametrize("dbfs", [-23.0, -33.0])
def test_3341_1_and_2_steady_tone(dbfs):
    r = loudness(tone(dbfs, 20), FS)
    for value in (r.integrated_lufs, r.max_momentary_lufs, r.max_short_term_lufs):
        assert value == pytest.approx(dbfs, abs=0.1)


def test_3341_3_relative_gate():
    assert loudness(seq((-36, 10), (-23, 60), (-36, 10)), FS).integrated_lufs == pytest.approx(-23.0, abs=0.1)


def test_3341_5_power_averaging():
    assert loudness(seq((-26, 20), (-20, 20.1), (-26, 20)), FS).integrated_lufs == pytest.approx(
        -23.0, abs=0.1
    )


def test_3341_9_short_term_constant_after_3s():
    x = seq(*[p for _ in range(5) for p in ((-20, 1.34), (-30, 1.66))])
    st = momentary_series(x, FS, window_s=3.0, hop_s=0.01)  # windows start every 10 ms
    assert np.all(np.abs(st - (-23.0)) <= 0.1)  # every full 3 s window starts at or after 0 s
    assert loudness(x, FS).max_short_term_lufs == pytest.approx(-23.0, abs=0.1)


def test_3341_12_momentary_constant_after_1s():
    x = seq(*[p for _ in range(25) for p in ((-20, 0.18), (-30, 0.22))])
    m = momentary_series(x, FS)
    after_1s = m[round((1.0 - 0.4) / 0.01) :]  # windows ending after 1 s
    assert np.all(np.abs(after_1s - (-23.0)) <= 0.1)
    assert loudness(x, FS).max_momentary_lufs == pytest.approx(-23.0, abs=0.1)


def _fs4_tone(phase_deg):
    x = tone(20 * math.log10(0.5), 1.0, freq=FS / 4, phase_deg=phase_deg)
    fade = round(0.01 * FS)
    ramp = np.linspace(0, 1, fade)[:, None]
    x[:fade] *= ramp
    x[-fade:] *= ramp[::-1]
    return x


@pytest.mark.parametrize("phase", [0.0, 45.0])
def test_3341_15_and_16_true_peak(phase):
    x = _fs4_tone(phase)
    tp = true_peak_dbtp(x)
    assert -6.0 - 0.4 <= tp <= -6.0 + 0.2
    if phase == 45.0:
        assert sample_peak_dbfs(x) == pytest.approx(-9.0, abs=0.1)  # sample peak is not true peak


@pytest.mark.parametrize("second,expected", [(-30, 10.0), (-15, 5.0)])
def test_3342_loudness_range(second, expected):
    assert loudness(seq((-20, 20), (second, 20)), FS).loudness_range_lu == pytest.approx(expected, abs=1.0)


def test_other_rates_layouts_and_edges():
    at44 = loudness(tone(-23, 10, fs=44100)[:, :1].repeat(2, axis=1), 44100)
    assert at44.integrated_lufs == pytest.approx(-23.0, abs=0.1)  # re-derived filter, same answer
    mono = loudness(tone(-23, 10)[:, 0], FS)
    assert mono.integrated_lufs == pytest.approx(-26.0, abs=0.1) and mono.channels == 1
    five_one = np.zeros((FS * 5, 6))
    five_one[:, 3] = tone(-10, 5)[:, 0]  # only the LFE carries sound: it is not measured
    assert loudness(five_one, FS).integrated_lufs == -math.inf
    assert loudness(np.zeros((FS, 2)), FS).integrated_lufs == -math.inf
    with pytest.raises(ValueError, match="NaN"):
        loudness(np.array([[0.0, np.nan]] * 100), FS)
    with pytest.raises(ValueError, match="channel layout"):
        loudness(np.zeros((100, 4)), FS)


@pytest.mark.parametrize("fs,channels", [(48000, 2), (44100, 1), (16000, 1), (96000, 2)])
def test_integrated_loudness_agrees_with_pyloudnorm_deman(fs, channels):
    # An implementation nobody here wrote: pyloudnorm with the standard's filter coefficients.
    import pyloudnorm

    rng = np.random.default_rng(fs)
    n = fs * 12
    x = rng.normal(0, 0.05, (n, channels)) * (0.2 + np.abs(np.sin(np.linspace(0, 9, n))))[:, None]
    x[: n // 4] *= 0.01  # a quiet stretch for the gates to drop
    ref = pyloudnorm.Meter(fs, filter_class="DeMan").integrated_loudness(x)
    assert loudness(x, fs).integrated_lufs == pytest.approx(ref, abs=0.01)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    """Real synthetic speech from espeak-ng (installed by `make test`), mono at 22,050 Hz."""
    import shutil
    import subprocess

    import soundfile

    exe = shutil.which("espeak-ng")
    assert exe, "espeak-ng is not installed: run `make system-deps` (Debian package espeak-ng)"
    path = tmp_path_factory.mktemp("speech") / "speech.wav"
    text = (
        "The quick brown fox jumps over the lazy dog. Monitoring a model in production means "
        "watching its inputs, its confidence and its errors, day after day."
    )
    subprocess.run([exe, "-w", str(path), "-s", "150", text], check=True, capture_output=True, timeout=60)
    x, fs = soundfile.read(path, dtype="float64", always_2d=True)
    assert x.shape[0] > 5 * fs  # several seconds of speech
    return x, fs


@pytest.mark.parametrize("snr_db", [None, 30, 20, 10, 0])
def test_speech_loudness_with_noise_agrees_with_pyloudnorm_deman(speech, snr_db):
    import pyloudnorm

    x, fs = speech
    if snr_db is not None:
        noise = np.random.default_rng(snr_db).normal(0, 1, x.shape)
        speech_power = np.mean(x[np.abs(x[:, 0]) > 1e-4] ** 2)  # the power while speaking
        x = x + noise * np.sqrt(speech_power / 10 ** (snr_db / 10))
    ref = pyloudnorm.Meter(fs, filter_class="DeMan").integrated_loudness(x)
    assert np.isfinite(ref)
    assert loudness(x, fs).integrated_lufs == pytest.approx(ref, abs=0.01)


def test_audio_signals_of_a_clip_with_pauses_clipping_and_offset():
    from detectors.audio import audio_signals

    rng = np.random.default_rng(1)
    speechy = tone(-12, 4)
    speechy[FS : 2 * FS] = 0.0  # one second of digital silence
    s = audio_signals(speechy, FS)
    assert s.duration_s == 4.0 and s.channels == 2 and s.sample_rate_hz == FS
    assert s.silence_share == pytest.approx(0.25, abs=0.01) and s.snr_db == math.inf
    noisy = speechy + rng.normal(0, 10 ** (-40 / 20), speechy.shape)
    n = audio_signals(noisy, FS)
    assert n.silence_share == 0.0 and 25 < n.snr_db < 35  # tone RMS -15 dBFS over noise at -40
    # a 1 kHz tone driven 6 dB into the rails: 48 samples a cycle, every 7.5 degrees; the 34 at
    # 30..150 and 210..330 degrees (|sin| >= 0.5) sit on the rail
    c = audio_signals(np.clip(tone(0, 2) * 2, -1, 1), FS)
    assert c.clipping_share == pytest.approx(34 / 48) and c.sample_peak_dbfs == 0.0
    d = audio_signals(tone(-20, 2) + 0.01, FS)
    assert d.dc_offset == pytest.approx(0.01, abs=1e-6) and d.clipping_share == 0.0
    with pytest.raises(ValueError, match="zero-length"):
        audio_signals(np.zeros((0, 2)), FS)
