"""Summaries: float vectors per (model version, measure, time bucket, slice, known-before time)
that writers add to and evaluations sum (monitor/summaries.py says what they hold)."""

from __future__ import annotations

from datetime import datetime
from typing import Sequence

import numpy as np

from connectors.sql.database import Database
from monitor.core.records import SummaryRow

_KEY = ("model_name", "model_version", "measure", "bucket", "slice", "known_before")


class SummaryRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        d = db.dialect
        self._upsert = (
            f"INSERT INTO summaries ({', '.join(_KEY)}, sums) VALUES (?, ?, ?, ?, ?, ?, ?)"
            f" ON CONFLICT ({', '.join(_KEY)}) DO UPDATE SET"
            f" sums = {d.add_vectors('summaries.sums', 'excluded.sums')}"
        )

    def add(self, rows: Sequence[SummaryRow]) -> None:
        """Add ``rows`` to the stored summaries (one statement per distinct key, in key order: two
        writers adding to the same rows never deadlock)."""
        merged: dict[tuple, np.ndarray] = {}
        for r in rows:
            k = r[:6]
            v = np.asarray(r.sums, dtype=float)
            merged[k] = merged[k] + v if k in merged else v
        d = self.db.dialect
        self.db.many(
            self._upsert,
            [
                (mn, mv, measure, d.ts(b), sl, d.ts(kb), d.vector(v))
                for (mn, mv, measure, b, sl, kb), v in sorted(merged.items(), key=lambda kv: kv[0])
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
    ) -> dict[str, np.ndarray]:
        """Per slice (raw keys), the sum of ``measure``'s rows with buckets in [start, end) known
        by ``known_before``."""
        d = self.db.dialect
        rows = self.db.all(
            f"SELECT slice, {d.sum_vectors('sums')} FROM summaries WHERE model_name = ? AND"
            " model_version = ? AND measure = ? AND bucket >= ? AND bucket < ? AND known_before <= ?"
            " GROUP BY slice",
            (model_name, model_version, measure, d.ts(start), d.ts(end), d.ts(known_before)),
        )
        return {sl: d.vector_out(v) for sl, v in rows}

    def all(self) -> list[SummaryRow]:
        """Every stored row, in key order (the proofs compare them with a recomputation)."""
        d = self.db.dialect
        return sorted(
            (
                SummaryRow(mn, mv, m, d.ts_out(b), sl, d.ts_out(kb), tuple(d.vector_out(v).tolist()))
                for mn, mv, m, b, sl, kb, v in self.db.all(f"SELECT {', '.join(_KEY)}, sums FROM summaries")
            ),
            key=lambda r: r[:6],
        )

    def delete(self, measures: Sequence[str] | None = None) -> int:
        """Remove the rows of ``measures`` (None: all); how many."""
        if measures is None:
            return self.db.execute("DELETE FROM summaries").rowcount
        n = 0
        for cond, params in self.db.where_in("measure", list(measures)):
            n += self.db.execute(f"DELETE FROM summaries WHERE {cond}", params).rowcount
        return n
