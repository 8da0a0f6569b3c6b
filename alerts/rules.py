"""Threshold rules on evaluations, and the alert state they drive. Pure: no I/O, no clock."""
from __future__ import annotations

import hashlib
import json
import math
import operator
from dataclasses import dataclass
from typing import Literal, Mapping

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclass(frozen=True)
class RuleDecision:
    """What a rule says about one evaluation row: ``breached`` is None when it makes no claim."""

    rule: str
    labels: dict[str, str]
    dedup_key: str
    breached: bool | None
    value: float | None


def applies(rule, row: Mapping) -> bool:
    return (row["metric"] == rule.metric
            and (rule.slice is None or row["slice"] == rule.slice)
            and (rule.signal is None or row["signal"] == rule.signal))


def alert_labels(rule, row: Mapping) -> dict[str, str]:
    """The fixed label vocabulary of an alert; the dedup key is derived from it alone."""
    labels = {"alertname": rule.name, "model": row["model_name"], "slice": row["slice"],
              "detector": row["detector"], "severity": rule.severity}
    if row.get("vintage"):  # several label-maturity lags: each vintage keeps its own alert state
        labels["vintage"] = row["vintage"]
    if row["signal"]:
        modality, _, signal = row["signal"].partition(".")
        labels.update(modality=modality, signal=signal or modality)
    return labels


def dedup_key(labels: Mapping[str, str]) -> str:
    """Stable across restarts and replicas: a hash of the sorted label set."""
    return hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:24]


def decide(rule, row: Mapping) -> RuleDecision:
    labels = alert_labels(rule, row)
    value = row.get(rule.field)
    if row["status"] != "ok" or value is None or not math.isfinite(value):
        return RuleDecision(rule.name, labels, dedup_key(labels), None, None)
    if rule.vs_reference:
        ref = row.get("reference_value")
        if ref is None or not math.isfinite(ref):
            return RuleDecision(rule.name, labels, dedup_key(labels), None, None)
        value = value - ref
    return RuleDecision(rule.name, labels, dedup_key(labels), bool(_OPS[rule.op](value, rule.threshold)), value)


def transition(current_state: str | None, breached: bool | None) -> Literal["fire", "resolve"] | None:
    """The state change an alert makes: fire when a breach starts, resolve when it clears."""
    if breached is None:
        return None
    if breached and current_state != "firing":
        return "fire"
    if not breached and current_state == "firing":
        return "resolve"
    return None
