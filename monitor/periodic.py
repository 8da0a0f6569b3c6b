"""Periodic reports: every ``report.every`` of event time, that period's report, written once
across replicas.

A period [start, end) is due once the watermark has passed ``end`` plus the largest
label-maturity lag and no vintage of a window starting in it is still due: its last window has
been evaluated with the labels it waits for. The replica that claims it (``report_runs``, like a
vintage's claim) builds it, keeps its JSON in the store (any replica serves it at ``GET
/report``) and writes ``<report.dir>/<period>/report.html`` and ``report.json`` with an
``index.html`` of every period. A replica that dies while writing leaves a claim that expires
after ``evaluation.claim_expiry``; another one writes the period then.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import datetime
from pathlib import Path

from monitor.core.settings import duration_text
from monitor.schedule import windows

log = logging.getLogger("modalwatch.report")


def period_name(start: datetime, every_s: int) -> str:
    """A period's directory name: its start in UTC and its length, e.g. ``2026-03-02T0000Z-1d``."""
    from datetime import timezone

    return f"{start.astimezone(timezone.utc):%Y-%m-%dT%H%MZ}-{duration_text(every_s)}"


def due_periods(
    config, store, watermark: datetime | None, due_windows: list
) -> list[tuple[datetime, datetime]]:
    """The periods whose reports can be written now, oldest first (written ones included: the
    claim tells them apart). ``due_windows``: the vintages still due (Evaluator.due)."""
    every = config.report.every
    if every is None or watermark is None:
        return []
    versions = store.events.model_versions()
    if not versions:
        return []
    first = min(mv.first_ts for mv in versions)
    lag = max(config.evaluation.vintage_lags)
    pending = [key.window_start for key, _ in due_windows]
    out = []
    for start, end in windows(every, first, watermark - lag, config.evaluation.tz):
        if any(start <= t < end for t in pending):
            break  # a window of it (and so of every later period) is not evaluated yet
        out.append((start, end))
    return out


def write_due_reports(
    config, store, due_windows: list, owner: str, now: datetime, should_stop=lambda: False
) -> list[str]:
    """Write each due period's report this replica claims; returns the periods written (those
    written before ``should_stop`` said so: the others are due again on the next run)."""
    from monitor.report import build_report

    if config.report.every is None:
        return []
    every_s = int(config.report.every.total_seconds())
    written_before = {r.start for r in store.ops.reports() if r.every_s == every_s}
    written = []
    for start, end in due_periods(config, store, store.events.watermark(), due_windows):
        if should_stop():
            break
        if start in written_before:
            continue
        if not store.ops.claim_report(start, end, every_s, owner, now, config.evaluation.claim_expiry):
            continue  # another replica has it
        report = build_report(store, config, start, end, now)
        report["every"] = duration_text(every_s)
        text = json.dumps(report, sort_keys=True)
        with store.tx():
            if not store.ops.finish_report(start, every_s, owner, now, text):
                log.warning("report of %s: another replica took the claim over; its copy stands", start)
                continue
        name = period_name(start, every_s)
        _write_files(Path(config.report.dir), name, report, config.alerts.external_url)
        written.append(name)
        log.info("wrote the report of %s – %s (%s)", start.isoformat(), end.isoformat(), name)
    if written:
        write_index(Path(config.report.dir), store)
    return written


def _write_files(root: Path, name: str, report: dict, base: str) -> None:
    """The period's directory, written beside and renamed into place (a reader never sees half)."""
    from monitor.report import write_report

    tmp = root / f".{name}.tmp-{os.getpid()}"
    write_report(report, tmp, base)
    final = root / name
    if final.exists():
        import shutil

        shutil.rmtree(final)
    tmp.rename(final)


def index_entries(store) -> list[dict]:
    """Every written report, newest first, as the index lists it."""
    out = []
    for r in store.ops.reports():
        name = period_name(r.start, r.every_s)
        out.append(
            {
                "name": name,
                "from": r.start.isoformat(),
                "to": r.end.isoformat(),
                "every": duration_text(r.every_s),
                "generated_at": r.written_at.isoformat(),
                "written_by": r.written_by,
                "href": f"/reports/{name}/report.html",
            }
        )
    return out


def write_index(root: Path, store) -> Path:
    from monitor.pages import index_html

    entries = [{**e, "href": f"{e['name']}/report.html"} for e in index_entries(store)]
    root.mkdir(parents=True, exist_ok=True)
    path = root / "index.html"
    tmp = root / f".index.html.tmp-{os.getpid()}"
    tmp.write_text(index_html(entries), encoding="utf-8")
    tmp.replace(path)
    return path


def stored_report(store, name: str) -> dict | None:
    """A written report by its period's name."""
    for r in store.ops.reports():
        if period_name(r.start, r.every_s) == name:
            text = store.ops.report(r.start, r.every_s)
            return json.loads(text) if text else None
    return None


def latest_report(store) -> dict | None:
    runs = store.ops.reports()
    if not runs:
        return None
    text = store.ops.report(runs[0].start, runs[0].every_s)
    return json.loads(text) if text else None
