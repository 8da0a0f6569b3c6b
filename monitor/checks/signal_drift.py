"""Signal drift: every signal × slice of the window against the reference's summary, with the
configured two-sample tests (PSI and KS by default; Wasserstein on request).

The tests are declared once, as data (``DriftTest``: name, default threshold, how to score, how a
significant result becomes a decision) and registered; the config's ``tests`` choices, the
rules' ``metric:`` names and the rows' metrics come from that registry. Each signal is sorted
once per window and each slice's values come out of that sort already in order for every test;
signals run in parallel threads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Callable

import numpy as np
from pydantic import Field, field_validator

from detectors.drift import (
    CategoricalReference,
    DriftResult,
    NumericReference,
    chi_square_two_sample,
    jensen_shannon_test,
    ks_test,
    psi_test,
    wasserstein_test,
)
from detectors.text import CATEGORICAL
from monitor.core.window import MISSING_PREFIX as MISSING
from monitor.checks.base import Check, CheckConfig, EvaluationInput, WindowView, finite, in_threads, register
from monitor.core.records import EvaluationRow


@dataclass(frozen=True)
class DriftTest:
    """One two-sample test of a numeric signal against its reference summary.

    ``score(reference, window values (sorted), threshold, check)`` → a ``DriftResult``;
    ``variant(reference, check)`` names how it was computed; ``decide(row, rejected, threshold)``
    turns a Benjamini–Hochberg result into a decision — or, for a test without a p-value
    (``adjusted=False``), the decision is the result's own."""

    name: str
    default_threshold: float
    score: Callable[[NumericReference, np.ndarray, float, "SignalDrift"], DriftResult]
    variant: Callable[[NumericReference, "SignalDrift"], str]
    decide: Callable[[EvaluationRow, bool, float], int] = lambda row, rejected, threshold: int(rejected)
    adjusted: bool = True
    categorical: bool = False  # a test of a category signal's counts (its reference: CategoricalReference)


_TESTS: dict[str, DriftTest] = {}


def register_drift_test(test: DriftTest) -> DriftTest:
    _TESTS[test.name] = test
    SignalDrift.metrics = SignalDrift.against_reference = tuple(_TESTS)
    register(SignalDrift)  # the check's metrics changed: the registry checks and tells the config
    return test


def drift_tests() -> dict[str, DriftTest]:
    return dict(_TESTS)


def _known(names: list[str], categorical: bool | None = False) -> list[str]:
    """``names`` if each is a drift test (of numeric signals, of categories, or — None — either)."""
    known = sorted(t for t, d in _TESTS.items() if categorical is None or d.categorical == categorical)
    unknown = [t for t in names if t not in known]
    if unknown:
        kind = (
            "" if categorical is None else " for category signals" if categorical else " for numeric signals"
        )
        raise ValueError(f"unknown drift test(s) {unknown} (known{kind}: {known})")
    return names


# category signals (their values are codes: a language): ``text.language``
CATEGORY_SIGNALS = frozenset(f"text.{name}" for name in CATEGORICAL)


Threshold = Annotated[float, Field(ge=0)]


class SignalDriftConfig(CheckConfig):
    # the tests run on every signal × slice; ``signal_tests`` overrides them per signal, e.g.
    # {"audio.snr_db": [wasserstein]}
    tests: list[str] = Field(default_factory=lambda: ["psi", "ks"])
    # the tests of category signals (text.language): chi-square's p decides, Jensen–Shannon says how far
    categorical_tests: list[str] = Field(default_factory=lambda: ["chisquare", "jensenshannon"])
    signal_tests: dict[str, list[str]] = Field(default_factory=dict)
    # each test's threshold (psi: the PSI; ks: the minimum D; wasserstein: the normalised distance)
    # instead of its default, and per signal, e.g. {"audio.snr_db": {psi: 0.4, ks: 0.2}}
    thresholds: dict[str, Threshold] = Field(default_factory=dict)
    signal_thresholds: dict[str, dict[str, Threshold]] = Field(default_factory=dict)
    # the reference's quantile bins (PSI) of a continuous signal, besides the underflow and
    # overflow bins and a bin per tied value
    bins: int = Field(10, ge=2, le=100)
    min_n: int = Field(100, ge=1)

    @field_validator("tests")
    @classmethod
    def _tests_known(cls, v: list[str]) -> list[str]:
        return _known(v)

    @field_validator("categorical_tests")
    @classmethod
    def _categorical_tests_known(cls, v: list[str]) -> list[str]:
        return _known(v, categorical=True)

    @field_validator("signal_tests")
    @classmethod
    def _signal_tests_known(cls, v: dict[str, list[str]]) -> dict[str, list[str]]:
        for signal, names in v.items():
            _known(names, categorical=signal in CATEGORY_SIGNALS)
        return v

    @field_validator("thresholds")
    @classmethod
    def _thresholds_known(cls, v: dict[str, float]) -> dict[str, float]:
        _known(list(v), categorical=None)
        return v

    @field_validator("signal_thresholds")
    @classmethod
    def _signal_thresholds_known(cls, v: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for by_test in v.values():
            _known(list(by_test), categorical=None)
        return v


class SignalDrift(Check):
    name = "signal_drift"
    metrics: tuple[str, ...] = ()  # the registered drift tests' names
    Config = SignalDriftConfig
    reported = ("psi",)
    config: SignalDriftConfig

    def threshold(self, test: str, signal: str) -> float:
        default = self.config.thresholds.get(test, _TESTS[test].default_threshold)
        return self.config.signal_thresholds.get(signal, {}).get(test, default)

    def summarise(self, reference: WindowView, reads) -> dict[tuple[str, str], NumericReference]:
        """Per (slice, signal): the reference's sorted values or quantiles and its PSI bins."""
        slices = sorted(reference.masks)
        bins = self.config.bins

        def fit(sig: str) -> dict[str, NumericReference | CategoricalReference]:
            by_slice = reference.sorted_by_slice(sig)
            if sig in CATEGORY_SIGNALS:
                return {
                    sl: CategoricalReference.fit(_categories(by_slice.get(sl, np.zeros(0)))) for sl in slices
                }
            return {sl: NumericReference.fit(by_slice.get(sl, np.zeros(0)), bins) for sl in slices}

        signals = [s for s in reference.signals.columns if not s.startswith(MISSING)]
        out = {}
        for sig, fitted in zip(signals, in_threads(fit, signals)):
            out.update({(sl, sig): f for sl, f in fitted.items()})
        return out

    def run(
        self, summary: dict[tuple[str, str], NumericReference], inputs: EvaluationInput
    ) -> list[EvaluationRow]:
        win = inputs.window
        # a modality's missing flag is the missing_modality check's: a share with its interval
        # against the reference's says it better than a distribution test of a 0/1 column
        signals = sorted(
            s for s in set(inputs.reference.signals) | set(win.signals.columns) if not s.startswith(MISSING)
        )
        empty = np.zeros(0)
        no_reference = NumericReference.fit(empty, self.config.bins)
        no_categories = CategoricalReference({})

        def drift(sig: str) -> dict[str, list[EvaluationRow]]:
            by_slice = win.sorted_by_slice(sig) if sig in win.signals else {}
            categorical = sig in CATEGORY_SIGNALS
            default = self.config.categorical_tests if categorical else self.config.tests
            tests = self.config.signal_tests.get(sig, default)
            return {
                sl: [
                    self._row(
                        inputs,
                        _TESTS[t],
                        summary.get((sl, sig), no_categories if categorical else no_reference),
                        by_slice.get(sl, empty),
                        sl,
                        sig,
                    )
                    for t in tests
                ]
                for sl in inputs.slices
            }

        by_signal = dict(zip(signals, in_threads(drift, signals)))
        return [r for sl in inputs.slices for sig in signals for r in by_signal[sig][sl]]

    def _row(
        self,
        inputs: EvaluationInput,
        test: DriftTest,
        ref: NumericReference,
        values: np.ndarray,
        sl: str,
        sig: str,
    ) -> EvaluationRow:
        r = test.score(ref, values, self.threshold(test.name, sig), self)
        ok = r.status == "ok"
        reference_value = effect = None
        if test.name == "ks" and ok:
            # how far it moved, in the signal's own units (what a person reads: "−10 LU"): the
            # window's mean against the reference's; D, the decision's effect, is the value
            reference_value, effect = ref.mean, float(np.mean(values)) - ref.mean
        return inputs.row(
            slice=sl,
            detector=test.name,
            metric=test.name,
            signal=sig,
            variant=test.variant(ref, self),
            status=r.status,
            value=finite(r.statistic),
            n=r.n,
            n_reference=r.n_reference,
            p_value=r.p_value,
            reference_value=finite(reference_value),
            effect=finite(effect if effect is not None else r.effect),
            # a test with a p-value decides after Benjamini–Hochberg over the window
            decision=int(r.drift) if ok and not test.adjusted else None,
        )

    def family(self, row: EvaluationRow) -> str | None:
        return row.metric if _TESTS[row.metric].adjusted else None

    def decide(self, row: EvaluationRow, rejected: bool) -> int:
        return _TESTS[row.metric].decide(row, rejected, self.threshold(row.metric, row.signal))


register(SignalDrift)


def _categories(codes: np.ndarray) -> list[str]:
    """A category signal's values (numeric codes) as the categories the tests count."""
    return [str(int(v)) for v in codes]


def _counts(ref: CategoricalReference, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The reference's and the window's counts of each category either has."""
    found, n = np.unique(codes, return_counts=True)
    win = {str(int(c)): int(k) for c, k in zip(found, n)}
    keys = sorted(set(ref.counts) | set(win))
    return np.array([ref.counts.get(k, 0) for k in keys], float), np.array(
        [win.get(k, 0) for k in keys], float
    )


register_drift_test(
    DriftTest(
        "psi",
        0.25,
        score=lambda ref, x, threshold, check: psi_test(
            ref, x, threshold=threshold, min_n=check.config.min_n
        ),
        # the signal's kind, decided from the reference, and how many bins it made
        variant=lambda ref, check: f"{ref.kind}_bins_{len(ref.psi_shares)}",
        # above the threshold, and more than small-sample noise
        decide=lambda row, rejected, threshold: int(rejected and (row.value or 0.0) >= threshold),
    )
)
register_drift_test(
    DriftTest(
        "ks",
        0.1,
        score=lambda ref, x, threshold, check: ks_test(ref, x, alpha=check.fdr, min_n=check.config.min_n),
        variant=lambda ref, check: "two_sided_exact_reference" if ref.exact else "two_sided_quantile_summary",
        # significant, and D at least the threshold (the row's effect is the mean's shift)
        decide=lambda row, rejected, threshold: int(rejected and (row.value or 0.0) >= threshold),
    )
)
register_drift_test(
    DriftTest(
        "wasserstein",
        0.1,
        score=lambda ref, x, threshold, check: wasserstein_test(
            ref, x, threshold=threshold, min_n=check.config.min_n
        ),
        variant=lambda ref, check: "normed_by_reference_std",
        adjusted=False,
    )
)
register_drift_test(
    DriftTest(
        "chisquare",
        0.1,
        score=lambda ref, x, threshold, check: chi_square_two_sample(
            *_counts(ref, x), alpha=check.fdr, min_n=check.config.min_n
        ),
        variant=lambda ref, check: f"two_sample_homogeneity_{len(ref.counts)}_reference_categories",
        # significant, and Cramér's V (the row's effect) at least the threshold
        decide=lambda row, rejected, threshold: int(rejected and (row.effect or 0.0) >= threshold),
        categorical=True,
    )
)
register_drift_test(
    DriftTest(
        "jensenshannon",
        0.1,
        score=lambda ref, x, threshold, check: jensen_shannon_test(
            ref, _categories(x), threshold=threshold, min_n=check.config.min_n
        ),
        variant=lambda ref, check: "distance_natural_log",
        adjusted=False,
        categorical=True,
    )
)
