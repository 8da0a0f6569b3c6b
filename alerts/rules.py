"""Threshold rules on evaluations, and the alert state they drive. Pure: no I/O, no clock."""
from __future__ import annotations

import hashlib
import json
import math
import operator
from dataclasses import dataclass
from datetime import timedelta
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
    """The fixed label vocabulary of an alert, plus the rule's own ``labels`` (e.g. team); the
    dedup key (the fingerprint) is derived from them alone."""
    labels = {**getattr(rule, "labels", {}), "alertname": rule.name, "model": row["model_name"],
              "slice": row["slice"], "detector": row["detector"], "severity": rule.severity}
    if row.get("vintage"):  # several label-maturity lags: each vintage keeps its own alert state
        labels["vintage"] = row["vintage"]
    if row.get("source"):  # data health of one source (kafka, http, a JSONL path)
        labels["source"] = row["source"]
    elif row["signal"]:
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
    baseline = ("reference_value" if rule.vs_reference else "previous_value" if getattr(rule, "vs_previous", False)
                else "earlier_lag_value" if getattr(rule, "vs_earlier_lag", False) else None)
    if baseline:
        base = row.get(baseline)
        if base is None or not math.isfinite(base):
            return RuleDecision(rule.name, labels, dedup_key(labels), None, None)
        value = value - base
    return RuleDecision(rule.name, labels, dedup_key(labels), bool(_OPS[rule.op](value, rule.threshold)), value)


Change = Literal["pending", "fire", "resolve", "clear"]


def transition(current_state: str | None, breached: bool | None, pending_for: timedelta | None = None,
               hold: timedelta = timedelta(0)) -> Change | None:
    """The state change an alert makes on one window's row.

    With ``hold`` (the rule's ``for``) 0, a breach fires at once and its end resolves. Otherwise a
    breach first makes the alert ``pending``; it fires once the breach has held for ``hold``
    (``pending_for``: from the first breached window's start to this window's end), and a pending
    alert whose breach ends before that is cleared without ever notifying. No claim (None) changes
    nothing."""
    if breached is None:
        return None
    if breached:
        if current_state == "firing":
            return None
        if current_state == "pending" and pending_for is not None and pending_for >= hold:
            return "fire"
        if current_state != "pending":
            return "fire" if hold <= timedelta(0) else "pending"
        return None
    if current_state == "firing":
        return "resolve"
    if current_state == "pending":
        return "clear"
    return None
