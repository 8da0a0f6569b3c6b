"""The registry of checks: a check registered from this file — no other file touched — gets its
config section, its rows evaluated and stored, its series in the report, and rules that alert on
it; a disabled check runs nowhere; a config naming an unknown check or metric says which."""

import pytest
from pydantic import Field

from monitor import checks
from monitor.checks import Check, CheckConfig, EvaluationInput, register, unregister
from monitor.config import ConfigError, parse_config
from monitor.core.records import ALL
from monitor.evaluation import Evaluator
from monitor.pipeline import Pipeline
from monitor.report import build_report
from tests.helpers import NOW, T0
from tests.monitor.test_evaluation import CFG, _traffic


class ConfidentShareConfig(CheckConfig):
    above: float = Field(0.9, ge=0, le=1)


class ConfidentShare(Check):
    """The share of a slice's events more confident than ``above``, next to the reference's."""

    name = "confident_share"
    metrics = ("confident_share",)
    Config = ConfidentShareConfig
    reported = ("confident_share",)

    def summarise(self, reference, reads):
        return float((reference.confidence > self.config.above).mean()) if reference.n else None

    def run(self, summary, inputs: EvaluationInput):
        win = inputs.window
        rows = []
        for sl in inputs.slices:
            conf = win.confidence[win.mask(sl)]
            rows.append(
                inputs.row(
                    slice=sl,
                    detector="share",
                    metric="confident_share",
                    signal="",
                    variant="above",
                    status="ok" if len(conf) else "insufficient_data",
                    value=float((conf > self.config.above).mean()) if len(conf) else None,
                    reference_value=summary if sl == ALL else None,
                    n=len(conf),
                )
            )
        return rows


@pytest.fixture
def toy_check():
    register(ConfidentShare)
    yield ConfidentShare
    unregister(ConfidentShare.name)


TOY = CFG.replace("  checks:\n", "  checks:\n    confident_share: {above: 0.95}\n").replace(
    "  rules:\n",
    "  rules:\n    - {name: Overconfident, metric: confident_share, slice: '*', threshold: 0.01}\n",
)


def test_a_check_registered_here_is_configured_evaluated_stored_reported_and_alertable(any_store, toy_check):
    cfg = parse_config(TOY)
    assert cfg.evaluation.checks.confident_share.above == 0.95
    Pipeline(cfg, any_store, lambda: NOW).process(_traffic())
    assert Evaluator(cfg, any_store, lambda: T0, owner="a").run_due(any_store.events.watermark()) == 6
    df = any_store.evaluations.frame()
    mine = df[df["metric"] == "confident_share"]
    # confidences are 0.5 + (i % 50) / 100: 0.96 .. 0.99 is 4 of every 50 events
    assert len(mine) == 6 * len(set(mine["slice"])) and (abs(mine["value"] - 0.08) < 0.01).all()
    assert (mine[mine["slice"] == ALL]["reference_value"].round(3) == 0.08).all()
    report = build_report(any_store, cfg, T0, T0 + __import__("datetime").timedelta(days=10), NOW)
    assert all(len(iv["confident_share"]) == len(set(mine["slice"])) for iv in report["intervals"])
    firing = [a for a in any_store.alerts.list("firing") if a.rule == "Overconfident"]
    assert [a.labels["slice"] for a in firing] == [ALL] and firing[0].labels["detector"] == "share"


def test_a_disabled_check_runs_nowhere(any_store):
    cfg = parse_config(
        CFG.replace(
            "  checks:\n", "  checks:\n    signal_drift: {enabled: false}\n    trend: {enabled: false}\n"
        )
    )
    Pipeline(cfg, any_store, lambda: NOW).process(_traffic(days=5))
    Evaluator(cfg, any_store, lambda: T0, owner="a").run_due(any_store.events.watermark())
    metrics = set(any_store.evaluations.frame()["metric"])
    assert metrics and not metrics & {"psi", "ks", "trend"} and "error_rate" in metrics


def test_unknown_checks_metrics_and_drift_tests_are_errors_that_say_which():
    with pytest.raises(ConfigError, match=r"evaluation\.checks\.nope .*Extra inputs"):
        parse_config("evaluation:\n  checks:\n    nope: {}\n")
    with pytest.raises(ConfigError, match=r"no check emits metric 'confident_share'.*error_rate"):
        parse_config("alerts:\n  rules:\n    - {name: X, metric: confident_share, threshold: 1}\n")
    with pytest.raises(ConfigError, match=r"signal_drift\.tests.*unknown drift test.*'kl'"):
        parse_config("evaluation:\n  checks:\n    signal_drift: {tests: [psi, kl]}\n")
    with pytest.raises(
        ConfigError,
        match=r"evaluation\.psi_min_n \(line 2\): moved to "
        r"evaluation\.checks\.signal_drift\.min_n",
    ):
        parse_config("evaluation:\n  psi_min_n: 50\n")


def test_the_rules_metric_choices_are_the_registry_s():
    assert set(checks.metrics()) >= {
        "psi",
        "ks",
        "wasserstein",
        "error_rate",
        "ece",
        "ece_drift",
        "error_rate_gap",
        "estimated_accuracy",
        "mmd",
        "trend",
        "missing_modality_share",
        "error_rate_change",
        "dead_letter_rate",
        "source_silence_s",
        "ingest_lag_s",
    }
    assert checks.metrics()["ece_drift"].name == "calibration"
    with pytest.raises(ValueError, match="emitted by"):
        register(type("Clash", (ConfidentShare,), {"name": "clash", "metrics": ("psi",)}))
