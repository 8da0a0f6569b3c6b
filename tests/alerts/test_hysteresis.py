"""No flapping: ``keep_firing_for`` and ``resolve_threshold`` keep one episode per persisting
change, and each evaluated interval keeps its own alert state."""

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from alerts.rules import decisions, move_alerts, transition
from monitor.config import RuleConfig, default_rules, parse_config
from monitor.core.records import EvaluationRow

DAY = timedelta(days=1)
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def _row(day: int, value: float, interval: timedelta = DAY) -> EvaluationRow:
    start = T0 + day * interval
    return EvaluationRow(
        "m", "1", int(interval.total_seconds()), 0, start, start + interval, start, "*", "error_rate",
        "error_rate", "", "wilson", "ok", value + 0.1, reference_value=0.1, ci_low=value + 0.1,
        ci_high=value + 0.12, n=5000, p_value=1e-6, p_adjusted=1e-6,
    )  # fmt: skip


def _replay(rule, values, interval: timedelta = DAY, label: str = ""):
    """The alert's (change, window index) moves over one row per window, as the evaluator makes them."""
    state, changes = {}, []
    for i, v in enumerate(values):
        row = _row(i, v, interval)
        for m in move_alerts(
            decisions([rule], [row], lambda r, x: None, interval=label),
            state,
            row.window_start,
            row.window_end,
        ):
            state[m.alert.dedup_key] = m.alert
            changes.append((m.change, i))
    return changes


def test_keep_firing_for_and_steady():
    keep = 2 * DAY
    assert transition("firing", False, keep=timedelta(0)) == "resolve"  # no keep: at once
    assert transition("firing", False, keep=keep) == "quiet"
    assert transition("firing", False, quiet_for=DAY, keep=keep) is None  # quiet, not for long enough
    assert transition("firing", False, quiet_for=keep, keep=keep) == "resolve"
    assert transition("firing", True, quiet_for=DAY, keep=keep) == "steady"  # back before resolving
    assert transition("firing", False, holds=True, keep=keep) is None  # above the resolve threshold
    assert transition("firing", None, quiet_for=DAY, keep=keep) is None


def test_a_rise_at_the_margin_fires_once_and_resolves_once_when_it_ends():
    """A true +5-point error rise on the rule's own 5-point margin (the issue's 16 fire/resolve
    cycles over 15 days): with the default rule, one episode while it lasts."""
    rule = next(r for r in default_rules() if r.name == "SliceErrorRateUp")
    rng = np.random.default_rng(0)
    values = list(0.05 + rng.normal(0, 0.006, 15)) + [0.0] * 5  # ci_low − reference, then over
    plain = RuleConfig(name="Plain", metric="error_rate", field="ci_low", vs_reference=True, threshold=0.05)
    flapping = [c for c, _ in _replay(plain, values) if c == "fire"]
    assert len(flapping) >= 3  # what the rule did without hysteresis
    changes = _replay(rule, values)
    assert [c for c, _ in changes if c in ("fire", "resolve")] == ["fire", "resolve"]
    assert next(i for c, i in changes if c == "resolve") == 15 + 1  # two quiet days after the end


def test_the_resolve_threshold_must_be_on_the_quiet_side():
    with pytest.raises(ValueError, match="resolve_threshold 0.08 must be on the quiet side"):
        RuleConfig(name="R", metric="error_rate", threshold=0.05, resolve_threshold=0.08)
    RuleConfig(name="R", metric="error_rate", op="<", threshold=0.5, resolve_threshold=0.6)


def test_each_interval_keeps_its_own_alert():
    """An hourly window must not resolve what a daily window fired: different fingerprints."""
    rule = RuleConfig(name="R", metric="error_rate", field="ci_low", vs_reference=True, threshold=0.05)
    daily = decisions([rule], [_row(0, 0.1)], lambda r, x: None, interval="1d")[0][2]
    hourly = decisions([rule], [_row(0, 0.0, timedelta(hours=1))], lambda r, x: None, interval="1h")[0][2]
    assert daily.labels["interval"] == "1d" and hourly.labels["interval"] == "1h"
    assert daily.dedup_key != hourly.dedup_key


def test_a_rule_bound_to_one_interval_reads_only_its_rows():
    from alerts.rules import applies

    rule = RuleConfig(name="R", metric="error_rate", threshold=0.05, interval="1d")
    assert applies(rule, _row(0, 0.1)) and not applies(rule, _row(0, 0.1, timedelta(hours=1)))
    cfg = (
        "evaluation: {intervals: [1h, 1d]}\n"
        "alerts: {rules: [{name: R, metric: error_rate, threshold: 0.1, interval: 7d}]}\n"
    )
    with pytest.raises(
        ValueError,
        match=r"alerts.rules\[0\].interval \(R\): 7d is not one of evaluation.intervals \(1h, 1d\)",
    ):
        parse_config(cfg)


def _drift(metric: str, decision: int, day: int = 0) -> EvaluationRow:
    start = T0 + day * DAY
    return EvaluationRow(
        "m", "1", 86400, 0, start, start + DAY, start, "device=cam_b", metric, metric, "image.brightness",
        "v", "ok", 0.1, n=4000, decision=decision,
    )  # fmt: skip


def test_signal_drift_is_one_alert_whether_psi_or_ks_sees_it():
    """A −0.5 SD shift in one camera: KS decides every day, PSI now and then (the issue's change
    found by luck). The default SignalDrift reads both: it fires on the first day and never
    resolves while either still sees the change; PSI and KS on one day are one alert."""
    rule = next(r for r in default_rules() if r.name == "SignalDrift")
    psi_days = {0, 3, 4}
    state, changes = {}, []
    for day in range(8):
        rows = [_drift("ks", 1, day), _drift("psi", int(day in psi_days), day)]
        got = decisions([rule], rows, lambda r, x: None)
        assert len(got) == 1 and got[0][2].labels["detector"] == "psi+ks"
        for m in move_alerts(got, state, T0 + day * DAY, T0 + (day + 1) * DAY):
            state[m.alert.dedup_key] = m.alert
            changes.append(m.change)
    assert changes == ["fire"] and len(state) == 1
    # neither sees it any more: it resolves after keep_firing_for
    for day in range(8, 11):
        rows = [_drift("ks", 0, day), _drift("psi", 0, day)]
        for m in move_alerts(
            decisions([rule], rows, lambda r, x: None), state, T0 + day * DAY, T0 + (day + 1) * DAY
        ):
            state[m.alert.dedup_key] = m.alert
            changes.append(m.change)
    assert changes == ["fire", "quiet", "resolve"]


def test_max_p_makes_the_threshold_an_effect_floor_that_needs_significance():
    """+6 points in a small slice by chance (p after BH 0.02) does not fire SliceErrorRateUp; the
    same rise beyond chance does; once firing, holding needs only the resolve threshold."""
    from dataclasses import replace

    from alerts.rules import decide

    rule = next(r for r in default_rules() if r.name == "SliceErrorRateUp")
    chance = replace(_row(0, 0.06), p_adjusted=0.02)
    assert decide(rule, chance).breached is False and decide(rule, chance).holds is True
    assert decide(rule, replace(chance, p_adjusted=0.001)).breached is True
    assert decide(rule, replace(_row(0, 0.01), p_adjusted=1e-9)).breached is False  # below the floor
