"""modalwatch's two-sample drift tests reach Evidently's decisions on the same data (Evidently 0.7's
own stattest implementations and its DataDriftPreset are the reference)."""

import numpy as np
import pandas as pd
import pytest
from evidently.legacy.calculations.stattests.chisquare_stattest import _chi_stat_test
from evidently.legacy.calculations.stattests.jensenshannon import _jensenshannon
from evidently.legacy.calculations.stattests.ks_stattest import _ks_stat_test
from evidently.legacy.calculations.stattests.psi import _psi
from evidently.legacy.calculations.stattests.wasserstein_distance_norm import _wasserstein_distance_norm
from evidently.legacy.core import ColumnType

from detectors.drift import (
    CategoricalReference,
    NumericReference,
    chi_square_test,
    default_numeric_test,
    jensen_shannon_test,
    ks_test,
    psi_test,
    wasserstein_test,
)

NUM = ColumnType.Numerical
CAT = ColumnType.Categorical


def _scenarios(n_ref, n_win, seed):
    rng = np.random.default_rng(seed)
    ref = rng.normal(10, 2, n_ref)
    return ref, {
        "same": rng.normal(10, 2, n_win),
        "tiny_shift": rng.normal(10.05, 2, n_win),
        "shift_half_sd": rng.normal(11, 2, n_win),
        "wider": rng.normal(10, 3, n_win),
        "skewed": 8 + rng.gamma(2, 1, n_win),
    }


@pytest.mark.parametrize("n_ref,n_win", [(800, 500), (5000, 3000)])
def test_exact_references_give_evidentlys_ks_and_wasserstein_values(n_ref, n_win):
    ref, windows = _scenarios(n_ref, n_win, n_ref)
    summary = NumericReference.fit(ref)
    assert summary.exact
    for name, win in windows.items():
        p, drift = _ks_stat_test(pd.Series(ref), pd.Series(win), NUM, 0.05)
        ours = ks_test(summary, win)
        assert ours.p_value == pytest.approx(p, rel=1e-9, abs=1e-300) and ours.drift == drift, name
        w, drift = _wasserstein_distance_norm(pd.Series(ref), pd.Series(win), NUM, 0.1)
        ours = wasserstein_test(summary, win)
        assert ours.statistic == pytest.approx(w, rel=1e-9) and ours.drift == drift, name


def test_summarised_references_reach_the_same_decisions():
    ref, windows = _scenarios(200_000, 20_000, 7)
    summary = NumericReference.fit(ref)
    assert not summary.exact and len(summary.values) == 2001  # 200k values kept as 2,001 quantiles
    for name, win in windows.items():
        p, drift = _ks_stat_test(pd.Series(ref), pd.Series(win), NUM, 0.05)
        ours = ks_test(summary, win)
        assert ours.drift == drift, name
        from scipy import stats

        assert ours.statistic == pytest.approx(stats.ks_2samp(ref, win).statistic, abs=1e-3), name
        w, drift = _wasserstein_distance_norm(pd.Series(ref), pd.Series(win), NUM, 0.1)
        ours = wasserstein_test(summary, win)
        assert ours.statistic == pytest.approx(w, abs=2e-3) and ours.drift == drift, name


def test_psi_decisions_agree_where_the_binning_does_not_matter():
    ref, windows = _scenarios(20_000, 5000, 3)
    summary = NumericReference.fit(ref)
    for name in ("same", "shift_half_sd", "wider"):
        value, drift = _psi(pd.Series(ref), pd.Series(windows[name]), NUM, 0.1)
        ours = psi_test(summary, windows[name])
        assert ours.drift == drift, (name, ours.statistic, value)
    assert (
        psi_test(summary, windows["same"]).statistic
        < 0.01
        < 0.1
        < psi_test(summary, windows["shift_half_sd"]).statistic
    )


def test_categorical_tests_equal_evidentlys():
    rng = np.random.default_rng(5)
    cats = np.array(["car", "indoor", "outdoor", "street"])
    ref = rng.choice(cats, 3000, p=[0.25, 0.35, 0.3, 0.1])
    for shares in (
        [0.25, 0.35, 0.3, 0.1],
        [0.27, 0.33, 0.3, 0.1],
        [0.4, 0.3, 0.2, 0.1],
        [0.1, 0.3, 0.3, 0.3],
    ):
        win = rng.choice(cats, 800, p=shares)
        p, drift = _chi_stat_test(pd.Series(ref), pd.Series(win), CAT, 0.05)
        ours = chi_square_test(CategoricalReference.fit(ref), win)
        assert ours.p_value == pytest.approx(p, rel=1e-9, abs=1e-300) and ours.drift == drift
        js, drift = _jensenshannon(pd.Series(ref), pd.Series(win), CAT, 0.1)
        ours = jensen_shannon_test(CategoricalReference.fit(ref), win)
        assert ours.statistic == pytest.approx(js, rel=1e-9) and ours.drift == drift


def test_data_drift_preset_and_our_defaults_flag_the_same_columns():
    from evidently import Report
    from evidently.presets import DataDriftPreset

    rng = np.random.default_rng(11)
    ref = pd.DataFrame(rng.normal(0, 1, (4000, 6)), columns=[f"s{i}" for i in range(6)])
    cur = pd.DataFrame(rng.normal(0, 1, (3000, 6)), columns=ref.columns)
    cur["s1"] += 0.4
    cur["s4"] *= 1.6
    small_ref = ref.iloc[:900]  # ≤ 1,000 rows: Evidently picks KS
    for reference in (ref, small_ref):
        snapshot = Report([DataDriftPreset()]).run(cur, reference).dict()
        theirs = {}
        for m in snapshot["metrics"]:
            if m["config"]["type"].endswith("ValueDrift"):
                col, method = m["config"]["column"], m["config"]["method"]
                value, threshold = m["value"], m["config"]["threshold"]
                theirs[col] = value <= threshold if "p_value" in method else value >= threshold
        ours = {}
        for col in ref.columns:
            summary = NumericReference.fit(reference[col])
            ours[col] = default_numeric_test(summary)(summary, cur[col]).drift
        assert ours == theirs
        assert {c for c, d in ours.items() if d} == {"s1", "s4"}


def test_insufficient_data_and_state_round_trip():
    rng = np.random.default_rng(0)
    summary = NumericReference.fit(rng.normal(0, 1, 50_000))
    again = NumericReference.from_state_dict(
        __import__("json").loads(__import__("json").dumps(summary.state_dict()))
    )
    win = rng.normal(0.2, 1, 1000)
    for test in (ks_test, wasserstein_test, psi_test):
        assert test(again, win) == test(summary, win)
        small = test(summary, win[:10])
        assert small.status == "insufficient_data" and small.drift is False and small.p_value is None
    cat = CategoricalReference.fit(["a", "b"] * 100)
    new_category = chi_square_test(cat, ["a", "b", "c"] * 20)
    assert new_category.drift and new_category.p_value == 0.0
    assert chi_square_test(cat, ["a"] * 5).status == "insufficient_data"
    assert NumericReference.fit([np.nan, np.inf]).n == 0
