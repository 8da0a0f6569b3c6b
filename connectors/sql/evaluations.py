"""Scheduled evaluations: the claims on each vintage, and the rows they store."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable, Sequence

import pandas as pd

from connectors.sql import claims
from connectors.sql.database import Database
from monitor.core.records import EVALUATION_COLUMNS, EvaluationRow
from monitor.core.window import RunKey

_TIMES = ("window_start", "window_end", "evaluated_at")


class EvaluationRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._claims = claims.Claims(db, "eval_runs", self._KEY_COLS)

    # -- claims --------------------------------------------------------------------------------
    def _key(self, key: RunKey) -> tuple:
        return (
            key.model_name,
            key.model_version,
            key.interval_s,
            key.lag_s,
            self.db.dialect.ts(key.window_start),
        )

    _KEY_COLS = ("model_name", "model_version", "interval_s", "lag_s", "window_start")

    def claim(
        self,
        key: RunKey,
        window_end: datetime,
        owner: str,
        now: datetime,
        expire: timedelta,
        orphaned: Callable[[str], bool] = lambda holder: False,
    ) -> bool:
        """Claim ``key`` for ``owner`` (connectors/sql/claims.py): True if it is ours to evaluate."""
        return self._claims.claim(
            self._key(key), owner, now, expire, orphaned, extra={"window_end": self.db.dialect.ts(window_end)}
        )

    def finish(self, key: RunKey, owner: str, now: datetime) -> bool:
        """Mark ``key`` finished if ``owner`` still holds its claim; False if another replica took
        it over (the claim expired) or finished it — the caller then rolls its result back."""
        return self._claims.finish(self._key(key), owner, now)

    def finish_empty(self, runs: Sequence[tuple[RunKey, datetime]], owner: str, now: datetime) -> None:
        """Record vintages whose windows hold no event as finished, without rows (one claim row
        each; a vintage claimed already keeps its row)."""
        d = self.db.dialect
        self.db.many(
            f"INSERT INTO eval_runs ({', '.join(self._KEY_COLS)}, window_end, claimed_by, claimed_at,"
            " finished_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(*self._key(k), d.ts(end), owner, d.ts(now), d.ts(now)) for k, end in runs],
        )

    def finished(self, model_name: str, model_version: str, interval_s: int, lag_s: int) -> set[datetime]:
        """The window starts of the finished vintages of one model version, interval and lag."""
        return {
            self.db.dialect.ts_out(r[0])
            for r in self.db.all(
                "SELECT window_start FROM eval_runs WHERE model_name = ? AND model_version = ? AND"
                " interval_s = ?"
                " AND lag_s = ? AND finished_at IS NOT NULL",
                (model_name, model_version, interval_s, lag_s),
            )
        }

    def slices(self) -> list[str]:
        """The slices of the latest evaluated window (what alerts' places are read against)."""
        return [
            r[0]
            for r in self.db.all(
                "SELECT DISTINCT slice FROM evaluations WHERE window_start ="
                " (SELECT MAX(window_start) FROM evaluations) ORDER BY slice"
            )
        ]

    def worse_than_rest(self) -> list[str]:
        """The slices whose error rate is significantly above the rest of the traffic's in the
        latest window of the longest interval (its ``error_rate_gap`` rows): where a change of
        the model's answers is one slice's (alerts/incidents.py)."""
        return [
            r[0]
            for r in self.db.all(
                "SELECT slice FROM evaluations e WHERE metric = 'error_rate_gap' AND decision = 1 AND"
                " effect > 0 AND window_start = (SELECT MAX(window_start) FROM evaluations WHERE"
                " metric = 'error_rate_gap' AND interval_s = e.interval_s) AND interval_s = (SELECT"
                " MAX(interval_s) FROM evaluations WHERE metric = 'error_rate_gap') ORDER BY slice"
            )
        ]

    def unfinished(
        self, model_name: str, model_version: str, interval_s: int, lag_s: int, start: datetime, end: datetime
    ) -> int:
        """How many vintages of one series with a window start in [start, end) are claimed and not
        finished (being evaluated, or left by a process that failed or died)."""
        d = self.db.dialect
        return self.db.one(
            "SELECT COUNT(*) FROM eval_runs WHERE model_name = ? AND model_version = ? AND interval_s = ?"
            " AND lag_s = ? AND window_start >= ? AND window_start < ? AND finished_at IS NULL",
            (model_name, model_version, interval_s, lag_s, d.ts(start), d.ts(end)),
        )

    # -- rows ----------------------------------------------------------------------------------
    def insert(self, rows: Sequence[EvaluationRow]) -> None:
        """Store a vintage's rows (a row already stored for its window, slice, metric and signal is
        kept: a backfill never rewrites history)."""
        ts = self.db.dialect.ts
        self.db.many(
            f"INSERT INTO evaluations ({', '.join(EVALUATION_COLUMNS)}) VALUES"
            f" ({', '.join('?' * len(EVALUATION_COLUMNS))})"
            " ON CONFLICT (model_name, model_version, interval_s, lag_s, window_start, slice, metric, signal)"
            " DO NOTHING",
            [
                tuple(ts(getattr(r, c)) if c in _TIMES else getattr(r, c) for c in EVALUATION_COLUMNS)
                for r in rows
            ],
        )

    def previous_values(
        self, model_name: str, model_version: str, interval_s: int, lag_s: int, before: datetime
    ) -> dict[tuple[str, str, str], float | None]:
        """The values of the latest window before ``before`` of the same model version, interval and
        lag, by (slice, metric, signal)."""
        key = (model_name, model_version, interval_s, lag_s)
        rows = self.db.all(
            "SELECT slice, metric, signal, value FROM evaluations WHERE model_name = ? AND model_version = ?"
            " AND interval_s = ? AND lag_s = ? AND window_start = (SELECT MAX(window_start) FROM evaluations"
            " WHERE model_name = ? AND model_version = ? AND interval_s = ? AND lag_s = ? AND window_start"
            " < ?)",
            (*key, *key, self.db.dialect.ts(before)),
        )
        return {(sl, m, sig): v for sl, m, sig, v in rows}

    def earlier_lag_values(
        self, model_name: str, model_version: str, interval_s: int, lag_s: int, window_start: datetime
    ) -> dict[tuple[str, str, str], float | None]:
        """The same window's values at the next shorter lag (its previous vintage), by (slice, metric,
        signal)."""
        key = (model_name, model_version, interval_s)
        ws = self.db.dialect.ts(window_start)
        rows = self.db.all(
            "SELECT slice, metric, signal, value FROM evaluations WHERE model_name = ? AND model_version = ?"
            " AND interval_s = ? AND window_start = ? AND lag_s = (SELECT MAX(lag_s) FROM evaluations"
            " WHERE model_name = ? AND model_version = ? AND interval_s = ? AND window_start = ? AND lag_s"
            " < ?)",
            (*key, ws, *key, ws, lag_s),
        )
        return {(sl, m, sig): v for sl, m, sig, v in rows}

    def history(self, key: RunKey, since: datetime, metrics: Sequence[str]) -> list[EvaluationRow]:
        """The rows of ``metrics`` of the windows of ``key``'s model version, interval and lag that
        start in [``since``, ``key.window_start``), oldest first."""
        if not metrics:
            return []
        d = self.db.dialect
        marks = ", ".join("?" * len(metrics))
        rows = self.db.all(
            f"SELECT {', '.join(EVALUATION_COLUMNS)} FROM evaluations WHERE model_name = ? AND"
            " model_version = ?"
            " AND interval_s = ? AND lag_s = ? AND window_start >= ? AND window_start < ? AND metric IN"
            f" ({marks})"
            " ORDER BY window_start, id",
            (
                key.model_name,
                key.model_version,
                key.interval_s,
                key.lag_s,
                d.ts(since),
                d.ts(key.window_start),
                *metrics,
            ),
        )
        return [self._row(r) for r in rows]

    def latest(self, metric: str, until: datetime | None = None) -> list[EvaluationRow]:
        """The rows of ``metric`` in each series' (model version, interval, lag) latest window
        that ended by ``until`` (None: the latest of all). Two index reads (metric, window
        start), not a scan per row: /metrics asks this on every scrape."""
        d = self.db.dialect
        bound, params = ("", []) if until is None else (" AND window_end <= ?", [d.ts(until)])
        latest = self.db.all(
            "SELECT model_name, model_version, interval_s, lag_s, MAX(window_start) FROM evaluations"
            f" WHERE metric = ?{bound} GROUP BY model_name, model_version, interval_s, lag_s",
            (metric, *params),
        )
        out = []
        for mn, mv, iv, lag, ws in sorted(latest, key=lambda r: r[:4]):
            rows = self.db.all(
                f"SELECT {', '.join(EVALUATION_COLUMNS)} FROM evaluations WHERE metric = ? AND"
                " window_start = ? AND model_name = ? AND model_version = ? AND interval_s = ? AND lag_s = ?"
                " ORDER BY slice, signal",
                (metric, ws, mn, mv, iv, lag),
            )
            out += [self._row(r) for r in rows]
        return out

    def window(self, key: RunKey) -> list[EvaluationRow]:
        """Every row of one evaluated window."""
        rows = self.db.all(
            f"SELECT {', '.join(EVALUATION_COLUMNS)} FROM evaluations WHERE model_name = ? AND"
            " model_version = ? AND interval_s = ? AND lag_s = ? AND window_start = ? ORDER BY id",
            self._key(key),
        )
        return [self._row(r) for r in rows]

    def _row(self, r: tuple) -> EvaluationRow:
        ts_out = self.db.dialect.ts_out
        values = dict(zip(EVALUATION_COLUMNS, r))
        for c in _TIMES:
            values[c] = ts_out(values[c])
        return EvaluationRow(**values)

    def frame(self, start: datetime | None = None, end: datetime | None = None) -> pd.DataFrame:
        """Every stored row whose window starts in [start, end), as a DataFrame (reports, history)."""
        d = self.db.dialect
        conds, params = [], []
        if start is not None:
            conds.append("window_start >= ?")
            params.append(d.ts(start))
        if end is not None:
            conds.append("window_start < ?")
            params.append(d.ts(end))
        where = (" WHERE " + " AND ".join(conds)) if conds else ""
        rows = self.db.all(
            f"SELECT {', '.join(EVALUATION_COLUMNS)} FROM evaluations{where} ORDER BY window_start, id",
            params,
        )
        df = pd.DataFrame(rows, columns=list(EVALUATION_COLUMNS))
        for c in _TIMES:
            df[c] = [d.ts_out(v) for v in df[c]]
        return df
