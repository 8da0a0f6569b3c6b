"""Threshold rules on evaluation rows, and the alert state they drive. Pure: no I/O, no clock."""

from __future__ import annotations

import hashlib
import json
import math
import operator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Literal, Mapping, Sequence

from monitor.core.records import AlertRecord, EvaluationRow

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


@dataclass(frozen=True)
class RuleDecision:
    """What a rule says about one evaluation row: ``breached`` is None when it makes no claim."""

    rule: str
    labels: dict[str, str]
    dedup_key: str
    breached: bool | None
    value: float | None


def applies(rule, row: EvaluationRow) -> bool:
    return (
        row.metric == rule.metric
        and (rule.slice is None or row.slice == rule.slice)
        and (rule.signal is None or row.signal == rule.signal)
    )


def alert_labels(rule, row: EvaluationRow, vintage: str = "") -> dict[str, str]:
    """The fixed label vocabulary of an alert, plus the rule's own ``labels`` (e.g. team); the
    dedup key (the fingerprint) is derived from them alone. ``vintage`` names the label-maturity
    lag where several are evaluated (each keeps its own alert state)."""
    labels = {
        **getattr(rule, "labels", {}),
        "alertname": rule.name,
        "model": row.model_name,
        "slice": row.slice,
        "detector": row.detector,
        "severity": rule.severity,
    }
    if vintage:
        labels["vintage"] = vintage
    if row.source:  # data health of one source (kafka, http, a JSONL path)
        labels["source"] = row.source
    elif row.signal:
        modality, _, signal = row.signal.partition(".")
        labels.update(modality=modality, signal=signal or modality)
    return labels


def dedup_key(labels: Mapping[str, str]) -> str:
    """Stable across restarts and replicas: a hash of the sorted label set."""
    return hashlib.sha256(json.dumps(sorted(labels.items())).encode()).hexdigest()[:24]


def baseline_field(rule) -> str | None:
    """What a rule subtracts before comparing: the reference value, the previous window's value or
    the earlier vintage's (None: nothing)."""
    return (
        "reference"
        if rule.vs_reference
        else "previous"
        if getattr(rule, "vs_previous", False)
        else "earlier_lag"
        if getattr(rule, "vs_earlier_lag", False)
        else None
    )


def decide(rule, row: EvaluationRow, baseline: float | None = None, vintage: str = "") -> RuleDecision:
    """``baseline``: the previous window's or earlier vintage's value, for rules with
    ``vs_previous`` / ``vs_earlier_lag`` (``vs_reference`` reads the row's own reference value)."""
    labels = alert_labels(rule, row, vintage)
    key = dedup_key(labels)
    value = getattr(row, rule.field)
    if row.status != "ok" or value is None or not math.isfinite(value):
        return RuleDecision(rule.name, labels, key, None, None)
    which = baseline_field(rule)
    if which is not None:
        base = row.reference_value if which == "reference" else baseline
        if base is None or not math.isfinite(base):
            return RuleDecision(rule.name, labels, key, None, None)
        value = value - base
    return RuleDecision(rule.name, labels, key, bool(_OPS[rule.op](value, rule.threshold)), value)


Change = Literal["pending", "fire", "resolve", "clear"]
_STATE_AFTER = {"pending": "pending", "fire": "firing", "resolve": "resolved", "clear": "cleared"}
_BASELINE_TEXT = {
    "reference": " - reference",
    "previous": " - previous window",
    "earlier_lag": " - earlier vintage",
}


def transition(
    current_state: str | None,
    breached: bool | None,
    pending_for: timedelta | None = None,
    hold: timedelta = timedelta(0),
) -> Change | None:
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


@dataclass(frozen=True)
class AlertMove:
    """One alert's state change on one row: the alert as it is to be stored."""

    row: EvaluationRow
    change: Change
    alert: AlertRecord


def decisions(
    rules: Sequence,
    rows: Sequence[EvaluationRow],
    baseline: Callable[[object, EvaluationRow], float | None],
    vintage: str = "",
) -> list[tuple[object, EvaluationRow, RuleDecision]]:
    """Every rule's decision on every row it applies to (``baseline(rule, row)``: the value a
    ``vs_previous`` / ``vs_earlier_lag`` rule subtracts)."""
    return [
        (rule, row, decide(rule, row, baseline(rule, row), vintage))
        for rule in rules
        for row in rows
        if applies(rule, row)
    ]


def move_alerts(
    decided: Sequence[tuple[object, EvaluationRow, RuleDecision]],
    current: Mapping[str, AlertRecord],
    window_start: datetime,
    window_end: datetime,
) -> list[AlertMove]:
    """The alert state changes the decisions make (pending → firing → resolved, with each rule's
    ``for``), given the alerts' ``current`` states by fingerprint; an alert moved twice in one pass
    moves from where the first move left it."""
    state = dict(current)
    moves = []
    for rule, row, d in decided:
        now_at = state.get(d.dedup_key)
        was = now_at.state if now_at else None
        pending_for = window_end - now_at.starts_at if was == "pending" else None
        change = transition(was, d.breached, pending_for, rule.for_)
        if change is None:
            continue
        annotations = {
            "summary": rule.summary
            or (
                f"{rule.metric} {rule.field}{_BASELINE_TEXT.get(baseline_field(rule), '')}"
                f" {rule.op} {rule.threshold}"
            ),
            "value": f"{d.value:.4g}",
            "window_start": window_start.isoformat(),
            "window_end": window_end.isoformat(),
            "n": str(row.n),
        }
        if change == "pending":
            starts = window_start
        elif change == "fire":
            starts = now_at.starts_at if was == "pending" else window_start
        else:
            starts = now_at.starts_at if now_at else window_start
        alert = AlertRecord(
            d.dedup_key,
            rule.name,
            d.labels,
            annotations,
            _STATE_AFTER[change],
            starts,
            window_end if change in ("resolve", "clear") else None,
            d.value,
        )
        state[d.dedup_key] = alert
        moves.append(AlertMove(row, change, alert))
    return moves
