"""Claims on scheduled work, shared by the replicas through one table: a vintage to evaluate
(``eval_runs``), a period's report to write (``report_runs``). A row per piece of work holds who
claimed it, when, and when it finished."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Callable, Sequence

from connectors.sql.database import Database


def claim(
    db: Database,
    table: str,
    key_cols: Sequence[str],
    key: Sequence,
    owner: str,
    now: datetime,
    expire: timedelta,
    orphaned: Callable[[str], bool] = lambda holder: False,
    extra: dict | None = None,
) -> bool:
    """Claim the row of ``key`` for ``owner``; True if it is ours to do: new, an expired claim, an
    unfinished claim of ``owner``'s own (its run failed, or this replica restarted under the same
    name: retried at once rather than after the expiry), or one whose holder ``orphaned`` says is
    gone (a process of this host that died). ``extra``: more columns of a new row."""
    d = db.dialect
    where = " AND ".join(f"{c} = ?" for c in key_cols)
    extra = extra or {}
    with db.tx():
        row = db.all(
            f"SELECT claimed_by, claimed_at, finished_at FROM {table} WHERE {where}" + d.row_lock, key
        )
        if not row:
            cols = [*key_cols, *extra, "claimed_by", "claimed_at"]
            cur = db.execute(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
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
            f"UPDATE {table} SET claimed_by = ?, claimed_at = ? WHERE {where}", (owner, d.ts(now), *key)
        )
        return True


def finish(
    db: Database,
    table: str,
    key_cols: Sequence[str],
    key: Sequence,
    owner: str,
    now: datetime,
    extra: dict | None = None,
) -> bool:
    """Mark ``key`` finished if ``owner`` still holds its claim (``extra``: columns set with it);
    False if another replica took it over (the claim expired) or finished it — the caller then
    rolls its result back."""
    where = " AND ".join(f"{c} = ?" for c in key_cols)
    extra = extra or {}
    sets = "".join(f", {c} = ?" for c in extra)
    return (
        db.execute(
            f"UPDATE {table} SET finished_at = ?{sets} WHERE {where} AND claimed_by = ?"
            " AND finished_at IS NULL",
            (db.dialect.ts(now), *extra.values(), *key, owner),
        ).rowcount
        == 1
    )
