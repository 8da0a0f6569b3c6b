"""Summaries: per (model version, measure, time bucket, slice, known-before time, cell) a count, a
sum and a sum of squares that writers add to and evaluations sum (monitor/summaries.py says what
they hold)."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

from connectors.sql.database import Database
from monitor.core.records import SummaryRow

_KEY = ("model_name", "model_version", "measure", "bucket", "slice", "known_before", "cell")
_ADDED = ("n", "sum_x", "sum_x2")


class SummaryRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, rows: Sequence[SummaryRow]) -> None:
        """Add ``rows`` to the stored summaries: one row per key, in key order (two writers adding
        to the same rows wait for each other, never deadlock)."""
        merged: dict[tuple, list[float]] = {}
        for r in rows:
            k = r[:7]
            m = merged.get(k)
            if m is None:
                merged[k] = [r.n, r.sum_x, r.sum_x2]
            else:
                m[0] += r.n
                m[1] += r.sum_x
                m[2] += r.sum_x2
        if not merged:
            return
        ts = self.db.dialect.ts
        with self.db.tx():
            self.db.dialect.add_rows(
                self.db.conn,
                "summaries",
                _KEY,
                _ADDED,
                [
                    (mn, mv, me, ts(b), sl, ts(kb), c, *v)
                    for (mn, mv, me, b, sl, kb, c), v in sorted(merged.items())
                ],
            )

    def read(
        self,
        model_name: str,
        model_version: str,
        measure: str,
        start: datetime,
        end: datetime,
        known_before: datetime,
    ) -> dict[tuple[str, str], tuple[float, float, float]]:
        """Per (raw slice, cell), the sums of ``measure``'s rows with buckets in [start, end) known
        by ``known_before``."""
        ts = self.db.dialect.ts
        return {
            (sl, cell): (n, s1, s2)
            for sl, cell, n, s1, s2 in self.db.all(
                "SELECT slice, cell, sum(n), sum(sum_x), sum(sum_x2) FROM summaries WHERE model_name = ?"
                " AND model_version = ? AND measure = ? AND bucket >= ? AND bucket < ? AND known_before <= ?"
                " GROUP BY slice, cell",
                (model_name, model_version, measure, ts(start), ts(end), ts(known_before)),
            )
        }

    def all(self) -> list[SummaryRow]:
        """Every stored row, in key order (the proofs compare them with a recomputation)."""
        d = self.db.dialect
        return sorted(
            (
                SummaryRow(mn, mv, me, d.ts_out(b), sl, d.ts_out(kb), c, n, s1, s2)
                for mn, mv, me, b, sl, kb, c, n, s1, s2 in self.db.all(
                    f"SELECT {', '.join(_KEY + _ADDED)} FROM summaries"
                )
            ),
            key=lambda r: r[:7],
        )

    def delete(self) -> int:
        """Remove every row; how many."""
        return self.db.execute("DELETE FROM summaries").rowcount
