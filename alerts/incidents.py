"""Incidents: the firing alerts that share a cause, as one. Pure: alerts in, incidents out.

A cause has a *family* — one modality's signals (they move together when a microphone or a camera
changes), the error rate, the label-free accuracy, calibration, a data-health measure — and a
*place*: all traffic, or one slice value. The place is found the way an engineer reads the alert
list: when, of an attribute with several values, exactly one value fires (``environment=car``
while ``indoor`` and ``outdoor`` are quiet), the change is that value's, and the alerts of all
traffic and of the other attributes' slices (every locale, every device, which all contain some
of it) are its echoes. Where no attribute has a lone firing value, or where two attributes each
have one (a change of one value shows in all values of the others alike), it is global. Families
found at the same place within ``join_within`` of each other are one incident (a camera that
darkens and whose error rate rises; an error rate that creeps up everywhere and the calibration
it spoils); an alert of a family joins that family's incident while the incident
still fires (calibration that drifted, then keeps getting worse), and alerts of one family
further apart in time than ``join_within``, with quiet between, are separate incidents.

Notifications go per incident: ``label_incidents`` gives each alert an ``incident`` label (the
default route groups by ``model`` and ``incident``), and an incident keeps the id it was first
notified under while its alerts keep firing, so a late alert joins the incident on-call already
has instead of opening another.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.core.records import ALL, AlertRecord
from monitor.core.settings import duration_text

# What an alert without a modality is about, by the detector of its rows.
_FAMILY_OF_DETECTOR = {
    "wilson": "error rate",
    "cbpe": "label-free accuracy",
    "bootstrap": "calibration",
    "ece": "calibration",
}
# what the model's answers show (as against its inputs)
_OUTPUT_FAMILIES = frozenset(_FAMILY_OF_DETECTOR.values())
# what an aging alert is about, by the metric its trend follows
_FAMILY_OF_FOLLOWED = {
    "error_rate": "error rate",
    "ece": "calibration",
    "estimated_accuracy": "label-free accuracy",
}


@dataclass(frozen=True)
class Incident:
    """One cause: where (``place``: a slice value, or ``*``), what (``families``), since when, and
    the alerts it folds, with why they were grouped."""

    key: str
    model: str
    place: str
    families: tuple[str, ...]
    since: datetime
    headline: str
    because: str
    alerts: tuple[AlertRecord, ...]


def family(alert: AlertRecord) -> str:
    """``audio``, ``image``, ``text`` … for signal (and missing-modality) alerts, ``data health``
    for a source's; else what the rule's detector measures, or the rule itself."""
    labels = alert.labels
    if labels.get("modality"):
        return labels["modality"]
    if labels.get("source"):
        return "data health"
    if labels.get("follows"):
        return _FAMILY_OF_FOLLOWED.get(labels["follows"], labels["follows"])
    return _FAMILY_OF_DETECTOR.get(labels.get("detector", ""), alert.rule)


def _attribute(slice_: str) -> str | None:
    """The attribute of a one-attribute slice (``device=cam_b`` → ``device``); None for all
    traffic and crossed slices."""
    if slice_ == ALL or "&" in slice_ or "=" not in slice_:
        return None
    return slice_.partition("=")[0]


def slice_attribute_values(slices: Iterable[str]) -> dict[str, set[str]]:
    """Each attribute's values among evaluated slices (``device=cam_b`` → device: {cam_b});
    all traffic and crossed slices name none."""
    out: dict[str, set[str]] = {}
    for sl in slices:
        attr = _attribute(sl)
        if attr is not None:
            out.setdefault(attr, set()).add(sl.partition("=")[2])
    return out


def place_of(
    alerts: Sequence[AlertRecord],
    slice_values: Mapping[str, Collection[str]],
    worse_than_rest: Collection[str] | None = None,
) -> tuple[str, str]:
    """Where a family of alerts is: (slice value, why) or (``*``, why). ``worse_than_rest``: the
    slices whose error rate is significantly above the rest of the traffic's (the slice-gap
    rows); given, a family of the model's answers is placed at a lone value only if it is one of
    them — a change that does not stand out from the rest is everyone's, even where a small
    slice's noise crossed a threshold first."""
    firing: dict[str, set[str]] = defaultdict(set)
    for a in alerts:
        attr = _attribute(a.labels.get("slice", ALL))
        if attr is not None:
            firing[attr].add(a.labels["slice"])
    lone = [
        next(iter(values))
        for attr, values in firing.items()
        if len(values) == 1 and len(slice_values.get(attr, ())) >= 2
    ]
    if not lone:
        return ALL, "no slice value fires alone in its attribute: all traffic"
    if len(lone) > 1:
        # a change of one value shows in every value of the other attributes alike (each holds
        # some of it): lone values in two attributes are not one slice's change
        return ALL, f"{' and '.join(sorted(lone))} each fire alone in their attribute: all traffic"
    best = lone[0]
    if worse_than_rest is not None and family(alerts[0]) in _OUTPUT_FAMILIES and best not in worse_than_rest:
        return ALL, f"{best} fires alone but its error rate is not above the rest's: all traffic"
    attr = _attribute(best)
    quiet = sorted(f"{attr}={v}" for v in slice_values.get(attr, ()) if f"{attr}={v}" != best)
    shown = ", ".join(quiet[:3]) + (f" (+{len(quiet) - 3})" if len(quiet) > 3 else "")
    return best, f"{best} fires while {shown} do not; the other slices' alerts contain it"


def _joins(
    before: Sequence[AlertRecord], start: datetime, join_within: timedelta, while_firing: bool = True
) -> bool:
    """Whether something that starts at ``start`` belongs with the alerts ``before``: it starts
    within ``join_within`` of their latest start, or (``while_firing``) while one of them still
    fires or ended less than ``join_within`` before — a cause that has not gone quiet is still
    the same cause."""
    if start - max(a.starts_at for a in before) <= join_within:
        return True
    if not while_firing:
        return False
    ends = [a.ends_at for a in before]
    return any(e is None for e in ends) or start - max(ends) <= join_within


def _split_in_time(alerts: list[AlertRecord], join_within: timedelta) -> list[list[AlertRecord]]:
    """Runs of one family: each alert joins the run before it when it ``_joins`` it."""
    runs: list[list[AlertRecord]] = []
    for a in sorted(alerts, key=lambda x: (x.starts_at, x.dedup_key)):
        if runs and _joins(runs[-1], a.starts_at, join_within):
            runs[-1].append(a)
        else:
            runs.append([a])
    return runs


def _num(a: AlertRecord, key: str) -> float | None:
    try:
        return float(a.annotations[key])
    except (KeyError, ValueError):
        return None


def _at(alerts: Sequence[AlertRecord], place: str) -> AlertRecord:
    """The alert that speaks for a group: the one at the incident's place, else all traffic's,
    else the first."""
    for where in (place, ALL):
        for a in alerts:
            if a.labels.get("slice", ALL) == where:
                return a
    return alerts[0]


def _per_day(a: AlertRecord, per_interval: float) -> float:
    try:
        span = datetime.fromisoformat(a.annotations["window_end"]) - datetime.fromisoformat(
            a.annotations["window_start"]
        )
    except (KeyError, ValueError):
        return per_interval
    return per_interval * timedelta(days=1) / span if span > timedelta(0) else per_interval


def _moved(signal: str, a: AlertRecord) -> str:
    """A signal and how far it moved (the KS row's mean shift against the reference's mean, in
    the signal's units), or its PSI where that is all there is."""
    shift, ref = _num(a, "ks_effect"), _num(a, "ks_reference")
    if shift is not None and ref is not None:
        return f"{signal} {shift:+.3g} (mean {ref + shift:.4g} vs {ref:.4g})"
    psi = _num(a, "psi")
    return f"{signal} (PSI {psi:.2f})" if psi is not None else signal


def _level(name: str, a: AlertRecord, metric: str) -> str | None:
    v, ref = _num(a, metric), _num(a, f"{metric}_reference")
    if v is None or ref is None:
        return None
    return f"{name} {(v - ref) * 100:+.1f} points ({v:.1%} vs {ref:.1%})"


def _by_rule_value(fam: str, alerts: Sequence[AlertRecord]) -> str:
    """Where the rows' measures are not known: what the rules' values say."""
    values = [a.value for a in alerts if a.value is not None]
    if fam == "error rate" and values:
        return f"error rate up (lower bound up to {max(values) * 100:+.0f} points against the reference)"
    if fam == "label-free accuracy" and values:
        return f"label-free accuracy down (upper bound {min(values) * 100:+.0f} points)"
    return {"calibration": "calibration drifted", "data health": "data health"}.get(fam, fam)


def _what(fam: str, alerts: Sequence[AlertRecord], place: str) -> str:
    """What moved and by how much, from what the alerts' rows measured (their annotations)."""
    missing = [a for a in alerts if _num(a, "missing_modality_share") is not None]
    said = []
    if missing:
        a = _at(missing, place)
        share, ref = _num(a, "missing_modality_share"), _num(a, "missing_modality_share_reference")
        said.append(
            f"{fam} missing in {share:.1%} of events" + (f" (vs {ref:.1%})" if ref is not None else "")
        )
    moving = [a for a in alerts if a.labels.get("signal") and a not in missing]
    signals = Counter(a.labels["signal"] for a in moving)
    if signals:
        top = [s for s, _ in signals.most_common(3)]
        moved = [_moved(s, _at([a for a in moving if a.labels["signal"] == s], place)) for s in top]
        more = f" +{len(signals) - 3} more" if len(signals) > 3 else ""
        said.append(f"{fam} {', '.join(moved)}{more} moved")
    if said:
        return "; ".join(said)
    aging = [a for a in alerts if a.labels.get("follows")]
    levels = [a for a in alerts if not a.labels.get("follows")]
    parts = []
    if levels:
        a = _at(levels, place)
        metric = {"error rate": "error_rate", "label-free accuracy": "estimated_accuracy"}.get(fam)
        said = _level(fam, a, metric) if metric else None
        if said is None and fam == "calibration" and _num(a, "ece_drift") is not None:
            said = f"calibration drifted (ECE {_num(a, 'ece_drift'):+.3f} above the reference's)"
        parts.append(said or _by_rule_value(fam, levels))
    if aging:
        a = _at(aging, place)
        slope = _num(a, "trend")
        worse = "falling" if a.labels.get("follows") == "estimated_accuracy" else "rising"
        parts.append(
            f"{fam} {worse} {_per_day(a, slope) * 100:+.2f} points a day"
            if slope is not None
            else f"{fam} getting worse"
        )
    return "; ".join(parts)


def group_incidents(
    alerts: Sequence[AlertRecord],
    slice_values: Mapping[str, Collection[str]] | None = None,
    join_within: timedelta = timedelta(days=2),
    states: Collection[str] = ("firing",),
    worse_than_rest: Collection[str] | None = None,
) -> list[Incident]:
    """The ``alerts`` in ``states`` (firing ones: what is going on now; a report of a period adds
    the resolved) as incidents, oldest first. ``slice_values``: each slice attribute's values
    (e.g. from the latest window's rows); an attribute not named there cannot localise;
    ``worse_than_rest``: see ``place_of``."""
    values = slice_values or {}
    by_family: dict[tuple[str, str], list[AlertRecord]] = defaultdict(list)
    for a in alerts:
        if a.state in states:
            by_family[a.labels.get("model", ""), family(a)].append(a)
    pieces = []  # (model, place, family, why, alerts)
    for (model, fam), members in by_family.items():
        for run in _split_in_time(members, join_within):
            place, why = place_of(run, values, worse_than_rest)
            pieces.append((model, place, fam, why, run))
    # families at the same place (one slice value, or all traffic) and time are one cause
    pieces.sort(key=lambda p: (p[0], p[1], min(a.starts_at for a in p[4]), p[2]))
    merged: list[list] = []
    for piece in pieces:
        model, place, fam, why, run = piece
        start = min(a.starts_at for a in run)
        last = merged[-1] if merged else None
        if (
            last is not None
            and (last[0], last[1]) == (model, place)
            # the model's answers worsening one way and then another (errors, then the calibration
            # they spoil) at one place, while it still fires, is one cause
            and _joins(
                last[4], start, join_within, fam in _OUTPUT_FAMILIES and bool(set(last[2]) & _OUTPUT_FAMILIES)
            )
        ):
            last[2].append(fam)
            last[4].extend(run)
        else:
            merged.append([model, place, [fam], why, list(run)])
    out = []
    for model, place, fams, why, run in merged:
        since = min(a.starts_at for a in run)
        where = "all traffic" if place == ALL else place
        whats = "; ".join(_what(f, [a for a in run if family(a) == f], place) for f in fams)
        headline = (
            f"{where}: {whats} since {since.date().isoformat()} ({len(run)} alert{'s' * (len(run) != 1)})"
        )
        within = duration_text(int(join_within.total_seconds()))
        because = why + (
            f"; {' and '.join(fams)} began within {within} of each other or while it still fired"
            if len(fams) > 1
            else ""
        )
        key = f"{model}|{place}|{'+'.join(fams)}|{since.isoformat()}"
        out.append(
            Incident(key, model, place, tuple(fams), since, headline, because, tuple(sorted(run, key=_order)))
        )
    return sorted(out, key=lambda i: (i.since, i.key))


def _order(a: AlertRecord) -> tuple[datetime, str]:
    return a.starts_at, a.dedup_key


INCIDENT_LABEL = "incident"


def incident_id(inc: Incident) -> str:
    """A short stable id for a new incident (what its notifications are grouped and keyed by)."""
    return "inc-" + hashlib.sha256(inc.key.encode()).hexdigest()[:12]


def label_incidents(
    alerts: Sequence[AlertRecord],
    slice_values: Mapping[str, Collection[str]] | None = None,
    known: Mapping[str, str] | None = None,
    join_within: timedelta = timedelta(days=2),
    worse_than_rest: Collection[str] | None = None,
) -> tuple[list[AlertRecord], dict[str, Incident]]:
    """``alerts`` (firing, and resolved ones still to be told) with an ``incident`` label, and each
    id's incident. ``known``: fingerprint → the incident id it was last notified under; an
    incident takes the id its earliest known alerts have, so an incident that grows is told as
    the same incident, and alerts told under two ids that turn out to be one cause are told as
    the one that began first. Other states pass through unlabelled."""
    known = known or {}
    ids: dict[str, str] = {}
    by_id: dict[str, Incident] = {}
    for inc in group_incidents(alerts, slice_values, join_within, ("firing", "resolved"), worse_than_rest):
        # the id told earliest among its alerts' (not one another incident already kept): alerts
        # first told apart and now understood as one cause are told as the incident they began
        began: dict[str, datetime] = {}
        for a in inc.alerts:
            k = known.get(a.dedup_key)
            if k is not None and k not in by_id:
                began[k] = min(began.get(k, a.starts_at), a.starts_at)
        chosen = min(began, key=lambda k: (began[k], k)) if began else incident_id(inc)
        by_id[chosen] = inc
        for a in inc.alerts:
            ids[a.dedup_key] = chosen
    out = [
        replace(a, labels={**a.labels, INCIDENT_LABEL: ids[a.dedup_key]}) if a.dedup_key in ids else a
        for a in alerts
    ]
    return out, by_id
