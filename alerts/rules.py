"""Threshold rules on evaluation rows, and the alert state they drive. Pure: no I/O, no clock."""

from __future__ import annotations

import hashlib
import json
import math
import operator
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Callable, Literal, Mapping, Sequence

from monitor.core.records import AlertRecord, EvaluationRow

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
# metrics whose rows' ``signal`` names another metric (a trend of the error rate), not an input signal
FOLLOWING = frozenset({"trend"})


@dataclass(frozen=True)
class RuleDecision:
    """What a rule says about one evaluation row: ``breached`` is None when it makes no claim."""

    rule: str
    labels: dict[str, str]
    dedup_key: str
    breached: bool | None
    value: float | None
    # a firing alert stays firing while this holds (the rule's resolve_threshold; unset: breached)
    holds: bool | None = None
    # what its rows measured, for people (annotations): ``<metric>``, ``<metric>_reference``,
    # ``<metric>_effect`` of each row the alert reads (a PSI-or-KS alert carries both)
    measures: dict[str, str] = field(default_factory=dict)


def measures(row: EvaluationRow) -> dict[str, str]:
    out = {}
    for suffix, v in (("", row.value), ("_reference", row.reference_value), ("_effect", row.effect)):
        if v is not None and math.isfinite(v):
            out[row.metric + suffix] = f"{v:.6g}"
    return out


def rule_metrics(rule) -> tuple[str, ...]:
    """The metrics a rule reads: one, or several whose rows of one slice and signal are one alert
    (e.g. PSI or KS: distribution drift however it shows)."""
    return (rule.metric,) if isinstance(rule.metric, str) else tuple(rule.metric)


def applies(rule, row: EvaluationRow) -> bool:
    interval = getattr(rule, "interval", None)
    return (
        row.metric in rule_metrics(rule)
        and (rule.slice is None or row.slice == rule.slice)
        and (rule.signal is None or row.signal == rule.signal)
        and (interval is None or row.interval_s == int(interval.total_seconds()))
    )


def alert_labels(rule, row: EvaluationRow, vintage: str = "", interval: str = "") -> dict[str, str]:
    """The fixed label vocabulary of an alert, plus the rule's own ``labels`` (e.g. team); the
    dedup key (the fingerprint) is derived from them alone. ``vintage`` names the label-maturity
    lag and ``interval`` the window length where several are evaluated: each keeps its own alert
    state (an hourly window must not resolve what a daily one fired)."""
    labels = {
        **getattr(rule, "labels", {}),
        "alertname": rule.name,
        "model": row.model_name,
        "slice": row.slice,
        # a rule over several metrics makes one alert of their rows: the detector is all of them
        "detector": row.detector if isinstance(rule.metric, str) else "+".join(rule_metrics(rule)),
        "severity": rule.severity,
    }
    if vintage:
        labels["vintage"] = vintage
    if interval:
        labels["interval"] = interval
    if row.source:  # data health of one source (kafka, http, a JSONL path)
        labels["source"] = row.source
    elif row.metric in FOLLOWING:  # its signal is the metric it follows, not a modality's signal
        labels["follows"] = row.signal
    elif row.signal:
        modality, _, signal = row.signal.partition(".")
        labels.update(modality=modality, signal=signal or modality)
    return labels


def subject(labels: Mapping[str, str]) -> str:
    """What an alert is about beyond its slice, from its labels: `` audio.loudness``, `` trend of
    error_rate``, `` source kafka`` (empty for a slice's own metric)."""
    if "signal" in labels:
        return f" {labels.get('modality', '')}.{labels['signal']}"
    if "follows" in labels:
        return f" trend of {labels['follows']}"
    if "source" in labels:
        return f" source {labels['source']}"
    return ""


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


def decide(
    rule, row: EvaluationRow, baseline: float | None = None, vintage: str = "", interval: str = ""
) -> RuleDecision:
    """``baseline``: the previous window's or earlier vintage's value, for rules with
    ``vs_previous`` / ``vs_earlier_lag`` (``vs_reference`` reads the row's own reference value)."""
    labels = alert_labels(rule, row, vintage, interval)
    key = dedup_key(labels)
    value = getattr(row, rule.field)
    if row.status != "ok" or value is None or not math.isfinite(value):
        return RuleDecision(rule.name, labels, key, None, None, measures=measures(row))
    which = baseline_field(rule)
    if which is not None:
        base = row.reference_value if which == "reference" else baseline
        if base is None or not math.isfinite(base):
            return RuleDecision(rule.name, labels, key, None, None, measures=measures(row))
        value = value - base
    op = _OPS[rule.op]
    max_p = getattr(rule, "max_p", None)
    significant = max_p is None or (row.p_adjusted is not None and row.p_adjusted <= max_p)
    breached = bool(op(value, rule.threshold)) and significant
    resolve_at = getattr(rule, "resolve_threshold", None)
    holds = breached if resolve_at is None else bool(op(value, resolve_at))
    return RuleDecision(rule.name, labels, key, breached, value, holds, measures(row))


# "quiet": a firing alert's breach ended (it keeps firing for keep_firing_for); "steady": it came
# back before that. Neither changes the state that notifications read.
Change = Literal["pending", "fire", "resolve", "clear", "quiet", "steady"]
_STATE_AFTER = {
    "pending": "pending",
    "fire": "firing",
    "resolve": "resolved",
    "clear": "cleared",
    "quiet": "firing",
    "steady": "firing",
}
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
    holds: bool | None = None,
    quiet_for: timedelta | None = None,
    keep: timedelta = timedelta(0),
) -> Change | None:
    """The state change an alert makes on one window's row.

    With ``hold`` (the rule's ``for``) 0, a breach fires at once. Otherwise a breach first makes
    the alert ``pending``; it fires once the breach has held for ``hold`` (``pending_for``: from the
    first breached window's start to this window's end), and a pending alert whose breach ends
    before that is cleared without ever notifying.

    A firing alert stays firing while ``holds`` (the rule's resolve threshold, looser than the
    firing one; None: ``breached``). Once it does not, it is ``quiet``, and it resolves when it has
    been quiet for ``keep`` (the rule's ``keep_firing_for``; ``quiet_for``: from the first quiet
    window's start to this window's end, None while not quiet); holding again before that makes it
    ``steady`` again. No claim (None) changes nothing."""
    if breached is None:
        return None
    if current_state == "firing":
        if holds if holds is not None else breached:
            return "steady" if quiet_for is not None else None
        if keep <= timedelta(0) or (quiet_for is not None and quiet_for >= keep):
            return "resolve"
        return "quiet" if quiet_for is None else None
    if breached:
        if current_state == "pending" and pending_for is not None and pending_for >= hold:
            return "fire"
        if current_state != "pending":
            return "fire" if hold <= timedelta(0) else "pending"
        return None
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
    interval: str = "",
) -> list[tuple[object, EvaluationRow, RuleDecision]]:
    """Every rule's decision on every row it applies to (``baseline(rule, row)``: the value a
    ``vs_previous`` / ``vs_earlier_lag`` rule subtracts)."""
    return [
        (rule, row, d)
        for rule in rules
        for row, d in _combined(
            [
                (row, decide(rule, row, baseline(rule, row), vintage, interval))
                for row in rows
                if applies(rule, row)
            ]
        )
    ]


def _combined(decided: list[tuple[EvaluationRow, RuleDecision]]) -> list[tuple[EvaluationRow, RuleDecision]]:
    """One decision per fingerprint: the rows of a rule over several metrics that make one alert
    breach when any of them does (and hold while any holds); the row kept is a breaching one."""
    by_key: dict[str, list[tuple[EvaluationRow, RuleDecision]]] = {}
    for row, d in decided:
        by_key.setdefault(d.dedup_key, []).append((row, d))
    out = []
    for group in by_key.values():
        if len(group) == 1:
            out.append(group[0])
            continue
        claims = [(row, d) for row, d in group if d.breached is not None]
        if not claims:
            out.append(group[0])
            continue
        row, first = next(((r, d) for r, d in claims if d.breached), claims[0])
        holds = any(d.holds if d.holds is not None else d.breached for _, d in claims)
        every = {k: v for _, d in group for k, v in d.measures.items()}
        out.append(
            (row, replace(first, breached=any(d.breached for _, d in claims), holds=holds, measures=every))
        )
    return out


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
        quiet_since = now_at.quiet_since if was == "firing" else None
        quiet_for = window_end - quiet_since if quiet_since is not None else None
        change = transition(
            was,
            d.breached,
            pending_for,
            rule.for_,
            d.holds,
            quiet_for,
            getattr(rule, "keep_firing_for", timedelta(0)),
        )
        if change is None:
            continue
        if change in ("quiet", "steady"):  # still firing, as it was: only when it went quiet
            state[d.dedup_key] = replace(now_at, quiet_since=window_start if change == "quiet" else None)
            moves.append(AlertMove(row, change, state[d.dedup_key]))
            continue
        annotations = {
            "summary": rule.summary
            or (
                f"{' or '.join(rule_metrics(rule))} {rule.field}"
                f"{_BASELINE_TEXT.get(baseline_field(rule), '')}"
                f" {rule.op} {rule.threshold}"
            ),
            "value": f"{d.value:.4g}",
            "window_start": window_start.isoformat(),
            "window_end": window_end.isoformat(),
            "n": str(row.n),
            **d.measures,
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
