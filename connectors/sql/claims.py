"""Claims on scheduled work, shared by the replicas through one table: a vintage to evaluate
(``eval_runs``), a period's report to write (``report_runs``). A row per piece of work holds who
claimed it, when, and when it finished."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable, Sequence

from connectors.sql.database import Database


class Claims:
    """The claims of one table, whose rows are keyed by ``key_cols``."""

    def __init__(self, db: Database, table: str, key_cols: Sequence[str]) -> None:
        self.db = db
        self.table = table
        self.key_cols = tuple(key_cols)
        self._where = " AND ".join(f"{c} = ?" for c in key_cols)

    def claim(
        self,
        key: Sequence,
        owner: str,
        now: datetime,
        expire: timedelta,
        orphaned: Callable[[str], bool] = lambda holder: False,
        extra: dict | None = None,
    ) -> bool:
        """Claim the row of ``key`` for ``owner``; True if it is ours to do: new, an expired claim,
        an unfinished claim of ``owner``'s own (its run failed, or this replica restarted under the
        same name: retried at once rather than after the expiry), or one whose holder ``orphaned``
        says is gone (a process of this host that died). ``extra``: more columns of a new row."""
        db, d, extra = self.db, self.db.dialect, extra or {}
        with db.tx():
            row = db.all(
                f"SELECT claimed_by, claimed_at, finished_at FROM {self.table} WHERE {self._where}"
                + d.row_lock,
                key,
            )
            if not row:
                cols = [*self.key_cols, *extra, "claimed_by", "claimed_at"]
                cur = db.execute(
                    f"INSERT INTO {self.table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                    " ON CONFLICT DO NOTHING",
                    (*key, *extra.values(), owner, d.ts(now)),
                )
                return cur.rowcount == 1
            claimed_by, claimed_at, finished_at = row[0]
            if finished_at is not None or (
                claimed_by != owner and d.ts_out(claimed_at) + expire > now and not orphaned(claimed_by)
            ):
                return False
            db.execute(
                f"UPDATE {self.table} SET claimed_by = ?, claimed_at = ? WHERE {self._where}",
                (owner, d.ts(now), *key),
            )
            return True

    def finish(self, key: Sequence, owner: str, now: datetime, extra: dict | None = None) -> bool:
        """Mark ``key`` finished if ``owner`` still holds its claim (``extra``: columns set with
        it); False if another replica took it over (the claim expired) or finished it — the
        caller then rolls its result back."""
        extra = extra or {}
        sets = "".join(f", {c} = ?" for c in extra)
        return (
            self.db.execute(
                f"UPDATE {self.table} SET finished_at = ?{sets} WHERE {self._where} AND claimed_by = ?"
                " AND finished_at IS NULL",
                (self.db.dialect.ts(now), *extra.values(), *key, owner),
            ).rowcount
            == 1
        )
