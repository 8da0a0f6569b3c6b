-- Issue 25: mergeable summaries (monitor/summaries.py): per model version, measure, time bucket,
-- slice and known_before (the earliest cut-off of the configured schedule a row's labels are
-- known by; event measures: the bucket itself), each cell of the measure holds a count, a sum and
-- a sum of squares that writers add to; any window is a GROUP BY of its buckets.
CREATE TABLE summaries (
    model_name    TEXT NOT NULL,
    model_version TEXT NOT NULL,
    measure       TEXT NOT NULL,
    bucket        TEXT NOT NULL,
    slice         TEXT NOT NULL,
    known_before  TEXT NOT NULL,
    cell          TEXT NOT NULL,
    n             REAL NOT NULL,
    sum_x         REAL NOT NULL,
    sum_x2        REAL NOT NULL,
    PRIMARY KEY (model_name, model_version, measure, bucket, slice, known_before, cell)
) WITHOUT ROWID;
